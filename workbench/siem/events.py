"""The events the SIEM export sends: lake rows and store rows as :class:`SourceEvent`.

Every source yields its events in ``(time, id)`` order, strictly after a checkpoint
position, reading a bounded batch at a time (one lake day, or :data:`BATCH` store rows
plus the rest of their time tie). The id is deterministic (:func:`event_id`): the same
row in the same state always gives the same id, so a SIEM can drop re-sent events, and
a changed state (an investigation's status, an alert's update) is a new event.

>>> event_id("email", "20261120E0000701") == event_id("email", "20261120E0000701")
True
>>> event_id("investigation", "7", "running") != event_id("investigation", "7", "remediated")
True
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa

from workbench.errors import InputError
from workbench.store import Store
from workbench.store import tables as t

SOURCES: tuple[str, ...] = ("email", "click", "file", "investigation", "simulation", "alert", "incident")
ALL = SOURCES
NAMESPACE = uuid.UUID("5f0c3a52-9d1e-5b7a-8c4e-3f2d1a0b9e87")  # fixed forever: ids must not change
BATCH = 500  # store rows read per query
_JOIN_SLACK = timedelta(hours=1)  # URL/attachment rows may be stamped a little off their message

Position = tuple[datetime, str]


def event_id(source: str, key: str, state: str = "") -> str:
    """The deterministic id of *source*'s row *key* in *state* (uuid5 under :data:`NAMESPACE`)."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join((source, key, state))))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class SourceEvent:
    """One event: which source, its deterministic id, its UTC time and the row as a dict."""

    source: str
    id: str
    time: datetime
    data: Mapping[str, Any] = field(hash=False, compare=True)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"unknown event source {self.source!r}; known: {', '.join(SOURCES)}")
        object.__setattr__(self, "time", _utc(self.time))

    @property
    def position(self) -> Position:
        """Where this event sits in its source's order (what a checkpoint stores)."""
        return (self.time, self.id)


# ------------------------------------------------------------------------------------ ordering


def _after(events: Iterable[SourceEvent], since: Position | None) -> list[SourceEvent]:
    """*events* sorted by (time, id), keeping only those strictly after *since*."""
    ordered = sorted(events, key=lambda e: e.position)
    if since is None:
        return ordered
    at = (_utc(since[0]), since[1])
    return [e for e in ordered if e.position > at]


# ------------------------------------------------------------------------------------ lake sources


def _days(lake: Any, table: str, start: datetime | None, until: datetime | None) -> list[date]:
    """The UTC days with data files for *table* in [start, until)."""
    files = lake.partition_files(table, start, until)
    return sorted({date.fromisoformat(f.parent.name.removeprefix("day=")) for f in files})


def _day_frames(lake: Any, table: str, start: datetime | None, until: datetime | None,
                columns: Sequence[str] | None = None) -> Iterator[tuple[datetime, datetime, pl.DataFrame]]:
    """One frame per day (the bounded batch), rows with ``start <= Timestamp < until``."""
    for day in _days(lake, table, start, until):
        lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
        hi = lo + timedelta(days=1)
        frame = lake.scan(table, max(lo, start) if start else lo, min(hi, until) if until else hi, columns).collect()
        if frame.height:
            yield lo, hi, frame


def _json(text: Any) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _email_extras(lake: Any, lo: datetime, hi: datetime, ids: list[str]) -> tuple[dict, dict]:
    """URLs per message and attachments per (message, recipient) around one day."""
    window = (lo - _JOIN_SLACK, hi + _JOIN_SLACK)
    wanted = pl.col("NetworkMessageId").is_in(ids)
    urls: dict[str, list[str]] = {}
    for nmid, url in lake.scan("EmailUrlInfo", *window, ["NetworkMessageId", "Url"]).filter(wanted) \
            .unique(maintain_order=True).collect().iter_rows():
        urls.setdefault(nmid, []).append(url)
    cols = ["NetworkMessageId", "RecipientEmailAddress", "FileName", "FileType", "SHA256", "FileSize",
            "ThreatTypes", "ThreatNames", "DetectionMethods"]
    files: dict[tuple[str, str], list[dict]] = {}
    for row in lake.scan("EmailAttachmentInfo", *window, cols).filter(wanted).collect().iter_rows(named=True):
        key = (row.pop("NetworkMessageId"), (row.pop("RecipientEmailAddress") or "").lower())
        files.setdefault(key, []).append(row)
    return urls, files


