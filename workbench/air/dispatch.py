"""Start the right playbook for every alert that has none yet (``workbench air dispatch``).

**Groups.** Alerts are grouped as AIR does: the alerts of one incident that the same playbook
handles form one investigation (one notebook run), not one per alert.

**Claims.** Before a group runs, its alerts are *claimed* in the store in one transaction (a
unique row per alert) together with the group's investigation record, so two dispatchers
started by cron at the same minute never start the same alert, and every investigation the
dispatcher starts is visible from the moment it is decided: ``starting``, or
``queuedByThrottling`` when the tenant's cap is reached. The playbook's run continues that
record (:meth:`workbench.air.engine.Run.begin`).

**Throttling** (mdo-reference §4.4, §4.7; :class:`Throttle`, stored per tenant, overridable
per dispatch): at most ``max_running`` investigations start or run at once in the tenant
(counting other dispatchers' and manual runs); the groups over the cap are recorded
``queuedByThrottling`` and started, oldest first, by a later dispatch; a group queued for
longer than ``queue_expiry_hours`` ends ``terminatedByThrottling``. A group naming more
messages than ``max_messages`` ends ``terminatedBySystem`` without running (AIR halts on too
many entities), and so does a run that exceeds the per-run timeout (the system stopped it;
``failed`` is kept for an analyzer or the playbook failing, with its error), or one still
running long after its timeout (its dispatcher was killed: the next dispatch ends it, so it
can be retried and its alerts are not held forever). A failed run is retried with backoff,
each retry a new record linked to the failed one (``retry_of``); :func:`retry`
(``workbench air retry ID``) does the same later, for failed and terminated runs.

**One path.** ``workbench air run``, the Explorer and incident pages start a playbook with
:func:`start`: the same record from the start, runner and failure handling as the
dispatcher, without claims, throttling or automatic retries.

**Runners** (:mod:`workbench.air.runners`) carry a run out: :class:`PapermillRunner`
executes the playbook notebook, one kernel per worker shared by the notebooks it runs one
after another (each its own executed notebook and record), :class:`InProcessRunner` calls
the playbook in this process (tests, benchmarks). Sharing matters because grouping is not
enough: 100 alerts of a 1,000-user tenant made 55 groups (manual investigations from the
Explorer each open an incident), and a fresh kernel costs more than the analyzers
(benchmarks/README.md: about 50 s shared against 2 min with a kernel per group).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from workbench.air import records
from workbench.air.engine import RETRYABLE, WAITING
from workbench.air.model import InvestigationStatus
from workbench.air.playbook import PLAYBOOK_FOR_POLICY, PLAYBOOKS_DIR, USER_ROLES
from workbench.air.runners import (
    DISPATCHER, InProcessRunner, Job, PapermillRunner, Runner, RunFailed, RunTimedOut, RunTiming, papermill_runner,
)
from workbench.errors import ConflictError, InputError
from workbench.incidents.model import EntityKind
from workbench.incidents.service import IncidentService
from workbench.store import Store, insert_ignore
from workbench.store import tables as t

S = InvestigationStatus


@dataclass(frozen=True)
class Throttle:
    """A tenant's AIR throttling settings (``workbench air configure``)."""

    max_running: int = 25  # investigations starting or running at once in the tenant
    queue_expiry_hours: float = 24.0  # a queued investigation older than this ends terminatedByThrottling
    max_messages: int = 500  # a group naming more messages ends terminatedBySystem (too many entities)

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0:
                raise InputError(f"{f.name} must be positive, not {getattr(self, f.name)!r}")


def throttle(store: Store) -> Throttle:
    """The tenant's throttling settings (defaults where none is stored)."""
    with store.read() as conn:
        stored = dict(conn.execute(sa.select(t.air_settings.c.name, t.air_settings.c.value)).all())
    kinds = {f.name: type(getattr(Throttle(), f.name)) for f in fields(Throttle)}
    return Throttle(**{k: kinds[k](v) for k, v in stored.items() if k in kinds})


