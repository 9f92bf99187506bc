"""What the tracking server records, kept in the tenant's store (:class:`StoreTracker`).

Every request is an event (``sim_events``), counted or flagged: a flagged event (a scanner, a
link preview, a click faster than a person, a request after the campaign ended) keeps its
reasons and changes nothing else. A counted event moves the target's status forward only
(:meth:`TargetStatus.after`), stamps the first time of its kind, assigns training when the
campaign's rule says so, and records reports and completed training modules.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from workbench.simulator.campaigns import CampaignSettings, T
from workbench.simulator.model import (COMPROMISED_BY, CampaignStatus, EventKind, Hit, Recipient, TargetStatus,
                                       Technique, TrackedTarget, status_for)
from workbench.store import tables as t
from workbench.store.engine import Store

C = t.sim_campaigns.c
NOT_RUNNING = "campaign_inactive"  # filtering.FlagReason.CAMPAIGN_INACTIVE: outside the running campaign

# the first-time column each counted event stamps
STAMPS = {EventKind.DELIVERED: "delivered", EventKind.FAILED: "failed", EventKind.READ: "read",
          EventKind.CLICKED: "clicked", EventKind.ATTACHMENT_LINK_CLICKED: "clicked", EventKind.REPORTED: "reported"}


def _assigns(rule: str, status: TargetStatus) -> bool:
    return (rule == "all" and status.rank >= TargetStatus.DELIVERED.rank
            or rule == "clicked" and status.rank >= TargetStatus.CLICKED.rank
            or rule == "compromised" and status is TargetStatus.COMPROMISED)


class StoreTracker:
    """The tracking server's view of the store (``workbench.simulator.tracking.Tracker``)."""

    def __init__(self, store: Store, *, organisation: str = "") -> None:
        self.store, self.organisation = store, organisation

    def _row(self, conn: sa.Connection, token: str) -> Any:
        return conn.execute(sa.select(t.sim_targets, t.sim_campaigns.c.name.label("campaign_name"),
                                      C.technique, C.payload_id, C.status.label("campaign_status"),
                                      C.settings, C.end_at)
                            .join(t.sim_campaigns, C.id == T.campaign_id).where(T.token == token)).first()

    def lookup(self, token: str) -> TrackedTarget | None:
        from workbench.simulator.payload_store import get_payload
        from workbench.simulator.training import by_id

        if not token or len(token) > 64:
            return None
        with self.store.read() as conn:
            r = self._row(conn, token)
        if r is None:
            return None
        settings = CampaignSettings.from_json(json.loads(r.settings or "{}"))
        try:
            payload = get_payload(self.store, r.payload_id)
        except Exception:  # noqa: BLE001 - a deleted tenant payload: the pages still work without it
            payload = None
        technique = Technique(r.technique)
        assigned = json.loads(r.training_assigned or "[]")
        if technique is Technique.HOW_TO_GUIDE:
            assigned = assigned or list(settings.training)
        return TrackedTarget(
            token=token, campaign_id=r.campaign_id, campaign_name=r.campaign_name, technique=technique,
            recipient=Recipient(**json.loads(r.attributes or "{}")), delivered_at=r.delivered,
            active=r.campaign_status == CampaignStatus.RUNNING.value,
            payload_name=payload.name if payload else "", payload_subject=payload.subject if payload else "",
            payload_sender=f"{payload.sender_name} <{payload.sender_address}>" if payload else "",
            indicators=tuple(payload.indicators) if payload else (),
            login_page=settings.login_page or (payload.login_page if payload else "generic"),
            landing_url=settings.landing_url, app_name=payload.app_name if payload else "",
            scopes=tuple(payload.scopes) if payload else (),
            training=tuple(by_id(m) for m in assigned), organisation=self.organisation)

    def record(self, token: str, kind: EventKind, hit: Hit) -> None:
        kind = EventKind(kind)

        def do(conn: sa.Connection) -> None:
            r = self._row(conn, token)
            if r is None:
                return
            running = r.campaign_status == CampaignStatus.RUNNING.value
            exempt = running or kind in (EventKind.DELIVERED, EventKind.FAILED, EventKind.TRAINING_COMPLETED)
            reasons = tuple(dict.fromkeys((*hit.reasons, *(() if exempt else (NOT_RUNNING,)))))
            conn.execute(t.sim_events.insert().values(
                campaign_id=r.campaign_id, target_id=r.id, kind=kind.value, at=hit.at, ip=hit.ip[:64],
                user_agent=hit.user_agent[:1000], source=hit.source[:40], reasons=",".join(reasons)[:300],
                details=json.dumps(dict(hit.details), default=str)))
            if reasons:
                return  # kept, excluded from every rate
            self._apply(conn, r, kind, hit)
        self.store.run(do)

    def _apply(self, conn: sa.Connection, r: Any, kind: EventKind, hit: Hit) -> None:
        technique = Technique(r.technique)
        settings = CampaignSettings.from_json(json.loads(r.settings or "{}"))
        values: dict[str, Any] = {}
        step = status_for(kind, technique)
        old = TargetStatus(r.status)
        new = old.after(step) if step is not None else old
        if step is TargetStatus.DELIVERED and old is TargetStatus.FAILED:
            new = TargetStatus.DELIVERED  # it arrived after all
        if new is not old:
            values["status"] = new.value
        column = STAMPS.get(kind)
        if column and getattr(r, column) is None:
            values[column] = hit.at
        if new is TargetStatus.COMPROMISED and r.compromised is None:
            values["compromised"] = hit.at
            if r.clicked is None and kind in (EventKind.CLICKED, EventKind.ATTACHMENT_LINK_CLICKED):
                values["clicked"] = hit.at
        if kind is EventKind.TRAINING_COMPLETED:
            done = json.loads(r.training_completed or "{}")
            module = str(hit.details.get("module", ""))
            if module and module not in done:
                done[module] = hit.at.isoformat()
                values["training_completed"] = json.dumps(done)
        if (settings.training and r.training_assigned in (None, "", "[]")
                and _assigns(settings.assign_training_to, new)):
            values["training_assigned"] = json.dumps(list(settings.training))
            values["training_due"] = (r.end_at or hit.at) + timedelta(days=settings.training_due_days)
        if values:
            conn.execute(t.sim_targets.update().where(T.id == r.id).values(**values))


__all__ = ["StoreTracker", "NOT_RUNNING", "STAMPS", "COMPROMISED_BY"]
