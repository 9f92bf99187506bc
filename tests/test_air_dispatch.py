"""The dispatcher: alerts grouped by incident and playbook, claimed once, run with papermill at
bounded concurrency, failures retried then recorded; two dispatchers never start the same alert."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from workbench.air import dispatch as d
from workbench.air import records
from workbench.errors import ConflictError, NotFound
from workbench.air.playbook import PLAYBOOK_FOR_POLICY
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


def test_user_playbook_groups_are_per_incident_and_user(alerted, small_tenant):
    import json

    store, _ = alerted
    story = next(s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]
                 if s["id"] == "compromised-user")
    user_groups = [g for g in d.pending(store) if g.playbook in d.USER_PLAYBOOKS]
    assert user_groups and all(g.user and g.parameters["user"] == g.user for g in user_groups)
    assert len({(g.incident_id, g.user) for g in user_groups}) == len(user_groups)
    assert story["user"].lower() in {g.user for g in user_groups}
    by_id = {a.id: a for a in IncidentService(store, "t").alerts()}
    for g in user_groups:  # every alert of the group is about its user
        assert all(d.alert_user(by_id[a]) == g.user for a in g.alert_ids)
    assert all("user" not in g.parameters for g in d.pending(store) if g.playbook not in d.USER_PLAYBOOKS)


def test_a_run_started_by_hand_for_an_alert_is_not_dispatched_again(alerted, small_tenant):
    store, db = alerted
    alerts = IncidentService(store, "t").alerts()
    waiting = d.awaiting_investigation(store, alerts)
    assert {a.id for a, _ in waiting} == {a for g in d.pending(store) for a in g.alert_ids}
    alert, playbook = next((a, p) for a, p in waiting if p != "compromised_user")
    outcome = d.start(store, d.InProcessRunner(small_tenant, db), playbook, {"alert_id": alert.id}, started_by="ana")
    assert outcome.status == "done" and records.load(store, outcome.investigation_id).investigation.alert_id == alert.id
    assert alert.id in d.handled_alerts(store)
    assert alert.id not in {a for g in d.pending(store) for a in g.alert_ids}
    assert alert.id not in {a.id for a, _ in d.awaiting_investigation(store, alerts)}


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

    def in_process(job):
        with lock:
            started.extend(job.group.alert_ids)
        return d.InProcessRunner(small_tenant, db)(job)
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


# --------------------------------------------------------------------------- throttling, timeouts, retry


def statuses(store, ids) -> list[str]:
    return [records.load(store, i).investigation.status.value for i in ids]


def test_over_the_cap_groups_are_queued_visibly_then_started_by_a_later_dispatch(alerted, small_tenant):
    store, db = alerted
    runner = d.InProcessRunner(small_tenant, db)
    total = len(d.pending(store))
    first = d.dispatch(store, runner, settings=d.Throttle(max_running=1))
    assert [o.status for o in first].count("done") == 1 and [o.status for o in first].count("queued") == total - 1
    waiting = [o.investigation_id for o in first if o.status == "queued"]
    assert set(statuses(store, waiting)) == {"queuedByThrottling"}  # the analyst sees them queued
    assert d.pending(store) == [] and [i for _, i, _ in d.queued(store)] == sorted(waiting)

    # a run started elsewhere counts against the cap: nothing starts, nothing is lost
    other = records.start(store, "manual_email_investigation", "by hand", started_by="ana", parameters={})
    assert [o.status for o in d.dispatch(store, runner, settings=d.Throttle(max_running=1))] == []
    records.finish(store, other, records.InvestigationStatus.NO_THREATS_FOUND)

    second = d.dispatch(store, runner, settings=d.Throttle(max_running=2))
    assert [o.status for o in second] == ["done", "done"]
    assert [o.investigation_id for o in second] == sorted(waiting)[:2]  # the oldest, and the same records
    for o in second:
        inv = records.load(store, o.investigation_id).investigation
        assert inv.status.value not in ("starting", "running", "queuedByThrottling")
        assert inv.started_by == "dispatcher" and inv.alert_id == o.group.alert_ids[0] and inv.started
    assert {c.status for c in claims(store) if c.investigation_id in sorted(waiting)[:2]} == {"done"}
    assert len(d.queued(store)) == total - 3


def test_queued_too_long_ends_terminated_by_throttling_and_can_be_retried(alerted, small_tenant):
    from datetime import UTC, datetime, timedelta

    store, db = alerted
    runner = d.InProcessRunner(small_tenant, db)
    queued = [o for o in d.dispatch(store, runner, settings=d.Throttle(max_running=1), limit=3)
              if o.status == "queued"]
    assert len(queued) == 2
    later = datetime.now(UTC) + timedelta(hours=25)
    expired = d.dispatch(store, runner, settings=d.Throttle(max_running=1), limit=0, now=later)
    assert [(o.status, o.investigation_id) for o in expired] == [("expired", o.investigation_id) for o in queued]
    rec = records.load(store, queued[0].investigation_id).investigation
    assert rec.status.value == "terminatedByThrottling" and "workbench air retry" in rec.error and rec.ended
    assert d.queued(store) == [] and {c.status for c in claims(store) if c.investigation_id == rec.id} == {"terminated"}

    again = d.retry(store, runner, rec.id, started_by="ana")
    new = records.load(store, again.investigation_id).investigation
    assert again.status == "done" and new.retry_of == rec.id and new.started_by == "ana"
    assert new.status.value not in ("starting", "running")
    assert new.alert_id == rec.alert_id and new.parameters["messages"] == rec.parameters["messages"]
    assert {c.investigation_id for c in claims(store) if c.alert_id == rec.alert_id} == {new.id}  # the claim follows
    with pytest.raises(ConflictError, match="not failed or terminated; only those can be retried"):
        d.retry(store, runner, new.id, started_by="ana")
    with pytest.raises(NotFound, match="no investigation 999; list them with `workbench air list`"):
        d.retry(store, runner, 999, started_by="ana")


def test_timeouts_and_too_many_entities_end_terminated_by_system(alerted):
    store, _ = alerted
    calls = []

    def slow(job):
        calls.append(job)
        raise d.RunTimedOut("playbook phish_zap timed out after 1 s")
    [o] = d.dispatch(store, slow, retries=2, backoff=0.01, limit=1)
    assert o.status == "terminated" and o.attempts == 1 and len(calls) == 1  # the system stopped it: no retry
    rec = records.load(store, o.investigation_id).investigation
    assert rec.status.value == "terminatedBySystem" and "timed out after 1 s" in rec.error and rec.ended

    cap = max(len(g.messages) for g in d.pending(store)) - 1
    outcomes = d.dispatch(store, lambda job: None, settings=d.Throttle(max_messages=max(cap, 1)), retries=0)
    halted = [o for o in outcomes if o.status == "terminated"]
    assert halted and all(len(o.group.messages) > cap for o in halted)
    rec = records.load(store, halted[0].investigation_id).investigation
    assert rec.status.value == "terminatedBySystem" and "more than max_messages" in rec.error
    ran = [o for o in outcomes if o.status != "terminated"]  # this runner records nothing: each says so
    assert ran and {o.status for o in ran} == {"failed"}
    assert "recorded no investigation" in records.load(store, ran[0].investigation_id).investigation.error


def test_a_run_abandoned_by_a_killed_dispatcher_is_ended_and_can_be_retried(alerted, small_tenant):
    from datetime import UTC, datetime, timedelta

    store, db = alerted
    group = d.pending(store)[0]
    inv = d.claim(store, group, "host:1")  # claimed and recorded, then the dispatcher was killed
    assert records.load(store, inv).investigation.status.value == "starting"
    [o] = d.dispatch(store, d.InProcessRunner(small_tenant, db), limit=0, timeout=60,
                     now=datetime.now(UTC) + timedelta(minutes=5))
    rec = records.load(store, inv).investigation
    assert (o.status, o.investigation_id) == ("terminated", inv) and rec.status.value == "terminatedBySystem"
    assert "abandoned" in rec.error and {c.status for c in claims(store)} == {"terminated"}
    again = d.retry(store, d.InProcessRunner(small_tenant, db), inv, started_by="ana")
    assert again.status == "done" and records.load(store, again.investigation_id).investigation.retry_of == inv


def test_a_failed_run_is_recorded_with_its_error_and_retried_through_papermill(alerted, small_tenant):
    store, db = alerted
    with d.PapermillRunner(small_tenant, db, timeout=300, share_kernels=True) as runner:
        bad = d.start(store, runner, "manual_email_investigation", {"messages": ["<missing@nowhere.test>"]},
                      started_by="ana")
        rec = records.load(store, bad.investigation_id).investigation
        assert bad.status == "failed" and rec.status.value == "failed" and rec.ended
        assert "InputError" in rec.error and "none of the 1 message id(s)" in rec.error
        assert rec.notebook.endswith(".ipynb") and rec.parameters == {"messages": ["<missing@nowhere.test>"]}
        again = d.retry(store, runner, rec.id, started_by="bob")  # same parameters, same failure, linked
        new = records.load(store, again.investigation_id).investigation
        assert again.status == "failed" and new.retry_of == rec.id and new.id != rec.id and "InputError" in new.error
        [group] = d.pending(store)[:1]
        ok = d.start(store, runner, group.playbook, group.parameters, started_by="ana")  # same kernel, reset between
        assert ok.status == "done" and records.load(store, ok.investigation_id).investigation.notebook
    assert [t.kernel_start > 0 for t in runner.timings] == [True, False, False] and runner.timings[1].reset > 0


def test_air_commands_dispatch_with_a_cap_configure_and_retry(alerted, small_tenant):
    from click.testing import CliRunner

    from workbench.cli import main

    store, db = alerted
    base = ["--tenant", str(small_tenant.root), "--db", db]
    run = CliRunner().invoke
    shown = run(main, ["air", "configure", "--max-running", "1", "--queue-expiry-hours", "12", *base])
    assert shown.exit_code == 0 and "max_running" in shown.output and "12.0" in shown.output, shown.output
    assert d.throttle(store) == d.Throttle(max_running=1, queue_expiry_hours=12.0)
    bad = run(main, ["air", "configure", "--max-running", "0", *base])
    assert bad.exit_code == 2 and "0 is not in the range x>=1" in bad.output

    done = run(main, ["air", "dispatch", "--limit", "2", *base])
    assert done.exit_code == 0, done.output
    assert "1 done, 1 queued" in done.output and "1 queued by throttling" in done.output
    [ran] = [o for o in records.recent(store) if o.status.value not in ("queuedByThrottling",)]
    assert ran.notebook.endswith(".ipynb") and ran.started_by == "dispatcher"

    assert run(main, ["air", "retry", "999", *base]).exit_code == 3
    refused = run(main, ["air", "retry", str(ran.id), *base])
    assert refused.exit_code != 0 and f"investigation {ran.id} is {ran.status.value}, not failed or terminated" in refused.output
    assert len(refused.output.strip().splitlines()) == 1


def test_a_real_run_over_its_timeout_ends_terminated_by_system_and_its_kernel_is_replaced(alerted, small_tenant,
                                                                                         tmp_path, monkeypatch):
    import nbformat

    from workbench.air import runners

    store, db = alerted
    group = d.pending(store)[0]
    # the real playbook plus a cell that outlasts the timeout (an idle machine runs the playbook itself in < 1 s)
    slow = nbformat.read(runners.PLAYBOOKS_DIR / f"{group.playbook}.ipynb", as_version=4)
    slow.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(30)"))
    nbformat.write(slow, tmp_path / f"{group.playbook}.ipynb")
    monkeypatch.setattr(runners, "PLAYBOOKS_DIR", tmp_path)
    with d.PapermillRunner(small_tenant, db, timeout=1, share_kernels=True) as runner:
        out = d.start(store, runner, group.playbook, group.parameters, started_by="ana")
        assert runner._kernels == []  # the busy kernel was shut down, not reused
    rec = records.load(store, out.investigation_id).investigation
    assert out.status == "terminated" and rec.status.value == "terminatedBySystem"
    assert "timed out after 1 s" in rec.error and f"workbench air retry {rec.id}" in rec.error