def configure(store: Store, *, actor: str | None = None, **values: float | int | None) -> Throttle:
    """Store throttling settings (None leaves one unchanged); returns the new settings. A change
    needs *actor* (default: the acting user) to hold alert policy configuration ("set up AIR")."""
    unknown = set(values) - {f.name for f in fields(Throttle)}
    if unknown:
        known = ", ".join(f.name for f in fields(Throttle))
        raise InputError(f"no AIR setting {sorted(unknown)[0]!r}; settings: {known}")
    changed = any(v is not None for v in values.values())
    if changed:
        from workbench import rbac
        from workbench.identity import acting_user

        actor = actor or acting_user()
        rbac.require(store, actor, rbac.Permission.ALERT_POLICY_CONFIGURATION, activity="air.configure")
    before = throttle(store)
    new = Throttle(**{**asdict(before), **{k: v for k, v in values.items() if v is not None}})

    def do(conn: sa.Connection) -> None:
        from workbench import audit

        for name, value in asdict(new).items():
            conn.execute(t.air_settings.delete().where(t.air_settings.c.name == name))
            conn.execute(t.air_settings.insert().values(name=name, value=str(value), updated=datetime.now(UTC)))
        if changed:
            audit.append(conn, actor=actor or "", activity="air.configure", target="AIR settings",
                         details={"before": asdict(before), "after": asdict(new)})
    store.run(do)
    return new


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"  # started, or waiting for a worker of this dispatcher
    QUEUED = "queued"  # queued by throttling: a later dispatch starts it
    DONE = "done"
    FAILED = "failed"
    TERMINATED = "terminated"  # by throttling (queued too long) or by the system (timeout, too many entities)


class OutcomeStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    TERMINATED = "terminated"  # timed out, or too many entities: terminatedBySystem
    QUEUED = "queued"  # over the cap: queuedByThrottling
    EXPIRED = "expired"  # queued too long: terminatedByThrottling
    SKIPPED = "skipped"  # claimed by another dispatcher


@dataclass(frozen=True)
class Group:
    """Alerts one playbook run investigates together."""

    playbook: str
    incident_id: int | None
    alert_ids: tuple[str, ...]
    messages: tuple[str, ...]
    user: str = ""  # the account a user playbook investigates (one run per user, not per incident)

    @property
    def parameters(self) -> dict[str, Any]:
        """The playbook notebook's parameters for this group."""
        params = {"messages": list(self.messages), "alert_id": self.alert_ids[0] if self.alert_ids else ""}
        return {**params, "user": self.user} if self.user else params


@dataclass(frozen=True)
class Outcome:
    group: Group
    status: OutcomeStatus
    investigation_id: int | None
    attempts: int
    seconds: float
    error: str = ""


# --------------------------------------------------------------------------- groups and claims

USER_PLAYBOOKS = frozenset({"compromised_user"})  # grouped per incident *and* user


def handled_alerts(store: Store) -> set[str]:
    """Alerts that have an investigation: claimed by a dispatcher, or named by a run started by
    hand (``air run -p alert_id``, a playbook app's ``?alert=``), which the dispatcher then skips."""
    with store.read() as conn:
        claimed = set(conn.execute(sa.select(t.dispatch_claims.c.alert_id)).scalars())
        named = conn.execute(sa.select(t.investigations.c.alert_id).where(t.investigations.c.alert_id.is_not(None)))
        return claimed | set(named.scalars())


def awaiting_investigation(store: Store, alerts: Iterable[Any]) -> list[tuple[Any, str]]:
    """Of *alerts*, those a playbook handles that have no investigation yet, with the playbook."""
    handled = handled_alerts(store)
    return [(a, PLAYBOOK_FOR_POLICY[a.policy_id]) for a in alerts
            if a.policy_id in PLAYBOOK_FOR_POLICY and a.id not in handled]


def pending(store: Store) -> list[Group]:
    """Alerts with a playbook and no investigation yet, grouped by incident and playbook."""
    claimed = handled_alerts(store)
    groups: dict[tuple[str, Any], list] = {}
    for alert in IncidentService(store, DISPATCHER).alerts():
        playbook = PLAYBOOK_FOR_POLICY.get(alert.policy_id)
        if playbook is None or alert.id in claimed:
            continue
        user = alert_user(alert) if playbook in USER_PLAYBOOKS else ""
        key = (playbook, alert.incident_id if alert.incident_id is not None else alert.id, user)
        groups.setdefault(key, []).append(alert)
    out = []
    for (playbook, _, user), alerts in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2])):
        messages = sorted({e.value.split("|", 1)[0] for a in alerts for e in a.entities if e.kind == EntityKind.EMAIL})
        out.append(Group(playbook, alerts[0].incident_id, tuple(a.id for a in alerts), tuple(messages), user))
    return out


