"""An investigation's structured record in the store: the run (playbook, version, parameters,
who started it, status, times, the executed notebook), its evidence with verdicts, its mail
clusters with their queries, its proposed actions and its analyzer log with durations.

Playbooks write here through these functions, never by printing: a notebook's output is for
people, the record is for everything else (incident pages, the action center, reports).

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> store = open_store(url=f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'wb.sqlite'}")
>>> run = start(store, "manual_email", "Investigate 2 emails", started_by="ana", parameters={"dry_run": True})
>>> finish(store, run, InvestigationStatus.NO_THREATS_FOUND)
>>> load(store, run).investigation.status
<InvestigationStatus.NO_THREATS_FOUND: 'noThreatsFound'>
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from workbench.air.model import ActionType, ClusterCounts, ClusterKind, InvestigationStatus, MailCluster
from workbench.errors import ConflictError, NotFound
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Verdict
from workbench.store import Store, insert_ignore
from workbench.store import tables as t


@dataclass(frozen=True)
class Investigation:
    id: int
    name: str
    playbook: str
    status: InvestigationStatus
    started_by: str
    parameters: dict[str, Any]
    created: datetime
    alert_id: str | None = None
    incident_id: int | None = None
    playbook_version: str = ""
    started: datetime | None = None
    ended: datetime | None = None
    retry_of: int | None = None
    error: str = ""
    notebook: str = ""


@dataclass(frozen=True)
class EvidenceItem:
    entity: Entity
    verdict: Verdict
    remediation: RemediationStatus
    analyzer: str
    details: str = ""


@dataclass(frozen=True)
class ProposedAction:
    id: int
    action: ActionType
    target_kind: EntityKind
    target: str
    messages: tuple[tuple[str, str], ...]
    reason: str
    status: str


@dataclass(frozen=True)
class AnalyzerRun:
    seq: int
    analyzer: str
    status: str  # ok, failed, skipped
    started: datetime
    seconds: float
    summary: str = ""
    error: str = ""


@dataclass(frozen=True)
class Record:
    investigation: Investigation
    evidence: tuple[EvidenceItem, ...]
    clusters: tuple[MailCluster, ...]
    actions: tuple[ProposedAction, ...]
    log: tuple[AnalyzerRun, ...]


def _now() -> datetime:
    return datetime.now(UTC)


def start(store: Store, playbook: str, name: str, *, started_by: str, parameters: dict[str, Any],
          alert_id: str | None = None, incident_id: int | None = None, retry_of: int | None = None,
          playbook_version: str = "") -> int:
    """Record a new run (status running); returns its id."""
    def do(conn: sa.Connection) -> int:
        now = _now()
        return conn.execute(t.investigations.insert().values(
            name=name[:1000], playbook=playbook, playbook_version=playbook_version,
            status=InvestigationStatus.RUNNING.value, alert_id=alert_id, incident_id=incident_id,
            started_by=started_by, parameters=json.dumps(parameters, default=str, sort_keys=True), notebook="",
            retry_of=retry_of, error="", created=now, started=now, ended=None,
        ).returning(t.investigations.c.id)).scalar_one()
    return store.run(do)


def _row(conn: sa.Connection, investigation_id: int) -> Any:
    row = conn.execute(sa.select(t.investigations).where(t.investigations.c.id == investigation_id)).first()
    if row is None:
        raise NotFound(f"no investigation {investigation_id}; list them with `workbench air list`")
    return row


def log(store: Store, investigation_id: int, analyzer: str, status: str, started: datetime, seconds: float,
        summary: str = "", error: str = "") -> None:
    """Append one analyzer's line to the run log."""
    def do(conn: sa.Connection) -> None:
        _row(conn, investigation_id)
        seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.analyzer_log.c.seq), 0))
                           .where(t.analyzer_log.c.investigation_id == investigation_id)).scalar_one() + 1
        conn.execute(t.analyzer_log.insert().values(investigation_id=investigation_id, seq=seq, analyzer=analyzer,
                                                    status=status, started=started, seconds=round(seconds, 4),
                                                    summary=summary[:2000], error=error[:4000]))
    store.run(do)


def add_evidence(store: Store, investigation_id: int, items: Iterable[EvidenceItem]) -> int:
    """Record evidence; an entity already recorded keeps its first verdict. Returns how many were new."""
    rows = [dict(investigation_id=investigation_id, kind=i.entity.kind.value, value=i.entity.value[:1000],
                 verdict=i.verdict.value, remediation=i.remediation.value, analyzer=i.analyzer, details=i.details)
            for i in items]
    return store.run(lambda conn: insert_ignore(conn, t.investigation_evidence, rows,
                                                 "investigation_id", "kind", "value"))


