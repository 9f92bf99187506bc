"""Carrying out an approved action: idempotent, crash-safe, never run by two executors at once.

**Claim.** An executor takes the action with one conditional UPDATE (``approved``/``queued`` →
``running``, naming itself ``host:pid`` and a heartbeat); a second executor's UPDATE matches no
row and it stops with a one-line error. A ``running`` action whose executor died (its process
is gone on this host, or its heartbeat is older than the lease) is taken over the same way
(compare-and-swap on the old executor and heartbeat) and resumed.

**Batches.** Copies are processed ``batch_size`` at a time, in three steps:

1. *intent*: in one transaction, each copy's current folder is written as its ``source_folder``
   and its state becomes ``moving``;
2. the mail store moves the batch (each move atomic and idempotent);
3. *result*: in one transaction, each copy's outcome is written and its state becomes ``done``.

Killed between 2 and 3, a rerun moves the batch again: the store answers "already in the
destination", and because the recorded source differs from the destination the copy is
counted as moved by this action, once. So no copy is moved twice or lost, and undo knows each
copy's original folder. Every transaction first checks that this executor still holds the
action.

**Files.** ``blockFile`` / ``releaseFile`` run the same way over the file store: intent (each
place's state: ``Quarantine`` when blocked, none when in place), block or release, result; then
the FileMaliciousContentInfo rows of the files that ended where the action wanted them get
``LatestFileAction`` (Blocked / Released).

**Publishing.** When every copy is done, one EmailPostDeliveryEvents row per moved copy
(ReportId ``wb-action-<id>-<seq>``: appending again adds nothing) goes to the lake, and the
copies' EmailEvents ``LatestDeliveryLocation`` / ``LatestDeliveryAction`` are set (so the
Explorer's grid, filters and timeline show the action); then the totals and final status.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from workbench.actions import repo
from workbench.actions.model import Action, ActionKind, ActionStatus, MessageResult, landing
from workbench.enums import ActionResult, ActionTrigger, FileAction, Folder, PostDeliveryActionType
from workbench.files.store import FileRef, FileStore, UnsafePath, ref_for_row
from workbench.errors import ConflictError
from workbench.mail.base import CopyRef, Outcome
from workbench.store import tables as t

if TYPE_CHECKING:
    from workbench.actions.service import ActionService

A, T = t.actions, t.action_targets
S = ActionStatus
BATCH_DELAY_ENV = "WORKBENCH_ACTIONS_BATCH_DELAY"  # seconds between a batch's moves and its record: crash tests only


def runner_id() -> str:
    """This executor: host, process and a per-run tag (two executors in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(r: Any, now: datetime, lease: float) -> bool:
    """Whether a running action's executor is gone: dead on this host, or silent past the lease."""
    if r.heartbeat is None or now - r.heartbeat > timedelta(seconds=lease):
        return True
    host, pid = ((r.runner or "").split(":") + ["", ""])[:2]
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def claim(service: ActionService, action_id: int, me: str) -> tuple[Action, bool]:
    """Take the action for executor *me*; returns it and whether a dead executor's run is resumed."""
    now = service.clock()

    def do(conn: sa.Connection) -> tuple[Action, bool]:
        r = repo.row(conn, action_id, lock=True)
        status = ActionStatus(r.status)
        resumed = status is S.RUNNING
        if status in (S.APPROVED, S.QUEUED):
            cond = A.c.status.in_([S.APPROVED.value, S.QUEUED.value])
        elif status is S.RUNNING and _stale(r, now, service.limits.lease_seconds):
            cond = sa.and_(A.c.status == S.RUNNING.value, A.c.runner == r.runner, A.c.heartbeat == r.heartbeat)
        elif status is S.RUNNING:
            age = (now - r.heartbeat).total_seconds() if r.heartbeat else 0
            raise ConflictError(f"action {action_id} is being run by {r.runner} (heartbeat {age:.0f} s ago); "
                                "wait for it to finish (`workbench actions show` follows it)")
        else:
            from workbench.actions.service import _wrong_status

            raise ConflictError(_wrong_status(r, "run"))
        won = conn.execute(A.update().where(A.c.id == action_id, cond).values(
            status=S.RUNNING.value, runner=me, heartbeat=now, started=r.started or now)).rowcount
        if won != 1:
            raise ConflictError(f"action {action_id} was taken by another executor first; nothing to do here")
        repo.event(conn, action_id, now, service.actor, "resumed" if resumed else "started",
                   f"by {me}" + (f" after {r.runner} stopped" if resumed else ""))
        return repo.get(conn, action_id), resumed
    return service.store.run(do)


def _hold(conn: sa.Connection, action_id: int, me: str, now: datetime) -> None:
    """Refresh the heartbeat, failing if another executor has taken the action over."""
    held = conn.execute(A.update().where(A.c.id == action_id, A.c.status == S.RUNNING.value, A.c.runner == me)
                        .values(heartbeat=now)).rowcount
    if held != 1:
        raise ConflictError(f"action {action_id} was taken over by another executor; this run stopped")


def execute(service: ActionService, action_id: int, *, batch_size: int,
            progress: Callable[[int, int], None] | None = None) -> Action:
    """Claim and carry out *action_id*; returns the finished action."""
    me = runner_id()
    action, _ = claim(service, action_id, me)
    try:
        if action.kind.moves_files:
            _move_files(service, action, me, batch_size, progress)
            _publish_files(service, action)
            return _finish(service, action, me)
        if action.kind.moves_mail:
            _move_all(service, action, me, batch_size, progress)
            _publish(service, action)
            return _finish(service, action, me)
        return _request(service, action, me)
    except BaseException as exc:  # an error or Ctrl-C (not a crash): hand the action back at once
        _release(service, action_id, me, exc)
        raise


def _release(service: ActionService, action_id: int, me: str, exc: BaseException) -> None:
    """An error (not a crash) hands the action back as approved: a later run resumes it."""
    now = service.clock()

    def do(conn: sa.Connection) -> None:
        if conn.execute(A.update().where(A.c.id == action_id, A.c.status == S.RUNNING.value, A.c.runner == me)
                        .values(status=S.APPROVED.value, runner="", heartbeat=None)).rowcount:
            repo.event(conn, action_id, now, service.actor, "interrupted", f"{type(exc).__name__}: {exc}"[:1000])
    try:
        service.store.run(do)
    except Exception:  # noqa: BLE001 - the original error matters more; the lease frees the action anyway
        pass


def _batches(service: ActionService, action: Action, batch_size: int,
             progress: Callable[[int, int], None] | None) -> Iterator[list[MessageResult]]:
    """The action's targets not yet done, *batch_size* at a time, oldest first; each batch is
    read after the previous one was recorded (so a resumed run starts where the last stopped).
    *progress* gets (done, total) at the start and after each batch."""
    with service.store.read() as conn:
        done = conn.execute(sa.select(sa.func.count()).where(T.c.action_id == action.id, T.c.state == "done")).scalar_one()
    if progress:
        progress(done, action.totals.targets)
    while True:
        with service.store.read() as conn:
            batch = [repo.result_of(r) for r in conn.execute(
                sa.select(T).where(T.c.action_id == action.id, T.c.state != "done").order_by(T.c.seq).limit(batch_size))]
        if not batch:
            return
        yield batch  # the caller moves and records it before asking for the next
        done += len(batch)
        if progress:
            progress(done, action.totals.targets)


def _move_all(service: ActionService, action: Action, me: str, batch_size: int,
              progress: Callable[[int, int], None] | None) -> None:
    mail = service._mail()
    delay = float(os.environ.get(BATCH_DELAY_ENV) or 0)
    for batch in _batches(service, action, batch_size, progress):
        sources = _intent(service, action, me, batch, mail)
        moved: dict[int, tuple[Outcome, Folder | None, str]] = {}
        by_dest: dict[Folder, list[MessageResult]] = {}
        for r in batch:
            by_dest.setdefault(r.destination, []).append(r)
        for dest, rows in by_dest.items():
            results = mail.move([CopyRef(r.network_message_id, r.mailbox) for r in rows], dest)
            for r, res in zip(rows, results):
                src = sources[r.seq]
                outcome, source = res.outcome, res.source or src
                if outcome is Outcome.ALREADY_IN_DESTINATION and src is not None and src is not dest:
                    outcome, source = Outcome.SUCCESS, src  # moved by this action in a run that died before recording it
                moved[r.seq] = (outcome, source, res.reason)
        if delay:  # crash tests kill the process here: copies moved, results not yet recorded
            time.sleep(delay)
        _record(service, action, me, moved)


def _intent(service: ActionService, action: Action, me: str, batch: list[MessageResult],
            mail: Any) -> dict[int, Folder | None]:
    """Write each copy's current folder as its source before moving it (kept from an earlier try)."""
    now = service.clock()
    sources = {r.seq: r.source_folder for r in batch if r.state == "moving"}
    fresh = [r for r in batch if r.state == "pending"]
    for r in fresh:
        sources[r.seq] = mail.folder(r.network_message_id, r.mailbox)

    def do(conn: sa.Connection) -> None:
        _hold(conn, action.id, me, now)
        if fresh:
            conn.execute(T.update().where(T.c.action_id == action.id, T.c.seq == sa.bindparam("s"),
                                          T.c.state == "pending")
                         .values(state="moving", source_folder=sa.bindparam("src"), attempted=now,
                                 attempts=T.c.attempts + 1),
                         [dict(s=r.seq, src=sources[r.seq].value if sources[r.seq] else None) for r in fresh])
        retried = [r.seq for r in batch if r.state == "moving"]
        if retried:
            conn.execute(T.update().where(T.c.action_id == action.id, T.c.seq.in_(retried))
                         .values(attempted=now, attempts=T.c.attempts + 1))
    service.store.run(do)
    return sources


def _record(service: ActionService, action: Action, me: str, moved: dict[int, tuple[Outcome, Folder | None, str]]) -> None:
    now = service.clock()

    def do(conn: sa.Connection) -> None:
        _hold(conn, action.id, me, now)
        conn.execute(T.update().where(T.c.action_id == action.id, T.c.seq == sa.bindparam("s"))
                     .values(state="done", outcome=sa.bindparam("o"), source_folder=sa.bindparam("src"),
                             reason=sa.bindparam("why")),
                     [dict(s=seq, o=o.value, src=src.value if src else None, why=why[:2000])
                      for seq, (o, src, why) in moved.items()])
        x = repo.totals(conn, action.id)
        conn.execute(A.update().where(A.c.id == action.id).values(**{k: v for k, v in repo.totals_values(x).items()
                                                                      if k != "n_targets"}))
    service.store.run(do)


def _publish(service: ActionService, action: Action) -> None:
    """EmailPostDeliveryEvents rows for the moved copies, and their EmailEvents latest location."""
    lake = service.lake
    if lake is None:
        return
    from workbench import schema

    with service.store.read() as conn:
        moved = [r for r in repo.results(conn, action.id) if r.outcome is Outcome.SUCCESS]
    if not moved:
        return
    kind = action.kind
    land = [landing(kind, r.destination) for r in moved]
    copies = pl.DataFrame({
        "seq": [r.seq for r in moved], "NetworkMessageId": [r.network_message_id for r in moved],
        "mailbox": [r.mailbox for r in moved],
        "At": pl.Series([r.attempted for r in moved], dtype=pl.Datetime("us", "UTC")),
        "Action": [x.action.value for x in land], "DeliveryLocation": [x.location.value for x in land],
        "LatestDeliveryAction": [x.latest_action.value for x in land],
    })
    events = (lake.scan("EmailEvents", columns=[
        "Timestamp", "NetworkMessageId", "RecipientEmailAddress", "InternetMessageId", "SenderFromAddress",
        "EmailDirection", "ThreatTypes", "DetectionMethods"])
        .filter(pl.col("NetworkMessageId").is_in(copies["NetworkMessageId"].unique().implode()))
        .with_columns(pl.col("RecipientEmailAddress").str.to_lowercase().alias("mailbox"))
        .unique(subset=["NetworkMessageId", "mailbox"], keep="first").collect())
    joined = copies.join(events, on=["NetworkMessageId", "mailbox"], how="left")
    post = joined.select(
        pl.col("At").alias("Timestamp"), "NetworkMessageId", "InternetMessageId", "Action",
        pl.lit(PostDeliveryActionType.MANUAL_REMEDIATION.value).alias("ActionType"),
        pl.lit(ActionTrigger.ADMIN_ACTION.value).alias("ActionTrigger"),
        pl.lit(ActionResult.SUCCESS.value).alias("ActionResult"),
        pl.coalesce("RecipientEmailAddress", "mailbox").alias("RecipientEmailAddress"),
        "SenderFromAddress", "EmailDirection", "DeliveryLocation", "ThreatTypes", "DetectionMethods",
        pl.format("wb-action-{}-{}", pl.lit(action.id), pl.col("seq")).alias("ReportId"),
    )
    lake.append("EmailPostDeliveryEvents", schema.EmailPostDeliveryEvents.conform(post))
    latest = joined.filter(pl.col("Timestamp").is_not_null()).select(
        "Timestamp", "NetworkMessageId", "RecipientEmailAddress",
        pl.col("DeliveryLocation").alias("LatestDeliveryLocation"), "LatestDeliveryAction")
    if latest.height:
        lake.update("EmailEvents", latest, on=["NetworkMessageId", "RecipientEmailAddress"])


class _FilePlaces:
    """The file store seen as ``_intent`` sees a mail store: a place is in Quarantine or not."""

    def __init__(self, files: FileStore) -> None:
        self.files = files

    def folder(self, sha256: str, place: str) -> Folder | None:
        try:
            return Folder.QUARANTINE if self.files.state(FileRef.parse(place)) == "blocked" else None
        except UnsafePath:  # the block or release itself reports it as that place's failure
            return None


def _move_files(service: ActionService, action: Action, me: str, batch_size: int,
                progress: Callable[[int, int], None] | None) -> None:
    """Block or release each place, in batches: intent, operation, result (see the module docstring)."""
    files = service._files()
    places = _FilePlaces(files)
    dest = action.kind.destination  # Quarantine (block) or None (back in place)
    for batch in _batches(service, action, batch_size, progress):
        sources = _intent(service, action, me, batch, places)
        refs = [FileRef.parse(r.mailbox) for r in batch]
        if action.kind is ActionKind.BLOCK_FILE:
            results = files.block(refs, expected=[r.network_message_id for r in batch], at=service.clock())
        else:
            results = files.release(refs)
        moved: dict[int, tuple[Outcome, Folder | None, str]] = {}
        for r, res in zip(batch, results):
            src, outcome = sources[r.seq], res.outcome
            resumed = r.state == "moving" or src is not None
            if outcome is Outcome.ALREADY_IN_DESTINATION and src is not dest and resumed:
                outcome = Outcome.SUCCESS  # done by this action in a run that died before recording it
            moved[r.seq] = (outcome, src, res.reason)
        _record(service, action, me, moved)


def _publish_files(service: ActionService, action: Action) -> None:
    """``LatestFileAction`` of the FileMaliciousContentInfo rows of the places now blocked (or released)."""
    lake = service.lake
    if lake is None:
        return
    with service.store.read() as conn:
        ended = {(r.network_message_id, r.mailbox) for r in repo.results(conn, action.id)
                 if r.outcome in (Outcome.SUCCESS, Outcome.ALREADY_IN_DESTINATION)}
    if not ended:
        return
    value = (FileAction.BLOCKED if action.kind is ActionKind.BLOCK_FILE else FileAction.RELEASED).value
    rows = (lake.scan("FileMaliciousContentInfo", columns=["Timestamp", "Workload", "SiteUrl", "FolderPath", "FileName",
                                                            "SHA256", "ReportId"])
            .filter(pl.col("SHA256").str.to_lowercase().is_in(sorted({sha for sha, _ in ended})))
            .collect())
    hits = [(r["Timestamp"], r["ReportId"]) for r in rows.iter_rows(named=True)
            if (ref := ref_for_row(r["Workload"], r["SiteUrl"], r["FolderPath"], r["FileName"])) is not None
            and (r["SHA256"].lower(), ref.key) in ended]
    if hits:
        lake.update("FileMaliciousContentInfo", pl.DataFrame(
            {"Timestamp": [h[0] for h in hits], "ReportId": [h[1] for h in hits], "LatestFileAction": [value] * len(hits)},
            schema={"Timestamp": pl.Datetime("us", "UTC"), "ReportId": pl.String, "LatestFileAction": pl.String}),
            on=["ReportId"])


def _finish(service: ActionService, action: Action, me: str) -> Action:
    from workbench.actions.service import settle_investigations

    now = service.clock()

    def do(conn: sa.Connection) -> Action:
        _hold(conn, action.id, me, now)
        x = repo.totals(conn, action.id)
        status = x.status
        conn.execute(A.update().where(A.c.id == action.id).values(
            status=status.value, finished=now, runner="", open_key=None, **repo.totals_values(x)))
        repo.event(conn, action.id, now, service.actor, status.value, x.render())
        if action.undo_of is not None and x.success + x.already:
            conn.execute(A.update().where(A.c.id == action.undo_of).values(status=S.UNDONE.value))
            repo.event(conn, action.undo_of, now, service.actor, "undone", f"by action {action.id}: {x.render()}")
        settle_investigations(conn, action.id, now)
        return repo.get(conn, action.id)
    return service.store.run(do)


def _request(service: ActionService, action: Action, me: str) -> Action:
    from workbench.actions.service import settle_investigations

    now = service.clock()

    def do(conn: sa.Connection) -> Action:
        _hold(conn, action.id, me, now)
        said = service.adapter.submit(conn, action, service.actor, now)
        conn.execute(A.update().where(A.c.id == action.id).values(
            status=S.REQUESTED.value, finished=now, runner="", open_key=None))
        repo.event(conn, action.id, now, service.actor, "requested", f"adapter {service.adapter.name}: {said}")
        settle_investigations(conn, action.id, now)
        return repo.get(conn, action.id)
    return service.store.run(do)


__all__ = ["execute", "claim", "runner_id", "BATCH_DELAY_ENV"]