def alert_user(alert: Any) -> str:
    """The account an alert is about, from its entities alone (USER before MAILBOX, by role;
    an address in no user role, such as a forwarding destination, is never picked): the
    notebook checks it against the directory. "" when none."""
    rank = {r: i for i, r in enumerate(USER_ROLES)}
    candidates = sorted((e for e in alert.entities if e.kind in (EntityKind.USER, EntityKind.MAILBOX)
                         and (e.kind is EntityKind.USER or e.role in rank)),
                        key=lambda e: (e.kind is not EntityKind.USER, rank.get(e.role, len(rank)), e.value.lower()))
    return candidates[0].value.lower() if candidates else ""


def _name(group: Group) -> str:
    title = group.playbook.replace("_", " ").capitalize()
    return f"{title}: {len(group.alert_ids)} alert(s), {len(group.messages)} email(s)"


def _insert_record(conn: sa.Connection, playbook: str, name: str, status: S, *, parameters: dict[str, Any],
                   alert_id: str | None, incident_id: int | None, started_by: str = DISPATCHER,
                   retry_of: int | None = None, error: str = "") -> int:
    now = datetime.now(UTC)
    return conn.execute(t.investigations.insert().values(
        name=name[:1000], playbook=playbook, playbook_version="", status=status.value, alert_id=alert_id or None,
        incident_id=incident_id, started_by=started_by, parameters=json.dumps(parameters, default=str, sort_keys=True),
        notebook="", retry_of=retry_of, error=error[:4000], created=now, started=None,
        ended=now if status.finished else None).returning(t.investigations.c.id)).scalar_one()


def claim(store: Store, group: Group, dispatcher: str, status: S = S.STARTING, error: str = "") -> int | None:
    """Claim every alert of *group* and record its investigation (*status*) in one transaction;
    the investigation's id, or None when another dispatcher got there first (nothing written)."""
    class _Taken(Exception):
        pass
    claim_status = {S.STARTING: ClaimStatus.CLAIMED, S.QUEUED_BY_THROTTLING: ClaimStatus.QUEUED}.get(
        status, ClaimStatus.TERMINATED)

    def do(conn: sa.Connection) -> int:
        rows = [dict(alert_id=a, playbook=group.playbook, dispatcher=dispatcher, claimed_at=datetime.now(UTC),
                     status=claim_status.value, attempts=0, investigation_id=None, error=error[:4000])
                for a in group.alert_ids]
        if insert_ignore(conn, t.dispatch_claims, rows, "alert_id") != len(rows):
            raise _Taken  # roll back the partial claim
        inv = _insert_record(conn, group.playbook, _name(group), status, parameters=group.parameters,
                             alert_id=group.alert_ids[0], incident_id=group.incident_id, error=error)
        conn.execute(t.dispatch_claims.update().where(t.dispatch_claims.c.alert_id.in_(list(group.alert_ids)))
                     .values(investigation_id=inv))
        return inv
    try:
        return store.run(do)
    except _Taken:
        return None


