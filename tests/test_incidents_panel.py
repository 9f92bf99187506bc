"""The incident queue and page, built headless and driven through their widgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workbench.incidents.model import AlertDraft, Entity, IncidentStatus, Severity, Verdict
from workbench.incidents.service import IncidentService
from workbench.store import open_store
from workbench.ui.incidents import IncidentPanel, IncidentQueuePanel

T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def hostile_drafts() -> list[AlertDraft]:
    def d(key, severity, *entities, title=None, policy="malicious_url_click", hours=0):
        at = T0 + timedelta(hours=hours)
        return AlertDraft(policy_id=policy, title=title or f"alert {key}", severity=severity, category="InitialAccess",
                          first_activity=at, last_activity=at, dedup_key=key, entities=entities,
                          verdicts=((entities[0].key, Verdict.MALICIOUS),) if entities else (),
                          explorer_query={"view": "all_email", "window": {"last": "30d"}, "where": None})
    return [
        d("h1", Severity.HIGH, Entity.of("url", f"https://evil.example/{XSS}"), title=f"Click {XSS}"),
        d("h2", Severity.LOW, Entity.of("user", f"x{XSS}@corp.example", "clicked"), hours=1, policy="user_reported_message"),
        d("h3", Severity.MEDIUM, Entity.of("file", "ab" * 32), hours=2, policy="content_malware"),
    ]


@pytest.fixture
def svc(db_url):
    store = open_store(url=db_url)
    service = IncidentService(store, "ana")
    service.add_alerts(hostile_drafts())
    yield service
    store.dispose()


def html_of(widget) -> str:
    """Every HTML string under a widget tree."""
    out = []
    stack = [widget]
    while stack:
        node = stack.pop()
        value = getattr(node, "value", None)
        if isinstance(value, str) and node.__class__.__name__ == "HTML":
            out.append(value)
        stack.extend(getattr(node, "children", ()))
    return "\n".join(out)


def assert_inert(widget) -> None:
    html = html_of(widget)
    assert "<script" not in html and "<img" not in html and 'onerror="' not in html


def test_queue_filters_sort_search_and_saved_filters(svc):
    q = IncidentQueuePanel(svc)
    assert len(q.incidents) == 3 and q.table.value.count("data-incident=") == 3
    assert "Last 24 hours: alerts 1 high · 1 medium · 1 low; new incidents 1 high" in q.last_day.value
    q.severity.value = ("high", "medium")
    q.apply_button.click()
    assert {i.severity for i in q.incidents} == {Severity.HIGH, Severity.MEDIUM}
    q.sort.value, q.descending.value = "severity", False
    q.apply_button.click()
    assert [i.severity for i in q.incidents] == [Severity.MEDIUM, Severity.HIGH]
    q.save_name.value = "urgent <b>"
    q.save_button.click()
    assert q.saved.options == ("urgent <b>",)
    q.severity.value, q.sort.value = (), "last_update"
    q.search.value = "evil.example"
    q.apply_button.click()
    assert len(q.incidents) == 1 and q.incidents[0].severity == Severity.HIGH
    q.saved.value = "urgent <b>"
    q.load_button.click()
    assert q.severity.value == ("high", "medium") and q.sort.value == "severity" and q.search.value == ""
    q.delete_button.click()
    assert q.saved.options == ()
    assert_inert(q)


def test_bulk_assign_and_resolve_need_what_they_need(svc):
    q = IncidentQueuePanel(svc)
    q.bulk_resolve_button.click()
    assert "select one or more incidents" in q.error.value
    q.selection.value = tuple(i.id for i in q.incidents[:2])
    q.bulk_assignee.value = "carol"
    q.bulk_assign_button.click()
    assert sum(svc.get(i.id).assigned_to == "carol" for i in svc.list()) == 2
    q.selection.value = tuple(i.id for i in q.incidents[:2])
    before = [a.action for i in q.selection.value for a in svc.activity(i)]
    q.bulk_resolve_button.click()  # no note
    assert "needs a note" in q.error.value
    assert [a.action for i in q.selection.value for a in svc.activity(i)] == before  # nothing changed
    q.bulk_note.value = "false alarm"
    q.bulk_resolve_button.click()
    assert "2 incident(s) resolved" in q.note.value and len(q.incidents) == 1  # the default queue hides them


def test_incident_page_changes_comments_and_history(svc, tmp_path):
    q = IncidentQueuePanel(svc, export_dir=tmp_path)
    high = next(i for i in q.incidents if i.severity == Severity.HIGH)
    q.goto.value = "4242"
    q.goto_button.click()
    assert "no incident 4242" in q.error.value and q.page is None
    q.goto.value = f"#{high.id}"
    q.goto_button.click()
    page: IncidentPanel = q.page
    assert f'data-incident="{high.id}"' in page.summary.value and "View messages in Explorer" in page.alerts.value
    assert "Explorer.ipynb?q=" in page.alerts.value
    assert "hxxps[://]evil[.]example" in html_of(page.evidence)
    page.comment_text.value = f"checked {XSS}"
    page.comment_button.click()
    assert "checked &lt;img" in page.comments.value and "comment" in page.history.value
    page.comment_button.click()  # empty now
    assert "empty comment" in page.error.value
    page.reopen_button.click()  # active -> active: nothing to do, no error
    page.resolve_button.click()
    assert "needs a note" in page.error.value and svc.get(high.id).status == IncidentStatus.ACTIVE
    page.in_progress_button.click()
    page.severity.value = "medium"
    page.severity_button.click()
    page.tag_text.value = XSS
    page.tag_button.click()
    page.resolve_note.value = "blocked at the proxy"
    page.resolve_button.click()
    assert svc.get(high.id).status == IncidentStatus.RESOLVED and "blocked at the proxy" in page.summary.value
    history = page.history.value
    for action in ("status", "severity", "tags_added", "resolution_note", "comment"):
        assert f"<td>{action}</td>" in history
    page.merge_ids.value = "abc"
    page.merge_button.click()
    assert "not a list of incident numbers" in page.error.value
    from urllib.parse import quote

    from workbench.air import records
    clicked = svc.alerts(incident_id=high.id)[0]
    run_now = f'playbooks/url_click_verdict_change.ipynb?alert={quote(clicked.id, safe="")}'
    page.refresh()  # an alert AIR handles, with no investigation yet: the dispatcher's, or "Run now"
    assert run_now in page.investigations.value and 'class="wb-run-playbook"' in page.investigations.value
    run = records.start(svc.store, "url_click_verdict_change", "Clicked <b>", started_by="dispatcher", parameters={},
                        alert_id=clicked.id)
    page.refresh()
    assert f'data-investigation="{run}"' in page.investigations.value and "url_click_verdict_change" in page.investigations.value
    assert f'Investigations.ipynb?investigation={run}' in page.investigations.value and run_now not in page.investigations.value
    path = page.export("html")
    assert path.exists() and path.parent == tmp_path and "data:text/html;base64," in page.download.value
    assert page.export("md").read_text().startswith(f"# Incident {high.id}")
    assert_inert(q)


def test_incident_page_rename_link_unlink_merge_and_refusals(svc, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    q = IncidentQueuePanel(svc, export_dir=reports,
                           policies=["malicious_url_click", "user_reported_message", "content_malware"])
    by_sev = {i.severity: i.id for i in q.incidents}
    high, medium, low = by_sev[Severity.HIGH], by_sev[Severity.MEDIUM], by_sev[Severity.LOW]
    assert f'href="Incidents.ipynb?incident={high}"' in q.table.value  # a click opens that incident's page
    q.policy.value = "content_malware"
    q.apply_button.click()
    assert [i.id for i in q.incidents] == [medium]
    q.policy.value, q.assigned.value = "", "(unassigned)"
    q.apply_button.click()
    assert len(q.incidents) == 3

    page = q.open_incident(high)
    page.assignee.value = "bob"
    page.assign_button.click()
    assert "bob" in page.summary.value and len(q.incidents) == 2  # the queue redrew: high is no longer unassigned
    page.name.value = f"Renamed {XSS}"
    page.rename_button.click()
    q.assigned.value = ""
    q.apply_button.click()
    assert "Renamed &lt;img" in page.summary.value and "Renamed &lt;img" in q.table.value

    # link the medium incident's alert here, then unlink it again (into a new incident of its own)
    moved = svc.alerts(incident_id=medium)[0].id
    page.link_alert.value = "no-such-alert"
    page.link_button.click()
    assert "no-such-alert" in page.error.value and page.alerts.value.count("data-alert=") == 1
    page.link_alert.value = moved
    page.link_button.click()
    assert page.error.value == "" and page.alerts.value.count("data-alert=") == 2
    page.unlink.value = moved
    page.unlink_button.click()
    assert page.alerts.value.count("data-alert=") == 1 and svc.alert(moved).incident_id not in (high, medium)
    before = len(svc.activity(high))
    page.unlink.value = page.unlink.options[0][1]
    page.unlink_button.click()
    assert "only alert" in page.error.value and len(svc.activity(high)) == before  # nothing changed

    # merge the low incident into this one; its page then says where it went and refuses changes
    page.merge_ids.value = f"#{low}"
    page.merge_button.click()
    assert page.alerts.value.count("data-alert=") == 2 and f"?incident={low}" in page.summary.value
    merged = q.open_incident(low)
    assert "Merged into" in merged.summary.value and f'href="Incidents.ipynb?incident={high}"' in merged.summary.value
    before = len(svc.activity(low))
    merged.in_progress_button.click()
    assert f"merged into incident {high}" in merged.error.value
    assert svc.get(low).status == IncidentStatus.REDIRECTED and len(svc.activity(low)) == before

    # the timeline holds the alerts and the activity, in time order
    page = q.open_incident(high)
    timeline = page.timeline.value
    assert "assigned_to" in timeline and "alert_linked" in timeline and "merged" in timeline
    assert timeline.index("alert ") < timeline.index("assigned_to")  # alerts of Nov 10 before today's changes

    # the report buttons write into the reports folder and offer a download
    page.html_button.click()
    assert "data:text/html;base64," in page.download.value
    page.md_button.click()
    assert "data:text/markdown;base64," in page.download.value
    written = {p.suffix: p for p in reports.iterdir()}
    assert sorted(written) == [".html", ".md"]
    assert "Renamed &lt;img" in written[".html"].read_text() and "<script" not in written[".html"].read_text()
    assert_inert(q)