def add_clusters(store: Store, investigation_id: int, clusters: Sequence[MailCluster]) -> int:
    rows = [dict(investigation_id=investigation_id, kind=c.kind.value, value=c.value[:1000],
                 query=json.dumps(c.query), counts=json.dumps(asdict(c.counts)), verdict=c.verdict.value,
                 volume_anomaly=c.volume_anomaly) for c in clusters]
    return store.run(lambda conn: insert_ignore(conn, t.investigation_clusters, rows,
                                                 "investigation_id", "kind", "value"))


def propose(store: Store, investigation_id: int, action: ActionType, target_kind: EntityKind, target: str, *,
            messages: Sequence[tuple[str, str]] = (), reason: str = "") -> None:
    """Propose an action (pending approval in the action center); proposing it twice is one proposal."""
    row = dict(investigation_id=investigation_id, action=ActionType(action).value,
               target_kind=EntityKind(target_kind).value, target=target[:1000],
               messages=json.dumps(sorted(set(map(tuple, messages)))), reason=reason[:2000], status="pending",
               created=_now())
    store.run(lambda conn: insert_ignore(conn, t.proposed_actions, [row],
                                          "investigation_id", "action", "target_kind", "target"))


def finish(store: Store, investigation_id: int, status: InvestigationStatus, *, error: str = "",
           notebook: str = "") -> None:
    """Close the run with its final status (and the executed notebook kept as its record)."""
    status = InvestigationStatus(status)

    def do(conn: sa.Connection) -> None:
        row = _row(conn, investigation_id)
        if InvestigationStatus(row.status).finished:
            raise ConflictError(f"investigation {investigation_id} already ended as {row.status}; retry it instead")
        values: dict[str, Any] = {"status": status.value, "error": error[:4000]}
        if notebook:
            values["notebook"] = notebook
        if status.finished:
            values["ended"] = _now()
        conn.execute(t.investigations.update().where(t.investigations.c.id == investigation_id).values(**values))
    store.run(do)


def _investigation(r: Any) -> Investigation:
    return Investigation(r.id, r.name, r.playbook, InvestigationStatus(r.status), r.started_by, json.loads(r.parameters),
                         r.created, r.alert_id, r.incident_id, r.playbook_version, r.started, r.ended, r.retry_of,
                         r.error, r.notebook)


def recent(store: Store, limit: int = 500) -> list[Investigation]:
    """The newest investigations first."""
    with store.read() as conn:
        return [_investigation(r) for r in conn.execute(
            sa.select(t.investigations).order_by(t.investigations.c.id.desc()).limit(limit))]


def load(store: Store, investigation_id: int) -> Record:
    """The whole record of one run."""
    with store.read() as conn:
        inv = _investigation(_row(conn, investigation_id))
        where = lambda table: table.c.investigation_id == investigation_id  # noqa: E731
        evidence = tuple(EvidenceItem(Entity(EntityKind(e.kind), e.value), Verdict(e.verdict),
                                      RemediationStatus(e.remediation), e.analyzer, e.details)
                         for e in conn.execute(sa.select(t.investigation_evidence).where(where(t.investigation_evidence))
                                               .order_by(t.investigation_evidence.c.kind, t.investigation_evidence.c.value)))
        clusters = tuple(MailCluster(ClusterKind(c.kind), c.value, json.loads(c.query), ClusterCounts(**json.loads(c.counts)),
                                     Verdict(c.verdict), c.volume_anomaly)
                         for c in conn.execute(sa.select(t.investigation_clusters).where(where(t.investigation_clusters))
                                               .order_by(t.investigation_clusters.c.kind, t.investigation_clusters.c.value)))
        actions = tuple(ProposedAction(a.id, ActionType(a.action), EntityKind(a.target_kind), a.target,
                                       tuple(tuple(m) for m in json.loads(a.messages)), a.reason, a.status)
                        for a in conn.execute(sa.select(t.proposed_actions).where(where(t.proposed_actions))
                                              .order_by(t.proposed_actions.c.id)))
        runs = tuple(AnalyzerRun(x.seq, x.analyzer, x.status, x.started, x.seconds, x.summary, x.error)
                     for x in conn.execute(sa.select(t.analyzer_log).where(where(t.analyzer_log))
                                           .order_by(t.analyzer_log.c.seq)))
    return Record(inv, evidence, clusters, actions, runs)


def of_alerts(store: Store, alert_ids: Sequence[str], incident_id: int | None = None) -> list[Investigation]:
    """Investigations started for any of *alert_ids* (or for the incident), newest first: the
    incident page's Investigations tab."""
    conds = [t.investigations.c.alert_id.in_(list(alert_ids))] if alert_ids else []
    if incident_id is not None:
        conds.append(t.investigations.c.incident_id == incident_id)
    if not conds:
        return []
    with store.read() as conn:
        return [_investigation(r) for r in conn.execute(
            sa.select(t.investigations).where(sa.or_(*conds)).order_by(t.investigations.c.id.desc()))]
