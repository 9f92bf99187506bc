"""Alerts an analyst's action raises (mdo-reference §3.4, §4.1): not evaluated over the lake.

>>> from datetime import datetime, UTC
>>> d = user_compromise_investigation_draft("Ann@Contoso.com", "soc@contoso.com", datetime(2026, 11, 20, tzinfo=UTC))
>>> d.title, d.severity.value, d.entities[0].key
('User compromise investigation of ann@contoso.com by soc@contoso.com', 'medium', 'user:ann@contoso.com')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from workbench.errors import InputError
from workbench.explorer.query import And, Cond, Op, Or, Query, Window
from workbench.incidents.model import AlertDraft, Entity, EntityKind

#: The Explorer keeps 30 days of mail: a manual investigation's query looks that far back.
EXPLORER_DAYS = 30


def _policy(policy_id: str, settings: Any):
    from workbench.detect.policies import PolicySettings, get_policy

    p = get_policy(policy_id)
    s = settings or PolicySettings()
    return p, s.severity or p.severity


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime):
        raise InputError("now must be a datetime")
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _draft(policy, severity, key: str, fields: dict, now: datetime, entities: list[Entity], *,
           query: dict | None, count: int, detail: str) -> AlertDraft:
    return AlertDraft(
        policy_id=policy.id, title=policy.title.format_map(fields), severity=severity, category=policy.category,
        first_activity=now, last_activity=now, dedup_key=f"{policy.id}:{key}",
        description=policy.description + f"\n\n{detail}", entities=tuple(entities), evidence=tuple(entities),
        explorer_query=query, mitre_techniques=policy.mitre, message_count=count)


def manual_investigation_draft(messages: Iterable[tuple[str, str]], actor: str, now: datetime,
                               explorer_query: dict | Query | None = None, *, settings: Any = None) -> AlertDraft:
    """"Admin triggered manual investigation of email": *messages* are (NetworkMessageId,
    recipient) copies the analyst picked in the Explorer; *explorer_query* the query they came
    from (default: a query listing exactly those copies over the Explorer's 30 days)."""
    pairs = list(dict.fromkeys((str(n).strip(), str(r).strip().lower()) for n, r in messages))
    if not pairs or not all(n and r for n, r in pairs):
        raise InputError("a manual investigation needs at least one email copy (NetworkMessageId, recipient)")
    actor = (actor or "").strip()
    if not actor:
        raise InputError("a manual investigation needs the analyst who started it")
    now = _utc(now)
    policy, severity = _policy("manual_investigation", settings)
    if isinstance(explorer_query, Query):
        explorer_query = explorer_query.to_json()
    if explorer_query is None:
        by: dict[str, list[str]] = {}
        for n, r in pairs:
            by.setdefault(n, []).append(r)
        nodes = [And(Cond("network_message_id", Op.ANY, (n,)), Cond("recipients", Op.ANY, tuple(rs))) for n, rs in sorted(by.items())]
        explorer_query = Query("all_email", Window.between(now - timedelta(days=EXPLORER_DAYS), now + timedelta(seconds=1)),
                               nodes[0] if len(nodes) == 1 else Or(*nodes)).to_json()
    entities = [Entity.of(EntityKind.EMAIL, f"{n}|{r}", "investigated") for n, r in pairs]
    entities += [Entity.of(EntityKind.MAILBOX, r, "recipient") for r in dict.fromkeys(r for _, r in pairs)]
    digest = hashlib.sha256("\n".join(f"{n}|{r}" for n, r in sorted(pairs)).encode()).hexdigest()[:16]
    return _draft(policy, severity, f"{actor.lower()}|{now:%Y-%m-%dT%H:%M:%S}|{digest}",
                  {"count": len(pairs), "actor": actor}, now, entities, query=explorer_query, count=len(pairs),
                  detail=f"Started by {actor} at {now:%Y-%m-%d %H:%M} UTC on {len(pairs)} email copies.")


def user_compromise_investigation_draft(user: str, actor: str, now: datetime, *, settings: Any = None) -> AlertDraft:
    """"Admin triggered user compromise investigation" of *user* (a UPN) by *actor*."""
    user, actor = (user or "").strip().lower(), (actor or "").strip()
    if not user or not actor:
        raise InputError("a user compromise investigation needs the user and the analyst who started it")
    now = _utc(now)
    policy, severity = _policy("user_compromise_investigation", settings)
    entities = [Entity.of(EntityKind.USER, user, "investigated"), Entity.of(EntityKind.MAILBOX, user, "investigated")]
    query = Query("all_email", Window.between(now - timedelta(days=EXPLORER_DAYS), now + timedelta(seconds=1)),
                  Or(Cond("sender_address", Op.ANY, (user,)), Cond("recipients", Op.ANY, (user,)))).to_json()
    return _draft(policy, severity, f"{user}|{actor.lower()}|{now:%Y-%m-%dT%H:%M:%S}", {"user": user, "actor": actor}, now,
                  entities, query=query, count=0,
                  detail=f"Started by {actor} at {now:%Y-%m-%d %H:%M} UTC; the query lists the user's mail, sent and received.")


__all__ = ["manual_investigation_draft", "user_compromise_investigation_draft"]
