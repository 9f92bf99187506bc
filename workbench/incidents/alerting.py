"""Run the alert policies over the lake, incrementally, and file what they find.

Each policy keeps a watermark in the store (the newest event time it has read). A run
evaluates each enabled policy on the data after its watermark, stores the new alerts
(correlated into incidents by :class:`IncidentService`) and only then moves the watermark:
a run that dies half-way is simply repeated, and the alerts' dedup keys make the repeat add
nothing twice. Policy settings (enabled, severity, thresholds) live in the store too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from workbench.detect import policies as pol
from workbench.errors import InputError, NotFound
from workbench.incidents.model import Severity
from workbench.incidents.service import IncidentService, alert_id_for
from workbench.store import Store
from workbench.store import tables as t

POLICY_ACTOR = "alert-policies"


@dataclass(frozen=True)
class PolicyRun:
    policy_id: str
    name: str
    enabled: bool
    since: datetime | None
    watermark: datetime | None
    found: int  # drafts the policy produced (new or already stored)
    new: int  # alerts stored by this run
    seconds: float


@dataclass(frozen=True)
class AlertRun:
    runs: tuple[PolicyRun, ...]
    new_alerts: tuple[str, ...]
    incidents_created: tuple[int, ...]
    incidents_extended: tuple[int, ...]


def _policy(policy_id: str) -> pol.Policy:
    for p in pol.load_policies():
        if p.id == policy_id:
            return p
    known = ", ".join(p.id for p in pol.load_policies())
    raise NotFound(f"no alert policy {policy_id!r}; use one of {known}")


def settings(store: Store) -> dict[str, pol.PolicySettings]:
    """The stored settings of every policy (defaults where none were changed)."""
    with store.read() as conn:
        rows = {r.policy_id: r for r in conn.execute(sa.select(t.policy_settings))}
    out = {}
    for p in pol.load_policies():
        r = rows.get(p.id)
        out[p.id] = (pol.PolicySettings(enabled=r.enabled, severity=Severity(r.severity) if r.severity else None,
                                        thresholds=json.loads(r.thresholds))
                     if r else pol.PolicySettings(enabled=p.enabled))
    return out


def watermarks(store: Store) -> dict[str, tuple[datetime | None, datetime]]:
    """policy id -> (watermark, last run)."""
    with store.read() as conn:
        return {r.policy_id: (r.watermark, r.last_run) for r in conn.execute(sa.select(t.policy_watermarks))}


def _settings_json(value: pol.PolicySettings) -> dict:
    return {"enabled": value.enabled, "severity": value.severity.value if value.severity else None,
            "thresholds": dict(value.thresholds)}


def configure(store: Store, policy_id: str, actor: str, *, enabled: bool | None = None,
              severity: Severity | str | None = None, thresholds: dict[str, float] | None = None) -> pol.PolicySettings:
    """Change a policy's settings; *actor* needs the alert policy configuration permission. The
    change is audited (``policy.configure``, before and after) in its own transaction."""
    from workbench import audit, rbac

    rbac.require(store, actor, rbac.Permission.ALERT_POLICY_CONFIGURATION, activity="policy.configure",
                 target=policy_id)
    policy = _policy(policy_id)
    unknown = set(thresholds or {}) - set(dict(policy.thresholds))
    if unknown:
        have = ", ".join(dict(policy.thresholds)) or "none"
        raise InputError(f"policy {policy_id} has no threshold {', '.join(sorted(unknown))}; its thresholds: {have}")
    if severity is not None:
        try:
            severity = Severity(severity)
        except ValueError:
            raise InputError(f"unknown severity {severity!r}; use one of {', '.join(s.value for s in Severity)}") from None
    current = settings(store)[policy_id]
    merged = dict(current.thresholds) | {k: float(v) for k, v in (thresholds or {}).items()}
    new = pol.PolicySettings(enabled=current.enabled if enabled is None else enabled,
                             severity=severity if severity is not None else current.severity,
                             thresholds=merged)

    def do(conn: sa.Connection) -> None:
        values = dict(enabled=new.enabled, severity=new.severity.value if new.severity else None,
                      thresholds=json.dumps(dict(new.thresholds)), updated_at=datetime.now(UTC), updated_by=actor)
        if conn.execute(t.policy_settings.update().where(t.policy_settings.c.policy_id == policy_id)
                        .values(**values)).rowcount == 0:
            conn.execute(t.policy_settings.insert().values(policy_id=policy_id, **values))
        audit.append(conn, actor=actor, activity="policy.configure", target=policy_id,
                     details={"before": _settings_json(current), "after": _settings_json(new)})
    store.run(do)
    return new


def run(store: Store, lake, *, only: Sequence[str] = (), until: datetime | None = None,
        progress: Callable[[str], None] | None = None) -> AlertRun:
    """Evaluate the enabled policies (or ``only`` these) on new data and file the alerts."""
    chosen = [p for p in pol.load_policies() if not only or p.id in only]
    if only:
        missing = set(only) - {p.id for p in chosen}
        if missing:
            _policy(sorted(missing)[0])  # raises NotFound naming the known ones
    current, marks = settings(store), watermarks(store)
    evaluated = []
    for policy in chosen:  # evaluate everything first: alerts are then filed in time order
        cfg, since = current[policy.id], marks.get(policy.id, (None, None))[0]
        if progress:
            progress(policy.id)
        started = time.perf_counter()
        result = pol.evaluate(lake, policy, since=since, until=until, settings=cfg) if cfg.enabled else None
        evaluated.append((policy, cfg, since, result, time.perf_counter() - started))
    drafts = [d for *_, result, _s in evaluated if result for d in result.drafts]
    added = IncidentService(store, POLICY_ACTOR).add_alerts(drafts)
    new_ids = set(added.new)
    runs = []
    for policy, cfg, since, result, seconds in evaluated:
        if result is None:
            runs.append(PolicyRun(policy.id, policy.name, False, since, since, 0, 0, seconds))
            continue
        new = sum(alert_id_for(d.dedup_key) in new_ids for d in result.drafts)
        watermark = max((w for w in (since, result.watermark) if w is not None), default=None)
        _save_watermark(store, policy.id, watermark, new)  # only after its alerts are stored
        runs.append(PolicyRun(policy.id, policy.name, True, since, watermark, len(result.drafts), new, seconds))
    return AlertRun(tuple(runs), added.new, added.incidents_created, added.incidents_extended)


def _save_watermark(store: Store, policy_id: str, watermark: datetime | None, alerts: int) -> None:
    def do(conn: sa.Connection) -> None:
        values = dict(watermark=watermark, last_run=datetime.now(UTC), alerts=alerts)
        if conn.execute(t.policy_watermarks.update().where(t.policy_watermarks.c.policy_id == policy_id)
                        .values(**values)).rowcount == 0:
            conn.execute(t.policy_watermarks.insert().values(policy_id=policy_id, **values))
    store.run(do)


def reset(store: Store, policy_ids: Sequence[str] = ()) -> int:
    """Forget watermarks (all, or these policies'): the next run reads everything again."""
    for pid in policy_ids:
        _policy(pid)
    def do(conn: sa.Connection) -> int:
        stmt = t.policy_watermarks.delete()
        if policy_ids:
            stmt = stmt.where(t.policy_watermarks.c.policy_id.in_(list(policy_ids)))
        return conn.execute(stmt).rowcount
    return store.run(do)
