"""Incident reports (HTML, Markdown) and the `workbench incidents` / `alerts` commands on a store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.errors import InputError
from workbench.incidents import report
from workbench.incidents.model import AlertDraft, Entity, Severity, Verdict
from workbench.incidents.service import IncidentService
from workbench.store import open_store

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
URL = "https://login.evil-example.test/o365/[x](javascript:alert(3))"


@pytest.fixture
def filled(db_url):
    url = db_url
    store = open_store(url=url)
    svc = IncidentService(store, "ana")
    added = svc.add_alerts([AlertDraft(
        policy_id="url_click", title=f"Click on {XSS}", severity=Severity.HIGH, category="InitialAccess",
        first_activity=T0, last_activity=T0 + timedelta(minutes=3), dedup_key="r1",
        entities=(Entity.of("url", URL), Entity.of("user", f"bob{XSS}@corp.example", "clicked")),
        evidence=(Entity.of("url", URL), Entity.of("email", "nm-1|bob@corp.example")),
        verdicts=((f"url:{URL}", Verdict.MALICIOUS),),
        explorer_query={"view": "all_email", "window": {"last": "30d"}, "where": None})])
    incident_id = added.incidents_created[0]
    svc.comment(incident_id, f"looks bad {XSS} **bold** [link](https://x.test)")
    svc.tag(incident_id, XSS)
    yield url, svc, incident_id
    store.dispose()


def test_html_report_is_self_contained_and_inert(filled, tmp_path):
    _, svc, incident_id = filled
    text = report.html(svc.page(incident_id), generated_by=XSS)
    assert "<script" not in text and "<img" not in text and "onerror=\"" not in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert "hxxps[://]login[.]evil-example[.]test" in text and "https://login" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)  # nothing fetched, nothing linked
    assert "default-src 'none'" in text
    for section in ("Summary", "Alerts", "Evidence", "Timeline", "Comments"):
        assert f"<h2>{section}</h2>" in text
    path = report.write(svc.page(incident_id), tmp_path / "out" / "incident.html")
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_markdown_report_escapes_what_a_renderer_would_obey(filled, tmp_path):
    _, svc, incident_id = filled
    text = report.markdown(svc.page(incident_id))
    assert "<img" not in text and "<script" not in text
    assert "](javascript" not in text and "[link](https" not in text and "**bold**" not in text
    assert text.startswith(f"# Incident {incident_id}: Click on &lt;img")
    assert "| Kind | Entity | Verdict |" in text
    with pytest.raises(InputError, match="end the name in .html or .md"):
        report.write(svc.page(incident_id), tmp_path / "incident.pdf")
    assert not list(tmp_path.glob("incident*"))


def test_incident_commands(filled, small_tenant, tmp_path):
    url, svc, incident_id = filled
    run = CliRunner().invoke
    base = ["--tenant", str(small_tenant.root), "--db", url]
    listed = run(main, ["incidents", "list", *base])
    assert listed.exit_code == 0 and f"{incident_id} " in listed.output and "high" in listed.output
    shown = run(main, ["incidents", "show", str(incident_id), *base])
    assert shown.exit_code == 0 and "## Evidence" in shown.output
    out = tmp_path / "r.md"
    assert run(main, ["incidents", "report", str(incident_id), "--out", str(out), *base]).exit_code == 0
    assert out.read_text().startswith("# Incident")
    before = svc.activity(incident_id)
    bad = run(main, ["incidents", "update", str(incident_id), "--assign", "carol", "--status", "resolved", *base])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "needs a note" in bad.output
    assert svc.activity(incident_id) == before  # the assignment was not made either
    ok = run(main, ["incidents", "update", str(incident_id), "--assign", "carol", "--status", "resolved",
                    "--note", "contained", *base])
    assert ok.exit_code == 0, ok.output
    assert svc.get(incident_id).assigned_to == "carol" and svc.get(incident_id).status.value == "resolved"
    missing = run(main, ["incidents", "show", "4242", *base])
    assert missing.exit_code == 3 and "no incident 4242" in missing.output
    alerts = run(main, ["alerts", "list", *base])
    assert alerts.exit_code == 0 and "url_click" in alerts.output
    alert_id = svc.alerts()[0].id
    one = run(main, ["alerts", "show", alert_id, *base])
    assert one.exit_code == 0 and "Explorer.ipynb?q=" in one.output
    nodb = run(main, ["incidents", "list", "--tenant", str(small_tenant.root), "--db",
                      "postgresql://wb@127.0.0.1:1/none"])
    assert nodb.exit_code == 6 and "cannot connect to the database" in nodb.output


def test_alert_commands_run_incrementally_and_configure_policies(small_tenant, tmp_path):
    run = CliRunner().invoke
    base = ["--tenant", str(small_tenant.root), "--db", f"sqlite:///{tmp_path / 'wb.sqlite'}"]
    first = run(main, ["alerts", "run", *base])
    assert first.exit_code == 0, first.output
    created = int(first.output.strip().splitlines()[-1].split(" new alert")[0])
    assert created > 5 and "incident(s) created" in first.output
    again = run(main, ["alerts", "run", *base])
    assert again.output.strip().splitlines()[-1].startswith("0 new alert(s)")  # watermarks: nothing new
    reset = run(main, ["alerts", "run", "--reset", *base])
    assert reset.output.strip().splitlines()[-1].startswith("0 new alert(s)")  # re-read all, filed nothing twice
    off = run(main, ["alerts", "configure", "suspicious_sending", "--disable", "--threshold", "messages_per_hour=80",
                     *base])
    assert off.exit_code == 0 and "disabled" in off.output and "messages_per_hour=80" in off.output
    listed = run(main, ["alerts", "policies", *base])
    line = next(x for x in listed.output.splitlines() if x.startswith("suspicious_sending"))
    assert " off " in line and "messages_per_hour=80" in line
    bad = run(main, ["alerts", "configure", "suspicious_sending", "--threshold", "nonsense=1", *base])
    assert bad.exit_code == 2 and "has no threshold nonsense" in bad.output
    unknown = run(main, ["alerts", "run", "--policy", "no_such_policy", *base])
    assert unknown.exit_code == 3 and "no alert policy 'no_such_policy'" in unknown.output
    shown = run(main, ["alerts", "list", "--json", *base])
    assert shown.exit_code == 0 and len(shown.output.strip().splitlines()) == created
