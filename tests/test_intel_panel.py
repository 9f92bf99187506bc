"""The ThreatIntel app headless: hostile indicator descriptions, family names and threat-note
text stay escaped on every tab; sparklines are SVG polylines; Explore links parse back to the
queries they were made from; importing is disabled for a Security Reader and, for an admin,
imports the uploaded file and shows the retro-hunt summary."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from html import unescape
from typing import Any

import ipywidgets as w
import pytest
import stix2

from workbench import rbac
from workbench.explorer.query import Cond, Query, Window
from workbench.intel import imports, trackers
from workbench.intel.trends import family_trends
from workbench.lake import Lake
from workbench.rbac import Role
from workbench.store import open_store
from workbench.tenant import open_tenant
from workbench.ui import intel_widgets as iw
from workbench.ui.intel import ThreatIntelPanel

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # noon of the small tenant's last day
XSS = "<img src=x onerror=window.__xss=1>"
SCRIPT = '"><script>alert(1)</script>'
ADMIN, READER = "root", "reader"
DONOFF_IP = "85.242.119.4"  # a sender of the small tenant's planted Donoff campaign
TRACKED = f"Proseware {XSS}"


def hostile_bundle() -> str:
    """A STIX 2.1 bundle whose indicator descriptions, family names and report text are hostile,
    plus one real Donoff indicator (a sender IP of the planted campaign)."""
    hostile = stix2.v21.Indicator(name=f"ind {SCRIPT}", pattern="[domain-name:value = 'xss-family.example']",
                                  pattern_type="stix", valid_from="2026-01-01T00:00:00Z",
                                  description=f"desc {XSS} {SCRIPT}", confidence=80)
    real = stix2.v21.Indicator(pattern=f"[ipv4-addr:value = '{DONOFF_IP}']", pattern_type="stix",
                               valid_from="2026-01-01T00:00:00Z", description="Donoff sender", confidence=90)
    evil = stix2.v21.Malware(name=f"Evil {XSS} {SCRIPT}", is_family=True, description=f"family {XSS}")
    donoff = stix2.v21.Malware(name="Donoff", is_family=True, description=f"Macro dropper {SCRIPT}")
    technique = stix2.v21.AttackPattern(name=f"Phishing {XSS}", external_references=[
        {"source_name": "mitre-attack", "external_id": "T1566"}])
    protection = stix2.v21.CourseOfAction(name=f"Block macros {SCRIPT}")
    report = stix2.v21.Report(name=f"Report {SCRIPT}", description=f"{XSS} report body",
                              published="2026-11-01T00:00:00Z", report_types=["threat-report"],
                              object_refs=[hostile.id, evil.id, technique.id, protection.id])
    rels = [stix2.v21.Relationship(hostile, "indicates", evil), stix2.v21.Relationship(real, "indicates", donoff),
            stix2.v21.Relationship(donoff, "uses", technique),
            stix2.v21.Relationship(protection, "mitigates", technique)]
    return stix2.v21.Bundle(hostile, real, evil, donoff, technique, protection, report, *rels).serialize()


def hostile_csv() -> str:
    return f"url,threat\nhttp://xss.example/{SCRIPT},csv {XSS}\n"  # threat: the description


@pytest.fixture
def tenant(small_tenant, tmp_path, monkeypatch):
    """A private tenant copy with roles (admin, reader), the hostile CSV feed and a tracked query."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small",
                    ignore=shutil.ignore_patterns("workbench.sqlite*"))
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER", "WORKBENCH_APPS_URL"):
        monkeypatch.delenv(name, raising=False)
    t = open_tenant("small", base=tmp_path)
    store = open_store(t)
    rbac.bootstrap(store, ADMIN)
    rbac.grant(store, ADMIN, READER, Role.SECURITY_READER)
    feed = tmp_path / "hostile.csv"
    feed.write_text(hostile_csv())
    assert imports.import_file(store, feed, actor=ADMIN).added == 1
    trackers.track(store, ADMIN, TRACKED, Query("all_email", Window.last("7d"),
                                                Cond("Sender domain", "any", ("proseware.com",))))
    yield t, store
    store.dispose()


def html_of(widget: w.Widget) -> str:
    """Every HTML value below *widget* (the page's markup, as the browser receives it)."""
    out = [widget.value] if isinstance(widget, w.HTML) else []
    for child in getattr(widget, "children", ()):
        out.append(html_of(child))
    return "\n".join(out)


def assert_escaped(markup: str) -> None:
    assert "<script" not in markup.lower() and "<img" not in markup.lower(), "hostile markup reached the page"
    assert "onerror=window" not in re.sub(r"&lt;img src=x onerror=window.__xss=1&gt;", "", markup)


def upload(panel: ThreatIntelPanel, name: str, content: bytes) -> None:
    panel.upload.value = ({"name": name, "type": "application/json", "size": len(content),
                           "content": memoryview(content), "last_modified": NOW},)


def panel_for(store: Any, t: Any, actor: str) -> ThreatIntelPanel:
    return ThreatIntelPanel(store, Lake.for_tenant(t), actor, now=NOW)


@pytest.fixture
def admin_panel(tenant) -> ThreatIntelPanel:
    t, store = tenant
    panel = panel_for(store, t, ADMIN)
    upload(panel, "hostile.json", hostile_bundle().encode())
    assert panel.import_upload() is not None, panel.error.value
    return panel


def test_admin_imports_an_upload_and_sees_the_retro_hunt_summary(admin_panel):
    panel = admin_panel
    assert not panel.upload.disabled and not panel.import_button.disabled
    summary = unescape(panel.import_result.value)
    assert "hostile.json (stix-2.1): 2 added" in summary and "retro-hunt of indicators" in summary
    assert panel.hunt is not None and panel.hunt.found >= 1  # the Donoff sender IP is in the lake
    assert panel.error.value == ""
    assert panel.upload.value == ()


