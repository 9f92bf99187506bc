"""The threat dashboard's numbers: each drill-down lists exactly what its number counts, the
tiles agree with each other, and the numbers match an independent reading of the lake files.
Then the panel, driven headless, with hostile strings in the data."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from workbench import schema
from workbench.dashboard import build, window_named
from workbench.dashboard.efficacy import Efficacy
from workbench.errors import InputError
from workbench.explorer.aggregate import snapshot
from workbench.explorer.query import Window
from workbench.lake import Lake

NOW = datetime(2026, 11, 21, tzinfo=UTC)  # the small tenant's last day is 2026-11-20
PAYLOAD = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def dash(lake):
    return build(lake, window_named("7d"), now=NOW)


@pytest.fixture(scope="module")
def events(lake) -> pl.DataFrame:
    return pl.read_parquet(lake.partition_files("EmailEvents"))


def test_every_drill_down_lists_exactly_what_its_number_counts(lake, dash):
    checked = 0
    for tile in dash.tiles:
        for m in tile.metrics:
            if m.query is None or m.key == "users":  # "users" counts people, its query lists their mail
                continue
            assert snapshot(lake, m.query, now=NOW).rows == m.value, f"{tile.key}.{m.key}"
            checked += 1
    assert checked >= 16
    assert any(m.value for t in dash.tiles for m in t.metrics if m.query is not None)


def test_tiles_agree_with_each_other(dash):
    status, trends, weekly, eff = (dash.tile(k) for k in ("protection_status", "trends", "weekly", "efficacy"))
    techs = status.frames["technologies"]
    assert int(techs["messages"].sum()) == status.value("detected") > 0
    assert int(status.frames["by_technology"]["messages"].sum()) == status.value("detected")
    assert status.value("delivered") + status.value("blocked") == status.value("detected")
    assert sum(m.value for m in trends.metrics) == weekly.value("scanned")
    assert trends.value("malware") + trends.value("phish") == status.value("detected")
    assert weekly.value("threats_stopped") == status.value("blocked")
    assert weekly.value("removed_after_delivery") == eff.value("post_delivery")
    shares = eff.frames["shares"]["share"].to_list()
    assert sum(shares) == pytest.approx(100.0) and shares[0] > 0
    assert eff.value("pre_delivery") + eff.value("post_delivery") + eff.value("uncaught") == eff.value("malicious")
    assert dash.tile("malware").value("malware") == trends.value("malware")
    families = dash.tile("malware").frames["families"]  # every malware copy is in a family, named or not
    assert families.height < 10 and families["messages"].sum() >= trends.value("malware")


def test_numbers_match_the_lake_files_read_directly(lake, dash, events):
    start, end = dash.start, dash.end
    e = events.filter((pl.col("Timestamp") >= start) & (pl.col("Timestamp") < end))
    types = pl.col("ThreatTypes").fill_null("")
    malware, phish = types.str.contains("Malware"), types.str.contains("Phish")
    summary = dash.tile("summary")
    assert summary.value("malware_blocked") == e.filter(malware & (pl.col("DeliveryAction") != "Delivered")).height
    assert summary.value("phish_blocked") == e.filter(phish & (pl.col("DeliveryAction") != "Delivered")).height
    assert dash.tile("weekly").value("scanned") == e.height
    assert dash.tile("trends").value("good_mail") == e.filter(types == "").height
    # ZAP removals: clean inbound copies with a successful Malware/Phish ZAP
    pde = pl.read_parquet(lake.partition_files("EmailPostDeliveryEvents"))
    zapped = pde.filter(pl.col("ActionType").is_in(["Malware ZAP", "Phish ZAP"]) & pl.col("ActionResult").is_in(["Success", "AdminPolicy"]))
    clean_inbound = e.filter((types == "") | ~(malware | phish)).filter(pl.col("EmailDirection") == "Inbound")
    keys = {(n, r.lower()) for n, r in zapped.select("NetworkMessageId", "RecipientEmailAddress").iter_rows()}
    removed = sum((n, r.lower()) in keys for n, r in clean_inbound.select("NetworkMessageId", "RecipientEmailAddress").iter_rows())
    assert dash.tile("efficacy").value("post_delivery") == removed
    # top targeted user
    users = dash.tile("targeted_users").frames["users"]
    if users.height:
        top = e.filter(malware | phish).group_by(pl.col("RecipientEmailAddress").str.to_lowercase()).len().sort("len", descending=True)
        assert users["messages"][0] == top["len"][0]


def test_efficacy_shares_always_sum_to_100():
    for counts in [(1, 1, 1), (2, 1, 0), (997, 2, 1), (0, 0, 5), (3, 3, 3)]:
        shares = Efficacy(*counts).shares()
        assert round(sum(shares), 6) == 100.0
    assert Efficacy(0, 0, 0).shares() == (0.0, 0.0, 0.0)


def test_empty_tiles_say_what_fills_them(lake):
    empty = build(lake, Window.between("2020-01-01", "2020-01-02"), now=NOW)
    for key in ("incidents", "intel", "alerts"):
        assert "appear here" in empty.tile(key).empty
    assert empty.tile("summary").value("malware_blocked") == 0
    assert empty.insights == ()


def test_alert_and_incident_tiles_come_from_the_store(lake, tmp_path):
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService
    from workbench.store import open_store
    from workbench.ui.dashboard import DashboardPanel

    store = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    alerting.run(store, lake)
    svc = IncidentService(store, "ana")
    open_incidents = svc.list()
    assert open_incidents
    svc.rename(open_incidents[0].id, PAYLOAD)
    d = build(lake, window_named("7d"), now=NOW, store=store)
    in_window = [a for a in svc.alerts() if NOW - timedelta(days=7) <= a.first_activity < NOW]
    alerts = d.tile("alerts")
    assert sum(m.value for m in alerts.metrics) == len(in_window) > 0
    assert alerts.value("high") == sum(a.severity.value == "high" for a in in_window)
    incidents = d.tile("incidents")
    assert not incidents.empty and sum(m.value for m in incidents.metrics) == len(open_incidents)
    assert incidents.frames["open"]["Severity"][0] == "High"  # most severe first
    panel = DashboardPanel(lake, now=NOW, window="7d", store=store)
    panel.refresh()
    shown = _html(panel)
    assert "&lt;img src=x" in shown and "<img src=x" not in shown  # the renamed incident, escaped
    assert "Security trends" in panel.intel.value and "<svg" in panel.intel.value  # the intel widget, embedded
    store.dispose()


def test_windows_have_no_cap_and_bad_ones_say_why(lake):
    long = build(lake, window_named("custom", "2025-01-01", "2026-11-21"), now=NOW)  # almost two years
    assert long.bucket == "1w" and long.tile("weekly").value("scanned") > 0
    assert build(lake, window_named("90d"), now=NOW).tile("weekly").value("scanned") == long.tile("weekly").value("scanned")
    with pytest.raises(InputError, match="choose one of 24h, 7d, 30d, 90d"):
        window_named("31d")
    with pytest.raises(InputError, match="needs a start and an end"):
        window_named("custom", "2026-01-01")


# --------------------------------------------------------------------------- the panel


@pytest.fixture(scope="module")
def hostile_lake(small_tenant, tmp_path_factory) -> Lake:
    """The small tenant's lake plus malware whose recipient, family and subject are markup."""
    root = tmp_path_factory.mktemp("hostile") / "lake"
    shutil.copytree(small_tenant.lake_dir, root)
    lake = Lake(root)
    rows = pl.read_parquet(lake.partition_files("EmailEvents")[0]).head(1).select(pl.all().repeat_by(40).explode())
    rows = rows.with_columns(  # 40 copies: the top targeted user
        pl.format("hostile-{}", pl.int_range(pl.len())).alias("NetworkMessageId"),
        pl.format("hostile-report-{}", pl.int_range(pl.len())).alias("ReportId"),
        pl.lit(datetime(2026, 11, 20, 12, tzinfo=UTC)).alias("Timestamp"),
        pl.lit(f"{PAYLOAD}@example.com").alias("RecipientEmailAddress"),
        pl.lit(PAYLOAD).alias("Subject"),
        pl.lit("Malware").alias("ThreatTypes"),
        pl.lit(f"Trojan:{PAYLOAD}").alias("ThreatNames"),
        pl.lit('{"Malware":["File detonation"]}').alias("DetectionMethods"),
        pl.lit("Blocked").alias("DeliveryAction"),
    )
    lake.append("EmailEvents", schema.table("EmailEvents").conform(rows))
    return lake