def _email(lake: Any, start: datetime | None, until: datetime | None, since: Position | None) -> Iterator[SourceEvent]:
    for lo, hi, frame in _day_frames(lake, "EmailEvents", start, until):
        urls, files = _email_extras(lake, lo, hi, frame["NetworkMessageId"].unique().to_list())
        events = []
        for row in frame.iter_rows(named=True):
            nmid, rcpt = row["NetworkMessageId"], (row["RecipientEmailAddress"] or "").lower()
            data = {**row, "Urls": urls.get(nmid, []), "Attachments": files.get((nmid, rcpt), [])}
            events.append(SourceEvent("email", event_id("email", row["ReportId"]), row["Timestamp"], data))
        yield from _after(events, since)


def _lake_source(source: str, table: str, key: Callable[[dict], str]) -> Callable[..., Iterator[SourceEvent]]:
    def read(lake: Any, start: datetime | None, until: datetime | None, since: Position | None) -> Iterator[SourceEvent]:
        for _lo, _hi, frame in _day_frames(lake, table, start, until):
            yield from _after((SourceEvent(source, event_id(source, key(r)), r["Timestamp"], r)
                               for r in frame.iter_rows(named=True)), since)
    return read


_click = _lake_source("click", "UrlClickEvents", lambda r: f"{r['ReportId']}/{bool(r['IsClickedThrough'])}")
_file = _lake_source("file", "FileMaliciousContentInfo", lambda r: r["ReportId"])


# ------------------------------------------------------------------------------------ store sources


def _batches(store: Store, stmt: sa.Select, time: sa.ColumnElement, start: datetime | None,
             until: datetime | None) -> Iterator[list[sa.Row]]:
    """Rows of *stmt* in time order, :data:`BATCH` at a time; a batch never splits a time tie. No
    connection stays open between batches: the consumer writes checkpoints meanwhile (SQLite
    transactions take the write lock)."""
    cursor, inclusive = start, True
    while True:
        with store.read() as conn:
            q = stmt
            if cursor is not None:
                q = q.where(time >= cursor if inclusive else time > cursor)
            if until is not None:
                q = q.where(time < until)
            rows = conn.execute(q.order_by(time).limit(BATCH)).all()
            if not rows:
                return
            full = len(rows) == BATCH
            last = rows[-1].event_time
            if full:  # the last time may continue past the limit: read all of it
                rows = [r for r in rows if r.event_time != last] + conn.execute(stmt.where(time == last)).all()
        yield rows
        if not full:
            return
        cursor, inclusive = last, False


def _row(row: sa.Row) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k != "event_time"}


def _store_events(source: str, rows: list[sa.Row], key: str, state: Callable[[dict], str],
                  extra: Callable[[dict], dict] | None = None) -> list[SourceEvent]:
    out = []
    for r in rows:
        data = _row(r)
        if extra:
            data.update(extra(data))
        out.append(SourceEvent(source, event_id(source, str(data[key]), state(data)), r.event_time, data))
    return out


def _grouped(conn: sa.Connection, stmt: sa.Select, key: str) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = {}
    for r in conn.execute(stmt).mappings():
        item = dict(r)
        out.setdefault(item.pop(key), []).append(item)
    return out


def _alert(store: Store, start: datetime | None, until: datetime | None, since: Position | None) -> Iterator[SourceEvent]:
    a, e = t.alerts, t.alert_entities
    stmt = sa.select(a, a.c.last_update.label("event_time"))
    for rows in _batches(store, stmt, a.c.last_update, start, until):
        with store.read() as conn:
            ents = _grouped(conn, sa.select(e.c.alert_id, e.c.kind, e.c.value, e.c.role)
                            .where(e.c.alert_id.in_([r.id for r in rows])).order_by(e.c.kind, e.c.value), "alert_id")
        yield from _after(_store_events(
            "alert", rows, "id", lambda d: f"{d['status']}/{d['last_update'].isoformat()}",
            lambda d: {"entities": ents.get(d["id"], []),
                       "mitre_techniques": _json(d["mitre_techniques"]) or []}), since)


