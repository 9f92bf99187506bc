"""The attack simulator in a real browser (Debian Chromium):

- the tracking server's login and teaching pages render from a real ``TrackingServer`` over the
  tenant's store; submitting the login form records CREDENTIALS_SUPPLIED, and the typed password
  is in no byte of the store;
- the Simulator app in real Voila opens a running campaign's report (``?campaign=N``) and, with
  Live on, shows an event recorded after the page loaded without a reload;
- hostile payload fields and user agents stay text (``window.__xss`` unset); no traceback; no
  request leaves the machine."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from workbench import rbac
from workbench.lake import Lake
from workbench.rbac import Role
from workbench.simulator.campaigns import CampaignSettings, SimulationService
from workbench.simulator.model import EventKind, Hit
from workbench.simulator.payload_store import save_payload
from workbench.simulator.recorder import StoreTracker
from workbench.simulator.targets import TargetFilter, select
from workbench.simulator.tracking import TrackingServer
from workbench.store import open_store
from workbench.store import tables as t
from workbench.tenant import open_tenant

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start and imports
XSS = "<img src=x onerror=window.__xss=1>"
PASSWORD = "Browser-Typed-Secret-2026!"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")  # headless Chromium calls itself HeadlessChrome, which the tracker flags as a scanner
ADMIN, SIM, AUTHOR = "root", "simon", "paula"


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "user_agent": CHROME}


@pytest.fixture
def campaign(small_tenant, tmp_path, monkeypatch):
    """A private tenant copy with a running credential-harvest campaign of a hostile tenant payload
    for 5 users: all delivered, one compromised, one scanner click with a script for user agent."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small",
                    ignore=shutil.ignore_patterns("workbench.sqlite*"))
    tenant = open_tenant("small", base=tmp_path)
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_USER", SIM)  # the Voila kernel inherits it
    store = open_store(tenant)
    rbac.bootstrap(store, ADMIN)
    rbac.grant(store, ADMIN, SIM, Role.ATTACK_SIMULATION_ADMINISTRATOR)
    rbac.grant(store, ADMIN, AUTHOR, Role.ATTACK_PAYLOAD_AUTHOR)
    save_payload(store, AUTHOR, {
        "id": "hostile-browser", "name": f"Hostile {XSS}", "technique": "credentialHarvest",
        "subject": f"Reset {XSS} now", "sender_name": f"IT {XSS}", "sender_address": "it@phish.example",
        "html": '<p>Hi {{name}}, <a href="{{link}}">reset</a></p><script>window.__xss=3</script>',
        "text": "Hi {{name}}, reset your password at {{link}}", "indicators": [f"look at {XSS}"]})
    svc = SimulationService(store, SIM)
    c = svc.create(f"Browser {XSS}", "hostile-browser",
                   select(Lake.for_tenant(tenant), TargetFilter(all_users=True, limit=5)),
                   settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False))
    svc.launch(c.id)
    tokens = [x.token for x in svc.targets(c.id)]
    tracker = StoreTracker(store, organisation="Adatum security")
    start = datetime.now(UTC) - timedelta(hours=1)
    for tok in tokens:
        tracker.record(tok, EventKind.DELIVERED, Hit(at=start, ip="127.0.0.1", user_agent="", source="smtp"))
    tracker.record(tokens[0], EventKind.CLICKED, Hit(at=start + timedelta(minutes=5), ip="198.51.100.7",
                                                     user_agent=CHROME, source="link"))
    tracker.record(tokens[0], EventKind.CREDENTIALS_SUPPLIED,
                   Hit(at=start + timedelta(minutes=6), ip="198.51.100.7", user_agent=CHROME, source="form"))
    tracker.record(tokens[3], EventKind.CLICKED, Hit(at=start + timedelta(minutes=1), ip="203.0.113.9",
                                                     user_agent=XSS, source="link", reasons=("scanner_agent",)))
    yield tenant, store, svc, c, tracker, tokens
    store.dispose()


