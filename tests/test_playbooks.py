"""Every playbook: exactly one typed, documented `parameters` cell (papermill.inspect_notebook),
and each executed by papermill against the small tenant, its run recorded in the store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from workbench.air import records
from workbench.air.model import InvestigationStatus
from workbench.air.playbook import PLAYBOOKS_DIR, frames, version_of
from workbench.store import open_store

PLAYBOOKS = sorted(PLAYBOOKS_DIR.glob("*.ipynb"))


def test_there_are_playbooks():
    assert PLAYBOOKS, f"no playbook in {PLAYBOOKS_DIR}"


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.stem)
def test_one_typed_documented_parameters_cell(path: Path):
    from workbench.air.parameters import PlaybookParameters

    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged parameters, want exactly one"
    params = papermill.inspect_notebook(str(path))
    assert params, f"{path.name}: the parameters cell declares nothing"
    for name, p in params.items():
        assert p["inferred_type_name"] not in (None, "None"), f"{path.name}: parameter {name} has no type"
        assert p["help"].strip(), f"{path.name}: parameter {name} has no help comment"
    assert {"tenant", "db_url"} <= set(params), f"{path.name}: every playbook takes tenant and db_url"
    assert {"alert_id", "investigation_id"} <= set(params), f"{path.name}: ?alert= and ?investigation= need these"
    assert set(params) <= set(PlaybookParameters.fields()), f"{path.name}: a parameter PlaybookParameters lacks"
    body = [c for c in nb.cells if c.cell_type == "code" and c not in tagged]
    assert len(body) == 1 and f'open_playbook("{path.stem}", globals())' in body[0].source, \
        f"{path.name}: the body is one cell calling open_playbook (thin notebook)"


def test_manual_email_investigation_runs_under_papermill(small_tenant, tmp_path):
    stories = {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}
    nmid = stories["credential-phish-campaign"]["messages"][0]["NetworkMessageId"]
    db = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    out = tmp_path / "run.ipynb"
    papermill.execute_notebook(str(PLAYBOOKS_DIR / "manual_email_investigation.ipynb"), str(out),
                               parameters={"tenant": str(small_tenant.root), "messages": [nmid], "db_url": db,
                                           "started_by": "scheduler", "record_notebook": str(out)},
                               progress_bar=False, kernel_name="python3")
    store = open_store(url=db)
    rec = records.load(store, 1)
    assert rec.investigation.status is InvestigationStatus.PENDING_ACTION
    assert rec.investigation.started_by == "scheduler" and rec.investigation.notebook == str(out)
    assert rec.investigation.playbook_version == version_of("manual_email_investigation")
    text = out.read_text()
    assert "blockUrl" in text and "### Actions" in text  # the notebook shows what the record holds
    html = graph_output(out)
    assert f'data-investigation="{rec.investigation.id}"' in html and "Pending actions" in html and "blockUrl" in html
    assert set(frames(rec)) == {"summary", "log", "evidence", "clusters", "actions"}
    store.dispose()


def test_air_commands_run_a_playbook_and_show_its_record(small_tenant, tmp_path):
    from click.testing import CliRunner

    from workbench.cli import main

    stories = {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}
    nmid = stories["malware-campaign"]["messages"][0]["NetworkMessageId"]
    base = ["--tenant", str(small_tenant.root), "--db", f"sqlite:///{tmp_path / 'wb.sqlite'}"]
    run = CliRunner().invoke
    done = run(main, ["air", "run", "manual_email_investigation", "-p", "messages", json.dumps([nmid]), *base])
    assert done.exit_code == 0, done.output
    assert "investigation 1: " in done.output and "/investigations/manual_email_investigation-" in done.output
    shown = run(main, ["air", "show", "1", *base])
    assert shown.exit_code == 0 and "file_reputation" in shown.output and "malicious" in shown.output
    assert "http://" not in shown.output and "https://" not in shown.output  # URLs shown defanged
    assert run(main, ["air", "list", *base]).output.count("manual_email_investigation") == 1
    missing = run(main, ["air", "run", "nope", *base])
    assert missing.exit_code == 3 and "manual_email_investigation, phish_zap" in missing.output
    bad = run(main, ["air", "run", "manual_email_investigation", "-p", "bogus", "1", *base])
    assert bad.exit_code == 2 and "has no parameter 'bogus'" in bad.output
    assert run(main, ["air", "show", "99", *base]).exit_code == 3


@pytest.fixture(scope="module")
def alerted(small_tenant, tmp_path_factory):
    """The small tenant's alerts, filed in a store of their own."""
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService
    from workbench.lake import Lake

    db = f"sqlite:///{tmp_path_factory.mktemp('alerted') / 'wb.sqlite'}"
    store = open_store(url=db)
    alerting.run(store, Lake.for_tenant(small_tenant))
    alerts = IncidentService(store, "test").alerts()
    store.dispose()
    return db, alerts


