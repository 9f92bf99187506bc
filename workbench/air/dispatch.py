"""Start the right playbook for every alert that has none yet (``workbench air dispatch``).

Alerts are grouped as AIR does: the alerts of one incident that the same playbook handles
form one investigation (one kernel, one notebook), not one per alert. Before a group runs,
its alerts are *claimed* in the store in one transaction (a unique row per alert): two
dispatchers started by cron at the same minute never start the same alert. Groups run at a
bounded concurrency, each with a timeout; a failed run is retried with backoff, then left
``failed`` with its error (``workbench air retry`` can take it up later).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workbench.air.playbook import PLAYBOOK_FOR_POLICY, PLAYBOOKS_DIR
from workbench.incidents.model import EntityKind
from workbench.incidents.service import IncidentService
from workbench.store import Store, insert_ignore
from workbench.store import tables as t


@dataclass(frozen=True)
class Group:
    """Alerts one playbook run investigates together."""

    playbook: str
    incident_id: int | None
    alert_ids: tuple[str, ...]
    messages: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    group: Group
    status: str  # done, failed, skipped (claimed by another dispatcher)
    investigation_id: int | None
    attempts: int
    seconds: float
    error: str = ""


def pending(store: Store) -> list[Group]:
    """Alerts with a playbook and no claim yet, grouped by incident and playbook."""
    with store.read() as conn:
        claimed = set(conn.execute(sa.select(t.dispatch_claims.c.alert_id)).scalars())
    groups: dict[tuple[str, Any], list] = {}
    for alert in IncidentService(store, "dispatcher").alerts():
        playbook = PLAYBOOK_FOR_POLICY.get(alert.policy_id)
        if playbook is None or alert.id in claimed:
            continue
        groups.setdefault((playbook, alert.incident_id if alert.incident_id is not None else alert.id), []).append(alert)
    out = []
    for (playbook, key), alerts in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        messages = sorted({e.value.split("|", 1)[0] for a in alerts for e in a.entities if e.kind == EntityKind.EMAIL})
        out.append(Group(playbook, alerts[0].incident_id, tuple(a.id for a in alerts), tuple(messages)))
    return out


def claim(store: Store, group: Group, dispatcher: str) -> bool:
    """Claim every alert of *group*, or none (another dispatcher got there first)."""
    class _Taken(Exception):
        pass

    def do(conn: sa.Connection) -> None:
        rows = [dict(alert_id=a, playbook=group.playbook, dispatcher=dispatcher, claimed_at=datetime.now(UTC),
                     status="claimed", attempts=0, investigation_id=None, error="") for a in group.alert_ids]
        if insert_ignore(conn, t.dispatch_claims, rows, "alert_id") != len(rows):
            raise _Taken  # roll back the partial claim
    try:
        store.run(do)
    except _Taken:
        return False
    return True


def _settle(store: Store, group: Group, status: str, attempts: int, investigation_id: int | None, error: str) -> None:
    store.run(lambda conn: conn.execute(t.dispatch_claims.update().where(
        t.dispatch_claims.c.alert_id.in_(list(group.alert_ids))).values(
        status=status, attempts=attempts, investigation_id=investigation_id, error=error[:4000])))


def papermill_runner(tenant: Any, db_url: str | None, timeout: int) -> Callable[[Group], int | None]:
    """Run a group's playbook with papermill; returns the investigation it recorded."""
    def run(group: Group) -> int | None:
        import papermill

        out = Path(tenant.root) / "investigations" / f"{group.playbook}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        params = {"tenant": str(tenant.root), "messages": list(group.messages), "alert_id": group.alert_ids[0],
                  "started_by": "dispatcher", "record_notebook": str(out)}
        if db_url:
            params["db_url"] = db_url
        papermill.execute_notebook(str(PLAYBOOKS_DIR / f"{group.playbook}.ipynb"), str(out), parameters=params,
                                   progress_bar=False, kernel_name="python3", execution_timeout=timeout)
        return _investigation_of(tenant, db_url, out)
    return run


def _investigation_of(tenant: Any, db_url: str | None, notebook: Path) -> int | None:
    from workbench.store import open_store

    store = open_store(tenant, db_url)
    try:
        with store.read() as conn:
            return conn.execute(sa.select(t.investigations.c.id).where(t.investigations.c.notebook == str(notebook))
                                .order_by(t.investigations.c.id.desc())).scalar()
    finally:
        store.dispose()


def dispatch(store: Store, runner: Callable[[Group], int | None], *, concurrency: int = 2, retries: int = 1,
             backoff: float = 2.0, limit: int | None = None,
             progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Claim and run every pending group (at most *concurrency* at a time)."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    groups = pending(store)[:limit] if limit else pending(store)

    def one(group: Group) -> Outcome:
        if not claim(store, group, me):
            return Outcome(group, "skipped", None, 0, 0.0, "claimed by another dispatcher")
        started, error = time.perf_counter(), ""
        for attempt in range(1, retries + 2):
            try:
                investigation = runner(group)
            except Exception as exc:  # a playbook failure is recorded, and retried with backoff
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if attempt <= retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
                continue
            _settle(store, group, "done", attempt, investigation, "")
            return Outcome(group, "done", investigation, attempt, time.perf_counter() - started)
        _settle(store, group, "failed", retries + 1, None, error)
        return Outcome(group, "failed", None, retries + 1, time.perf_counter() - started, error)

    outcomes = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for outcome in pool.map(one, groups):
            outcomes.append(outcome)
            if progress:
                progress(outcome)
    return outcomes
