"""The Incidents app in a real browser (Debian Chromium) served by real Voila: the queue
filters, an incident page opens, a comment added in the browser appears in the history, and
hostile alert titles, entity names, tags and comments stay text; no request leaves the machine."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from workbench.incidents.model import AlertDraft, Entity, Severity
from workbench.incidents.service import IncidentService
from workbench.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start and imports
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
T0 = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)


@pytest.fixture
def filled_store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    store = open_store(url=url)
    svc = IncidentService(store, "lead")

    def draft(key, severity, entity, title, hours):
        at = T0 + timedelta(hours=hours)
        return AlertDraft(policy_id="malicious_url_click", title=title, severity=severity, category="InitialAccess",
                          first_activity=at, last_activity=at, dedup_key=key, entities=(entity,),
                          explorer_query={"view": "all_email", "window": {"last": "30d"}, "where": None})
    svc.add_alerts([
        draft("b1", Severity.HIGH, Entity.of("url", f"https://evil.example/{PAYLOAD}"), f"Click on {PAYLOAD}", 0),
        draft("b2", Severity.LOW, Entity.of("device", f"LT-{PAYLOAD}"), "Low one", 1),
        draft("b3", Severity.MEDIUM, Entity.of("ip", "203.0.113.7"), "Medium one", 2),
    ])
    high = next(i for i in svc.list() if i.severity == Severity.HIGH)
    svc.tag(high.id, PAYLOAD)
    svc.comment(high.id, f"earlier note {PAYLOAD}")
    monkeypatch.setenv("WORKBENCH_DB_URL", url)  # the Voila kernel inherits it
    monkeypatch.setenv("WORKBENCH_USER", "browser-analyst")
    yield svc, high.id
    store.dispose()


def test_incidents_in_voila(page: Page, network_log, voila_server, small_tenant, filled_store, tmp_path):
    svc, high_id = filled_store
    dialogs: list[str] = []
    page.context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # every tab of the context
    page.goto(voila_server(small_tenant) + "voila/render/Incidents.ipynb")
    rows = page.locator("tr[data-incident]")
    expect(rows).to_have_count(3, timeout=RENDER)
    status = page.locator(".widget-select-multiple", has_text="Status").locator("select")
    severity = page.locator(".widget-select-multiple", has_text="Severity").locator("select")
    apply = page.get_by_role("button", name="Apply")

    # the queue filters: resolved only (none yet), then the default statuses and high severity only
    status.select_option(["resolved"])
    apply.click()
    expect(rows).to_have_count(0, timeout=30_000)
    status.select_option(["active", "inProgress"])
    severity.select_option(["high"])
    apply.click()
    expect(rows).to_have_count(1, timeout=30_000)
    expect(rows.first).to_contain_text(f"Click on {PAYLOAD}")  # the payload shown as text

    # the incident's number opens its page in a new tab (?incident=N)
    with page.context.expect_page() as opened:
        rows.first.locator("a.wb-incident-link").click()
    tab = opened.value
    tab.on("websocket", lambda ws: network_log.append(ws.url))
    assert tab.url.endswith(f"Incidents.ipynb?incident={high_id}")
    expect(tab.locator(f'[data-incident="{high_id}"] h3')).to_contain_text(f"Incident {high_id}", timeout=RENDER)
    expect(tab.locator("tr[data-alert]")).to_have_count(1)
    expect(tab.get_by_text("View messages in Explorer")).to_be_visible()
    expect(tab.locator(".wb-dl")).to_contain_text(PAYLOAD)  # the hostile tag, as text

    # a comment added in the browser appears in the comments and the history
    tab.locator(".lm-TabBar-tab", has_text="Comments").click()
    tab.locator("textarea").fill(f"browser comment {PAYLOAD}")
    tab.locator("button", has_text=re.compile(r"^\s*Comment\s*$")).click()
    expect(tab.locator(".wb-comment", has_text="browser comment")).to_contain_text(PAYLOAD, timeout=30_000)
    tab.locator(".lm-TabBar-tab", has_text="History").click()
    expect(tab.locator("td:visible", has_text="browser comment").first).to_be_visible()  # in the History tab
    assert [c.author for c in svc.comments(high_id)][-1] == "browser-analyst"
    assert any(a.action == "comment" and a.actor == "browser-analyst" for a in svc.activity(high_id))
    tab.locator(".lm-TabBar-tab", has_text=re.compile(r"^\s*Evidence\s*$")).click()
    expect(tab.locator("td:visible", has_text="hxxps[://]evil[.]example").first).to_be_visible()  # defanged

    # hostile values stayed text everywhere
    for p in (page, tab):
        assert p.evaluate("window.__xss") is None, "a hostile value ran as script"
        assert p.locator("img[src='x']").count() == 0 and p.locator("script", has_text="__xss").count() == 0
    assert dialogs == []
    network_log.assert_only_loopback()
    tab.locator(".lm-TabBar-tab", has_text="Timeline").click()
    tab.set_viewport_size({"width": 1400, "height": 2000})  # the lab template's body does not scroll
    shot = tmp_path / "incidents-voila.png"
    tab.screenshot(path=str(shot), full_page=True)
    if os.environ.get("WORKBENCH_ARTIFACTS"):
        Path(os.environ["WORKBENCH_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["WORKBENCH_ARTIFACTS"]) / shot.name)
