"""Reading alerts and incidents from the store: rows → model values, filters → SQL.

Writes live in ``service.py``; both share the row mappers here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from workbench.errors import InputError, NotFound
from workbench.incidents.model import (
    Activity, Alert, AlertStatus, Classification, Comment, Determination, Entity, EntityKind, Evidence,
    Incident, IncidentStatus, RemediationStatus, Severity, Verdict,
)
from workbench.store import tables as t

SORTS = {"last_update": t.incidents.c.last_update, "created": t.incidents.c.created,
         "severity": t.incidents.c.severity, "id": t.incidents.c.id, "name": t.incidents.c.name}
UNASSIGNED = "(unassigned)"


@dataclass(frozen=True)
class IncidentFilter:
    """What the incident queue shows. Empty tuples mean "any"; the default is the MDO
    queue's default (not resolved or merged)."""

    status: tuple[IncidentStatus, ...] = (IncidentStatus.ACTIVE, IncidentStatus.IN_PROGRESS)
    severity: tuple[Severity, ...] = ()
    assigned_to: tuple[str, ...] = ()  # user names; UNASSIGNED for none
    detection_source: tuple[str, ...] = ()
    policy: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    classification: tuple[Classification, ...] = ()
    search: str = ""  # incident name or id, or an entity value (user, URL, IP, device, message id...)
    since: datetime | None = None  # last update at or after
    sort: str = "last_update"
    descending: bool = True
    limit: int = 500

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise InputError(f"cannot sort incidents by {self.sort!r}; use one of {', '.join(SORTS)}")
        for name, enum in (("status", IncidentStatus), ("severity", Severity), ("classification", Classification)):
            object.__setattr__(self, name, tuple(parse_enum(enum, v, name) for v in getattr(self, name)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("status", "severity", "assigned_to", "detection_source", "policy", "category", "tags",
                    "classification"):
            out[key] = [str(v) for v in getattr(self, key)]
        out.update(search=self.search, sort=self.sort, descending=self.descending)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IncidentFilter:
        tuples = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        rest = {k: v for k, v in data.items() if k in ("search", "sort", "descending")}
        return cls(**tuples, **rest)


def parse_enum(enum: type, value: Any, what: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise InputError(f"unknown {what} {value!r}; use one of {', '.join(e.value for e in enum)}") from None


def incident_from_row(row: Any, tags: Sequence[tuple[str, bool]] = (), alert_count: int = 0) -> Incident:
    return Incident(
        id=row.id, name=row.name, status=IncidentStatus(row.status), severity=Severity(row.severity),
        created=row.created, last_update=row.last_update, description=row.description,
        assigned_to=row.assigned_to, classification=Classification(row.classification),
        determination=Determination(row.determination), severity_set_by_analyst=row.severity_set_by_analyst,
        name_set_by_analyst=row.name_set_by_analyst,
        redirect_id=row.redirect_id, resolution_note=row.resolution_note, resolved_at=row.resolved_at,
        tags=tuple(sorted(tag for tag, system in tags if not system)),
        system_tags=tuple(sorted(tag for tag, system in tags if system)),
        alert_count=alert_count, first_activity=row.first_activity, last_activity=row.last_activity,
    )


def alert_from_row(row: Any, entities: Iterable[Entity] = ()) -> Alert:
    return Alert(
        id=row.id, policy_id=row.policy_id, title=row.title, severity=Severity(row.severity),
        category=row.category, status=AlertStatus(row.status), created=row.created,
        first_activity=row.first_activity, last_activity=row.last_activity, incident_id=row.incident_id,
        description=row.description, classification=Classification(row.classification),
        determination=Determination(row.determination), assigned_to=row.assigned_to, entities=tuple(entities),
        explorer_query=json.loads(row.explorer_query) if row.explorer_query else None,
        mitre_techniques=tuple(json.loads(row.mitre_techniques or "[]")), threat_family=row.threat_family,
        detection_source=row.detection_source, message_count=row.message_count, resolved_at=row.resolved_at,
    )


def incident_row(conn: sa.Connection, incident_id: int, *, lock: bool = False) -> Any:
    query = sa.select(t.incidents).where(t.incidents.c.id == incident_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"no incident {incident_id}; list them with `workbench incidents list`")
    return row


def get_incident(conn: sa.Connection, incident_id: int) -> Incident:
    row = incident_row(conn, incident_id)
    tags = conn.execute(sa.select(t.incident_tags.c.tag, t.incident_tags.c.system)
                        .where(t.incident_tags.c.incident_id == incident_id)).all()
    count = conn.execute(sa.select(sa.func.count()).select_from(t.alerts)
                         .where(t.alerts.c.incident_id == incident_id)).scalar_one()
    return incident_from_row(row, [(r.tag, r.system) for r in tags], count)


def list_incidents(conn: sa.Connection, f: IncidentFilter) -> list[Incident]:
    inc, al = t.incidents, t.alerts
    query = sa.select(inc)
    if f.status:
        query = query.where(inc.c.status.in_([s.value for s in f.status]))
    if f.severity:
        query = query.where(inc.c.severity.in_([s.value for s in f.severity]))
    if f.classification:
        query = query.where(inc.c.classification.in_([c.value for c in f.classification]))
    if f.assigned_to:
        people = [a for a in f.assigned_to if a != UNASSIGNED]
        cond = inc.c.assigned_to.in_(people)
        query = query.where(sa.or_(cond, inc.c.assigned_to == "") if UNASSIGNED in f.assigned_to else cond)
    if f.since is not None:
        query = query.where(inc.c.last_update >= f.since)
    for column, wanted in ((al.c.detection_source, f.detection_source), (al.c.policy_id, f.policy),
                           (al.c.category, f.category)):
        if wanted:
            query = query.where(inc.c.id.in_(sa.select(al.c.incident_id).where(column.in_(wanted))))
    for tag in f.tags:
        query = query.where(inc.c.id.in_(sa.select(t.incident_tags.c.incident_id)
                                         .where(t.incident_tags.c.tag == tag)))
    if f.search.strip():
        text = f.search.strip()
        like = f"%{_escape_like(text.lower())}%"
        ids = sa.select(al.c.incident_id).join(t.alert_entities, t.alert_entities.c.alert_id == al.c.id).where(
            sa.func.lower(t.alert_entities.c.value).like(like, escape="\\"))
        ev = sa.select(t.evidence.c.incident_id).where(sa.func.lower(t.evidence.c.value).like(like, escape="\\"))
        if text.lstrip("#").isdigit():  # an incident number
            query = query.where(inc.c.id == int(text.lstrip("#")))
        else:
            query = query.where(sa.or_(sa.func.lower(inc.c.name).like(like, escape="\\"), inc.c.id.in_(ids),
                                       inc.c.id.in_(ev)))
    order = SORTS[f.sort]
    if f.sort == "severity":
        order = sa.case({s.value: s.rank for s in Severity}, value=inc.c.severity)
    query = query.order_by(order.desc() if f.descending else order.asc(), inc.c.id.desc()).limit(f.limit)
    rows = conn.execute(query).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    tags: dict[int, list[tuple[str, bool]]] = {}
    for r in conn.execute(sa.select(t.incident_tags).where(t.incident_tags.c.incident_id.in_(ids))):
        tags.setdefault(r.incident_id, []).append((r.tag, r.system))
    counts = dict(conn.execute(sa.select(al.c.incident_id, sa.func.count()).where(al.c.incident_id.in_(ids))
                               .group_by(al.c.incident_id)).all())
    return [incident_from_row(r, tags.get(r.id, []), counts.get(r.id, 0)) for r in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def entities_of(conn: sa.Connection, alert_ids: Sequence[str]) -> dict[str, list[Entity]]:
    out: dict[str, list[Entity]] = {a: [] for a in alert_ids}
    if not alert_ids:
        return out
    for r in conn.execute(sa.select(t.alert_entities).where(t.alert_entities.c.alert_id.in_(list(alert_ids)))
                          .order_by(t.alert_entities.c.kind, t.alert_entities.c.value)):
        out[r.alert_id].append(Entity(EntityKind(r.kind), r.value, r.role))
    return out


def alerts_where(conn: sa.Connection, *conds: Any, limit: int | None = None) -> list[Alert]:
    query = sa.select(t.alerts).where(*conds).order_by(t.alerts.c.first_activity, t.alerts.c.id)
    rows = conn.execute(query.limit(limit) if limit else query).all()
    ents = entities_of(conn, [r.id for r in rows])
    return [alert_from_row(r, ents[r.id]) for r in rows]


def get_alert(conn: sa.Connection, alert_id: str) -> Alert:
    found = alerts_where(conn, t.alerts.c.id == alert_id)
    if not found:
        raise NotFound(f"no alert {alert_id!r}; list them with `workbench alerts list`")
    return found[0]


def evidence_of(conn: sa.Connection, incident_id: int) -> list[Evidence]:
    rows = conn.execute(sa.select(t.evidence).where(t.evidence.c.incident_id == incident_id)
                        .order_by(t.evidence.c.kind, t.evidence.c.id)).all()
    return [Evidence(r.id, r.incident_id, Entity(EntityKind(r.kind), r.value), Verdict(r.verdict),
                     RemediationStatus(r.remediation), r.source, r.added, r.added_by, r.display) for r in rows]


def comments_of(conn: sa.Connection, incident_id: int) -> list[Comment]:
    rows = conn.execute(sa.select(t.comments).where(t.comments.c.incident_id == incident_id)
                        .order_by(t.comments.c.created, t.comments.c.id)).all()
    return [Comment(r.id, r.incident_id, r.author, r.text, r.created) for r in rows]


def activity_of(conn: sa.Connection, incident_id: int) -> list[Activity]:
    rows = conn.execute(sa.select(t.activity).where(t.activity.c.incident_id == incident_id)
                        .order_by(t.activity.c.at, t.activity.c.id)).all()
    return [Activity(r.id, r.incident_id, r.at, r.actor, r.action, r.old, r.new) for r in rows]


@dataclass(frozen=True)
class IncidentPage:
    """Everything the incident page and the report show, read in one transaction."""

    incident: Incident
    alerts: tuple[Alert, ...]
    evidence: tuple[Evidence, ...]
    comments: tuple[Comment, ...]
    activity: tuple[Activity, ...]
    merged_from: tuple[int, ...] = field(default=())


def page(conn: sa.Connection, incident_id: int) -> IncidentPage:
    incident = get_incident(conn, incident_id)
    merged = conn.execute(sa.select(t.incidents.c.id).where(t.incidents.c.redirect_id == incident_id)
                          .order_by(t.incidents.c.id)).scalars().all()
    return IncidentPage(incident, tuple(alerts_where(conn, t.alerts.c.incident_id == incident_id)),
                        tuple(evidence_of(conn, incident_id)), tuple(comments_of(conn, incident_id)),
                        tuple(activity_of(conn, incident_id)), tuple(merged))
