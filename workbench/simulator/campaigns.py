"""Simulation campaigns in the tenant's store: create (draft), schedule, launch, cancel, complete.

Lifecycle (mdo-reference §5.4): draft → scheduled → running → completed, or cancelled from any
state before completed. Launching fixes each target's due time: inside the send window
(``window_start``–``window_end`` local hours), in the target's own time zone when
``time_zone_aware`` (region-aware delivery), spread evenly over the window's first day; the
campaign ends ``end_after_days`` (2–30) after launch, when :meth:`SimulationService.advance`
completes it. Every change needs *simulation management* (Global / Security Administrator,
Attack Simulation Administrator) and is audited (``simulator.*``).

>>> CampaignSettings(end_after_days=1)
Traceback (most recent call last):
...
workbench.errors.InputError: end_after_days 1 is out of range; use 2 to 30 days
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from workbench.errors import ConflictError, InputError, NotFound
from workbench.simulator.model import CampaignStatus, Recipient, TargetStatus, Technique
from workbench.store import tables as t
from workbench.store.engine import Store

ASSIGN_TO = ("none", "all", "clicked", "compromised")
REINFORCEMENT = ("never", "immediately", "after_end")
REMINDERS = ("none", "weekly", "twice_weekly")
C = t.sim_campaigns.c
T = t.sim_targets.c


@dataclass(frozen=True)
class CampaignSettings:
    """What a campaign does besides sending its payload (wizard steps 6–9)."""

    training: tuple[str, ...] = ()  # training module ids (workbench.simulator.training)
    assign_training_to: str = "compromised"  # none | all | clicked | compromised
    training_due_days: int = 15  # after the campaign ends (7, 15 or 30 in MDO)
    landing_url: str = ""  # a custom landing page instead of the built-in teaching page
    login_page: str = ""  # overrides the payload's login page template
    positive_reinforcement: str = "immediately"  # never | immediately | after_end
    training_reminder: str = "weekly"  # none | weekly | twice_weekly
    window_start: int = 9  # local hour sending may start
    window_end: int = 17  # local hour sending stops
    time_zone_aware: bool = True
    spread_minutes: int = 0  # spread the sending over this long (GoPhish's "send emails by"); 0: all at once
    end_after_days: int = 2

    def __post_init__(self) -> None:
        if self.assign_training_to not in ASSIGN_TO:
            raise InputError(f"assign_training_to {self.assign_training_to!r} is unknown; use one of {', '.join(ASSIGN_TO)}")
        if self.positive_reinforcement not in REINFORCEMENT:
            raise InputError(f"positive_reinforcement {self.positive_reinforcement!r} is unknown; "
                             f"use one of {', '.join(REINFORCEMENT)}")
        if self.training_reminder not in REMINDERS:
            raise InputError(f"training_reminder {self.training_reminder!r} is unknown; use one of {', '.join(REMINDERS)}")
        if not 0 <= self.window_start < self.window_end <= 24:
            raise InputError(f"send window {self.window_start}-{self.window_end} h is not a window; "
                             "use two hours 0-24, start before end (e.g. 9 and 17)")
        if not 0 <= self.spread_minutes <= 24 * 60:
            raise InputError(f"spread_minutes {self.spread_minutes} is out of range; use 0 (all at once) to 1440")
        if not 2 <= self.end_after_days <= 30:
            raise InputError(f"end_after_days {self.end_after_days} is out of range; use 2 to 30 days")
        if not 1 <= self.training_due_days <= 90:
            raise InputError(f"training_due_days {self.training_due_days} is out of range; use 1 to 90 days")
        if self.landing_url and not self.landing_url.startswith(("https://", "http://")):
            raise InputError(f"landing_url {self.landing_url!r} is not an http(s) address")
        if self.training:
            from workbench.simulator.training import by_id

            for module in self.training:
                by_id(module)  # raises naming the unknown module

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "training": list(self.training)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"unknown campaign setting {sorted(unknown)[0]!r}; settings: {', '.join(sorted(known))}")
        return cls(**{**data, "training": tuple(data.get("training", ()))})


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    technique: Technique
    payload_id: str
    status: CampaignStatus
    settings: CampaignSettings
    created_by: str
    created: datetime
    description: str = ""
    launch_at: datetime | None = None
    end_at: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    ended_by: str | None = None
    targets: int = 0


@dataclass(frozen=True)
class Target:
    id: int
    campaign_id: int
    recipient: Recipient
    token: str
    status: TargetStatus
    send_at: datetime | None = None
    attempts: int = 0
    last_error: str = ""
    times: dict[str, datetime | None] = field(default_factory=dict)  # delivered, read, clicked, ... (counted only)
    training_assigned: tuple[str, ...] = ()
    training_completed: dict[str, str] = field(default_factory=dict)
    training_due: datetime | None = None


def _campaign(r: Any, targets: int = 0) -> Campaign:
    return Campaign(r.id, r.name, Technique(r.technique), r.payload_id, CampaignStatus(r.status),
                    CampaignSettings.from_json(json.loads(r.settings or "{}")), r.created_by, r.created,
                    r.description or "", r.launch_at, r.end_at, r.started, r.ended, r.ended_by, targets)


TIMES = ("delivered", "failed", "read", "clicked", "compromised", "reported")


def _target(r: Any) -> Target:
    attrs = json.loads(r.attributes or "{}")
    return Target(r.id, r.campaign_id, Recipient(**attrs), r.token, TargetStatus(r.status), r.send_at, r.attempts,
                  r.last_error or "", {k: getattr(r, k) for k in TIMES},
                  tuple(json.loads(r.training_assigned or "[]")), json.loads(r.training_completed or "{}"),
                  r.training_due)


def new_token() -> str:
    """An unguessable per-recipient token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def due_times(recipients: Sequence[Recipient], launch: datetime, settings: CampaignSettings) -> list[datetime]:
    """When each recipient's message is due: at launch if the send window is open, else when it
    next opens — in the recipient's time zone when time-zone aware, else UTC — then spread evenly
    over ``spread_minutes`` (0: all at once).

    >>> s = CampaignSettings(window_start=9, window_end=17, time_zone_aware=False, spread_minutes=60)
    >>> [d.strftime("%H:%M") for d in due_times([Recipient("a@x.test"), Recipient("b@x.test")],
    ...                                          datetime(2026, 12, 1, 8, tzinfo=UTC), s)]
    ['09:00', '09:30']
    """
    out = []
    n = max(len(recipients), 1)
    for i, r in enumerate(recipients):
        zone: Any = UTC
        if settings.time_zone_aware and r.time_zone:
            try:
                zone = ZoneInfo(r.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                zone = UTC
        local = launch.astimezone(zone)
        midnight = datetime.combine(local.date(), time(0), zone)
        opens = midnight + timedelta(hours=settings.window_start)
        closes = midnight + timedelta(hours=settings.window_end)
        if local >= closes:  # today's window is over: tomorrow's
            start = opens + timedelta(days=1)
        else:
            start = max(opens, local)
        out.append(start.astimezone(UTC) + timedelta(minutes=settings.spread_minutes * i / n))
    return out


class SimulationService:
    """Campaigns of one tenant for one acting user (checked against the tenant's roles)."""

    def __init__(self, store: Store, actor: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store, self.actor, self.clock = store, actor, clock

    # ------------------------------------------------------------------ permissions

    def _manage(self, activity: str, target: str = "") -> None:
        from workbench import rbac

        rbac.require(self.store, self.actor, rbac.Permission.SIMULATION_MANAGEMENT, activity=activity, target=target)

    def require_reports(self, target: str = "") -> None:
        """Reports and results need simulation management or, read-only, a security role (metadata read);
        a payload author alone sees neither."""
        from workbench import rbac

        rbac.require(self.store, self.actor, rbac.Permission.SIMULATION_MANAGEMENT, rbac.Permission.METADATA_READ,
                     activity="simulator.report", target=target)

    def _audit(self, conn: sa.Connection, activity: str, campaign_id: int, **details: Any) -> None:
        from workbench import audit

        audit.append(conn, actor=self.actor, activity=activity, target=f"campaign {campaign_id}", details=details)

    # ------------------------------------------------------------------ reading

    def get(self, campaign_id: int) -> Campaign:
        self.require_reports(f"campaign {campaign_id}")
        return self._get(campaign_id)

    def _get(self, campaign_id: int) -> Campaign:
        with self.store.read() as conn:
            r = conn.execute(sa.select(t.sim_campaigns).where(C.id == campaign_id)).first()
            if r is None:
                raise NotFound(f"no campaign {campaign_id}; see workbench simulator list")
            n = conn.execute(sa.select(sa.func.count()).where(T.campaign_id == campaign_id)).scalar_one()
        return _campaign(r, n)

    def list(self, status: CampaignStatus | None = None) -> list[Campaign]:
        """Campaigns, newest first."""
        self.require_reports()
        counts = (sa.select(T.campaign_id, sa.func.count().label("n")).group_by(T.campaign_id).subquery())
        stmt = (sa.select(t.sim_campaigns, counts.c.n).outerjoin(counts, counts.c.campaign_id == C.id)
                .order_by(C.id.desc()))
        if status is not None:
            stmt = stmt.where(C.status == status.value)
        with self.store.read() as conn:
            return [_campaign(r, r.n or 0) for r in conn.execute(stmt)]

    def targets(self, campaign_id: int) -> list[Target]:
        self.require_reports(f"campaign {campaign_id}")
        with self.store.read() as conn:
            return [_target(r) for r in conn.execute(sa.select(t.sim_targets).where(T.campaign_id == campaign_id)
                                                       .order_by(T.id))]

    # ------------------------------------------------------------------ changing

    def create(self, name: str, payload_id: str, recipients: Iterable[Recipient], *,
               settings: CampaignSettings | None = None, description: str = "",
               technique: Technique | str | None = None) -> Campaign:
        """A draft campaign sending *payload_id* to *recipients* (duplicates removed)."""
        from workbench.simulator.payload_store import get_payload

        self._manage("simulator.create", name)
        name = (name or "").strip()
        if not name:
            raise InputError("a campaign needs a name; pass e.g. --name 'Q4 payroll phish'")
        payload = get_payload(self.store, payload_id)
        if technique is not None and Technique(technique) is not payload.technique:
            raise InputError(f"payload {payload.id} is a {payload.technique.label} payload, not "
                             f"{Technique(technique).label}; pick a payload of that technique")
        unique = list({r.email.strip().lower(): replace(r, email=r.email.strip().lower()) for r in recipients
                       if r.email and "@" in r.email}.values())
        if not unique:
            raise InputError("a campaign needs at least one target with an email address; choose users or groups")
        settings = settings or CampaignSettings()
        now = self.clock()

        def do(conn: sa.Connection) -> int:
            cid = conn.execute(t.sim_campaigns.insert().values(
                name=name[:300], description=description, technique=payload.technique.value, payload_id=payload.id,
                status=CampaignStatus.DRAFT.value, settings=json.dumps(settings.to_json()), created_by=self.actor,
                created=now)).inserted_primary_key[0]
            conn.execute(t.sim_targets.insert(), [
                dict(campaign_id=cid, email=r.email, token=new_token(), attributes=json.dumps(asdict(r)),
                     status=TargetStatus.PENDING.value, attempts=0, last_error="", training_assigned="[]",
                     training_completed="{}") for r in unique])
            self._audit(conn, "simulator.create", cid, name=name, payload=payload.id, targets=len(unique))
            return cid

        return self._get(self.store.run(do))

    def _transition(self, campaign_id: int, allowed: set[CampaignStatus], activity: str,
                    change: Callable[[sa.Connection, Any], dict[str, Any]]) -> Campaign:
        self._manage(activity, f"campaign {campaign_id}")

        def do(conn: sa.Connection) -> None:
            r = conn.execute(sa.select(t.sim_campaigns).where(C.id == campaign_id)).first()
            if r is None:
                raise NotFound(f"no campaign {campaign_id}; see workbench simulator list")
            if CampaignStatus(r.status) not in allowed:
                raise ConflictError(f"campaign {campaign_id} is {r.status}; {activity.split('.')[-1]} needs it "
                                    f"{' or '.join(sorted(s.value for s in allowed))}")
            values = change(conn, r)
            conn.execute(t.sim_campaigns.update().where(C.id == campaign_id, C.status == r.status).values(**values))
            self._audit(conn, activity, campaign_id, status=values.get("status", r.status))

        self.store.run(do)
        return self._get(campaign_id)

    def schedule(self, campaign_id: int, at: datetime) -> Campaign:
        """Launch *campaign_id* at *at* (UTC); :meth:`advance` starts it when due."""
        if at.tzinfo is None:
            raise InputError("give the launch time with a time zone (e.g. 2026-12-07T09:00+00:00)")
        return self._transition(campaign_id, {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}, "simulator.schedule",
                                lambda conn, r: {"status": CampaignStatus.SCHEDULED.value, "launch_at": at})

    def launch(self, campaign_id: int) -> Campaign:
        """Start sending now: each target's due time is set (send window, time zones)."""
        now = self.clock()

        def change(conn: sa.Connection, r: Any) -> dict[str, Any]:
            return _start(conn, r, now)
        return self._transition(campaign_id, {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED}, "simulator.launch",
                                change)

    def cancel(self, campaign_id: int) -> Campaign:
        """Stop a campaign: nothing more is sent; events already recorded stay."""
        now = self.clock()
        return self._transition(
            campaign_id, {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING}, "simulator.cancel",
            lambda conn, r: {"status": CampaignStatus.CANCELLED.value, "ended": now, "ended_by": self.actor})

    def advance(self) -> dict[str, list[int]]:
        """Start scheduled campaigns that are due and complete running ones past their end
        (what the scheduler runs; needs no role: it only follows decisions already made)."""
        now = self.clock()
        started: list[int] = []
        completed: list[int] = []

        def do(conn: sa.Connection) -> None:
            for r in conn.execute(sa.select(t.sim_campaigns).where(
                    C.status == CampaignStatus.SCHEDULED.value, C.launch_at <= now)).all():
                conn.execute(t.sim_campaigns.update().where(C.id == r.id).values(**_start(conn, r, now)))
                started.append(r.id)
            for r in conn.execute(sa.select(t.sim_campaigns).where(
                    C.status == CampaignStatus.RUNNING.value, C.end_at <= now)).all():
                conn.execute(t.sim_campaigns.update().where(C.id == r.id).values(
                    status=CampaignStatus.COMPLETED.value, ended=now, ended_by="system"))
                completed.append(r.id)
        self.store.run(do)
        return {"started": started, "completed": completed}


def _start(conn: sa.Connection, r: Any, now: datetime) -> dict[str, Any]:
    """Set the due times of a campaign's targets; the campaign's new values."""
    settings = CampaignSettings.from_json(json.loads(r.settings or "{}"))
    rows = conn.execute(sa.select(T.id, T.attributes).where(T.campaign_id == r.id).order_by(T.id)).all()
    recipients = [Recipient(**json.loads(x.attributes)) for x in rows]
    for row, due in zip(rows, due_times(recipients, now, settings)):
        conn.execute(t.sim_targets.update().where(T.id == row.id).values(send_at=due, next_attempt=due))
    return {"status": CampaignStatus.RUNNING.value, "launch_at": r.launch_at or now, "started": now,
            "end_at": now + timedelta(days=settings.end_after_days)}


__all__ = ["Campaign", "CampaignSettings", "SimulationService", "Target", "due_times", "new_token", "TIMES"]
