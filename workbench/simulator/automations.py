"""Recurring simulations (simulation automations, mdo-reference §5.4): a campaign template
launched every N days. Each run picks its targets afresh from the directory with the template's
filter (so "not simulated in the last 3 months" keeps rotating), launches at once, and spreads
its sending over the template's window so people do not all get the message at the same minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from workbench.errors import InputError, NotFound
from workbench.simulator.campaigns import CampaignSettings, SimulationService
from workbench.simulator.targets import TargetFilter, select
from workbench.store import tables as t
from workbench.store.engine import Store

A = t.sim_automations.c


@dataclass(frozen=True)
class Automation:
    id: int
    name: str
    template: dict[str, Any]  # payload_id, filter (TargetFilter fields), settings (CampaignSettings JSON)
    every_days: int
    next_run: datetime | None
    enabled: bool


def _row(r: Any) -> Automation:
    return Automation(r.id, r.name, json.loads(r.template), r.every_days, r.next_run, bool(r.enabled))


def create(store: Store, actor: str, name: str, payload_id: str, target_filter: TargetFilter, *,
           settings: CampaignSettings | None = None, every_days: int = 30, first_run: datetime | None = None) -> Automation:
    """A recurring simulation; needs simulation management (audited)."""
    from workbench import audit, rbac
    from workbench.simulator.payload_store import get_payload

    rbac.require(store, actor, rbac.Permission.SIMULATION_MANAGEMENT, activity="simulator.automation", target=name)
    if not name.strip():
        raise InputError("an automation needs a name")
    if not 1 <= every_days <= 365:
        raise InputError(f"every_days {every_days} is out of range; use 1 to 365")
    if target_filter.empty:
        raise InputError("an automation needs a target filter (all users, a department, a suggested group...)")
    get_payload(store, payload_id)
    settings = settings or CampaignSettings(spread_minutes=240)
    template = {"payload_id": payload_id, "filter": {k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in asdict(target_filter).items()},
                "settings": settings.to_json()}
    when = first_run or datetime.now(UTC)

    def do(conn: sa.Connection) -> int:
        aid = conn.execute(t.sim_automations.insert().values(
            name=name.strip()[:300], template=json.dumps(template), every_days=every_days, next_run=when,
            enabled=True, created_by=actor, created=datetime.now(UTC))).inserted_primary_key[0]
        audit.append(conn, actor=actor, activity="simulator.automation", target=f"automation {aid}",
                     details={"name": name, "payload": payload_id, "every_days": every_days})
        return aid
    return get(store, store.run(do))


def get(store: Store, automation_id: int) -> Automation:
    with store.read() as conn:
        r = conn.execute(sa.select(t.sim_automations).where(A.id == automation_id)).first()
    if r is None:
        raise NotFound(f"no automation {automation_id}; see workbench simulator automations")
    return _row(r)


def list_all(store: Store) -> list[Automation]:
    with store.read() as conn:
        return [_row(r) for r in conn.execute(sa.select(t.sim_automations).order_by(A.id))]


def set_enabled(store: Store, actor: str, automation_id: int, enabled: bool) -> Automation:
    """Turn an automation on or off (audited)."""
    from workbench import audit, rbac

    rbac.require(store, actor, rbac.Permission.SIMULATION_MANAGEMENT, activity="simulator.automation",
                 target=f"automation {automation_id}")
    get(store, automation_id)

    def do(conn: sa.Connection) -> None:
        conn.execute(t.sim_automations.update().where(A.id == automation_id).values(enabled=enabled))
        audit.append(conn, actor=actor, activity="simulator.automation", target=f"automation {automation_id}",
                     details={"enabled": enabled})
    store.run(do)
    return get(store, automation_id)


def run_due(store: Store, lake: Any, *, now: datetime | None = None,
            clock: Callable[[], datetime] | None = None) -> list[int]:
    """Launch a campaign for every enabled automation that is due; returns the new campaign ids.
    Runs as the automation's creator would (its decision was made when it was created)."""
    now = now or datetime.now(UTC)
    with store.read() as conn:
        due = conn.execute(sa.select(t.sim_automations).where(A.enabled.is_(True), A.next_run <= now)
                           .order_by(A.id)).all()
    launched = []
    for r in due:
        template = json.loads(r.template)
        f = TargetFilter(**{k: tuple(v) if isinstance(v, list) else v for k, v in template["filter"].items()})
        service = SimulationService(store, r.created_by, clock=clock or (lambda: now))
        recipients = select(lake, f, store=store, now=now)
        if recipients:
            campaign = service.create(f"{r.name} {now:%Y-%m-%d}", template["payload_id"], recipients,
                                      settings=CampaignSettings.from_json(template["settings"]))
            store.run(lambda conn, cid=campaign.id, aid=r.id: conn.execute(
                t.sim_campaigns.update().where(t.sim_campaigns.c.id == cid).values(automation_id=aid)))
            launched.append(service.launch(campaign.id).id)
        nxt = r.next_run + timedelta(days=r.every_days)
        while nxt <= now:
            nxt += timedelta(days=r.every_days)
        store.run(lambda conn, aid=r.id, n=nxt: conn.execute(
            t.sim_automations.update().where(A.id == aid).values(next_run=n)))
    return launched


__all__ = ["Automation", "create", "get", "list_all", "set_enabled", "run_due"]
