"""Reading and writing the action center's tables (``actions``, ``action_targets``,
``action_events``); the service and the executor build on these, inside their transactions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from workbench.actions.model import Action, ActionEvent, ActionKind, ActionSource, ActionStatus, MessageResult, Totals
from workbench.enums import Folder
from workbench.errors import NotFound
from workbench.mail.base import CopyRef, Outcome
from workbench.store import tables as t

A, T, E = t.actions, t.action_targets, t.action_events


def dedup_key(kind: ActionKind, target_kind: str, target: str, copies: Sequence[CopyRef]) -> str:
    """Identical actions share this key: the kind and the sorted copies (mail), or the kind
    and the entity (others)."""
    h = hashlib.sha256(f"{kind.value}\n".encode())
    if copies:
        for ref in sorted(set(copies), key=lambda r: (r.network_message_id, r.mailbox)):
            h.update(f"{ref.network_message_id}\t{ref.mailbox}\n".encode())
    else:
        h.update(f"{target_kind}\t{target.strip().lower()}".encode())
    return h.hexdigest()


def action_of(r: Any) -> Action:
    return Action(
        id=r.id, kind=ActionKind(r.kind), status=ActionStatus(r.status), source=ActionSource(r.source),
        source_ref=r.source_ref, name=r.name, target_kind=r.target_kind, target=r.target, reason=r.reason,
        proposed_by=r.proposed_by, created=r.created, expires=r.expires, decided_by=r.decided_by, decided=r.decided,
        comment=r.comment, started=r.started, finished=r.finished, runner=r.runner, heartbeat=r.heartbeat,
        undo_of=r.undo_of, investigation_id=r.investigation_id,
        totals=Totals(r.n_targets, r.n_success, r.n_failure, r.n_already, r.n_not_found))


def row(conn: sa.Connection, action_id: int, *, lock: bool = False) -> Any:
    stmt = sa.select(A).where(A.c.id == action_id)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    r = conn.execute(stmt).first()
    if r is None:
        raise NotFound(f"no action {action_id}; list them with `workbench actions list`")
    return r


def get(conn: sa.Connection, action_id: int) -> Action:
    return action_of(row(conn, action_id))


def event(conn: sa.Connection, action_id: int, at: datetime, actor: str, what: str, comment: str = "") -> None:
    """One line of the action's history, and the same event in the audit log (one transaction)."""
    from workbench import audit

    conn.execute(E.insert().values(action_id=action_id, at=at, actor=actor, event=what, comment=comment[:4000]))
    audit.append(conn, actor=actor, activity="action." + what.replace(" ", "_"), target=f"action {action_id}",
                 result="failed" if what in ("failed", "interrupted") else "ok",
                 details={"comment": comment[:1000]} if comment else None)


def events(conn: sa.Connection, action_id: int) -> list[ActionEvent]:
    return [ActionEvent(e.at, e.actor, e.event, e.comment)
            for e in conn.execute(sa.select(E).where(E.c.action_id == action_id).order_by(E.c.id))]


def add_targets(conn: sa.Connection, action_id: int, copies: Iterable[tuple[CopyRef, Folder]]) -> int:
    rows = [dict(action_id=action_id, seq=i, network_message_id=ref.network_message_id, mailbox=ref.mailbox,
                 destination=Folder(dest).value, state="pending", outcome=None, source_folder=None, reason="",
                 attempted=None, attempts=0)
            for i, (ref, dest) in enumerate(copies, start=1)]
    for start in range(0, len(rows), 5000):
        conn.execute(T.insert(), rows[start:start + 5000])
    return len(rows)


def _folder(value: str | None) -> Folder | None:
    return Folder(value) if value else None


def result_of(r: Any) -> MessageResult:
    return MessageResult(r.seq, r.network_message_id, r.mailbox, _folder(r.destination), r.state,
                         Outcome(r.outcome) if r.outcome else None, _folder(r.source_folder), r.reason, r.attempted,
                         r.attempts)


def results(conn: sa.Connection, action_id: int, *, state: str | None = None, after: int = 0,
            limit: int | None = None) -> list[MessageResult]:
    stmt = sa.select(T).where(T.c.action_id == action_id, T.c.seq > after).order_by(T.c.seq)
    if state:
        stmt = stmt.where(T.c.state == state)
    if limit:
        stmt = stmt.limit(limit)
    return [result_of(r) for r in conn.execute(stmt)]


def totals(conn: sa.Connection, action_id: int) -> Totals:
    counts = dict(conn.execute(sa.select(T.c.outcome, sa.func.count()).where(T.c.action_id == action_id)
                               .group_by(T.c.outcome)).all())
    return Totals(targets=sum(counts.values()), success=counts.get(Outcome.SUCCESS.value, 0),
                  failure=counts.get(Outcome.FAILURE.value, 0), already=counts.get(Outcome.ALREADY_IN_DESTINATION.value, 0),
                  not_found=counts.get(Outcome.NOT_FOUND.value, 0))


def totals_values(x: Totals) -> dict[str, int]:
    return dict(n_targets=x.targets, n_success=x.success, n_failure=x.failure, n_already=x.already,
                n_not_found=x.not_found)


__all__ = ["dedup_key", "action_of", "row", "get", "event", "events", "add_targets", "results", "result_of", "totals",
           "totals_values"]
