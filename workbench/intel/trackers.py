"""Threat trackers (mdo-reference §6.1): Explorer queries tracked per UTC day.

A tracker is a named Explorer query (its view and conditions; its own window is ignored) with
an optional threshold. :func:`run` — a scheduler's job, no permission needed — counts the
query's messages (distinct ``NetworkMessageId``; rows for a view without messages) per UTC
day for today and the 8 days before, computing only the days not yet counted to their end,
and reports what the *Tracked queries* tab shows: today's count, the prior day's count and the
trend of today against the prior week's daily average.

**Trend rule** (:func:`trend_of`): ratio = today / average of the 7 days before today;
*rising* when the ratio is at least 1.25, *declining* when at most 0.75, otherwise *flat*.
With no message in the prior week the ratio is undefined (None): *rising* if today has any
message, else *flat*. Today is the day so far, as in the portal.

When today's count reaches a tracker's threshold an alert (policy ``tracked_query_threshold``)
is filed once per tracker and day: its dedup key names both, so re-runs add nothing.

>>> trend_of(10, 4.0).label, trend_of(3, 4.0).label, trend_of(4, 4.0).label, trend_of(0, 0.0).label
('rising', 'declining', 'flat', 'flat')
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from workbench import schema
from workbench.errors import ConflictError, InputError, NotFound
from workbench.explorer.compile import compile_query, condition_expr
from workbench.explorer.properties import prop
from workbench.explorer.query import Query, Window, conditions
from workbench.explorer.views import view
from workbench.lake import Lake
from workbench.store import tables as t
from workbench.store.engine import Store

POLICY_ID = "tracked_query_threshold"
SERVICE_ACTOR = "trackers"  # who files the threshold alerts
DAYS_BEFORE = 8  # days counted before today (the prior day's own prior week fits in them)
RISING, DECLINING = 1.25, 0.75  # trend ratio bounds (see the module docstring)

T = t.trackers.c
C = t.tracker_counts.c


@dataclass(frozen=True)
class Tracker:
    """A tracked query as stored."""

    id: int
    name: str
    query: Query
    threshold: int | None
    created_by: str
    created: datetime
    last_run: datetime | None


@dataclass(frozen=True)
class Trend:
    """Today against the prior week's daily average."""

    ratio: float | None  # None: no message in the prior week
    label: str  # rising / flat / declining


@dataclass(frozen=True)
class TrackerStatus:
    """One row of the Tracked queries tab after a run."""

    name: str
    today: int
    prior_day: int
    prior_week_average: float  # the 7 days before today
    trend: Trend
    last_run: datetime
    threshold: int | None
    crossed: bool  # today reached the threshold
    created: datetime
    explore: Query  # the tracker's conditions over the prior week and today (Actions: Explore)
    alert_id: str | None = None  # the alert this run filed (None: none new)


def trend_of(today: int, prior_week_average: float) -> Trend:
    """The trend label of *today* against *prior_week_average* (rule in the module docstring)."""
    if prior_week_average <= 0:
        return Trend(None, "rising" if today > 0 else "flat")
    ratio = today / prior_week_average
    label = "rising" if ratio >= RISING else "declining" if ratio <= DECLINING else "flat"
    return Trend(round(ratio, 4), label)


# --------------------------------------------------------------------------- management


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 300:
        raise InputError("a tracker needs a name of 1-300 characters")
    return name


def _check_threshold(threshold: int | None) -> int | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InputError(f"threshold {threshold!r} is not a positive whole number of messages")
    return threshold


def _check_query(query: Query) -> Query:
    """The query, if its view and properties exist and its values fit (those on other tables: at run)."""
    if not isinstance(query, Query):
        raise InputError("track an Explorer query (workbench.explorer.Query, its JSON or its link)")
    v = view(query.view)
    for c in conditions(query.where):
        if prop(c.property, v.table).table == v.table:
            condition_expr(c, v.table)
    return query


def _tracker(r: Any) -> Tracker:
    return Tracker(r.id, r.name, Query.from_json(r.query), r.threshold, r.created_by, r.created, r.last_run)