@pytest.mark.parametrize("policy", ["user_reported_message", "malicious_url_click", "zap_malicious_file", "zap_phish_url"])
def test_alert_playbooks_investigate_the_alerts_messages(policy, alerted, small_tenant, tmp_path):
    from workbench.air.playbook import PLAYBOOK_FOR_POLICY

    db, alerts = alerted
    alert = next(a for a in alerts if a.policy_id == policy)
    playbook = PLAYBOOK_FOR_POLICY[policy]
    out = tmp_path / "run.ipynb"
    papermill.execute_notebook(str(PLAYBOOKS_DIR / f"{playbook}.ipynb"), str(out),
                               parameters={"tenant": str(small_tenant.root), "alert_id": alert.id, "db_url": db,
                                           "record_notebook": str(out)}, progress_bar=False, kernel_name="python3")
    store = open_store(url=db)
    import sqlalchemy as sa

    from workbench.store import tables as t
    with store.read() as conn:
        row = conn.execute(sa.select(t.investigations).where(t.investigations.c.notebook == str(out))).one()
    rec = records.load(store, row.id)
    assert rec.investigation.alert_id == alert.id and rec.investigation.playbook == playbook
    emails = {e.value.split("|")[0] for e in alert.entities if e.kind.value == "email"}
    assert emails <= {e.entity.value for e in rec.evidence if e.entity.kind.value == "email"}
    assert rec.investigation.status not in (InvestigationStatus.RUNNING, InvestigationStatus.FAILED)
    assert all(x.status == "ok" for x in rec.log)
    assert f'data-investigation="{rec.investigation.id}"' in graph_output(out)
    store.dispose()


def graph_output(executed: Path) -> str:
    """The executed notebook's HTML output holding the investigation graph (escaped HTML, no script)."""
    nb = nbformat.read(executed, as_version=4)
    found = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if "text/html" in o.get("data", {}) and '<svg class="wb-graph"' in o["data"]["text/html"]]
    assert len(found) == 1, f"{executed.name}: {len(found)} outputs draw the investigation graph, want one"
    assert "<script" not in found[0].lower() and not re.search(r"<[^>]*\son\w+\s*=", found[0]), "script in the output"
    return found[0]


def test_compromised_user_playbook_runs_with_the_dispatchers_parameters(alerted, small_tenant, tmp_path):
    """As `workbench air dispatch` starts it: the alert and its messages, no user (the alert names it)."""
    from workbench.air.playbook import PLAYBOOK_FOR_POLICY

    db, alerts = alerted
    user = {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}[
        "compromised-user"]["user"]
    alert = next(a for a in alerts if a.policy_id == "suspicious_sending" and any(e.value == user for e in a.entities))
    assert PLAYBOOK_FOR_POLICY[alert.policy_id] == "compromised_user"
    messages = sorted({e.value.split("|", 1)[0] for e in alert.entities if e.kind.value == "email"})
    out = tmp_path / "run.ipynb"
    papermill.execute_notebook(str(PLAYBOOKS_DIR / "compromised_user.ipynb"), str(out),
                               parameters={"tenant": str(small_tenant.root), "messages": messages, "alert_id": alert.id,
                                           "started_by": "dispatcher", "record_notebook": str(out), "db_url": db},
                               progress_bar=False, kernel_name="python3")
    store = open_store(url=db)
    import sqlalchemy as sa

    from workbench.store import tables as t
    with store.read() as conn:
        row = conn.execute(sa.select(t.investigations).where(t.investigations.c.notebook == str(out))).one()
    rec = records.load(store, row.id)
    store.dispose()
    assert rec.investigation.status is InvestigationStatus.PENDING_ACTION and rec.investigation.alert_id == alert.id
    assert rec.investigation.playbook_version == version_of("compromised_user")
    assert {a.action.value for a in rec.actions} >= {"resetPassword", "disableUser", "removeForwardingRule"}
    assert all(x.status == "ok" for x in rec.log) and f"user:{user}" in {e.entity.key for e in rec.evidence}
    text = out.read_text()
    assert "resetPassword" in text and "### Actions" in text
