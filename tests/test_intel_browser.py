"""The ThreatIntel app in real Voila + Debian Chromium: hostile indicator descriptions, family
names and threat-note text show as text on every tab (``window.__xss`` stays unset), a search
typed into the page finds the hostile indicator, a Security Reader's Import is disabled, no
traceback, and no request leaves the machine."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import Page, expect

from workbench import rbac
from workbench.explorer.query import Cond, Query, Window
from workbench.intel import imports, trackers
from workbench.rbac import Role
from workbench.store import open_store
from workbench.tenant import open_tenant

from test_intel_panel import ADMIN, READER, SCRIPT, TRACKED, XSS, hostile_bundle, hostile_csv

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start and imports


@pytest.fixture
def hostile_tenant(small_tenant, tmp_path, monkeypatch):
    """A private tenant copy holding the hostile STIX bundle and CSV feed and a hostile tracker;
    the app's acting user is a Security Reader."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small",
                    ignore=shutil.ignore_patterns("workbench.sqlite*"))
    tenant = open_tenant("small", base=tmp_path)
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER", "WORKBENCH_APPS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_USER", READER)  # the Voila kernel inherits it
    store = open_store(tenant)
    rbac.bootstrap(store, ADMIN)
    rbac.grant(store, ADMIN, READER, Role.SECURITY_READER)
    for name, text in (("hostile.json", hostile_bundle()), ("hostile.csv", hostile_csv())):
        (tmp_path / name).write_text(text)
        imports.import_file(store, tmp_path / name, actor=ADMIN)
    trackers.track(store, ADMIN, TRACKED, Query("all_email", Window.last("7d"),
                                                Cond("Sender domain", "any", ("proseware.com",))))
    store.dispose()
    yield tenant


def assert_inert(page: Page) -> None:
    assert page.evaluate("window.__xss") is None, "a hostile value ran as script"
    assert page.locator("img[src='x']").count() == 0
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "There was an error when executing cell" not in body


def test_threat_intel_app_shows_hostile_values_as_text(page: Page, network_log, voila_server, hostile_tenant):
    dialogs: list[str] = []
    page.context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(voila_server(hostile_tenant) + "voila/render/ThreatIntel.ipynb")
    expect(page.get_by_text("Threat intelligence", exact=True)).to_be_visible(timeout=RENDER)
    expect(page.locator("table.wb-intel").first).to_be_visible(timeout=RENDER)

    page.locator(".lm-TabBar-tab", has_text="Noteworthy threats").click()
    evil = page.locator(".wb-card", has=page.locator("h3", has_text=f"Evil {XSS}"))
    expect(evil).to_have_count(1)
    expect(evil.locator("h3")).to_have_text(f"Evil {XSS} {SCRIPT}")
    expect(evil.locator(".wb-seen")).to_have_text("not seen here")
    report = page.locator(".wb-card", has=page.locator("h3", has_text=f"Report {SCRIPT}"))
    expect(report.locator(".wb-desc")).to_have_text(f"{XSS} report body")
    expect(report).to_contain_text(f"Block macros {SCRIPT}")
    donoff = page.locator(".wb-card", has=page.locator("h3", has_text="Donoff"))
    expect(donoff.locator(".wb-seen")).to_contain_text("seen here:")

    page.locator(".lm-TabBar-tab", has_text="Trackers").click()
    expect(page.locator("tr[data-tracker]:visible")).to_contain_text(TRACKED)

    page.locator(".lm-TabBar-tab", has_text="Indicators").click()
    import_button = page.get_by_role("button", name="Import")
    expect(import_button).to_be_disabled()
    search = page.get_by_placeholder("value, family or description contains…")
    search.fill("onerror")
    search.press("Enter")
    rows = page.locator("tr[data-indicator]:visible")
    expect(rows).to_have_count(2, timeout=30_000)  # the CSV URL and the STIX domain
    expect(rows.filter(has_text="xss-family[.]example")).to_contain_text(f"desc {XSS} {SCRIPT}")
    expect(rows.filter(has_text="hxxp[://]xss[.]example/")).to_contain_text(f"csv {XSS}")

    page.locator(".lm-TabBar-tab", has_text="Campaigns").click()
    expect(page.locator("tr[data-campaign]:visible").first).to_be_visible()
    href = page.locator("tr[data-campaign]:visible a.wb-explore").first.get_attribute("href")
    assert href and Query.from_link(href)

    assert_inert(page)
    assert dialogs == []
    network_log.assert_only_loopback()