def assert_inert(page: Page) -> None:
    assert page.evaluate("window.__xss") is None, "a hostile value ran as script"
    assert page.locator("img[src='x']").count() == 0
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "There was an error when executing cell" not in body


def test_login_page_records_credentials_but_never_the_password(page: Page, network_log, campaign):
    tenant, store, svc, c, tracker, tokens = campaign
    token = tokens[1]
    with TrackingServer(StoreTracker(store, organisation="Adatum security"), min_seconds=0) as web:
        page.goto(f"{web.base_url}/c/{token}")
        expect(page.locator("input[name=password]")).to_be_visible(timeout=15_000)
        expect(page.locator("button[type=submit]")).to_be_visible()
        page.fill("input[name=password]", PASSWORD)
        page.locator("button[type=submit]").click()
        expect(page.locator("body")).to_contain_text(XSS, timeout=15_000)  # the teaching page: indicators as text
        assert_inert(page)
        network_log.assert_only_loopback()
    with store.read() as conn:
        rows = conn.execute(sa.select(t.sim_events.c.kind, t.sim_events.c.reasons, t.sim_events.c.details)
                            .join(t.sim_targets, t.sim_targets.c.id == t.sim_events.c.target_id)
                            .where(t.sim_targets.c.token == token)).all()
    kinds = {r.kind: r for r in rows}
    assert "clicked" in kinds and "credentialsSupplied" in kinds, rows
    assert kinds["credentialsSupplied"].reasons == "", "a real browser's submit must count"
    assert svc.targets(c.id)[1].status.value == "compromised"
    store.dispose()
    leaks = [p.name for p in tenant.root.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert not leaks, f"the password was written to {leaks}"


def test_live_report_and_hostile_values_in_voila(page: Page, network_log, voila_server, campaign):
    tenant, store, svc, c, tracker, tokens = campaign
    dialogs: list[str] = []
    page.context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(voila_server(tenant) + f"voila/render/Simulator.ipynb?campaign={c.id}")
    report = page.locator(f'[data-report="{c.id}"]')
    expect(report).to_be_visible(timeout=RENDER)
    expect(report).to_contain_text(f"Campaign {c.id}: Browser {XSS}")  # as text
    compromised = page.locator('td[data-count="compromised"]')
    expect(compromised).to_have_text("1")
    expect(page.locator('td[data-count="flagged_events"]')).to_have_text("1")
    flagged = page.locator("tr[data-flagged]")
    expect(flagged).to_have_count(1)
    expect(flagged).to_contain_text(XSS)
    expect(flagged).to_contain_text("scanner_agent")
    expect(page.locator("img.widget-image:visible")).to_have_count(2)  # the report's two SVG charts

    page.get_by_role("button", name=re.compile(r"Live")).click()
    tracker.record(tokens[2], EventKind.CREDENTIALS_SUPPLIED,
                   Hit(at=datetime.now(UTC), ip="198.51.100.8", user_agent=CHROME, source="form"))
    expect(compromised).to_have_text("2", timeout=30_000)  # no reload
    page.get_by_role("button", name=re.compile(r"Live")).click()  # off again

    page.locator(".lm-TabBar-tab", has_text="Create").click()
    page.locator("[class*='Collapse-header']", has_text="2. Payload").click()
    payload = page.locator(".widget-dropdown", has_text="Payload").locator("select")
    payload.select_option(label=f"Hostile {XSS} (tenant)")
    preview = page.locator('.wb-payload-preview[data-payload="hostile-browser"]')
    expect(preview).to_be_visible(timeout=30_000)
    expect(preview).to_contain_text(f"Reset {XSS} now")
    expect(preview.locator(".wb-indicators")).to_contain_text(f"look at {XSS}")

    assert_inert(page)
    assert page.locator("script", has_text="__xss").count() == 0
    assert dialogs == []
    network_log.assert_only_loopback()
