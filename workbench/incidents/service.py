"""Changing alerts and incidents: every change is one transaction and one activity-log row.

``IncidentService(store, actor)`` is what panels, notebooks, playbooks and the CLI call.
Each method runs in :meth:`Store.run` (retried on transient conflicts) and locks the
incident row it changes, so concurrent writers (papermill runs, analysts) lose nothing.
A failing check raises before anything is written.

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> svc = IncidentService(open_store(url=f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'wb.sqlite'}"), "ana")
>>> inc = svc.create("Phish to finance")
>>> svc.comment(inc.id, "looking").author
'ana'
>>> [a.action for a in svc.activity(inc.id)]
['created', 'comment']
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from workbench.errors import ConflictError, InputError, NotFound
from workbench.incidents import correlate, repo
from workbench.incidents.model import (
    Activity, Alert, AlertDraft, AlertStatus, Classification, Comment, Determination, Entity, EntityKind,
    Evidence, Incident, IncidentStatus, RemediationStatus, Severity, Verdict,
)
from workbench.incidents.repo import IncidentFilter, IncidentPage
from workbench.store import Store, insert_ignore
from workbench.store import tables as t

MAX_COMMENT = 30_000  # characters, as Graph's alertComment
_VERDICT_RANK = {Verdict.UNKNOWN: 0, Verdict.NO_THREATS_FOUND: 1, Verdict.SUSPICIOUS: 2, Verdict.MALICIOUS: 3}
_ALLOWED = {  # status -> statuses an analyst may set (redirected only by merging)
    IncidentStatus.ACTIVE: {IncidentStatus.IN_PROGRESS, IncidentStatus.RESOLVED},
    IncidentStatus.IN_PROGRESS: {IncidentStatus.ACTIVE, IncidentStatus.RESOLVED},
    IncidentStatus.RESOLVED: {IncidentStatus.ACTIVE, IncidentStatus.IN_PROGRESS},
    IncidentStatus.REDIRECTED: set(),
}


def alert_id_for(dedup_key: str) -> str:
    """Stable alert id: the same finding gets the same id on every database."""
    return "wb" + hashlib.sha256(dedup_key.encode()).hexdigest()[:18]


def _human(category: str) -> str:
    """``InitialAccess`` -> ``Initial access``."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", category).split()
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else category


def auto_name(conn: sa.Connection, incident_id: int) -> str | None:
    """The name an incident gets from its alerts: the first alert's title; with alerts of
    several categories "Multi-stage incident involving A & B" (MDO's convention)."""
    rows = conn.execute(sa.select(t.alerts.c.title, t.alerts.c.category).where(t.alerts.c.incident_id == incident_id)
                        .order_by(t.alerts.c.first_activity, t.alerts.c.id)).all()
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0].title[:500]
    categories = list(dict.fromkeys(_human(r.category) for r in rows))
    if len(categories) == 1:
        return f"{rows[0].title} (+{len(rows) - 1} related alert{'s' if len(rows) > 2 else ''})"[:500]
    shown = " & ".join([", ".join(categories[:-1]), categories[-1]]) if len(categories) <= 4 else \
        ", ".join(categories[:3]) + f" & {len(categories) - 3} more"
    return f"Multi-stage incident involving {shown} ({len(rows)} alerts)"[:500]


@dataclass(frozen=True)
class AlertsAdded:
    """What :meth:`IncidentService.add_alerts` did."""

    new: tuple[str, ...]  # ids of alerts that were not there before
    known: int  # drafts already stored (same dedup key)
    incidents_created: tuple[int, ...]
    incidents_extended: tuple[int, ...]


T = TypeVar("T")


def _manages(method: Callable[..., T]) -> Callable[..., T]:
    """Mark a change an analyst makes: the acting user needs incident management (workbench.rbac)."""
    @functools.wraps(method)
    def checked(self: IncidentService, *args: Any, **kwargs: Any) -> T:
        from workbench import rbac

        rbac.require(self.store, self.actor, rbac.Permission.INCIDENT_MANAGEMENT)
        return method(self, *args, **kwargs)

    return checked