@pytest.fixture
def panel(hostile_lake, tmp_path):
    from workbench.ui.dashboard import DashboardPanel

    p = DashboardPanel(hostile_lake, window="7d", now=NOW, export_dir=tmp_path)
    p.refresh()
    return p


def _html(panel) -> str:
    parts = [panel.insights.value, panel.status.value, panel.error.value]
    for box in panel.grid.children:
        parts += [c.value for c in box.children if hasattr(c, "value") and isinstance(c.value, str)]
    return "\n".join(parts)


def _svgs(panel) -> list[bytes]:
    return [bytes(c.value) for box in panel.grid.children for c in box.children if getattr(c, "format", "") == "svg+xml"]


def test_panel_shows_every_tile_with_escaped_text_and_static_charts(panel):
    html = _html(panel)
    assert panel.error.value == ""
    keys = [box._dom_classes[-1].removeprefix("wb-tile-") for box in panel.grid.children]
    assert keys == [t.key for t in panel.dashboard.tiles]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the family / recipient are shown as text...
    assert "<img src=x" not in html and "<script>alert" not in html  # ...never as markup
    svgs = _svgs(panel)
    assert len(svgs) == 6 and all(s.startswith(b"<svg") for s in svgs)
    assert not any(b"<script" in s or b"<img src=x" in s for s in svgs)
    assert any(b"&lt;img src=x" in s for s in svgs)  # the family name, as chart text
    assert panel.dashboard.tile("summary").value("malware_blocked") >= 1
    assert 'data-metric="malware_blocked"' in html and "Explorer.ipynb?q=" in html
    assert "appear here" in html  # incidents / intel tiles are never blank


