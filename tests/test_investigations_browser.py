"""An investigation opened in Voila (Debian Chromium): its graph and pending actions are shown,
hostile values stay text, no request leaves the machine."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from workbench.air.email_investigation import investigate_emails
from workbench.air import records
from workbench.air.model import ActionType
from workbench.incidents.model import EntityKind
from workbench.lake import Lake
from workbench.store import open_store
from workbench.ui.investigation import InvestigationPanel

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000
PAYLOAD = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
def investigated(small_tenant, tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    store = open_store(url=db)
    stories = {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}
    nmid = stories["credential-phish-campaign"]["messages"][0]["NetworkMessageId"]
    rec = investigate_emails(store, Lake.for_tenant(small_tenant), [nmid], playbook="manual_email_investigation",
                             name=f"Investigate {PAYLOAD}", started_by="ana").record
    records.propose(store, rec.investigation.id, ActionType.BLOCK_SENDER, EntityKind.MAILBOX, f"x{PAYLOAD}@evil.example",
                    reason=PAYLOAD)
    monkeypatch.setenv("WORKBENCH_DB_URL", db)
    yield store, rec
    store.dispose()


def test_the_panel_shows_graph_and_actions_headless(investigated):
    store, rec = investigated
    html = InvestigationPanel(store, rec.investigation.id).body.value
    assert "<svg" in html and "Pending actions" in html and "blockUrl" in html
    assert "<img" not in html and "&lt;img src=x" in html


def test_an_investigation_in_voila(page: Page, network_log, voila_server, small_tenant, investigated):
    _, rec = investigated
    page.goto(voila_server(small_tenant) + f"voila/render/Investigations.ipynb?investigation={rec.investigation.id}")
    panel = page.locator(f'[data-investigation="{rec.investigation.id}"]')
    expect(panel.locator("h3")).to_contain_text(f"Investigation {rec.investigation.id}", timeout=RENDER)
    expect(panel.locator("svg.wb-graph")).to_contain_text("Pending actions")
    expect(panel.locator("svg.wb-graph")).to_contain_text(rec.investigation.status.value)
    expect(panel.locator("td", has_text="blockUrl")).to_have_count(1)
    expect(panel.locator("td", has_text="blockSender")).to_have_count(1)
    expect(panel.locator("h3")).to_contain_text(PAYLOAD)  # shown as text
    assert page.evaluate("window.__xss") is None and page.locator("img[src='x']").count() == 0
    network_log.assert_only_loopback()


@pytest.fixture
def alerted(investigated, small_tenant):
    """The small tenant's alerts, filed in the investigated store (WORKBENCH_DB_URL)."""
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService

    store, rec = investigated
    alerting.run(store, Lake.for_tenant(small_tenant))
    return rec, IncidentService(store, "test").alerts()


def test_a_playbook_as_a_voila_app(page: Page, network_log, voila_server, small_tenant, alerted):
    """?alert=ID runs the playbook and shows the new investigation; ?investigation=ID shows one;
    a bad address is one escaped line; no traceback, no script from the data, nothing off the machine."""
    from workbench.air.playbook import PLAYBOOK_FOR_POLICY

    hostile, alerts = alerted
    alert = next(a for a in alerts if PLAYBOOK_FOR_POLICY.get(a.policy_id) == "phish_zap")
    root = voila_server(small_tenant)
    page.goto(root)  # the home page lists the playbooks (notebooks/playbooks leads to playbooks/)
    expect(page.locator('.wb-app[data-app="playbook_phish_zap"] a')).to_have_attribute(
        "href", "/voila/render/playbooks/phish_zap.ipynb", timeout=30_000)
    base = root + "voila/render/playbooks/phish_zap.ipynb"

    page.goto(f"{base}?alert={alert.id}")
    ran = page.locator("[data-ran]")
    expect(ran).to_contain_text("phish_zap ran: investigation", timeout=RENDER)
    new_id = int(ran.get_attribute("data-ran"))
    assert new_id != hostile.investigation.id
    panel = page.locator(f'[data-investigation="{new_id}"]')
    expect(panel.locator("h3")).to_contain_text(f"Investigation {new_id}")
    graph = panel.locator("svg.wb-graph")
    expect(graph).to_contain_text(alert.id[:24])
    expect(graph).to_contain_text("Pending actions")
    expect(panel.locator("h4", has_text="Pending actions")).to_be_visible()
    expect(page.locator(".widget-text input").first).to_be_visible()  # the form, filled from the address
    assert "Traceback" not in page.content()
    network_log.assert_only_loopback()

    page.goto(f"{base}?investigation={hostile.investigation.id}")
    panel = page.locator(f'[data-investigation="{hostile.investigation.id}"]')
    expect(panel.locator("h3")).to_contain_text(PAYLOAD, timeout=RENDER)  # shown as text
    expect(panel.locator("td", has_text="blockSender")).to_have_count(1)
    assert page.evaluate("window.__xss") is None and page.locator("img[src='x']").count() == 0

    page.goto(f"{base}?alert={PAYLOAD}")
    error = page.locator(".wb-error")
    expect(error).to_contain_text(PAYLOAD, timeout=RENDER)
    assert page.evaluate("window.__xss") is None and page.locator("img[src='x']").count() == 0
    assert "Traceback" not in page.content() and "NotFound" not in page.content()
    network_log.assert_only_loopback()