def queued(store: Store) -> list[tuple[Group, int, datetime]]:
    """Groups queued by throttling, oldest first: (group, investigation id, queued at)."""
    c, inv = t.dispatch_claims, t.investigations
    with store.read() as conn:
        rows = conn.execute(sa.select(c.c.alert_id, c.c.playbook, inv.c.id, inv.c.incident_id, inv.c.parameters,
                                      inv.c.created).join(inv, inv.c.id == c.c.investigation_id)
                            .where(c.c.status == ClaimStatus.QUEUED.value).order_by(inv.c.id, c.c.alert_id)).all()
    by_id: dict[int, list] = {}
    for r in rows:
        by_id.setdefault(r.id, []).append(r)
    out = []
    for inv_id, rs in by_id.items():
        params = json.loads(rs[0].parameters)
        alerts = sorted({r.alert_id for r in rs}, key=lambda a: a != params.get("alert_id"))  # the named alert first
        out.append((Group(rs[0].playbook, rs[0].incident_id, tuple(alerts), tuple(params.get("messages") or ()),
                          params.get("user") or ""), inv_id, _utc(rs[0].created)))
    return out


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _take(store: Store, investigation_id: int, dispatcher: str) -> bool:
    """Move a queued group to this dispatcher (its record becomes ``starting``); False if
    another dispatcher took or expired it first, or an analyst started it by hand."""
    c, inv = t.dispatch_claims, t.investigations

    def do(conn: sa.Connection) -> bool:
        moved = conn.execute(c.update().where(c.c.investigation_id == investigation_id,
                                              c.c.status == ClaimStatus.QUEUED.value)
                             .values(status=ClaimStatus.CLAIMED.value, dispatcher=dispatcher,
                                     claimed_at=datetime.now(UTC))).rowcount
        if not moved:
            return False
        if conn.execute(inv.update().where(inv.c.id == investigation_id, inv.c.status == S.QUEUED_BY_THROTTLING.value)
                        .values(status=S.STARTING.value)).rowcount:
            return True
        conn.execute(c.update().where(c.c.investigation_id == investigation_id).values(status=ClaimStatus.DONE.value))
        return False  # started by hand meanwhile: its record is that run's
    return store.run(do)


def expire(store: Store, older_than: timedelta, now: datetime | None = None) -> list[tuple[Group, int]]:
    """End the groups queued for longer than *older_than* as ``terminatedByThrottling``."""
    cutoff = (now or datetime.now(UTC)) - older_than
    c, inv = t.dispatch_claims, t.investigations
    out = []
    for group, inv_id, queued_at in queued(store):
        if queued_at >= cutoff:
            continue
        hours = older_than.total_seconds() / 3600
        error = (f"queued by throttling for more than {hours:g} h; start it with `workbench air retry {inv_id}` "
                 "or raise max_running with `workbench air configure`")

        def do(conn: sa.Connection, inv_id: int = inv_id, error: str = error) -> bool:
            if not conn.execute(c.update().where(c.c.investigation_id == inv_id, c.c.status == ClaimStatus.QUEUED.value)
                                .values(status=ClaimStatus.TERMINATED.value, error=error)).rowcount:
                return False
            conn.execute(inv.update().where(inv.c.id == inv_id, inv.c.status == S.QUEUED_BY_THROTTLING.value).values(
                status=S.TERMINATED_BY_THROTTLING.value, error=error, ended=datetime.now(UTC)))
            return True
        if store.run(do):
            out.append((group, inv_id))
    return out


def abandon(store: Store, older_than: timedelta, now: datetime | None = None) -> list[tuple[Group, int]]:
    """End as ``terminatedBySystem`` the dispatcher's runs still starting or running after
    *older_than* (their dispatcher stopped: killed, machine restarted), so they can be retried."""
    cutoff = (now or datetime.now(UTC)) - older_than
    c, inv = t.dispatch_claims, t.investigations
    with store.read() as conn:
        stale = conn.execute(sa.select(c.c.alert_id, c.c.playbook, inv.c.id, inv.c.incident_id, inv.c.parameters)
                             .join(inv, inv.c.id == c.c.investigation_id)
                             .where(c.c.status == ClaimStatus.CLAIMED.value,
                                    inv.c.status.in_([S.STARTING.value, S.RUNNING.value]), inv.c.created < cutoff)
                             .order_by(inv.c.id, c.c.alert_id)).all()
    out = []
    for inv_id in dict.fromkeys(r.id for r in stale):
        rows = [r for r in stale if r.id == inv_id]
        error = (f"abandoned: still running after {older_than.total_seconds() / 60:g} min, its dispatcher stopped; "
                 f"retry with `workbench air retry {inv_id}`")

        def do(conn: sa.Connection, inv_id: int = inv_id, error: str = error) -> bool:
            running = inv.c.status.in_([S.STARTING.value, S.RUNNING.value])
            if not conn.execute(inv.update().where(inv.c.id == inv_id, running).values(
                    status=S.TERMINATED_BY_SYSTEM.value, error=error, ended=datetime.now(UTC))).rowcount:
                return False
            conn.execute(c.update().where(c.c.investigation_id == inv_id).values(status=ClaimStatus.TERMINATED.value,
                                                                                 error=error))
            return True
        if store.run(do):
            params = json.loads(rows[0].parameters)
            out.append((Group(rows[0].playbook, rows[0].incident_id, tuple(r.alert_id for r in rows),
                              tuple(params.get("messages") or ()), params.get("user") or ""), inv_id))
    return out


