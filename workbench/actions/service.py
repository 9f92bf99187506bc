"""The action center (mdo-reference §4.6): propose, approve or reject, run, undo.

``ActionService(store, actor, mail=..., lake=...)`` is what the CLI, the panels and the AIR
import call. Every change is one transaction with a line in the action's history.

- **Sources**: AIR proposals (:func:`import_proposals`), the Explorer (:meth:`ActionService.from_explorer`),
  incident pages and code (:meth:`ActionService.propose`).
- **Two-step approval**: anyone may propose; approving, rejecting, running and undoing need the
  Search and Purge role (:mod:`workbench.actions.permissions`, the one place it is checked).
  Several pending actions of one kind can be approved at once.
- **Dedup**: an identical open action (same kind, same copies or entity) is returned instead of
  a new one; an AIR proposal is imported once, ever.
- **Expiry**: a pending action undecided for 7 days is ``expired``; checked on every read.
- **Files** (SharePoint, OneDrive, Teams): ``blockFile`` quarantines files in the tenant's file
  store and ``releaseFile`` (also the undo of a block) puts them back, one target per place;
  :func:`propose_file_blocks` proposes a block from hashes, :func:`import_file_alerts` from the
  content-malware alerts' file entities. The lake's FileMaliciousContentInfo rows of those files
  get ``LatestFileAction`` (Blocked / Released).
- **Safety**: a run touching more than ``max_share`` of the mailboxes or more than
  ``max_messages`` copies, and every hard delete, needs ``confirm=True``; :meth:`ActionService.dry_run`
  lists exactly what would move. Execution is in :mod:`workbench.actions.execute`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from workbench.actions import repo
from workbench.actions.adapters import RecordedRequests, RequestAdapter
from workbench.actions.model import (
    EXPIRY, Action, ActionEvent, ActionKind, ActionSource, ActionStatus, DryRunRow, MessageResult,
)
from workbench.actions.permissions import Permission, require
from workbench.enums import Folder
from workbench.errors import ConflictError, InputError, NotFound
from workbench.files.store import _SHA, FileRef, FileStore, UnsafePath, check_sha256
from workbench.mail.base import CopyRef, MailStore, Outcome
from workbench.store import Store, insert_ignore
from workbench.store import tables as t

A, O = t.actions, t.action_origins
S = ActionStatus

# AIR's proposal types → action kinds (a cluster and a list of copies are both soft deletes of copies).
FROM_AIR = {
    "softDeleteEmail": ActionKind.SOFT_DELETE, "softDeleteCluster": ActionKind.SOFT_DELETE,
    "blockUrl": ActionKind.BLOCK_URL, "blockSender": ActionKind.BLOCK_SENDER, "blockDomain": ActionKind.BLOCK_DOMAIN,
    "removeForwardingRule": ActionKind.REMOVE_FORWARDING_RULE, "removeInboxRule": ActionKind.REMOVE_INBOX_RULE,
    "removeDelegation": ActionKind.REMOVE_DELEGATION, "resetPassword": ActionKind.RESET_PASSWORD,
    "disableUser": ActionKind.DISABLE_USER,
}
AIR_ACTOR = "AIR"
MAX_PLACE = 320  # the longest Workload/site/path a file target can name (action_targets.mailbox)
IN_MAILBOX = frozenset({Folder.INBOX, Folder.JUNK, Folder.DELETED_ITEMS})  # folders a user still sees


@dataclass(frozen=True)
class Limits:
    """Blast-radius guard and batching (mdo-reference §4.7)."""

    max_share: float = 0.40  # of the mail store's mailboxes one action may touch without confirmation
    min_mailboxes: int = 10  # an action touching at most this many mailboxes never trips the share guard
    max_messages: int = 10_000  # copies one action may touch without confirmation
    batch_size: int = 500  # copies moved and recorded per transaction
    max_batch: int = 5_000  # the cap on batch_size
    lease_seconds: float = 120.0  # a running action whose executor is silent this long may be resumed

    def __post_init__(self) -> None:
        if not 0 < self.max_share <= 1 or self.max_messages < 1 or self.batch_size < 1 or self.lease_seconds <= 0:
            raise InputError("action limits: max_share in (0, 1], max_messages, batch_size and lease must be positive")

    def batch(self, size: int | None) -> int:
        size = size or self.batch_size
        if size < 1:
            raise InputError(f"batch size must be at least 1 (got {size})")
        return min(size, self.max_batch)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ActionService:
    """The action center for one acting user."""

    def __init__(self, store: Store, actor: str, *, mail: MailStore | None = None, lake: Any = None,
                 clock: Callable[[], datetime] | None = None, approvers: frozenset[str] | None = None,
                 limits: Limits = Limits(), adapter: RequestAdapter | None = None,
                 files: FileStore | None = None, system: bool = False) -> None:
        """*system*: the workbench itself (AIR, the demo pipeline) acts, not a user: its proposals
        are not checked against roles (approving still is)."""
        if not actor:
            raise InputError("unknown acting user; set WORKBENCH_USER")
        self.store, self.actor, self.mail, self.lake, self.files = store, actor, mail, lake, files
        self.clock = clock or _utc_now
        self.approvers, self.limits, self.system = approvers, limits, system
        self.adapter: RequestAdapter = adapter or RecordedRequests()

    @classmethod
    def for_tenant(cls, tenant: Any, store: Store, actor: str, **kw: Any) -> ActionService:
        """The service over the tenant's mail store (embedded or Maildir, see workbench.mail.config) and lake."""
        from workbench.lake import Lake
        from workbench.mail import open_mail_store

        mail = open_mail_store(tenant, missing_ok=True)
        kw.setdefault("files", FileStore.for_tenant(tenant) if tenant.files_dir.is_dir() else None)
        return cls(store, actor, mail=mail, lake=Lake.for_tenant(tenant), **kw)

    def require(self, permission: Permission, target: str = "") -> None:
        if self.system and permission is Permission.PROPOSE:
            return
        require(self.actor, permission, approvers=self.approvers, store=self.store, target=target)

    # ------------------------------------------------------------------ reading

    def expire_due(self) -> list[int]:
        """Expire pending actions past their date (run on every read; returns their ids)."""
        now = self.clock()

        def do(conn: sa.Connection) -> list[int]:
            due = list(conn.execute(sa.select(A.c.id).where(
                A.c.status.in_([S.PENDING.value, S.PROPOSED.value]), A.c.expires <= now)).scalars())
            for action_id in due:
                n = conn.execute(A.update().where(A.c.id == action_id, A.c.status.in_([S.PENDING.value, S.PROPOSED.value]))
                                 .values(status=S.EXPIRED.value, open_key=None, decided=now, decided_by="system")).rowcount
                if n:
                    repo.event(conn, action_id, now, "system", "expired", "no decision within 7 days")
                    settle_investigations(conn, action_id, now)
            return due
        with self.store.read() as conn:  # cheap check first: most reads find nothing to expire
            if not conn.execute(sa.select(sa.func.count()).select_from(A).where(
                    A.c.status.in_([S.PENDING.value, S.PROPOSED.value]), A.c.expires <= now)).scalar_one():
                return []
        return self.store.run(do)

    def list(self, statuses: Iterable[ActionStatus | str] = (), *, kind: ActionKind | str | None = None,
             limit: int = 1000, source: ActionSource | str | None = None, investigation_id: int | None = None,
             since: datetime | None = None, until: datetime | None = None) -> list[Action]:
        """Actions, newest first, optionally of some statuses, one kind, one source, one
        investigation, and created in ``[since, until)``."""
        self.expire_due()
        stmt = sa.select(A).order_by(A.c.id.desc()).limit(limit)
        wanted = [ActionStatus(s).value for s in statuses]
        if wanted:
            stmt = stmt.where(A.c.status.in_(wanted))
        if kind:
            stmt = stmt.where(A.c.kind == ActionKind(kind).value)
        if source:
            stmt = stmt.where(A.c.source == ActionSource(source).value)
        if investigation_id is not None:
            stmt = stmt.where(A.c.investigation_id == investigation_id)
        if since is not None:
            stmt = stmt.where(A.c.created >= since)
        if until is not None:
            stmt = stmt.where(A.c.created < until)
        with self.store.read() as conn:
            return [repo.action_of(r) for r in conn.execute(stmt)]

    def get(self, action_id: int) -> Action:
        self.expire_due()
        with self.store.read() as conn:
            return repo.get(conn, action_id)

    def results(self, action_id: int) -> list[MessageResult]:
        """Per-copy results (and, before a run, the copies it will act on)."""
        with self.store.read() as conn:
            repo.row(conn, action_id)
            return repo.results(conn, action_id)

    def history(self, action_id: int) -> list[ActionEvent]:
        with self.store.read() as conn:
            repo.row(conn, action_id)
            return repo.events(conn, action_id)

    def in_mailboxes(self, copies: Iterable[tuple[str, str] | CopyRef]) -> list[CopyRef]:
        """The copies a user can still open (Inbox, Junk Email or Deleted Items in the mail store)."""
        mail = self._mail()
        refs = dict.fromkeys(c if isinstance(c, CopyRef) else CopyRef.of(*c) for c in copies)
        return [r for r in refs if mail.folder(r.network_message_id, r.mailbox) in IN_MAILBOX]

    # ------------------------------------------------------------------ proposing

    def propose(self, kind: ActionKind | str, *, copies: Sequence[tuple[str, str] | CopyRef] = (),
                target_kind: str = "", target: str = "", name: str = "", reason: str = "",
                source: ActionSource | str = ActionSource.CLI, source_ref: str = "", submit: bool = True,
                investigation_id: int | None = None, origin_key: str | None = None,
                proposed_by: str | None = None) -> Action:
        """Record an action waiting for approval (``submit=False``: a draft, ``proposed``).
        An identical open action is returned instead of a second one."""
        kind = ActionKind(kind)
        if kind is ActionKind.RESTORE:
            raise InputError("a restore is made by undo: workbench actions undo ID")
        self.require(Permission.PROPOSE)
        if kind.moves_files:
            refs = _file_targets(copies)
            if not refs:
                raise InputError(f"{kind.label}: no files given; give (SHA256, Workload/site/path) pairs")
            target_kind = target_kind or "file"
            target = target.strip() or (refs[0].network_message_id if len({r.network_message_id for r in refs}) == 1
                                        else f"{len(refs):,} files")
            return self._insert(kind, refs, target_kind=target_kind, target=target, name=name or f"{kind.label}: {target}",
                                reason=reason, source=ActionSource(source), source_ref=source_ref,
                                status=S.PENDING if submit else S.PROPOSED, investigation_id=investigation_id,
                                origin_key=origin_key, proposed_by=proposed_by or self.actor)
        refs = list(dict.fromkeys(c if isinstance(c, CopyRef) else CopyRef.of(*c) for c in copies))
        if kind.moves_mail and not refs:
            raise InputError(f"{kind.label}: no message copies given; select the messages (NetworkMessageId, recipient)")
        if not kind.moves_mail and not target.strip():
            raise InputError(f"{kind.label}: name what to act on (the URL, sender, domain or account)")
        target_kind = target_kind or ("email" if kind.moves_mail else "")
        target = target.strip() or (f"{len(refs):,} email copies" if kind.moves_mail else "")
        name = name or f"{kind.label}: {target}"
        return self._insert(kind, refs, target_kind=target_kind, target=target, name=name, reason=reason,
                            source=ActionSource(source), source_ref=source_ref,
                            status=S.PENDING if submit else S.PROPOSED, investigation_id=investigation_id,
                            origin_key=origin_key, proposed_by=proposed_by or self.actor)

    def _insert(self, kind: ActionKind, refs: list[CopyRef], *, target_kind: str, target: str, name: str, reason: str,
                source: ActionSource, source_ref: str, status: ActionStatus, investigation_id: int | None,
                origin_key: str | None, proposed_by: str, decided_by: str = "", undo_of: int | None = None,
                destinations: Sequence[Any] | None = None) -> Action:
        now = self.clock()
        key = repo.dedup_key(kind, target_kind, target, refs) if undo_of is None else None

        def do(conn: sa.Connection) -> Action:
            if origin_key:
                known = conn.execute(sa.select(O.c.action_id).where(O.c.origin_key == origin_key)).scalar()
                if known is not None:
                    return repo.get(conn, known)
            same = conn.execute(sa.select(A).where(A.c.open_key == key)).first() if key else None
            if same is not None:
                repo.event(conn, same.id, now, proposed_by, "proposed again",
                           f"identical to this open action ({source.value} {source_ref})".strip())
                action_id = same.id
            else:
                values = dict(kind=kind.value, status=status.value, source=source.value, source_ref=source_ref[:300],
                              open_key=key, name=name[:1000], target_kind=target_kind[:20], target=target[:1000],
                              reason=reason, investigation_id=investigation_id, undo_of=undo_of,
                              proposed_by=proposed_by, created=now, expires=now + EXPIRY, decided_by=decided_by,
                              decided=now if decided_by else None, comment="", runner="", n_targets=len(refs))
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                action_id = conn.execute(dialect.insert(A).values(**values).on_conflict_do_nothing()
                                         .returning(A.c.id)).scalar()
                if action_id is None:
                    raise _Raced
                if kind.moves_files:
                    _add_file_targets(conn, action_id, refs, kind)
                else:
                    dests = destinations or [kind.destination] * len(refs)
                    repo.add_targets(conn, action_id, zip(refs, dests))
                repo.event(conn, action_id, now, proposed_by, "proposed" if not decided_by else "created",
                           f"from {source.value} {source_ref}".strip())
                if decided_by:
                    repo.event(conn, action_id, now, decided_by, "approved", "")
            if origin_key:
                if not insert_ignore(conn, O, [dict(origin_key=origin_key, action_id=action_id,
                                                    investigation_id=investigation_id)], "origin_key"):
                    raise _Raced
            return repo.get(conn, action_id)
        for _ in range(3):  # a concurrent identical proposal won the unique key: read it
            try:
                return self.store.run(do)
            except _Raced:
                continue
        raise ConflictError("an identical action is being proposed at the same moment; list actions and retry")

    def submit(self, action_id: int) -> Action:
        """A draft (``proposed``) goes to the approvers (``pending``)."""
        return self._transition(action_id, {S.PROPOSED}, S.PENDING, "submitted", "")

    def from_explorer(self, request: Any) -> Action:
        """An Explorer request (``workbench.explorer.actions.ActionRequest``) of a remediation kind:
        "Propose remediation" is a pending soft delete; "Move or delete" (which needs the
        remediation permission once the tenant uses roles) by an approver is approved at once
        (run it next), by anyone else it waits for an approver."""
        from workbench.explorer.actions import ActionKind as Ek

        kinds = {Ek.MOVE_TO_JUNK: ActionKind.MOVE_TO_JUNK, Ek.MOVE_TO_INBOX: ActionKind.MOVE_TO_INBOX,
                 Ek.MOVE_TO_DELETED_ITEMS: ActionKind.MOVE_TO_DELETED_ITEMS, Ek.SOFT_DELETE: ActionKind.SOFT_DELETE,
                 Ek.HARD_DELETE: ActionKind.HARD_DELETE, Ek.PROPOSE_REMEDIATION: ActionKind.SOFT_DELETE}
        if request.kind not in kinds:
            raise InputError(f"{request.kind.value} is carried out by the {request.handler}, not the action center")
        if request.kind is not Ek.PROPOSE_REMEDIATION:
            from workbench import rbac

            rbac.require(self.store, self.actor, rbac.Permission.REMEDIATION, activity="explorer.remediate",
                         target=f"{request.kind.value}: {len(request.targets):,} message(s)")
        copies = [(x.network_message_id, x.recipient) for x in request.targets]
        source_ref = "query " + json.dumps(request.query, sort_keys=True)[:280] if request.query else ""
        action = self.propose(kinds[request.kind], copies=copies, source=ActionSource.EXPLORER, source_ref=source_ref,
                              reason=request.comment, proposed_by=request.requested_by)
        from workbench.actions.permissions import has

        if (request.kind is not Ek.PROPOSE_REMEDIATION and action.status is S.PENDING
                and has(self.actor, Permission.SEARCH_AND_PURGE, approvers=self.approvers, store=self.store)):
            return self.approve([action.id], comment="Move or delete from the Explorer")[0]
        return action

    def import_proposals(self, investigation_id: int) -> list[Action]:
        """Pending actions for an investigation's proposals (each imported once, ever)."""
        return import_proposals(self.store, investigation_id, clock=self.clock)

    # ------------------------------------------------------------------ deciding

    def _transition(self, action_id: int, allowed: set[ActionStatus], to: ActionStatus, what: str,
                    comment: str) -> Action:
        now = self.clock()
        self.expire_due()

        def do(conn: sa.Connection) -> Action:
            r = repo.row(conn, action_id, lock=True)
            if ActionStatus(r.status) not in allowed:
                raise ConflictError(_wrong_status(r, what))
            values: dict[str, Any] = {"status": to.value}
            if to in (S.APPROVED, S.REJECTED):
                values.update(decided_by=self.actor, decided=now, comment=comment[:4000])
            if not to.open:
                values["open_key"] = None
            conn.execute(A.update().where(A.c.id == action_id, A.c.status == r.status).values(**values))
            repo.event(conn, action_id, now, self.actor, what, comment)
            if to is S.REJECTED:
                settle_investigations(conn, action_id, now)
            return repo.get(conn, action_id)
        return self.store.run(do)

    def approve(self, action_ids: Sequence[int], comment: str = "") -> list[Action]:
        """Approve pending actions, all of one kind (bulk approval); all or none."""
        self.require(Permission.SEARCH_AND_PURGE, target=", ".join(f"action {i}" for i in action_ids))
        ids = list(dict.fromkeys(action_ids))
        if not ids:
            raise InputError("approve: give at least one action id")
        now = self.clock()
        self.expire_due()

        def do(conn: sa.Connection) -> list[Action]:
            rows = [repo.row(conn, i, lock=True) for i in ids]
            kinds = {r.kind for r in rows}
            if len(kinds) > 1:
                raise InputError(f"bulk approval takes actions of one type; these are {', '.join(sorted(kinds))}: "
                                 "approve each type separately")
            for r in rows:
                if not ActionStatus(r.status).decidable:
                    raise ConflictError(_wrong_status(r, "approve"))
            for r in rows:
                conn.execute(A.update().where(A.c.id == r.id).values(
                    status=S.APPROVED.value, decided_by=self.actor, decided=now, comment=comment[:4000]))
                repo.event(conn, r.id, now, self.actor, "approved", comment)
            return [repo.get(conn, i) for i in ids]
        return self.store.run(do)

    def reject(self, action_id: int, comment: str) -> Action:
        """Reject a pending action; the comment (why) is required."""
        self.require(Permission.SEARCH_AND_PURGE, target=f"action {action_id}")
        if not comment.strip():
            raise InputError(f"reject {action_id}: say why in a comment (--comment TEXT)")
        return self._transition(action_id, {S.PENDING, S.PROPOSED}, S.REJECTED, "rejected", comment.strip())

    # ------------------------------------------------------------------ running

    def _mail(self) -> MailStore:
        if self.mail is None:
            raise NotFound("this tenant has no mail store (mail/store.sqlite); ingest or generate mail first")
        return self.mail

    def dry_run(self, action_id: int) -> list[DryRunRow]:
        """Exactly what a run would do now: each copy, its current folder and where it would go
        (for a file: Quarantine when blocked, None when in place)."""
        action = self.get(action_id)
        if action.kind.moves_files:
            return self._dry_run_files(action)
        if not action.kind.moves_mail:
            return []
        mail = self._mail()
        rows = []
        for r in self.results(action_id):
            if r.state == "done":
                continue
            current = mail.folder(r.network_message_id, r.mailbox)
            would = (Outcome.NOT_FOUND if current is None else
                     Outcome.ALREADY_IN_DESTINATION if current is r.destination else Outcome.SUCCESS)
            rows.append(DryRunRow(r.network_message_id, r.mailbox, current, r.destination, would))
        return rows

    def _files(self) -> FileStore:
        if self.files is None:
            raise NotFound("this tenant has no file store (files/); generate the demo tenant or add shared files first")
        return self.files

    def _dry_run_files(self, action: Action) -> list[DryRunRow]:
        files, rows = self._files(), []
        dest = action.kind.destination
        for r in self.results(action.id):
            if r.state == "done":
                continue
            try:
                state = files.state(FileRef.parse(r.mailbox))
            except UnsafePath:
                rows.append(DryRunRow(r.network_message_id, r.mailbox, None, dest, Outcome.FAILURE))
                continue
            current = Folder.QUARANTINE if state == "blocked" else None
            would = (Outcome.NOT_FOUND if state is None else
                     Outcome.ALREADY_IN_DESTINATION if current is dest else Outcome.SUCCESS)
            rows.append(DryRunRow(r.network_message_id, r.mailbox, current, dest, would))
        return rows

    def guard(self, action: Action, *, confirm: bool) -> None:
        """Refuse a hard delete, or an action over the blast-radius limits, unless confirmed."""
        if confirm or not action.kind.moves_mail:
            return
        if action.kind is ActionKind.HARD_DELETE:
            raise InputError(f"action {action.id} hard-deletes {action.totals.targets:,} copies and cannot be undone; "
                             "check the dry run, then run it with --confirm")
        with self.store.read() as conn:
            touched = conn.execute(sa.select(sa.func.count(sa.distinct(t.action_targets.c.mailbox)))
                                   .where(t.action_targets.c.action_id == action.id)).scalar_one()
        lim = self.limits
        if action.totals.targets > lim.max_messages:
            raise InputError(f"action {action.id} touches {action.totals.targets:,} copies (limit {lim.max_messages:,}); "
                             "check the dry run, then run it with --confirm")
        if touched > lim.min_mailboxes and self.mail is not None:
            total = len(self.mail.mailboxes())
            if total and touched / total > lim.max_share:
                raise InputError(f"action {action.id} touches {touched:,} of {total:,} mailboxes "
                                 f"({touched / total:.0%}, limit {lim.max_share:.0%}); check the dry run, "
                                 "then run it with --confirm")

    def run(self, action_id: int, *, confirm: bool = False, batch_size: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> Action:
        """Carry out an approved action (or resume one whose executor died); see execute.py."""
        from workbench.actions.execute import execute

        self.require(Permission.SEARCH_AND_PURGE, target=f"action {action_id}")
        action = self.get(action_id)
        if action.status in (S.APPROVED, S.QUEUED, S.RUNNING):
            self.guard(action, confirm=confirm)
        return execute(self, action_id, batch_size=self.limits.batch(batch_size), progress=progress)

    def run_approved(self, *, confirm: bool = False, progress: Callable[[int, int], None] | None = None) -> list[Action]:
        """Queue every approved action, then run them one after another, oldest first."""
        self.require(Permission.SEARCH_AND_PURGE)
        ids = self.store.run(lambda conn: _queue_approved(conn, self.clock(), self.actor))
        return [self.run(i, confirm=confirm, progress=progress) for i in ids]

    def undo(self, action_id: int, *, batch_size: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> Action:
        """Move every copy the action moved back to the folder it came from (a restore action,
        run now). Hard deletes are final."""
        self.require(Permission.SEARCH_AND_PURGE, target=f"action {action_id}")
        action = self.get(action_id)
        if not action.kind.undoable:
            raise ConflictError(f"action {action_id} ({action.kind.label}) cannot be undone"
                                + ("; a hard delete is final" if action.kind is ActionKind.HARD_DELETE else ""))
        if action.status not in (S.COMPLETED, S.PARTIALLY_COMPLETED, S.FAILED, S.UNDONE):
            raise ConflictError(f"action {action_id} is {action.status.value}; only a finished action can be undone")
        if action.kind.moves_files:
            return self._undo_files(action, batch_size=batch_size, progress=progress)
        with self.store.read() as conn:
            existing = conn.execute(sa.select(A.c.id, A.c.status).join(O, O.c.action_id == A.c.id)
                                    .where(O.c.origin_key == f"undo:{action_id}")).first()
        if existing is not None and not ActionStatus(existing.status).open:
            raise ConflictError(f"action {action_id} was already undone by action {existing.id}")
        if existing is None:
            moved = [r for r in self.results(action_id) if r.outcome is Outcome.SUCCESS and r.source_folder]
            if not moved:
                raise ConflictError(f"action {action_id} moved no copy; nothing to undo")
            restore = self._insert(
                ActionKind.RESTORE, [CopyRef(r.network_message_id, r.mailbox) for r in moved],
                target_kind="email", target=f"{len(moved):,} email copies", name=f"Undo of action {action_id}: "
                f"{action.name}"[:1000], reason=f"restore what action {action_id} moved", source=ActionSource.CLI,
                source_ref=f"undo of action {action_id}", status=S.APPROVED, investigation_id=None,
                origin_key=f"undo:{action_id}", proposed_by=self.actor, decided_by=self.actor, undo_of=action_id,
                destinations=[r.source_folder for r in moved])
            restore_id = restore.id
        else:
            restore_id = existing.id
        return self.run(restore_id, confirm=True, batch_size=batch_size, progress=progress)


    def _undo_files(self, action: Action, *, batch_size: int | None,
                    progress: Callable[[int, int], None] | None) -> Action:
        """Release every file the block quarantined (a releaseFile action, run now)."""
        with self.store.read() as conn:
            existing = conn.execute(sa.select(A.c.id, A.c.status).join(O, O.c.action_id == A.c.id)
                                    .where(O.c.origin_key == f"undo:{action.id}")).first()
        if existing is not None and not ActionStatus(existing.status).open:
            raise ConflictError(f"action {action.id} was already undone by action {existing.id}")
        if existing is None:
            moved = [r for r in self.results(action.id) if r.outcome is Outcome.SUCCESS]
            if not moved:
                raise ConflictError(f"action {action.id} blocked no file; nothing to undo")
            release = self._insert(
                ActionKind.RELEASE_FILE, [CopyRef(r.network_message_id, r.mailbox) for r in moved], target_kind="file",
                target=action.target, name=f"Undo of action {action.id}: {action.name}"[:1000],
                reason=f"release what action {action.id} blocked", source=ActionSource.CLI,
                source_ref=f"undo of action {action.id}", status=S.APPROVED, investigation_id=None,
                origin_key=f"undo:{action.id}", proposed_by=self.actor, decided_by=self.actor, undo_of=action.id)
            release_id = release.id
        else:
            release_id = existing.id
        return self.run(release_id, confirm=True, batch_size=batch_size, progress=progress)


def _file_targets(copies: Sequence[Any]) -> list[CopyRef]:
    """File targets as stored: (SHA256 lower-cased, ``Workload/site/path`` checked, case kept)."""
    out = []
    for c in copies:
        sha, place = (c.network_message_id, c.mailbox) if isinstance(c, CopyRef) else c
        key = place.key if isinstance(place, FileRef) else FileRef.parse(str(place)).key
        if len(key) > MAX_PLACE:
            raise InputError(f"file path {key[:60]}... is longer than {MAX_PLACE} characters; move or rename it first")
        out.append(CopyRef(check_sha256(sha), key))
    return list(dict.fromkeys(out))


def _add_file_targets(conn: sa.Connection, action_id: int, refs: Sequence[CopyRef], kind: ActionKind) -> None:
    """One target per file place; the destination is Quarantine (block) or empty (back to its place)."""
    dest = kind.destination.value if kind.destination else ""
    conn.execute(t.action_targets.insert(), [
        dict(action_id=action_id, seq=i, network_message_id=r.network_message_id, mailbox=r.mailbox, destination=dest,
             state="pending", outcome=None, source_folder=None, reason="", attempted=None, attempts=0)
        for i, r in enumerate(refs, start=1)])


def propose_file_blocks(service: ActionService, sha256s: Iterable[str], *, reason: str = "",
                        source: ActionSource | str = ActionSource.CLI, source_ref: str = "", submit: bool = True,
                        origin_key: str | None = None, investigation_id: int | None = None,
                        proposed_by: str | None = None) -> Action:
    """A pending block of every place in the file store holding one of these files (by SHA256)."""
    hashes = list(dict.fromkeys(check_sha256(h) for h in sha256s))
    if not hashes:
        raise InputError("block files: give at least one SHA256")
    files = service._files()
    targets = [(h, ref) for h in hashes for ref in files.locate(h)]
    if not targets:
        raise NotFound(f"no file with SHA256 {hashes[0][:12]}... in the file store"
                       + (f" (nor {len(hashes) - 1} other hash(es))" if len(hashes) > 1 else "")
                       + "; list the files with `workbench files list`")
    target = hashes[0] if len(hashes) == 1 else f"{len(hashes)} files"
    return service.propose(ActionKind.BLOCK_FILE, copies=targets, target_kind="file", target=target,
                           name=f"Block file: {target}" + (f" ({len(targets)} places)" if len(targets) > 1 else ""),
                           reason=reason or "malicious file in SharePoint, OneDrive or Teams", source=source,
                           source_ref=source_ref, submit=submit, origin_key=origin_key,
                           investigation_id=investigation_id, proposed_by=proposed_by)


def propose_from_alert(service: ActionService, alert_id: str) -> Action | None:
    """A pending block of the malicious files an alert names (its ``file`` entities); proposed
    once per alert, ever. None when the alert names no file the file store holds."""
    from workbench.incidents.model import EntityKind
    from workbench.incidents.service import IncidentService

    alert = IncidentService(service.store, service.actor).alert(alert_id)
    files = service._files()
    hashes = [e.value.lower() for e in alert.entities if e.kind is EntityKind.FILE and _SHA.match(e.value.lower())]
    hashes = [h for h in dict.fromkeys(hashes) if files.locate(h)]
    if not hashes:
        return None
    where = f"alert {alert.id}" + (f" / incident {alert.incident_id}" if alert.incident_id else "")
    return propose_file_blocks(service, hashes, reason=alert.title, source=ActionSource.INCIDENT, source_ref=where,
                               origin_key=f"alert-file-block:{alert.id}", proposed_by=AIR_ACTOR)


def import_file_alerts(service: ActionService) -> list[Action]:
    """Pending file blocks for every unresolved content-malware alert (each alert once, ever)."""
    if service.files is None:
        return []
    al = t.alerts
    with service.store.read() as conn:
        ids = list(conn.execute(sa.select(al.c.id).where(al.c.policy_id == "content_malware",
                                                         al.c.status != "resolved").order_by(al.c.id)).scalars())
    return [a for i in ids if (a := propose_from_alert(service, i)) is not None]


class _Raced(Exception):
    """A concurrent transaction inserted the same unique key first."""


def _wrong_status(r: Any, what: str) -> str:
    status = ActionStatus(r.status)
    if status is S.EXPIRED:
        return f"action {r.id} expired on {r.expires:%Y-%m-%d} without a decision; propose it again"
    if status.decidable:
        return f"action {r.id} is {status.value}: approve it first (workbench actions approve {r.id})"
    if status is S.REJECTED:
        return f"action {r.id} was rejected by {r.decided_by}; propose it again if it is needed"
    return f"action {r.id} is already {status.value} (decided by {r.decided_by or 'nobody'}); nothing to {what}"


def _queue_approved(conn: sa.Connection, now: datetime, actor: str) -> list[int]:
    ids = list(conn.execute(sa.select(A.c.id).where(A.c.status == S.APPROVED.value).order_by(A.c.id)).scalars())
    for i in ids:
        if conn.execute(A.update().where(A.c.id == i, A.c.status == S.APPROVED.value)
                        .values(status=S.QUEUED.value)).rowcount:
            repo.event(conn, i, now, actor, "queued")
    return ids


def settle_investigations(conn: sa.Connection, action_id: int, now: datetime) -> None:
    """When every action of an AIR investigation has ended, end the investigation (§4.4):
    remediated, partially remediated, terminated by the system (expired) or by the user (rejected)."""
    invs = conn.execute(sa.select(O.c.investigation_id).distinct().where(
        O.c.action_id == action_id, O.c.investigation_id.is_not(None))).scalars().all()
    for investigation_id in invs:
        statuses = {ActionStatus(s) for s in conn.execute(
            sa.select(A.c.status).join(O, O.c.action_id == A.c.id).where(O.c.investigation_id == investigation_id)).scalars()}
        if not statuses or any(s.open for s in statuses):
            continue
        done = {S.COMPLETED, S.REQUESTED, S.UNDONE}
        if statuses == {S.EXPIRED}:
            status = "terminatedBySystem"
        elif statuses == {S.REJECTED}:
            status = "terminatedByUser"
        elif statuses <= done | {S.REJECTED}:
            status = "remediated"
        else:
            status = "partiallyRemediated"
        inv = t.investigations
        conn.execute(inv.update().where(inv.c.id == investigation_id, inv.c.status == "pendingAction")
                     .values(status=status, ended=now))


def import_proposals(store: Store, investigation_id: int, *, clock: Callable[[], datetime] | None = None) -> list[Action]:
    """Turn an investigation's proposed actions (``air/records.propose``) into pending actions
    of the action center; importing again adds nothing. Returns the investigation's actions."""
    from workbench.air import records

    rec = records.load(store, investigation_id)
    service = ActionService(store, AIR_ACTOR, clock=clock, system=True)
    out = []
    for p in rec.actions:
        kind = FROM_AIR.get(p.action.value)
        if kind is None:
            continue
        out.append(service.propose(
            kind, copies=list(p.messages) if kind.moves_mail else (), target_kind=p.target_kind.value,
            target=p.target, name=f"{kind.label}: {p.target}", reason=p.reason, source=ActionSource.AIR,
            source_ref=f"investigation {investigation_id} / proposal {p.id}", investigation_id=investigation_id,
            origin_key=f"air-proposal:{p.id}", proposed_by=AIR_ACTOR))
    return out


def import_all(store: Store) -> list[Action]:
    """Import the proposals of every investigation waiting for action (``pendingAction``)."""
    inv = t.investigations
    with store.read() as conn:
        ids = list(conn.execute(sa.select(inv.c.id).where(inv.c.status == "pendingAction").order_by(inv.c.id)).scalars())
    return [a for i in ids for a in import_proposals(store, i)]


__all__ = ["ActionService", "Limits", "import_proposals", "import_all", "settle_investigations", "FROM_AIR",
           "propose_file_blocks", "propose_from_alert", "import_file_alerts"]