def _incident(store: Store, start: datetime | None, until: datetime | None, since: Position | None) -> Iterator[SourceEvent]:
    i, a, g = t.incidents, t.alerts, t.incident_tags
    stmt = sa.select(i, i.c.last_update.label("event_time"))
    for rows in _batches(store, stmt, i.c.last_update, start, until):
        ids = [r.id for r in rows]
        with store.read() as conn:
            alerts = _grouped(conn, sa.select(a.c.incident_id, a.c.id, a.c.title, a.c.severity, a.c.category,
                                              a.c.status, a.c.created, a.c.mitre_techniques)
                              .where(a.c.incident_id.in_(ids)).order_by(a.c.first_activity, a.c.id), "incident_id")
            tags = _grouped(conn, sa.select(g.c.incident_id, g.c.tag).where(g.c.incident_id.in_(ids))
                            .order_by(g.c.tag), "incident_id")
        yield from _after(_store_events(
            "incident", rows, "id", lambda d: f"{d['status']}/{d['last_update'].isoformat()}",
            lambda d: {"alerts": alerts.get(d["id"], []), "tags": [x["tag"] for x in tags.get(d["id"], [])]}), since)


def _investigation_time() -> sa.ColumnElement:
    """When an investigation last changed (``updated``; older rows: ended, started or created)."""
    v = t.investigations.c
    return sa.func.coalesce(v.updated, v.ended, v.started, v.created, type_=t.UTCDateTime())


def _investigation(store: Store, start: datetime | None, until: datetime | None,
                   since: Position | None) -> Iterator[SourceEvent]:
    v, p = t.investigations, t.proposed_actions
    time = _investigation_time()
    stmt = sa.select(v, time.label("event_time"))
    for rows in _batches(store, stmt, time, start, until):
        with store.read() as conn:
            actions = _grouped(conn, sa.select(p).where(p.c.investigation_id.in_([r.id for r in rows]))
                               .order_by(p.c.id), "investigation_id")
            evidence = _grouped(conn, sa.select(t.investigation_evidence).where(
                t.investigation_evidence.c.investigation_id.in_([r.id for r in rows])), "investigation_id")
        yield from _after(_store_events(
            "investigation", rows, "id", lambda d: d["status"],
            lambda d: {"actions": actions.get(d["id"], []), "evidence": evidence.get(d["id"], []),
                       "parameters": _json(d["parameters"]) or {}}), since)


def _simulation(store: Store, start: datetime | None, until: datetime | None,
                since: Position | None) -> Iterator[SourceEvent]:
    e, tg, c = t.sim_events, t.sim_targets, t.sim_campaigns
    stmt = (sa.select(e, tg.c.email, tg.c.attributes.label("target_attributes"),
                      c.c.name.label("campaign_name"), c.c.technique, c.c.payload_id,
                      c.c.status.label("campaign_status"), c.c.automation_id, c.c.launch_at, c.c.end_at,
                      e.c.at.label("event_time"))
            .join(tg, tg.c.id == e.c.target_id, isouter=True).join(c, c.c.id == e.c.campaign_id, isouter=True))
    for rows in _batches(store, stmt, e.c.at, start, until):
        yield from _after(_store_events(
            "simulation", rows, "id", lambda d: "",
            lambda d: {"details": _json(d["details"]) or {}, "target_attributes": _json(d["target_attributes"]) or {}}),
            since)


# ------------------------------------------------------------------------------------ collect

_LAKE = {"email": _email, "click": _click, "file": _file}
_STORE = {"investigation": _investigation, "simulation": _simulation, "alert": _alert, "incident": _incident}


def collect(lake: Any, store: Store | None, *, sources: Sequence[str] = ALL,
            since: Mapping[str, Position] | None = None, until: datetime | None = None) -> Iterator[SourceEvent]:
    """Every chosen source's events strictly after its ``since`` position and before *until*,
    in (time, id) order within each source (sources follow one another in *sources* order).

    Store sources are skipped when *store* is None; lake sources when *lake* is None.
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise InputError(f"unknown event source {unknown[0]!r}; known: {', '.join(SOURCES)}")
    until = _utc(until) if until else None
    for source in sources:
        position = (since or {}).get(source)
        start = _utc(position[0]) if position else None
        if source in _LAKE and lake is not None:
            yield from _LAKE[source](lake, start, until, position)
        elif source in _STORE and store is not None:
            yield from _STORE[source](store, start, until, position)


__all__ = ["ALL", "SOURCES", "SourceEvent", "Position", "collect", "event_id"]
