"""The dispatcher: alerts grouped by incident and playbook, claimed once, run with papermill at
bounded concurrency, failures retried then recorded; two dispatchers never start the same alert."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from workbench.air import dispatch as d
from workbench.air import records
from workbench.air.playbook import PLAYBOOK_FOR_POLICY, run_email_playbook
from workbench.incidents import alerting
from workbench.incidents.service import IncidentService
from workbench.lake import Lake
from workbench.store import open_store
from workbench.store import tables as t


@pytest.fixture
def alerted(small_tenant, tmp_path):
    db = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    store = open_store(url=db)
    alerting.run(store, Lake.for_tenant(small_tenant))
    yield store, db
    store.dispose()


def claims(store) -> list:
    with store.read() as conn:
        return conn.execute(sa.select(t.dispatch_claims)).all()


def test_groups_cover_every_alert_with_a_playbook_once(alerted):
    store, _ = alerted
    groups = d.pending(store)
    alerts = IncidentService(store, "t").alerts()
    wanted = {a.id for a in alerts if a.policy_id in PLAYBOOK_FOR_POLICY}
    listed = [a for g in groups for a in g.alert_ids]
    assert sorted(listed) == sorted(wanted) and len(groups) < len(wanted)  # grouped, not one run per alert
    by_id = {a.id: a for a in alerts}
    for g in groups:
        assert len({by_id[a].incident_id for a in g.alert_ids}) == 1
        assert {PLAYBOOK_FOR_POLICY[by_id[a].policy_id] for a in g.alert_ids} == {g.playbook}
    assert d.claim(store, groups[0], "a") and not d.claim(store, groups[0], "b")
    overlapping = d.Group(groups[1].playbook, None, (groups[1].alert_ids[0], groups[0].alert_ids[0]), ())
    assert not d.claim(store, overlapping, "c")
    assert {c.alert_id for c in claims(store)} == set(groups[0].alert_ids)  # the partial claim was rolled back
    assert d.pending(store)[0] != groups[0]


def test_dispatch_runs_the_playbooks_with_papermill(alerted, small_tenant):
    store, db = alerted
    total = len(d.pending(store))
    outcomes = d.dispatch(store, d.papermill_runner(small_tenant, db, timeout=300), concurrency=2, limit=3)
    assert [o.status for o in outcomes] == ["done"] * 3
    for o in outcomes:
        rec = records.load(store, o.investigation_id)
        assert rec.investigation.playbook == o.group.playbook and rec.investigation.started_by == "dispatcher"
        assert rec.investigation.notebook.endswith(".ipynb")
    assert len(d.pending(store)) == total - 3
    assert d.dispatch(store, d.papermill_runner(small_tenant, db, timeout=300), limit=0) is not None


def test_failures_are_retried_then_recorded(alerted):
    store, _ = alerted
    calls = []

    def broken(group):
        calls.append(group)
        raise RuntimeError("kernel died")
    [outcome] = d.dispatch(store, broken, retries=2, backoff=0.01, limit=1)
    assert outcome.status == "failed" and outcome.attempts == 3 and len(calls) == 3 and "kernel died" in outcome.error
    assert {c.status for c in claims(store)} == {"failed"}


def test_two_dispatchers_never_start_the_same_alert(alerted, small_tenant):
    store, db = alerted
    started: list[str] = []
    lock = threading.Lock()

    def in_process(group):
        with lock:
            started.extend(group.alert_ids)
        return run_email_playbook(group.playbook, tenant=str(small_tenant.root), messages=list(group.messages),
                                  alert_id=group.alert_ids[0], db_url=db).record.investigation.id
    results: list = []
    threads = [threading.Thread(target=lambda: results.extend(d.dispatch(store, in_process, concurrency=2)))
               for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(started) == len(set(started))  # no alert started twice
    done = [o for o in results if o.status == "done"]
    assert sorted(a for o in done for a in o.group.alert_ids) == sorted(started)
    assert d.pending(store) == []
