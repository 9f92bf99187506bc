"""Running analyzers as logged steps of an investigation.

An analyzer is a small function with a name; :meth:`Run.step` calls it, times it, and writes
one line to the run's analyzer log (ok with a summary, or failed with the error). A failing
analyzer ends the run as ``failed`` naming it; :func:`retry` starts a new run linked to the
failed one, with the same playbook and parameters.

A run may have been recorded before its notebook started: the dispatcher records every
investigation it starts (``starting``, or ``queuedByThrottling`` when the tenant's cap is
reached) so that queued, timed-out and crashed runs are visible. :meth:`Run.begin` then
*continues* that record instead of adding one: the record waiting for the same playbook and
alert (or, without an alert, the same messages), taken atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from workbench.air import records
from workbench.air.model import InvestigationStatus
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store import tables as t

T = TypeVar("T")


class AnalyzerFailed(WorkbenchError):
    """An analyzer raised: the investigation is recorded as failed."""


def summary_of(result: Any) -> str:
    """One line about an analyzer's result for the log: its ``summary`` if it has one, else a count."""
    if hasattr(result, "summary"):
        return str(result.summary)
    if isinstance(result, (list, tuple, set, dict)):
        return f"{len(result)} item(s)"
    return "" if result is None else str(result)[:200]


class Run:
    """One investigation being carried out: its id and the store its record lives in."""

    def __init__(self, store: Store, investigation_id: int) -> None:
        self.store, self.id = store, investigation_id

    @classmethod
    def begin(cls, store: Store, playbook: str, name: str, *, started_by: str, parameters: dict[str, Any],
              **kw: Any) -> Run:
        """Start a run: continue the record the dispatcher left waiting for it, else record a new
        one (always a new one for a retry, *retry_of*)."""
        waiting = None if kw.get("retry_of") else _take_waiting(store, playbook, name, parameters, kw.get("alert_id"),
                                                                kw.get("playbook_version", ""))
        if waiting is not None:
            return cls(store, waiting)
        return cls(store, records.start(store, playbook, name, started_by=started_by, parameters=parameters, **kw))

    def step(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run analyzer *name* (``fn(*args, **kwargs)``), logged with its duration."""
        started, clock = datetime.now(UTC), time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # any analyzer error ends the run as failed, with the analyzer named
            seconds = time.perf_counter() - clock
            message = f"{type(exc).__name__}: {exc}"
            records.log(self.store, self.id, name, "failed", started, seconds, error=message)
            records.finish(self.store, self.id, InvestigationStatus.FAILED, error=f"analyzer {name} failed: {message}")
            raise AnalyzerFailed(f"investigation {self.id}: analyzer {name} failed ({message}); "
                                 f"retry with `workbench air retry {self.id}`") from exc
        records.log(self.store, self.id, name, "ok", started, time.perf_counter() - clock, summary=summary_of(result))
        return result

    def skip(self, name: str, why: str) -> None:
        records.log(self.store, self.id, name, "skipped", datetime.now(UTC), 0.0, summary=why)

    def finish(self, status: InvestigationStatus, *, notebook: str = "") -> None:
        records.finish(self.store, self.id, status, notebook=notebook)


WAITING = (InvestigationStatus.STARTING, InvestigationStatus.QUEUED_BY_THROTTLING)
RETRYABLE = (InvestigationStatus.FAILED, InvestigationStatus.TERMINATED_BY_SYSTEM,
             InvestigationStatus.TERMINATED_BY_THROTTLING, InvestigationStatus.TERMINATED_BY_USER)


def _messages(parameters: dict[str, Any]) -> list[str]:
    return sorted(map(str, parameters.get("messages") or ()))


def _take_waiting(store: Store, playbook: str, name: str, parameters: dict[str, Any], alert_id: str | None,
                  playbook_version: str) -> int | None:
    """Atomically turn the oldest record waiting for this run (same playbook and alert; without
    an alert, the same messages) into a running one; its id, or None."""
    inv = t.investigations

    def do(conn: sa.Connection) -> int | None:
        query = sa.select(inv.c.id, inv.c.parameters).where(
            inv.c.playbook == playbook, inv.c.status.in_([s.value for s in WAITING]),
            inv.c.alert_id == alert_id if alert_id else inv.c.alert_id.is_(None)).order_by(inv.c.id)
        for row in conn.execute(query):
            if not alert_id and _messages(json.loads(row.parameters)) != _messages(parameters):
                continue
            now = datetime.now(UTC)
            taken = conn.execute(inv.update().where(inv.c.id == row.id, inv.c.status.in_([s.value for s in WAITING]))
                                 .values(status=InvestigationStatus.RUNNING.value, name=name[:1000], started=now,
                                         parameters=json.dumps(parameters, default=str, sort_keys=True),
                                         playbook_version=playbook_version)).rowcount
            if taken:
                return row.id
        return None
    return store.run(do)


def retry(store: Store, investigation_id: int, *, started_by: str) -> Run:
    """A new run of a failed (or terminated) investigation's playbook and parameters, linked to it."""
    old = records.load(store, investigation_id).investigation
    if old.status not in RETRYABLE:
        raise WorkbenchError(f"investigation {investigation_id} is {old.status.value}, not failed or terminated; "
                             "nothing to retry")
    return Run.begin(store, old.playbook, old.name, started_by=started_by, parameters=old.parameters,
                     alert_id=old.alert_id, incident_id=old.incident_id, retry_of=old.id,
                     playbook_version=old.playbook_version)
