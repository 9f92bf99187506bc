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