def track(store: Store, actor: str, name: str, query: Query, *, threshold: int | None = None) -> Tracker:
    """Track *query* as *name* (needs tracker management; audited as ``tracker.create``)."""
    from workbench import audit, rbac

    name = _check_name(name)
    rbac.require(store, actor, rbac.Permission.TRACKER_MANAGEMENT, activity="tracker.create", target=name)
    query, threshold = _check_query(query), _check_threshold(threshold)
    now = datetime.now(UTC)

    def do(conn: sa.Connection) -> Tracker:
        if conn.execute(sa.select(T.id).where(sa.func.lower(T.name) == name.lower())).first() is not None:
            raise ConflictError(f"a tracker {name!r} exists; choose another name or remove it first")
        new_id = conn.execute(t.trackers.insert().values(
            name=name, query=json.dumps(query.to_json()), threshold=threshold, created_by=actor, created=now,
            last_run=None)).inserted_primary_key[0]
        audit.append(conn, actor=actor, activity="tracker.create", target=name,
                     details={"query": query.to_json(), "threshold": threshold})
        return Tracker(int(new_id), name, query, threshold, actor, now, None)

    return store.run(do)


def track_saved(store: Store, actor: str, tenant: Any, saved_name: str, *, name: str | None = None,
                threshold: int | None = None) -> Tracker:
    """Track the tenant's saved query *saved_name* (under its own name unless *name* is given)."""
    from workbench.explorer.saved import folder_of, load

    saved = load(folder_of(tenant), saved_name)
    return track(store, actor, name or saved.name, saved.query, threshold=threshold)


def untrack(store: Store, actor: str, name: str) -> None:
    """Stop tracking *name* and drop its counts (needs tracker management; audited as ``tracker.remove``)."""
    from workbench import audit, rbac

    name = _check_name(name)
    rbac.require(store, actor, rbac.Permission.TRACKER_MANAGEMENT, activity="tracker.remove", target=name)

    def do(conn: sa.Connection) -> None:
        row = conn.execute(sa.select(T.id, T.name).where(sa.func.lower(T.name) == name.lower())).first()
        if row is None:
            raise NotFound(f"no tracker {name!r}; trackers: {', '.join(_names(conn)) or 'none yet'}")
        conn.execute(t.tracker_counts.delete().where(C.tracker_id == row.id))
        conn.execute(t.trackers.delete().where(T.id == row.id))
        audit.append(conn, actor=actor, activity="tracker.remove", target=row.name)

    store.run(do)


def _names(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.select(T.name).order_by(T.name)).scalars())


def list_trackers(store: Store) -> list[Tracker]:
    """Every tracker, by name (case-insensitive)."""
    with store.read() as conn:
        rows = conn.execute(sa.select(t.trackers)).all()
    return sorted((_tracker(r) for r in rows), key=lambda k: k.name.lower())


def tracked_names(store: Store) -> set[str]:
    """Lower-cased tracker names (the Saved queries tab's *Tracked query* column)."""
    return {k.name.lower() for k in list_trackers(store)}


# --------------------------------------------------------------------------- counting


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def day_query(query: Query, start: datetime, end: datetime) -> Query:
    """*query*'s view and conditions over [start, end)."""
    return Query(query.view, Window.between(start, end), query.where)


def count_by_day(lake: Lake, query: Query, first: date, now: datetime) -> dict[date, tuple[int, datetime | None,
                                                                                               datetime | None]]:
    """Messages of *query* per UTC day from *first* up to *now*: day -> (count, first, last time).
    Days without a message are absent."""
    start = _midnight(first)
    end = max(now, start + timedelta(microseconds=1))
    table = view(query.view).table
    key = "NetworkMessageId" if "NetworkMessageId" in schema.table(table).schema else None
    frame, _ = compile_query(lake, day_query(query, start, end), columns=["Timestamp", *([key] if key else [])])
    counted = pl.col(key).n_unique() if key else pl.len()
    days = (frame.group_by(pl.col("Timestamp").dt.date().alias("day"))
            .agg(counted.alias("n"), pl.col("Timestamp").min().alias("first"), pl.col("Timestamp").max().alias("last"))
            .collect())
    return {r["day"]: (int(r["n"]), r["first"], r["last"]) for r in days.iter_rows(named=True)}


