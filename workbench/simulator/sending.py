"""The send queue: every due target of a running campaign gets its message over SMTP.

A target is due when its campaign runs, it is still ``pending`` and its ``next_attempt`` has come
(its send-window time at first). The outcome of each message is kept on the target: accepted by
the relay → a ``delivered`` event; a temporary refusal (4xx, no connection) → another attempt after
the back-off delay, until the back-off gives up → ``failed``; a permanent refusal (5xx) →
``failed`` at once, with the server's reply in ``last_error``. One SMTP connection serves the
whole batch; when the relay itself fails (unreachable: the batch stops and everything stays
queued; refused login or TLS: a one-line error to fix the settings) no target is blamed.
Running :func:`send_due` again does not send a delivered message twice: a target leaves
``pending`` as soon as its delivery is recorded (a crash between the relay's acceptance and that
record can repeat one message, never lose one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from workbench.errors import InputError
from workbench.simulator.campaigns import T, _target
from workbench.simulator.model import CampaignStatus, EventKind, Hit, Links, TargetStatus
from workbench.simulator.recorder import StoreTracker
from workbench.store import tables as t
from workbench.store.engine import Store

C = t.sim_campaigns.c


@dataclass
class SendSummary:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # one line per failed or deferred target

    def render(self) -> str:
        return f"{self.sent:,} sent, {self.retried:,} to retry, {self.failed:,} failed"


def due(store: Store, now: datetime, limit: int | None = None) -> list[tuple[Any, Any]]:
    """(target row, campaign row) pairs due at *now*, oldest due first."""
    stmt = (sa.select(t.sim_targets, C.payload_id, C.technique, C.id.label("cid"))
            .join(t.sim_campaigns, C.id == T.campaign_id)
            .where(C.status == CampaignStatus.RUNNING.value, T.status == TargetStatus.PENDING.value,
                   T.next_attempt.is_not(None), T.next_attempt <= now)
            .order_by(T.next_attempt, T.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.read() as conn:
        return list(conn.execute(stmt).all())


def send_due(store: Store, config: Any, *, now: datetime | None = None, backoff: Any = None,
             limit: int | None = None, progress: Callable[[int, int], None] | None = None,
             session: Any = None) -> SendSummary:
    """Send every due message (see the module docstring); *config* is the tenant's
    :class:`~workbench.simulator.config.SimulatorConfig`. *progress(done, total)* after each."""
    from workbench.simulator.payload_store import get_payload
    from workbench.simulator.payloads import render
    from workbench.simulator.smtp import Backoff, SendOutcome, SmtpSession

    now = now or datetime.now(UTC)
    backoff = backoff or Backoff()
    rows = due(store, now, limit)
    summary = SendSummary()
    if not rows:
        return summary
    tracker = StoreTracker(store, organisation=config.organisation)
    payloads: dict[str, Any] = {}
    own = session is None
    session = session or SmtpSession(config.smtp_settings())
    if own:
        session.__enter__()
    try:
        for i, r in enumerate(rows, start=1):
            target = _target(r)
            if r.payload_id not in payloads:
                payloads[r.payload_id] = get_payload(store, r.payload_id)
            payload = payloads[r.payload_id]
            message = render(payload, target.recipient, Links(config.base_url, target.token), when=now)
            result = session.send(message, envelope_from=payload.sender_address, recipient=target.recipient.email)
            if getattr(session, "broken", None) is not None:  # the relay itself failed: not this target's fault
                if result.outcome is SendOutcome.PERMANENT:
                    raise InputError(f"the SMTP relay cannot be used: {result.detail}; nothing was marked failed — "
                                     "fix the settings (workbench simulator configure) and send again")
                summary.retried += len(rows) - i + 1
                summary.errors.append(f"the SMTP relay is unreachable: {result.detail}; "
                                      f"{len(rows) - i + 1:,} message(s) stay queued")
                break
            attempts = target.attempts + 1
            if result.outcome is SendOutcome.SENT:
                _update(store, target.id, attempts=attempts, last_error="", message_id=message["Message-ID"])
                tracker.record(target.token, EventKind.DELIVERED,
                               Hit(at=now, ip="", user_agent="", source="smtp", details={"detail": result.detail}))
                summary.sent += 1
            elif result.outcome is SendOutcome.TEMPORARY and not backoff.exhausted(attempts):
                _update(store, target.id, attempts=attempts, last_error=result.detail[:1000],
                        next_attempt=now + timedelta(seconds=backoff.delay(attempts)))
                summary.retried += 1
                summary.errors.append(f"{target.recipient.email}: {result.detail} (attempt {attempts}, will retry)")
            else:
                why = result.detail if result.outcome is SendOutcome.PERMANENT else \
                    f"{result.detail} (gave up after {attempts} attempts)"
                _update(store, target.id, attempts=attempts, last_error=why[:1000], next_attempt=None)
                tracker.record(target.token, EventKind.FAILED,
                               Hit(at=now, ip="", user_agent="", source="smtp",
                                   details={"code": result.code, "detail": why}))
                summary.failed += 1
                summary.errors.append(f"{target.recipient.email}: {why}")
            if progress:
                progress(i, len(rows))
    finally:
        if own:
            session.__exit__(None, None, None)
    return summary


def _update(store: Store, target_id: int, **values: Any) -> None:
    store.run(lambda conn: conn.execute(t.sim_targets.update().where(T.id == target_id).values(**values)))


__all__ = ["SendSummary", "due", "send_due"]


# ------------------------------------------------------------------ end-user notifications

REMINDER_EVERY = {"weekly": timedelta(days=7), "twice_weekly": timedelta(days=3, hours=12)}


@dataclass
class NotifySummary:
    assignments: int = 0
    reminders: int = 0
    reinforcements: int = 0
    errors: list[str] = field(default_factory=list)

    def render(self) -> str:
        return (f"{self.assignments:,} training assignment(s), {self.reminders:,} reminder(s), "
                f"{self.reinforcements:,} thank-you message(s)")


def _notification_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(
            sa.select(t.sim_targets, C.status.label("campaign_status"), C.settings, C.payload_id)
            .join(t.sim_campaigns, C.id == T.campaign_id)
            .where(sa.or_(sa.and_(T.training_assigned != "[]", T.training_due.is_not(None)),
                          sa.and_(T.reported.is_not(None), T.reinforced.is_(None))))).all())


def notify_due(store: Store, config: Any, *, now: datetime | None = None, session: Any = None) -> NotifySummary:
    """Send the end-user notifications that are due (mdo-reference §5.4 step 8): the training
    assignment once training is assigned, reminders (weekly or twice a week) until it is done or
    due, and the thank-you for a report (at once, or after the campaign ends, or never)."""
    import json

    from workbench.simulator import notifications
    from workbench.simulator.campaigns import CampaignSettings
    from workbench.simulator.payload_store import get_payload
    from workbench.simulator.smtp import SmtpSession
    from workbench.simulator.training import by_id

    now = now or datetime.now(UTC)
    summary = NotifySummary()
    work: list[tuple[str, Any, Any, dict[str, Any]]] = []
    for r in _notification_rows(store):
        target, settings = _target(r), CampaignSettings.from_json(json.loads(r.settings or "{}"))
        sender = config.awareness_sender or notifications.default_sender(target.recipient.email.split("@")[1])
        links = Links(config.base_url, target.token)
        open_modules = [by_id(m) for m in target.training_assigned if m not in target.training_completed]
        if target.training_assigned and r.training_notified is None:
            message = notifications.training_assignment(target.recipient, [by_id(m) for m in target.training_assigned],
                                                        links, sender=sender, due=target.training_due.date(),
                                                        organisation=config.organisation, when=now)
            work.append(("assignments", target, message, {"training_notified": now}))
        elif (open_modules and settings.training_reminder in REMINDER_EVERY and target.training_due > now
              and now - max(x for x in (r.reminded, r.training_notified) if x) >= REMINDER_EVERY[settings.training_reminder]):
            message = notifications.training_reminder(target.recipient, open_modules, links, sender=sender,
                                                      due=target.training_due.date(), when=now)
            work.append(("reminders", target, message, {"reminded": now}))
        if r.reported is not None and r.reinforced is None and (
                settings.positive_reinforcement == "immediately"
                or settings.positive_reinforcement == "after_end" and r.campaign_status == CampaignStatus.COMPLETED.value):
            subject = get_payload(store, r.payload_id).subject if r.payload_id else ""
            message = notifications.positive_reinforcement(target.recipient, sender=sender, when=now,
                                                           reported_subject=subject.replace("{{", "").replace("}}", ""))
            work.append(("reinforcements", target, message, {"reinforced": now}))
    if not work:
        return summary
    own = session is None
    session = session or SmtpSession(config.smtp_settings())
    if own:
        session.__enter__()
    try:
        for counter, target, message, stamp in work:
            sender_address = message["From"].addresses[0].addr_spec
            result = session.send(message, envelope_from=sender_address, recipient=target.recipient.email)
            if result.sent:
                _update(store, target.id, **stamp)
                setattr(summary, counter, getattr(summary, counter) + 1)
            else:
                summary.errors.append(f"{target.recipient.email}: {counter[:-1]} not sent: {result.detail}")
                if getattr(session, "broken", None) is not None:
                    break
    finally:
        if own:
            session.__exit__(None, None, None)
    return summary


def send_test(store: Store, config: Any, actor: str, payload: Any, address: str) -> Any:
    """"Send a test": *payload* rendered for *address* (sample attributes, sample links that record
    nothing) through the relay; needs simulation management; audited (``simulator.test``)."""
    from dataclasses import replace

    from workbench import audit, rbac
    from workbench.simulator import payloads
    from workbench.simulator.smtp import SmtpSession

    rbac.require(store, actor, rbac.Permission.SIMULATION_MANAGEMENT, activity="simulator.test",
                 target=f"payload {payload.id}")
    if not payloads.is_address(address):
        raise InputError(f"{address or '(empty)'!r} is not an email address; give where the test goes")
    message = payloads.render(payload, replace(payloads.SAMPLE_RECIPIENT, email=address), payloads.SAMPLE_LINKS)
    with SmtpSession(config.smtp_settings()) as session:
        result = session.send(message, envelope_from=payload.sender_address, recipient=address)
    audit.record(store, actor=actor, activity="simulator.test", target=f"payload {payload.id}",
                 details={"to": address, "outcome": result.outcome.value})
    return result


def run_once(store: Store, config: Any, *, lake: Any = None, now: datetime | None = None,
             progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, list[int]], SendSummary, NotifySummary]:
    """One scheduler pass: launch due automations (with *lake*, the directory), start and end
    campaigns that are due, send due messages, then due notifications."""
    from workbench.simulator import automations
    from workbench.simulator.campaigns import SimulationService
    from workbench.simulator.smtp import SmtpSession

    now = now or datetime.now(UTC)
    automated = automations.run_due(store, lake, now=now) if lake is not None else []
    changed = SimulationService(store, "scheduler", clock=lambda: now).advance()
    changed["started"] = automated + changed["started"]
    with SmtpSession(config.smtp_settings()) as session:
        sent = send_due(store, config, now=now, progress=progress, session=session)
        notified = notify_due(store, config, now=now, session=session)
    return changed, sent, notified


__all__ += ["NotifySummary", "notify_due", "run_once", "send_test"]