def test_panel_window_selector_and_custom_window(panel):
    seven = panel.dashboard.tile("weekly").value("scanned")
    panel.window.value = "24h"
    assert panel.dashboard.end - panel.dashboard.start == NOW - datetime(2026, 11, 20, tzinfo=UTC)
    assert panel.dashboard.tile("weekly").value("scanned") < seven
    panel.window.value = "custom"  # prefilled from the window on screen
    assert panel.custom_box.layout.display == "flex"
    panel.start_picker.value, panel.end_picker.value = date(2026, 11, 18), date(2026, 11, 20)
    panel.apply_button.click()
    assert panel.dashboard.start == datetime(2026, 11, 18, tzinfo=UTC)
    assert panel.dashboard.end == datetime(2026, 11, 21, tzinfo=UTC)  # the To day is included
    panel.end_picker.value = None
    panel.apply_button.click()
    assert "pick a From and a To date" in panel.error.value


def test_for_tenant_reads_the_window_from_the_address(small_tenant, monkeypatch):
    from workbench.ui.dashboard import DashboardPanel

    monkeypatch.setenv("QUERY_STRING", "window=custom&start=2026-11-19&end=2026-11-20")
    p = DashboardPanel.for_tenant(small_tenant, now=NOW)
    assert p.window.value == "custom" and p.dashboard.start == datetime(2026, 11, 19, tzinfo=UTC)
    monkeypatch.setenv("QUERY_STRING", "window=31d")
    p = DashboardPanel.for_tenant(small_tenant, now=NOW)
    assert "unknown window &#x27;31d&#x27;" in p.error.value and p.window.value == "30d"


# --------------------------------------------------------------------------- the cached projection