def active(store: Store, within: timedelta = timedelta(hours=1)) -> int:
    """Investigations starting or running now (created within *within*: an older one was
    abandoned by a crashed process, and the timeout would have ended it)."""
    inv = t.investigations
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(inv).where(
            inv.c.status.in_([S.STARTING.value, S.RUNNING.value]),
            inv.c.created >= datetime.now(UTC) - within)).scalar_one()


def _settle(store: Store, investigation_id: int, status: ClaimStatus, attempts: int, new_id: int, error: str) -> None:
    """Settle the claims of the group whose investigation was *investigation_id* (or now *new_id*)."""
    store.run(lambda conn: conn.execute(t.dispatch_claims.update().where(
        t.dispatch_claims.c.investigation_id.in_([investigation_id, new_id])).values(
        status=status.value, attempts=attempts, investigation_id=new_id, error=error[:4000])))


# --------------------------------------------------------------------------- one run


def _status(store: Store, investigation_id: int) -> S:
    with store.read() as conn:
        return S(conn.execute(sa.select(t.investigations.c.status).where(
            t.investigations.c.id == investigation_id)).scalar_one())


def _close(store: Store, investigation_id: int, status: S, error: str, notebook: str = "") -> None:
    """End an unfinished record with *status* and *error*; keep the executed notebook on it."""
    inv = t.investigations

    def do(conn: sa.Connection) -> None:
        row = conn.execute(sa.select(inv.c.status, inv.c.notebook).where(inv.c.id == investigation_id)).one()
        values: dict[str, Any] = {}
        if notebook and not row.notebook:
            values["notebook"] = notebook
        if not S(row.status).finished:
            values.update(status=status.value, error=error[:4000], ended=datetime.now(UTC))
        if values:
            conn.execute(inv.update().where(inv.c.id == investigation_id).values(**values))
    store.run(do)


def _adopt(store: Store, placeholder: int, recorded: int | None, notebook: str = "") -> int:
    """After a successful run that did not continue its waiting record: the record the run made
    takes the placeholder's place (and its retry link); without one, the placeholder fails."""
    inv, c = t.investigations, t.dispatch_claims
    if recorded is None or recorded == placeholder:
        if _status(store, placeholder) in WAITING:
            _close(store, placeholder, S.FAILED, "the playbook ran but recorded no investigation; see its notebook",
                   notebook)
        return placeholder

    def do(conn: sa.Connection) -> None:
        old = conn.execute(sa.select(inv.c.retry_of, inv.c.incident_id).where(inv.c.id == placeholder)).one()
        conn.execute(inv.update().where(inv.c.id == recorded, inv.c.retry_of.is_(None)).values(retry_of=old.retry_of))
        conn.execute(inv.update().where(inv.c.id == recorded, inv.c.incident_id.is_(None))
                     .values(incident_id=old.incident_id))
        conn.execute(c.update().where(c.c.investigation_id == placeholder).values(investigation_id=recorded))
        conn.execute(inv.update().where(inv.c.retry_of == placeholder).values(retry_of=recorded))
        conn.execute(inv.delete().where(inv.c.id == placeholder, inv.c.status.in_([s.value for s in WAITING])))
    store.run(do)
    return recorded


def _attempt(store: Store, runner: Runner, job: Job) -> tuple[S, int, str]:
    """Run *job* once; the record's final status, its id and the error."""
    try:
        recorded = runner(job)
    except RunTimedOut as exc:
        _close(store, job.investigation_id, S.TERMINATED_BY_SYSTEM, f"{exc}; retry with `workbench air retry "
               f"{job.investigation_id}`", exc.notebook)
        return S.TERMINATED_BY_SYSTEM, job.investigation_id, str(exc)
    except Exception as exc:  # a playbook failure is recorded on its investigation
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if isinstance(exc, RunFailed):
            error = str(exc)
        _close(store, job.investigation_id, S.FAILED, error, getattr(exc, "notebook", ""))
        return S.FAILED, job.investigation_id, error
    inv = job.investigation_id
    if _status(store, inv) in WAITING:
        inv = _adopt(store, inv, recorded)
    return _status(store, inv), inv, ""


