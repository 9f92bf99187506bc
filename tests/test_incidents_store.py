"""The SQL store and the incident service, on SQLite and on a real PostgreSQL server
(``db_url`` is parametrized over both in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from workbench.errors import ConflictError, InputError, NotFound, StorageError
from workbench.incidents.model import (
    AlertDraft, AlertStatus, Entity, EntityKind, IncidentStatus, Severity, Verdict,
)
from workbench.incidents.repo import IncidentFilter
from workbench.incidents.service import IncidentService, alert_id_for
from workbench.store import migrations, open_store
from workbench.store import tables as t

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def draft(key: str, *entities: Entity, severity: Severity = Severity.MEDIUM, at: datetime = T0,
          title: str | None = None, **kw) -> AlertDraft:
    return AlertDraft(policy_id=kw.pop("policy_id", "test_policy"), title=title or f"alert {key}", severity=severity,
                      category="InitialAccess", first_activity=at, last_activity=at + timedelta(minutes=5),
                      dedup_key=key, entities=entities, **kw)


@pytest.fixture
def svc(db_url) -> IncidentService:
    store = open_store(url=db_url)
    yield IncidentService(store, "ana")
    store.dispose()


def counts(svc: IncidentService, incident_id: int) -> dict[str, int]:
    with svc.store.read() as conn:
        return {name: conn.execute(sa.select(sa.func.count()).select_from(table)
                                   .where(table.c.incident_id == incident_id)).scalar_one()
                for name, table in (("alerts", t.alerts), ("comments", t.comments), ("evidence", t.evidence),
                                    ("activity", t.activity))}


def test_migrations_run_once_and_refuse_a_newer_database(db_url):
    store = open_store(url=db_url)
    assert store.version() == migrations.LATEST
    assert migrations.upgrade(store.engine) == 0  # nothing left to apply
    with store.engine.begin() as conn:
        conn.execute(t.schema_version.insert().values(version=migrations.LATEST + 1, description="future",
                                                      applied_at=datetime.now(UTC)))
    with pytest.raises(StorageError, match="newer than this workbench"):
        open_store(url=db_url)
    store.dispose()


def test_an_older_database_is_migrated_forward_keeping_its_data(db_url, monkeypatch):
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    monkeypatch.setattr(migrations, "LATEST", 1)
    old = open_store(url=db_url)
    IncidentService(old, "ana").create("from release 1")
    old.dispose()
    monkeypatch.undo()
    assert migrations.LATEST >= 2
    store = open_store(url=db_url)
    assert store.version() == migrations.LATEST
    with store.read() as conn:
        assert sa.inspect(conn).has_table("investigations")
        assert [r.version for r in conn.execute(sa.select(t.schema_version))] == list(range(1, migrations.LATEST + 1))
    assert [i.name for i in IncidentService(store, "ana").list()] == ["from release 1"]
    store.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    store = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_a_database_that_cannot_be_reached_says_so_in_one_line(tmp_path):
    with pytest.raises(StorageError) as err:
        open_store(url="postgresql://wb:secret@127.0.0.1:1/nowhere")
    message = str(err.value)
    assert "\n" not in message and "secret" not in message and "127.0.0.1:1" in message and "--db" in message
    with pytest.raises(InputError, match="unsupported database"):
        open_store(url="mysql://u@h/db")
    with pytest.raises(StorageError, match="does not exist"):
        open_store(url=f"sqlite:///{tmp_path / 'missing' / 'wb.sqlite'}")


def test_alerts_correlate_by_shared_entities_within_the_window(svc):
    url = Entity.of("url", "https://login-c0ntoso.example/a")
    result = svc.add_alerts([
        draft("a1", url, Entity.of("user", "bob@corp.example", "recipient"), severity=Severity.INFORMATIONAL),
        draft("a2", url, Entity.of("user", "eve@corp.example", "clicked"), severity=Severity.HIGH,
              at=T0 + timedelta(hours=2)),
        draft("a3", Entity.of("user", "bob@corp.example", "recipient")),  # a recipient alone joins nothing
        draft("a4", Entity.of("user", "eve@corp.example", "signin"), at=T0 + timedelta(hours=3)),  # acting user
        draft("a5", url, at=T0 + timedelta(days=40)),  # same URL, long after: a new incident
        draft("a6", Entity.of("user", "eve@corp.example", "clicked"), at=T0 + timedelta(days=12)),  # user: 7 days
    ])
    assert len(result.new) == 6 and len(result.incidents_created) == 4
    first = svc.get(result.incidents_created[0])
    assert first.alert_count == 3 and first.severity == Severity.HIGH  # the highest alert's
    assert first.first_activity == T0 and first.name == "alert a1 (+2 related alerts)"
    again = svc.add_alerts([draft("a1", url), draft("a2", url)])
    assert again.new == () and again.known == 2  # dedup keys: re-running a policy adds nothing
    assert svc.get(first.id).alert_count == 3
    # an alert sharing entities with two open incidents joins them: one attack seen in pieces
    other = svc.add_alerts([draft("b1", Entity.of("ip", "198.51.100.7"), at=T0 + timedelta(days=1))]).incidents_created
    joined = svc.add_alerts([draft("b2", url, Entity.of("ip", "198.51.100.7"), at=T0 + timedelta(days=1, hours=1),
                                   title="link")])
    assert joined.incidents_extended == (first.id,) and svc.get(first.id).alert_count == 5
    assert svc.get(other[0]).status == IncidentStatus.REDIRECTED and svc.get(other[0]).redirect_id == first.id
    assert svc.get(first.id).name.startswith("alert a1 (+4 related")
    svc.rename(first.id, "Contoso lookalike campaign")
    svc.add_alerts([draft("b3", url, at=T0 + timedelta(days=2))])
    assert svc.get(first.id).name == "Contoso lookalike campaign"  # an analyst's name stands


def test_incident_lifecycle_is_logged_and_bad_changes_write_nothing(svc):
    added = svc.add_alerts([draft("x1", Entity.of("ip", "203.0.113.9"), severity=Severity.LOW,
                                  evidence=(Entity.of("email", "nm-1|bob@corp.example"),),
                                  verdicts=(("email:nm-1|bob@corp.example", Verdict.MALICIOUS),))])
    inc_id = added.incidents_created[0]
    svc.assign(inc_id, "carol")
    assert {a.assigned_to for a in svc.alerts(incident_id=inc_id)} == {"carol"}  # its alerts too
    svc.set_severity(inc_id, "high")
    svc.add_alerts([draft("x2", Entity.of("ip", "203.0.113.9"), severity=Severity.MEDIUM)])
    assert svc.get(inc_id).severity == Severity.HIGH  # the analyst's choice stands
    svc.classify(inc_id, "truePositive", "phishing")
    svc.tag(inc_id, "finance", "<b>vip</b>")
    svc.comment(inc_id, "first look <script>alert(1)</script>")
    svc.set_status(inc_id, "inProgress")
    before = counts(svc, inc_id)
    with pytest.raises(InputError, match="needs a note"):
        svc.set_status(inc_id, IncidentStatus.RESOLVED)
    with pytest.raises(InputError, match="unknown status"):
        svc.set_status(inc_id, "closed")
    with pytest.raises(ConflictError, match="cannot go from inProgress to redirected"):
        svc.set_status(inc_id, "redirected")
    with pytest.raises(InputError, match="at most 30,000"):
        svc.comment(inc_id, "x" * 30_001)
    assert counts(svc, inc_id) == before
    done = svc.resolve(inc_id, "Phish blocked at the gateway; no clicks.")
    assert done.status == IncidentStatus.RESOLVED and done.resolution_note.startswith("Phish blocked")
    assert {a.status for a in svc.alerts(incident_id=inc_id)} == {AlertStatus.RESOLVED}
    assert svc.set_status(inc_id, "active").resolved_at is None  # reopened
    log = [(a.action, a.old, a.new, a.actor) for a in svc.activity(inc_id)]
    assert ("assigned_to", "", "carol", "ana") in log and ("severity", "low", "high", "ana") in log
    assert ("status", "inProgress", "resolved", "ana") in log and ("status", "resolved", "active", "ana") in log
    assert ("classification", "unknown", "truePositive", "ana") in log
    assert [e.verdict for e in svc.evidence(inc_id) if e.entity.kind == EntityKind.EMAIL] == [Verdict.MALICIOUS]
    assert svc.get(inc_id).tags == ("<b>vip</b>", "finance")


def test_explorer_selection_merge_and_unlink(svc):
    a = svc.create("From the Explorer", emails=[("nm-1", "Bob@Corp.example"), ("nm-2", "eve@corp.example")])
    assert [e.entity.value for e in svc.evidence(a.id)] == ["nm-1|bob@corp.example", "nm-2|eve@corp.example"]
    assert svc.add_emails(a.id, [("nm-1", "bob@corp.example"), ("nm-3", "al@corp.example")]) == 1
    assert svc.remove_emails(a.id, [("nm-3", "al@corp.example")]) == 1
    with pytest.raises(NotFound):
        svc.remove_emails(a.id, [("nm-9", "x@corp.example")])
    b_id = svc.add_alerts([draft("m1", Entity.of("domain", "evil.example"))]).incidents_created[0]
    c_id = svc.add_alerts([draft("m2", Entity.of("domain", "other.example"), severity=Severity.HIGH)]).incidents_created[0]
    svc.comment(b_id, "seen before")
    merged = svc.merge([b_id, c_id], into=a.id)
    assert merged.alert_count == 2 and merged.severity == Severity.HIGH
    assert svc.get(b_id).status == IncidentStatus.REDIRECTED and svc.get(b_id).redirect_id == a.id
    assert [c.text for c in svc.comments(a.id)] == ["seen before"]
    with pytest.raises(ConflictError, match=f"merged into incident {a.id}"):
        svc.comment(b_id, "too late")
    alert_id = svc.alerts(incident_id=a.id, policy=["test_policy"])[0].id
    split = svc.unlink_alert(alert_id)
    assert split.id not in (a.id, b_id, c_id) and split.alert_count == 1 and svc.get(a.id).alert_count == 1
    with pytest.raises(NotFound, match="no incident 999999"):
        svc.get(999_999)
    with pytest.raises(NotFound, match="no alert"):
        svc.link_alert(a.id, "wb-nope")


def test_queue_filters_sort_and_search(svc):
    made = svc.add_alerts([
        draft("q1", Entity.of("url", "https://a.example/x"), severity=Severity.HIGH, policy_id="url_click"),
        draft("q2", Entity.of("device", "LT-KIM0122"), severity=Severity.LOW, policy_id="endpoint"),
        draft("q3", Entity.of("file", "ab" * 32), severity=Severity.MEDIUM, policy_id="content_malware"),
    ]).incidents_created
    svc.assign(made[1], "dan")
    svc.tag(made[2], "sharepoint")
    svc.resolve(made[0], "done")
    assert {i.id for i in svc.list()} == set(made[1:])  # the default queue hides resolved ones
    everything = IncidentFilter(status=())
    assert [i.id for i in svc.list(IncidentFilter(status=(), sort="severity"))] == [made[0], made[2], made[1]]
    assert [i.id for i in svc.list(IncidentFilter(assigned_to=("dan",)))] == [made[1]]
    assert [i.id for i in svc.list(IncidentFilter(assigned_to=("(unassigned)",)))] == [made[2]]
    assert [i.id for i in svc.list(IncidentFilter(tags=("sharepoint",)))] == [made[2]]
    assert [i.id for i in svc.list(IncidentFilter(status=(), policy=("url_click",)))] == [made[0]]
    assert [i.id for i in svc.list(IncidentFilter(search="lt-kim"))] == [made[1]]
    assert [i.id for i in svc.list(IncidentFilter(status=(), search=str(made[0])))] == [made[0]]
    assert svc.list(IncidentFilter(search="100%_")) == []  # LIKE wildcards are literal
    assert IncidentFilter.from_json(json.loads(json.dumps(everything.to_json()))) == everything
    with pytest.raises(InputError, match="unknown severity 'severe'"):
        IncidentFilter(severity=("severe",))


WORKERS, EACH = 8, 12


def test_eight_processes_adding_to_one_incident_lose_nothing(db_url, tmp_path):
    store = open_store(url=db_url)
    svc = IncidentService(store, "lead")
    incident = svc.create("Concurrency")
    start_at = time.time() + 3  # all workers begin together, once their imports are done
    procs = [subprocess.Popen([sys.executable, __file__, db_url, str(incident.id), str(n), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for n in range(WORKERS)]
    outputs = [p.communicate(timeout=180)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)
    got = counts(svc, incident.id)
    assert got["alerts"] == WORKERS * EACH
    assert got["comments"] == WORKERS * EACH
    # each worker's alerts bring one email each; each worker also adds EACH URLs by hand
    assert got["evidence"] == WORKERS * EACH * 2
    # created, severity informational -> medium once, then a line per alert, comment and evidence add
    assert got["activity"] == 2 + WORKERS * EACH * 3
    texts = {c.text for c in svc.comments(incident.id)}
    assert texts == {f"worker {n} comment {i}" for n in range(WORKERS) for i in range(EACH)}
    store.dispose()


def _worker(url: str, incident_id: int, n: int, start_at: float) -> None:
    store = open_store(url=url)
    svc = IncidentService(store, f"worker-{n}")
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(EACH):
        key = f"w{n}-{i}"
        svc.add_alerts([draft(key, Entity.of("email", f"nm-{key}|u@corp.example"))], correlate_into_incidents=False)
        svc.link_alert(incident_id, alert_id_for(key))
        svc.comment(incident_id, f"worker {n} comment {i}")
        svc.add_evidence(incident_id, [Entity.of("url", f"https://w{n}.example/{i}")])
    store.dispose()


if __name__ == "__main__":  # a concurrency worker (see the test above)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