class IncidentService:
    """Alerts and incidents for one acting user (``actor`` is written into the activity log)."""

    def __init__(self, store: Store, actor: str, *, clock: Callable[[], datetime] | None = None) -> None:
        if not actor:
            raise InputError("no acting user: pass the analyst's name (WORKBENCH_USER)")
        self.store, self.actor = store, actor
        self._clock = clock or (lambda: datetime.now(UTC))

    def may_manage(self) -> bool:
        """Whether the acting user may change incidents (for panels; the changes check it themselves)."""
        from workbench import rbac

        return rbac.has(self.store, self.actor, rbac.Permission.INCIDENT_MANAGEMENT)

    # ------------------------------------------------------------------ reads

    def get(self, incident_id: int) -> Incident:
        with self.store.read() as conn:
            return repo.get_incident(conn, incident_id)

    def list(self, f: IncidentFilter | None = None) -> list[Incident]:
        with self.store.read() as conn:
            return repo.list_incidents(conn, f or IncidentFilter())

    def page(self, incident_id: int) -> IncidentPage:
        with self.store.read() as conn:
            return repo.page(conn, incident_id)

    def alert(self, alert_id: str) -> Alert:
        with self.store.read() as conn:
            return repo.get_alert(conn, alert_id)

    def alerts(self, *, incident_id: int | None = None, status: Sequence[str] = (), severity: Sequence[str] = (),
               policy: Sequence[str] = (), since: datetime | None = None, limit: int | None = None) -> list[Alert]:
        conds = []
        if incident_id is not None:
            conds.append(t.alerts.c.incident_id == incident_id)
        if status:
            conds.append(t.alerts.c.status.in_([AlertStatus(s).value for s in status]))
        if severity:
            conds.append(t.alerts.c.severity.in_([Severity(s).value for s in severity]))
        if policy:
            conds.append(t.alerts.c.policy_id.in_(list(policy)))
        if since is not None:
            conds.append(t.alerts.c.created >= since)
        with self.store.read() as conn:
            return repo.alerts_where(conn, *conds, limit=limit)

    def evidence(self, incident_id: int) -> list[Evidence]:
        with self.store.read() as conn:
            repo.incident_row(conn, incident_id)
            return repo.evidence_of(conn, incident_id)

    def comments(self, incident_id: int) -> list[Comment]:
        with self.store.read() as conn:
            repo.incident_row(conn, incident_id)
            return repo.comments_of(conn, incident_id)

    def activity(self, incident_id: int) -> list[Activity]:
        with self.store.read() as conn:
            repo.incident_row(conn, incident_id)
            return repo.activity_of(conn, incident_id)

    # ------------------------------------------------------------------ helpers (inside a transaction)

    def _log(self, conn: sa.Connection, incident_id: int, action: str, old: object = "", new: object = "",
             at: datetime | None = None) -> None:
        at = at or self._clock()
        conn.execute(t.activity.insert().values(incident_id=incident_id, at=at, actor=self.actor, action=action,
                                                old=str(old or ""), new=str(new or "")))
        conn.execute(t.incidents.update().where(t.incidents.c.id == incident_id).values(last_update=at))

    def _open_row(self, conn: sa.Connection, incident_id: int) -> sa.Row:
        row = repo.incident_row(conn, incident_id, lock=True)
        if row.status == IncidentStatus.REDIRECTED:
            raise ConflictError(f"incident {incident_id} was merged into incident {row.redirect_id}; work on that one")
        return row

    def _refresh(self, conn: sa.Connection, incident_id: int) -> None:
        """Recompute what follows from the incident's alerts: severity (unless an analyst set
        it), first and last activity."""
        row = repo.incident_row(conn, incident_id)
        al = t.alerts
        stats = conn.execute(sa.select(sa.func.min(al.c.first_activity), sa.func.max(al.c.last_activity))
                             .where(al.c.incident_id == incident_id)).one()
        values: dict = {"first_activity": stats[0] or row.first_activity, "last_activity": stats[1] or row.last_activity}
        if not row.name_set_by_analyst:
            name = auto_name(conn, incident_id)
            if name and name != row.name:
                values["name"] = name
        if not row.severity_set_by_analyst:
            severities = conn.execute(sa.select(al.c.severity).where(al.c.incident_id == incident_id)
                                      .distinct()).scalars().all()
            severity = max((Severity(s) for s in severities), default=Severity.INFORMATIONAL)
            if severity.value != row.severity:
                values["severity"] = severity.value
                self._log(conn, incident_id, "severity", row.severity, severity.value)
        conn.execute(t.incidents.update().where(t.incidents.c.id == incident_id).values(**values))

    def _new_incident(self, conn: sa.Connection, name: str, *, severity: Severity | None = None,
                      description: str = "", first: datetime | None = None, named: bool = False) -> int:
        now = self._clock()
        incident_id = conn.execute(t.incidents.insert().values(
            name=name[:500], description=description, status=IncidentStatus.ACTIVE.value,
            severity=(severity or Severity.INFORMATIONAL).value, severity_set_by_analyst=severity is not None,
            name_set_by_analyst=named,
            assigned_to="", classification=Classification.UNKNOWN.value,
            determination=Determination.UNKNOWN.value, resolution_note="", created=now, last_update=now,
            first_activity=first or now, last_activity=first or now,
        ).returning(t.incidents.c.id)).scalar_one()
        self._log(conn, incident_id, "created", "", name, at=now)
        return incident_id

    def _add_evidence(self, conn: sa.Connection, incident_id: int, entities: Iterable[Entity],
                      verdicts: dict[str, Verdict], source: str) -> int:
        """Add entities as evidence (an existing one keeps the stronger verdict); returns how many were new."""
        now, added = self._clock(), 0
        wanted = {(e.kind.value, e.value): e for e in entities}
        if not wanted:
            return 0
        existing = {(r.kind, r.value): r for r in conn.execute(
            sa.select(t.evidence).where(t.evidence.c.incident_id == incident_id,
                                        t.evidence.c.value.in_([v for _, v in wanted])))}
        rows = []
        for (kind, value), e in wanted.items():
            verdict = verdicts.get(e.key, Verdict.UNKNOWN)
            if (kind, value) in existing:
                old = existing[(kind, value)]
                if _VERDICT_RANK[verdict] > _VERDICT_RANK[Verdict(old.verdict)]:
                    conn.execute(t.evidence.update().where(t.evidence.c.id == old.id).values(verdict=verdict.value))
                continue
            rows.append(dict(incident_id=incident_id, kind=kind, value=value[:1000], display="",
                             verdict=verdict.value, remediation=RemediationStatus.NONE.value, source=source,
                             added=now, added_by=self.actor))
        added = insert_ignore(conn, t.evidence, rows, "incident_id", "kind", "value")
        return added

    # ------------------------------------------------------------------ alerts

    def add_alerts(self, drafts: Iterable[AlertDraft], *, correlate_into_incidents: bool = True) -> AlertsAdded:
        """Store new alerts (a draft whose dedup key is known is skipped) and correlate each
        into an open incident that shares its entities, or a new one."""
        new, known, created, extended = [], 0, [], []
        for draft in sorted(drafts, key=lambda d: (d.first_activity, d.dedup_key)):
            outcome = self.store.run(lambda conn, d=draft: self._add_alert(conn, d, correlate_into_incidents))
            if outcome is None:
                known += 1
                continue
            alert_id, incident_id, was_new = outcome
            new.append(alert_id)
            if incident_id is not None:
                (created if was_new else extended).append(incident_id)
        return AlertsAdded(tuple(new), known, tuple(dict.fromkeys(created)),
                           tuple(i for i in dict.fromkeys(extended) if i not in created))

    def _add_alert(self, conn: sa.Connection, d: AlertDraft, correlate_it: bool) -> tuple[str, int | None, bool] | None:
        alert_id, now = alert_id_for(d.dedup_key), self._clock()
        expected = bool(d.expected_activity)  # e.g. a reported simulation: kept for the record, opens no incident
        inserted = insert_ignore(conn, t.alerts, [dict(
            id=alert_id, dedup_key=d.dedup_key[:400], policy_id=d.policy_id, title=d.title[:1000],
            description=d.description + (f"\n\nResolved on arrival: {d.expected_activity}." if expected else ""),
            severity=Severity(d.severity).value, category=d.category,
            status=(AlertStatus.RESOLVED if expected else AlertStatus.NEW).value,
            classification=(Classification.INFORMATIONAL_EXPECTED_ACTIVITY if expected else Classification.UNKNOWN).value,
            determination=(Determination.SECURITY_TESTING if expected else Determination.UNKNOWN).value,
            assigned_to="", detection_source=d.detection_source,
            threat_family=d.threat_family, mitre_techniques=json.dumps(list(d.mitre_techniques)),
            explorer_query=json.dumps(d.explorer_query) if d.explorer_query else None,
            message_count=d.message_count, created=now, first_activity=d.first_activity,
            last_activity=d.last_activity, last_update=now, resolved_at=now if expected else None,
            incident_id=None)], "dedup_key")
        if not inserted:
            return None
        if expected:
            correlate_it = False
        insert_ignore(conn, t.alert_entities, [
            dict(alert_id=alert_id, kind=e.kind.value, value=e.value[:1000], role=e.role[:40])
            for e in dict.fromkeys(d.entities)], "alert_id", "kind", "value", "role")
        if not correlate_it:
            return alert_id, None, False
        related = correlate.find_incidents(conn, d.entities, d.first_activity, exclude_alert=alert_id)
        was_new = not related
        if was_new:
            incident_id = self._new_incident(conn, d.title, first=d.first_activity)
        else:
            incident_id = related[0]
            for i in sorted(related):  # lock in id order
                self._open_row(conn, i)
        self._link(conn, incident_id, alert_id, d.evidence or d.entities, dict(d.verdicts))
        if len(related) > 1:  # this alert joins incidents that were one attack seen in pieces
            self._merge(conn, related[1:], incident_id, reason=f"alert {alert_id} links them")
        return alert_id, incident_id, was_new

    def _link(self, conn: sa.Connection, incident_id: int, alert_id: str, evidence: Iterable[Entity],
              verdicts: dict[str, Verdict]) -> None:
        conn.execute(t.alerts.update().where(t.alerts.c.id == alert_id).values(incident_id=incident_id,
                                                                               last_update=self._clock()))
        self._add_evidence(conn, incident_id, evidence, verdicts, alert_id)
        self._log(conn, incident_id, "alert_linked", "", alert_id)
        self._refresh(conn, incident_id)

    @_manages
    def link_alert(self, incident_id: int, alert_id: str) -> Incident:
        """Move an alert (and its evidence) into this incident."""
        def do(conn: sa.Connection) -> None:
            self._open_row(conn, incident_id)
            alert = repo.get_alert(conn, alert_id)
            if alert.incident_id == incident_id:
                raise ConflictError(f"alert {alert_id} is already in incident {incident_id}")
            if alert.incident_id is not None:
                self._open_row(conn, alert.incident_id)
                self._log(conn, alert.incident_id, "alert_unlinked", alert_id, f"moved to incident {incident_id}")
                self._refresh(conn, alert.incident_id)
            self._link(conn, incident_id, alert_id, alert.entities, {})
        self.store.run(do)
        return self.get(incident_id)

    @_manages
    def unlink_alert(self, alert_id: str) -> Incident:
        """Take an alert out of its incident into a new incident of its own; returns the new one."""
        def do(conn: sa.Connection) -> int:
            alert = repo.get_alert(conn, alert_id)
            if alert.incident_id is None:
                raise ConflictError(f"alert {alert_id} is in no incident; link it with `link_alert`")
            old = alert.incident_id
            self._open_row(conn, old)
            if conn.execute(sa.select(sa.func.count()).select_from(t.alerts)
                            .where(t.alerts.c.incident_id == old)).scalar_one() == 1:
                raise ConflictError(f"alert {alert_id} is the only alert of incident {old}; nothing to unlink")
            new_id = self._new_incident(conn, alert.title, first=alert.first_activity)
            self._log(conn, old, "alert_unlinked", alert_id, f"moved to incident {new_id}")
            self._link(conn, new_id, alert_id, alert.entities, {})
            self._refresh(conn, old)
            return new_id
        return self.get(self.store.run(do))

    # ------------------------------------------------------------------ incidents

    @_manages
    def create(self, name: str, *, alerts: Sequence[str] = (), emails: Sequence[tuple[str, str]] = (),
               severity: Severity | str | None = None, description: str = "", source: str = "explorer") -> Incident:
        """A new incident, e.g. from the Explorer selection (``emails`` as (NetworkMessageId, recipient))."""
        if not name.strip():
            raise InputError("an incident needs a name")
        sev = Severity(severity) if severity else None

        def do(conn: sa.Connection) -> int:
            for alert_id in alerts:
                repo.get_alert(conn, alert_id)  # unknown ids fail before anything is written
            incident_id = self._new_incident(conn, name.strip(), severity=sev, description=description, named=True)
            for alert_id in alerts:
                alert = repo.get_alert(conn, alert_id)
                if alert.incident_id is not None:
                    self._open_row(conn, alert.incident_id)
                    self._log(conn, alert.incident_id, "alert_unlinked", alert_id, f"moved to incident {incident_id}")
                    self._refresh(conn, alert.incident_id)
                self._link(conn, incident_id, alert_id, alert.entities, {})
            if emails:
                self._add_emails(conn, incident_id, emails, source)
            return incident_id
        return self.get(self.store.run(do))

    def _add_emails(self, conn: sa.Connection, incident_id: int, emails: Sequence[tuple[str, str]],
                    source: str) -> int:
        entities = [Entity.of(EntityKind.EMAIL, f"{nmid}|{rcpt.strip().lower()}") for nmid, rcpt in emails]
        added = self._add_evidence(conn, incident_id, entities, {}, source)
        if added:
            self._log(conn, incident_id, "emails_added", "", f"{added} email(s) from {source}")
        return added

    @_manages
    def add_emails(self, incident_id: int, emails: Sequence[tuple[str, str]], *, source: str = "explorer") -> int:
        """Add message copies as evidence; returns how many were new."""
        if not emails:
            raise InputError("no emails selected: select messages in the Explorer first")
        def do(conn: sa.Connection) -> int:
            self._open_row(conn, incident_id)
            return self._add_emails(conn, incident_id, emails, source)
        return self.store.run(do)

    @_manages
    def add_evidence(self, incident_id: int, entities: Sequence[Entity], *, verdicts: dict[str, Verdict] | None = None,
                     source: str | None = None) -> int:
        def do(conn: sa.Connection) -> int:
            self._open_row(conn, incident_id)
            added = self._add_evidence(conn, incident_id, entities, verdicts or {}, source or self.actor)
            if added:
                self._log(conn, incident_id, "evidence_added", "", f"{added} item(s)")
            return added
        return self.store.run(do)

    @_manages
    def remove_emails(self, incident_id: int, emails: Sequence[tuple[str, str]]) -> int:
        values = [f"{nmid}|{rcpt.strip().lower()}" for nmid, rcpt in emails]
        def do(conn: sa.Connection) -> int:
            self._open_row(conn, incident_id)
            gone = conn.execute(t.evidence.delete().where(
                t.evidence.c.incident_id == incident_id, t.evidence.c.kind == EntityKind.EMAIL.value,
                t.evidence.c.value.in_(values))).rowcount
            if not gone:
                raise NotFound(f"none of those emails is evidence of incident {incident_id}")
            self._log(conn, incident_id, "emails_removed", f"{gone} email(s)", "")
            return gone
        return self.store.run(do)

    @staticmethod
    def _checked_status(incident_id: int, status: IncidentStatus | str, note: str) -> IncidentStatus:
        try:
            status = IncidentStatus(status)
        except ValueError:
            raise InputError(f"unknown status {status!r}; use one of active, inProgress, resolved") from None
        if status == IncidentStatus.RESOLVED and not note.strip():
            raise InputError(f"resolving incident {incident_id} needs a note saying why (--note)")
        return status

    @staticmethod
    def _check_transition(incident_id: int, old: IncidentStatus, status: IncidentStatus) -> None:
        if status != old and status not in _ALLOWED[old]:
            raise ConflictError(f"incident {incident_id} cannot go from {old.value} to {status.value}; "
                                "merge incidents to redirect one")

    def check_status(self, incident_id: int, status: IncidentStatus | str, *, note: str = "") -> None:
        """Raise what :meth:`set_status` would raise, without changing anything."""
        status = self._checked_status(incident_id, status, note)
        self._check_transition(incident_id, self.get(incident_id).status, status)

    @_manages
    def set_status(self, incident_id: int, status: IncidentStatus | str, *, note: str = "") -> Incident:
        """Change the status; resolving needs a note and resolves the incident's alerts."""
        status = self._checked_status(incident_id, status, note)

        def do(conn: sa.Connection) -> None:
            row = self._open_row(conn, incident_id)
            old = IncidentStatus(row.status)
            if status == old:
                return
            self._check_transition(incident_id, old, status)
            now = self._clock()
            values: dict = {"status": status.value}
            if status == IncidentStatus.RESOLVED:
                values.update(resolved_at=now, resolution_note=note.strip())
                conn.execute(t.alerts.update().where(t.alerts.c.incident_id == incident_id,
                                                     t.alerts.c.status != AlertStatus.RESOLVED.value)
                             .values(status=AlertStatus.RESOLVED.value, resolved_at=now, last_update=now))
            elif old == IncidentStatus.RESOLVED:
                values.update(resolved_at=None)
            conn.execute(t.incidents.update().where(t.incidents.c.id == incident_id).values(**values))
            self._log(conn, incident_id, "status", old.value, status.value)
            if status == IncidentStatus.RESOLVED:
                self._log(conn, incident_id, "resolution_note", "", note.strip())
        self.store.run(do)
        return self.get(incident_id)

    @_manages
    def resolve(self, incident_id: int, note: str, *, classification: Classification | str | None = None,
                determination: Determination | str | None = None) -> Incident:
        if classification or determination:
            self.classify(incident_id, classification or Classification.UNKNOWN, determination or Determination.UNKNOWN)
        return self.set_status(incident_id, IncidentStatus.RESOLVED, note=note)

    def _set_field(self, incident_id: int, column: str, value: str, action: str | None = None,
                   extra: dict | None = None, also: Callable[[sa.Connection], None] | None = None) -> Incident:
        def do(conn: sa.Connection) -> None:
            row = self._open_row(conn, incident_id)
            old = getattr(row, column)
            if old == value and not extra:
                return
            conn.execute(t.incidents.update().where(t.incidents.c.id == incident_id)
                         .values(**{column: value}, **(extra or {})))
            if also:
                also(conn)
            self._log(conn, incident_id, action or column, old, value)
        self.store.run(do)
        return self.get(incident_id)

    @_manages
    def assign(self, incident_id: int, user: str) -> Incident:
        """Assign the incident (and its alerts) to a user; an empty name unassigns."""
        user = user.strip()
        def alerts_too(conn: sa.Connection) -> None:
            conn.execute(t.alerts.update().where(t.alerts.c.incident_id == incident_id)
                         .values(assigned_to=user, last_update=self._clock()))
        return self._set_field(incident_id, "assigned_to", user, also=alerts_too)

    @_manages
    def set_severity(self, incident_id: int, severity: Severity | str) -> Incident:
        try:
            sev = Severity(severity)
        except ValueError:
            raise InputError(f"unknown severity {severity!r}; use one of {', '.join(s.value for s in Severity)}") from None
        return self._set_field(incident_id, "severity", sev.value, extra={"severity_set_by_analyst": True})

    @_manages
    def classify(self, incident_id: int, classification: Classification | str,
                 determination: Determination | str = Determination.UNKNOWN) -> Incident:
        c = repo.parse_enum(Classification, classification, "classification")
        d = repo.parse_enum(Determination, determination, "determination")
        self._set_field(incident_id, "classification", c.value)
        return self._set_field(incident_id, "determination", d.value)

    @_manages
    def rename(self, incident_id: int, name: str) -> Incident:
        """Name the incident (it then keeps this name as alerts join)."""
        if not name.strip():
            raise InputError("an incident needs a name")
        return self._set_field(incident_id, "name", name.strip()[:500], extra={"name_set_by_analyst": True})

    @_manages
    def tag(self, incident_id: int, *tags: str, system: bool = False) -> Incident:
        clean = [tg.strip()[:100] for tg in tags if tg.strip()]
        if not clean:
            raise InputError("no tag given")
        def do(conn: sa.Connection) -> None:
            self._open_row(conn, incident_id)
            n = insert_ignore(conn, t.incident_tags, [dict(incident_id=incident_id, tag=tg, system=system)
                                                       for tg in clean], "incident_id", "tag")
            if n:
                self._log(conn, incident_id, "tags_added", "", ", ".join(clean))
        self.store.run(do)
        return self.get(incident_id)

    @_manages
    def untag(self, incident_id: int, tag: str) -> Incident:
        def do(conn: sa.Connection) -> None:
            self._open_row(conn, incident_id)
            if not conn.execute(t.incident_tags.delete().where(t.incident_tags.c.incident_id == incident_id,
                                                               t.incident_tags.c.tag == tag)).rowcount:
                raise NotFound(f"incident {incident_id} has no tag {tag!r}")
            self._log(conn, incident_id, "tag_removed", tag, "")
        self.store.run(do)
        return self.get(incident_id)

    @_manages
    def comment(self, incident_id: int, text: str) -> Comment:
        if not text.strip():
            raise InputError("an empty comment: write something")
        if len(text) > MAX_COMMENT:
            raise InputError(f"a comment is at most {MAX_COMMENT:,} characters; this one has {len(text):,}")

        def do(conn: sa.Connection) -> int:
            self._open_row(conn, incident_id)
            now = self._clock()
            cid = conn.execute(t.comments.insert().values(incident_id=incident_id, author=self.actor, text=text,
                                                          created=now).returning(t.comments.c.id)).scalar_one()
            self._log(conn, incident_id, "comment", "", text[:200], at=now)
            return cid
        cid = self.store.run(do)
        return Comment(cid, incident_id, self.actor, text, self._clock())

    @_manages
    def merge(self, incident_ids: Sequence[int], into: int) -> Incident:
        """Merge incidents into ``into``: their alerts, evidence, tags and comments move there;
        each merged one is left ``redirected`` to it."""
        others = [i for i in dict.fromkeys(incident_ids) if i != into]
        if not others:
            raise InputError("name at least one other incident to merge into this one")

        def do(conn: sa.Connection) -> None:
            for i in sorted([into, *others]):  # lock in id order: no deadlock between two merges
                self._open_row(conn, i)
            self._merge(conn, others, into)
        self.store.run(do)
        return self.get(into)

    def _merge(self, conn: sa.Connection, others: Sequence[int], into: int, reason: str = "") -> None:
        """Move alerts, evidence, tags and comments of ``others`` into ``into`` (rows locked by the caller)."""
        for other in others:
            moved = conn.execute(t.alerts.update().where(t.alerts.c.incident_id == other)
                                 .values(incident_id=into)).rowcount
            insert_ignore(conn, t.evidence, [dict(
                incident_id=into, kind=ev.entity.kind.value, value=ev.entity.value, display=ev.display,
                verdict=ev.verdict.value, remediation=ev.remediation.value, source=ev.source,
                added=ev.added, added_by=ev.added_by) for ev in repo.evidence_of(conn, other)],
                "incident_id", "kind", "value")
            tags = conn.execute(sa.select(t.incident_tags.c.tag, t.incident_tags.c.system)
                                .where(t.incident_tags.c.incident_id == other)).all()
            insert_ignore(conn, t.incident_tags, [dict(incident_id=into, tag=tg, system=s) for tg, s in tags],
                           "incident_id", "tag")
            conn.execute(t.comments.update().where(t.comments.c.incident_id == other).values(incident_id=into))
            conn.execute(t.incidents.update().where(t.incidents.c.id == other).values(
                status=IncidentStatus.REDIRECTED.value, redirect_id=into))
            self._log(conn, other, "merged", "", f"into incident {into}" + (f" ({reason})" if reason else ""))
            self._log(conn, into, "merged", f"incident {other}", f"{moved} alert(s)" + (f" ({reason})" if reason else ""))
        self._refresh(conn, into)


__all__ = ["IncidentService", "AlertsAdded", "IncidentFilter", "alert_id_for"]