def _next_attempt(store: Store, previous: int) -> int:
    """A new record for a retry of *previous*: same playbook, alert and parameters, linked to it."""
    old = records.load(store, previous).investigation
    params = {k: v for k, v in old.parameters.items() if k not in ("tenant", "db_url", "record_notebook", "started_by")}
    return store.run(lambda conn: _insert_record(
        conn, old.playbook, old.name, S.STARTING, parameters=params, alert_id=old.alert_id,
        incident_id=old.incident_id, started_by=old.started_by, retry_of=old.id))


def _run_group(store: Store, runner: Runner, group: Group, inv: int, retries: int, backoff: float) -> Outcome:
    started, error, status = time.perf_counter(), "", S.FAILED
    first = inv
    for attempt in range(1, retries + 2):
        if attempt > 1:
            time.sleep(backoff * 2 ** (attempt - 2))
            inv = _next_attempt(store, inv)
        status, inv, error = _attempt(store, runner, Job(group.playbook, group.parameters, inv, group=group))
        if status is S.TERMINATED_BY_SYSTEM:
            _settle(store, first, ClaimStatus.TERMINATED, attempt, inv, error)
            return Outcome(group, OutcomeStatus.TERMINATED, inv, attempt, time.perf_counter() - started, error)
        if status is not S.FAILED:
            _settle(store, first, ClaimStatus.DONE, attempt, inv, "")
            return Outcome(group, OutcomeStatus.DONE, inv, attempt, time.perf_counter() - started)
    _settle(store, first, ClaimStatus.FAILED, retries + 1, inv, error)
    return Outcome(group, OutcomeStatus.FAILED, inv, retries + 1, time.perf_counter() - started, error)


# --------------------------------------------------------------------------- dispatching