def test_a_preheated_kernel_recomputes_when_its_page_comes_late(small_tenant, monkeypatch):
    from workbench.ui import dashboard as ui

    builds = []
    monkeypatch.setattr(ui, "build", lambda *a, **k: builds.append(1) or build(*a, **k))
    monkeypatch.delenv("QUERY_STRING", raising=False)
    ui.DashboardPanel.for_tenant(small_tenant, now=NOW)
    assert len(builds) == 1  # the page came at once: the numbers just computed stand
    monkeypatch.setattr(ui, "STALE_AFTER_S", -1)  # the page came after the kernel had waited long
    ui.DashboardPanel.for_tenant(small_tenant, now=NOW)
    assert len(builds) == 3


def test_projection_follows_appends_and_works_without_a_cache(small_tenant, tmp_path):
    from workbench.dashboard import projection

    root = tmp_path / "t" / "lake"
    shutil.copytree(small_tenant.lake_dir, root)
    lake = Lake(root)
    before = build(lake, window_named("7d"), now=NOW)
    assert projection.warm(lake) == 3  # one folder per day, each with one signature
    days = sorted(p.name for p in projection.cache_dir(lake).iterdir())
    assert days == ["day=2026-11-18", "day=2026-11-19", "day=2026-11-20"]
    extra = pl.read_parquet(lake.partition_files("EmailEvents", date(2026, 11, 19), date(2026, 11, 20))[0]).head(1)
    extra = extra.with_columns(pl.lit("appended-1").alias("NetworkMessageId"), pl.lit("appended-report-1").alias("ReportId"),
                               pl.lit("Phish").alias("ThreatTypes"), pl.lit("Blocked").alias("DeliveryAction"))
    odd = extra.with_columns(pl.lit("appended-2").alias("NetworkMessageId"), pl.lit("appended-report-2").alias("ReportId"),
                             pl.lit(None, pl.String).alias("DeliveryAction"))  # neither delivered nor blocked
    lake.append("EmailEvents", pl.concat([extra, odd]))
    after = build(lake, window_named("7d"), now=NOW)
    assert after.tile("summary").value("phish_blocked") == before.tile("summary").value("phish_blocked") + 1
    for tile, metric in (("summary", "phish_blocked"), ("protection_status", "blocked"), ("weekly", "threats_stopped")):
        m = after.tile(tile).metric(metric)
        assert snapshot(lake, m.query, now=NOW).rows == m.value, metric
    assert len(list((projection.cache_dir(lake) / "day=2026-11-19").iterdir())) == 1  # the stale one is gone
    # no writable cache (a read-only deployment): the same numbers, derived in memory
    shutil.rmtree(root.parent / "cache")
    (root.parent / "cache").write_text("not a folder")
    uncached = build(lake, window_named("7d"), now=NOW)
    assert [m.value for t in uncached.tiles for m in t.metrics] == [m.value for t in after.tiles for m in t.metrics]


def test_partial_days_are_cut_exactly(lake):
    # a window starting and ending mid-day: the hourly volume is used only for whole days
    start, end = datetime(2026, 11, 18, 7, 30, 15, tzinfo=UTC), datetime(2026, 11, 20, 13, 5, tzinfo=UTC)
    d = build(lake, Window.between(start, end), now=NOW)
    e = pl.read_parquet(lake.partition_files("EmailEvents")).filter(
        (pl.col("Timestamp") >= start) & (pl.col("Timestamp") < end))
    assert d.tile("weekly").value("scanned") == e.height
    assert snapshot(lake, d.tile("summary").metric("phish_blocked").query, now=NOW).rows == d.tile("summary").value("phish_blocked")


def test_panel_exports_png_and_pdf_for_download(panel, tmp_path):
    panel.png_button.click()
    png = sorted(tmp_path.glob("dashboard-*.png"))
    assert len(png) == 1 and png[0].stat().st_size > 100_000
    assert 'download="' in panel.download.value and "data:image/png;base64," in panel.download.value
    path = panel.export("pdf")
    assert path.suffix == ".pdf" and path.read_bytes().startswith(b"%PDF")
    assert "data:application/pdf;base64," in panel.download.value
