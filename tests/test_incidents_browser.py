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
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(voila_server(small_tenant) + "voila/render/Incidents.ipynb")
    rows = page.locator("tr[data-incident]")
    expect(rows).to_have_count(3, timeout=RENDER)

    # the queue filters: severity high only
    page.locator(".widget-select-multiple", has_text="Severity").locator("select").select_option(["high"])
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1, timeout=30_000)
    expect(rows.first).to_contain_text(f"Click on {PAYLOAD}")  # the payload shown as text

    # an incident page opens
    page.locator(".widget-text", has_text="Incident #").locator("input").fill(str(high_id))
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.locator(f'[data-incident="{high_id}"] h3')).to_contain_text(f"Incident {high_id}", timeout=30_000)
    expect(page.locator("tr[data-alert]")).to_have_count(1)
    expect(page.get_by_text("View messages in Explorer")).to_be_visible()

    # a comment added in the browser appears in the comments and the history
    page.locator(".lm-TabBar-tab", has_text="Comments").click()
    page.locator("textarea").fill(f"browser comment {PAYLOAD}")
    page.locator("button", has_text=re.compile(r"^\s*Comment\s*$")).click()
    expect(page.locator(".wb-comment", has_text="browser comment")).to_contain_text(PAYLOAD, timeout=30_000)
    page.locator(".lm-TabBar-tab", has_text="History").click()
    history = page.locator("td:visible", has_text="browser comment").first  # in the History tab
    expect(history).to_be_visible()
    assert [c.author for c in svc.comments(high_id)][-1] == "browser-analyst"
    assert any(a.action == "comment" and a.actor == "browser-analyst" for a in svc.activity(high_id))

    # hostile values stayed text everywhere
    assert page.evaluate("window.__xss") is None, "a hostile value ran as script"
    assert dialogs == []
    assert page.locator("img[src='x']").count() == 0
    network_log.assert_only_loopback()
    shot = tmp_path / "incidents-voila.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("WORKBENCH_ARTIFACTS"):
        Path(os.environ["WORKBENCH_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(os.environ["WORKBENCH_ARTIFACTS"]) / shot.name)