def dispatch(store: Store, runner: Runner, *, concurrency: int = 2, retries: int = 1, backoff: float = 2.0,
             limit: int | None = None, settings: Throttle | None = None, timeout: float = 600,
             progress: Callable[[Outcome], None] | None = None, now: datetime | None = None) -> list[Outcome]:
    """Expire stale queued groups and end runs a stopped dispatcher abandoned (older than twice
    *timeout*), then start queued (oldest first) and new groups up to the tenant's cap (at
    most *concurrency* at a time) and queue the rest; one outcome per group considered
    (*limit*: at most that many, the others stay pending)."""
    me = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    settings = settings or throttle(store)
    outcomes: list[Outcome] = []

    def report(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if progress:
            progress(outcome)

    for group, inv in expire(store, timedelta(hours=settings.queue_expiry_hours), now):
        report(Outcome(group, OutcomeStatus.EXPIRED, inv, 0, 0.0, "queued by throttling for too long"))
    for group, inv in abandon(store, timedelta(seconds=2 * timeout + 60), now):
        report(Outcome(group, OutcomeStatus.TERMINATED, inv, 0, 0.0, "abandoned by a stopped dispatcher"))
    work: list[tuple[Group, int | None]] = [(g, i) for g, i, _ in queued(store)] + [(g, None) for g in pending(store)]
    work = work[:limit] if limit is not None else work
    room = max(0, settings.max_running - active(store, timedelta(seconds=timeout + 60)))
    admitted: list[tuple[Group, int | None]] = []
    for group, inv in work:
        if len(group.messages) > settings.max_messages:
            error = (f"{len(group.messages)} messages, more than max_messages {settings.max_messages}; investigate "
                     "a subset with `workbench air run`, or raise it with `workbench air configure`")
            if inv is not None:
                if _take(store, inv, me):
                    _close(store, inv, S.TERMINATED_BY_SYSTEM, error)
                    _settle(store, inv, ClaimStatus.TERMINATED, 0, inv, error)
                    report(Outcome(group, OutcomeStatus.TERMINATED, inv, 0, 0.0, error))
            else:
                inv = claim(store, group, me, S.TERMINATED_BY_SYSTEM, error)
                report(Outcome(group, OutcomeStatus.TERMINATED if inv else OutcomeStatus.SKIPPED, inv, 0, 0.0, error))
        elif len(admitted) < room:
            admitted.append((group, inv))
        elif inv is None:  # over the cap: visible as queued, started by a later dispatch
            inv = claim(store, group, me, S.QUEUED_BY_THROTTLING)
            report(Outcome(group, OutcomeStatus.QUEUED if inv else OutcomeStatus.SKIPPED, inv, 0, 0.0))

    def one(item: tuple[Group, int | None]) -> Outcome:
        group, inv = item
        if inv is not None:
            taken = _take(store, inv, me)
        else:
            inv = claim(store, group, me)
            taken = inv is not None
        if not taken:
            return Outcome(group, OutcomeStatus.SKIPPED, inv, 0, 0.0, "claimed by another dispatcher")
        return _run_group(store, runner, group, inv, retries, backoff)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for outcome in pool.map(one, admitted):
            report(outcome)
    return outcomes


def start(store: Store, runner: Runner, playbook: str, parameters: dict[str, Any], *, started_by: str,
          incident_id: int | None = None, retry_of: int | None = None, name: str = "") -> Outcome:
    """Run *playbook* once for *parameters* (the notebook's), recorded from the start: what
    ``workbench air run``, the Explorer and incident pages use; no claim, no throttling, no
    automatic retry (the one asking sees the result). *started_by* needs the start
    investigation permission (:mod:`workbench.rbac`)."""
    from workbench import rbac

    rbac.require(store, started_by, rbac.Permission.START_INVESTIGATION)
    params = {k: v for k, v in parameters.items() if k not in ("tenant", "db_url", "record_notebook", "started_by")}
    alert_id = str(params.get("alert_id") or "") or None
    inv = store.run(lambda conn: _insert_record(
        conn, playbook, name or f"{playbook.replace('_', ' ').capitalize()}", S.STARTING, parameters=params,
        alert_id=alert_id, incident_id=incident_id, started_by=started_by, retry_of=retry_of))
    group = Group(playbook, incident_id, (alert_id,) if alert_id else (), tuple(params.get("messages") or ()))
    clock = time.perf_counter()
    status, inv, error = _attempt(store, runner, Job(playbook, params, inv, started_by, group))
    outcome = {S.FAILED: OutcomeStatus.FAILED, S.TERMINATED_BY_SYSTEM: OutcomeStatus.TERMINATED}.get(
        status, OutcomeStatus.DONE)
    return Outcome(group, outcome, inv, 1, time.perf_counter() - clock, error)


def retry(store: Store, runner: Runner, investigation_id: int, *, started_by: str) -> Outcome:
    """Run a failed or terminated investigation's playbook again with its parameters; the new
    run is a new record linked to the old one (``retry_of``)."""
    old = records.load(store, investigation_id).investigation
    if old.status not in RETRYABLE:
        raise ConflictError(f"investigation {investigation_id} is {old.status.value}, not failed or terminated; "
                            f"only those can be retried (see `workbench air show {investigation_id}`)")
    if not (PLAYBOOKS_DIR / f"{old.playbook}.ipynb").is_file():
        raise InputError(f"investigation {investigation_id}'s playbook {old.playbook!r} no longer exists; "
                         "run another with `workbench air run`")
    outcome = start(store, runner, old.playbook, {**old.parameters, "alert_id": old.alert_id or ""},
                    started_by=started_by, incident_id=old.incident_id, retry_of=old.id, name=old.name)
    claim_status = {OutcomeStatus.FAILED: ClaimStatus.FAILED, OutcomeStatus.TERMINATED: ClaimStatus.TERMINATED}.get(
        outcome.status, ClaimStatus.DONE)
    _settle(store, investigation_id, claim_status, 1, outcome.investigation_id or investigation_id,
            outcome.error)  # a dispatcher's claim follows its retry
    return outcome


__all__ = ["DISPATCHER", "ClaimStatus", "Group", "InProcessRunner", "Job", "Outcome", "OutcomeStatus",
           "PapermillRunner", "RunFailed", "RunTimedOut", "RunTiming", "Runner", "Throttle", "abandon", "active",
           "alert_user", "awaiting_investigation", "claim", "configure", "dispatch", "expire", "handled_alerts", "papermill_runner", "pending", "queued", "retry", "start",
           "throttle"]