def test_hostile_values_are_escaped_on_every_tab(admin_panel):
    panel = admin_panel
    panel.run_trackers()
    page = html_of(panel)
    assert_escaped(page)
    text = unescape(page)
    for value in (f"desc {XSS} {SCRIPT}", f"Evil {XSS} {SCRIPT}", f"Report {SCRIPT}", f"{XSS} report body",
                  f"Macro dropper {SCRIPT}", f"Block macros {SCRIPT}", TRACKED, f"csv {XSS}"):
        assert value in text, value
    assert "hxxp[://]xss[.]example/" in text  # URLs defanged
    assert "xss-family[.]example" in text


def test_threat_cards_say_where_each_threat_was_seen(admin_panel):
    cards = {c.value.split('data-note="')[1].split('"')[0]: unescape(c.value) for c in admin_panel.cards.children}
    assert len(cards) == len(imports.notes(admin_panel.store)) >= 3
    donoff = next(v for v in cards.values() if "<h3>Donoff</h3>" in v)
    assert "seen here:" in donoff and "T1566" in donoff and f"Block macros {SCRIPT}" in donoff
    evil = next(v for v in cards.values() if f"<h3>Evil {XSS} {SCRIPT}</h3>" in v)
    assert "not seen here" in evil


def test_sparklines_are_svg_polylines(tenant):
    t, store = tenant
    panel = panel_for(store, t, READER)
    frame = family_trends(panel.lake, now=NOW)
    assert frame.height and len(frame["daily"][0]) == 14
    markup = html_of(panel.trends_box)
    assert 'data-family="Donoff"' in markup
    sparks = re.findall(r'<svg class="wb-spark"[^>]*>.*?</svg>', markup)
    assert sparks and all(re.search(r'<polyline [^>]*points="[\d., ]+"/>', s) for s in sparks)
    assert all("script" not in s and "href" not in s for s in sparks)
    assert iw.sparkline_svg([]).count("<polyline") == 1


def _links(markup: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'<a class="wb-explore" href="([^"]+)"', markup)]


def test_explore_links_parse_back_to_their_queries(tenant):
    t, store = tenant
    panel = panel_for(store, t, READER)
    campaigns = panel.campaigns
    assert campaigns is not None and campaigns.height
    links = _links(html_of(panel.campaigns_list))
    assert len(links) == campaigns.height and all(x.startswith("Explorer.ipynb?q=") for x in links)
    for link, query in zip(links, campaigns["query"]):
        assert Query.from_link(link) == Query.from_json(json.loads(query))
    statuses = panel.run_trackers()
    assert statuses and [s.name for s in statuses] == [TRACKED]
    (link,) = _links(panel.trackers_table.value)
    assert Query.from_link(link) == statuses[0].explore
    assert 'data-tracker="Proseware &lt;img' in panel.trackers_table.value


def test_reader_sees_everything_but_cannot_import(tenant, tmp_path):
    t, store = tenant
    panel = panel_for(store, t, READER)
    assert panel.upload.disabled and panel.import_button.disabled
    assert "alert policy configuration" in panel.import_button.tooltip
    upload(panel, "hostile.json", hostile_bundle().encode())
    assert panel.import_upload() is None  # even a forced click is refused by the service
    assert "alert policy configuration" in unescape(panel.error.value) and "Traceback" not in panel.error.value
    assert "hostile.json" not in panel.import_result.value
    assert panel.trends is not None and panel.campaigns is not None  # the read tabs still work
    assert "csv &lt;img" in panel.indicator_table.value


def test_indicator_search_and_type_filter(tenant):
    t, store = tenant
    panel = panel_for(store, t, READER)
    panel.search_text.value = "onerror"
    rows = panel.indicator_table.value.count("<tr data-indicator=")
    assert rows == 1 and 'data-indicator="url"' in panel.indicator_table.value
    panel.type_filter.value = "ip"
    assert 'class="wb-empty">No indicators match.' in panel.indicator_table.value
    panel.type_filter.value, panel.search_text.value = "", ""
    assert "url 1" in panel.counts.value


def test_service_errors_show_as_one_escaped_line(tenant):
    t, store = tenant

    class BrokenLake:
        def scan(self, *_: Any, **__: Any) -> Any:
            raise OSError(f"disk gone {XSS}")
    panel = ThreatIntelPanel(store, BrokenLake(), READER, now=NOW)
    assert "disk gone &lt;img" in panel.error.value and "<img" not in panel.error.value
    assert panel.trends is None
    assert_escaped(html_of(panel))


def test_upload_without_a_file_is_refused(tenant):
    t, store = tenant
    panel = panel_for(store, t, ADMIN)
    assert panel.import_upload() is None and "choose a feed file" in panel.error.value


def test_for_tenant_uses_the_acting_user(tenant, monkeypatch):
    t, _ = tenant
    monkeypatch.setenv("WORKBENCH_USER", READER)
    panel = ThreatIntelPanel.for_tenant(t, now=NOW)
    assert panel.actor == READER and panel.import_button.disabled
    panel.store.dispose()


def test_an_uploaded_name_cannot_leave_the_temporary_folder(tenant):
    t, store = tenant
    panel = panel_for(store, t, ADMIN)
    upload(panel, "../../escape.txt", b"evil-upload.example\n")
    assert panel.import_upload() is not None, panel.error.value
    assert "escape.txt (text): 1 added" in unescape(panel.import_result.value)
    assert [i.source for i in panel.search() or []][:1] == ["escape.txt"]
