"""Insights: short computed findings, each with a number and the Explorer query behind it.

A finding is shown only when its number is not zero; the most severe come first. Add one
by writing a function ``(ctx) -> Insight | None`` and listing it in :data:`RULES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

from workbench.dashboard.tiles import Insight, Severity
from workbench.explorer.query import Cond, Op, Or

if TYPE_CHECKING:
    from workbench.dashboard.data import _Context

_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2, Severity.INFORMATIONAL: 3}


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def allowed_threats(ctx: _Context) -> Insight | None:
    """Phish or malware delivered because an allow entry overrode the verdict."""
    allowed = ctx.count(pl.col("delivered") & pl.col("allowed"))
    if not allowed:
        return None
    q = ctx.threat_query(Cond("delivery_action", Op.ANY, ("Delivered",)),
                         Or(Cond("org_level_action", Op.ANY, ("Allow",)), Cond("user_level_action", Op.ANY, ("Allow",))))
    return Insight("allowed_threats", f"{_plural(allowed, 'phish or malware message')} delivered because of an "
                   "allow entry: review the tenant and user allow lists", allowed, Severity.HIGH, q)


def still_in_mailboxes(ctx: _Context) -> Insight | None:
    """Detected as phish or malware, delivered, and still in a mailbox."""
    left = ctx.count(pl.col("delivered") & pl.col("in_inbox"))
    if not left:
        return None
    q = ctx.threat_query(Cond("delivery_action", Op.ANY, ("Delivered",)),
                         Cond("latest_delivery_location", Op.ANY, ("Inbox/folder",)))
    return Insight("still_in_mailboxes", f"{_plural(left, 'phish or malware message')} still in users' "
                   "inboxes: remediate them from the Explorer", left, Severity.HIGH, q)


def clicked_malicious(ctx: _Context) -> Insight | None:
    tile = ctx.clickers()
    users = tile.value("users")
    if not users:
        return None
    return Insight("clicked_malicious", f"{_plural(users, 'user')} clicked links in malicious mail: check their "
                   "sign-ins and devices", users, Severity.HIGH, tile.query)


def priority_targeted(ctx: _Context) -> Insight | None:
    accounts = ctx.priority_accounts()
    hit = ctx.users.filter(pl.col("user").is_in(accounts))
    messages = int(hit["messages"].sum())
    if not messages:
        return None
    people = hit.height
    q = ctx.threat_query(Cond("tags", Op.ANY, ("Priority account",)))
    return Insight("priority_targeted", f"{_plural(people, 'priority account')} targeted by "
                   f"{_plural(messages, 'phish or malware message')}", messages, Severity.MEDIUM, q)


def removed_after_delivery(ctx: _Context) -> Insight | None:
    removed = ctx.efficacy().value("post_delivery")
    if not removed:
        return None
    return Insight("removed_after_delivery", f"{_plural(removed, 'message')} found malicious only after delivery and "
                   "removed by ZAP: see who opened them before", removed, Severity.MEDIUM,
                   ctx.efficacy().metric("post_delivery").query)


def user_reports(ctx: _Context) -> Insight | None:
    reported = ctx.summary().metric("reported")
    if not reported.value:
        return None
    return Insight("user_reports", f"{_plural(reported.value, 'message')} reported by users", reported.value,
                   Severity.LOW, reported.query)


RULES: tuple[Callable[[_Context], Insight | None], ...] = (
    allowed_threats, still_in_mailboxes, clicked_malicious, priority_targeted, removed_after_delivery, user_reports,
)


def find(ctx: _Context) -> tuple[Insight, ...]:
    found = [i for rule in RULES if (i := rule(ctx)) is not None]
    return tuple(sorted(found, key=lambda i: (_ORDER[i.severity], -i.value)))


__all__ = ["find", "RULES"]