def _stale_days(conn: sa.Connection, tracker_id: int, today: date) -> list[date]:
    """Days before today without a count made after the day ended (and today itself)."""
    wanted = [today - timedelta(days=i) for i in range(DAYS_BEFORE, 0, -1)]
    final = {r.day for r in conn.execute(sa.select(C.day, C.computed).where(
        C.tracker_id == tracker_id, C.day.in_(wanted))) if r.computed >= _midnight(r.day + timedelta(days=1))}
    return [d for d in wanted if d not in final] + [today]


def _store_counts(conn: sa.Connection, tracker_id: int, counts: dict[date, int], now: datetime) -> None:
    conn.execute(t.tracker_counts.delete().where(C.tracker_id == tracker_id, C.day.in_(list(counts))))
    conn.execute(t.tracker_counts.insert(), [{"tracker_id": tracker_id, "day": d, "count": n, "computed": now}
                                             for d, n in counts.items()])


def _stored_counts(conn: sa.Connection, tracker_id: int, today: date) -> dict[date, int]:
    rows = conn.execute(sa.select(C.day, C.count).where(
        C.tracker_id == tracker_id, C.day >= today - timedelta(days=DAYS_BEFORE), C.day <= today))
    return {r.day: int(r.count) for r in rows}


# --------------------------------------------------------------------------- running


def _draft(k: Tracker, today: date, count: int, span: tuple[datetime | None, datetime | None],
           now: datetime) -> Any:
    from workbench.incidents.model import AlertDraft, Entity, EntityKind, Severity

    start = _midnight(today)
    return AlertDraft(
        policy_id=POLICY_ID, title=f"Tracked query '{k.name}' reached {k.threshold:,} messages today",
        severity=Severity.MEDIUM, category="ThreatManagement",
        first_activity=span[0] or start, last_activity=span[1] or now,
        dedup_key=f"{POLICY_ID}:{k.name.lower()}:{today.isoformat()}",
        description=(f"The tracked query '{k.name}' counted {count:,} messages on {today.isoformat()} (UTC), "
                     f"at or above its threshold of {k.threshold:,}."),
        entities=(Entity(EntityKind.CLUSTER, f"tracked query: {k.name.lower()}"),),
        explorer_query=day_query(k.query, start, start + timedelta(days=1)).to_json(),
        message_count=count,
    )


def _run_one(store: Store, lake: Lake, k: Tracker, now: datetime) -> tuple[TrackerStatus, Any | None]:
    today = now.date()
    with store.read() as conn:
        stale = _stale_days(conn, k.id, today)
    found = count_by_day(lake, k.query, stale[0], now)
    fresh = {d: found.get(d, (0, None, None))[0] for d in stale}

    def save(conn: sa.Connection) -> dict[date, int]:
        _store_counts(conn, k.id, fresh, now)
        conn.execute(t.trackers.update().where(T.id == k.id).values(last_run=now))
        return _stored_counts(conn, k.id, today)

    counts = store.run(save)
    prior = [counts.get(today - timedelta(days=i), 0) for i in range(1, 8)]
    average = sum(prior) / 7
    crossed = k.threshold is not None and counts[today] >= k.threshold
    start = _midnight(today - timedelta(days=7))
    status = TrackerStatus(k.name, counts[today], prior[0], round(average, 4), trend_of(counts[today], average), now,
                           k.threshold, crossed, k.created, day_query(k.query, start, now))
    span = found.get(today, (0, None, None))[1:]
    return status, _draft(k, today, counts[today], span, now) if crossed else None


def run(store: Store, lake: Lake, *, now: datetime | None = None) -> list[TrackerStatus]:
    """Count every tracker's messages (missing days and today), file threshold alerts once per
    tracker and day, and return each tracker's status, by name."""
    now = _utc(now)
    out = []
    for k in list_trackers(store):
        status, draft = _run_one(store, lake, k, now)
        out.append(status if draft is None else _with_alert(store, status, [draft], now))
    return out


def _with_alert(store: Store, status: TrackerStatus, drafts: Iterable[Any], now: datetime) -> TrackerStatus:
    from workbench.incidents.service import IncidentService

    added = IncidentService(store, SERVICE_ACTOR, clock=lambda: now).add_alerts(drafts)
    return replace(status, alert_id=added.new[0]) if added.new else status


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["POLICY_ID", "Tracker", "TrackerStatus", "Trend", "track", "track_saved", "untrack", "list_trackers",
           "tracked_names", "run", "trend_of", "count_by_day", "day_query"]
