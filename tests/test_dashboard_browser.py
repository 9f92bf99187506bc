"""The threat dashboard in a real browser (Debian Chromium), served by real Voila and real
JupyterLab: every tile appears, every number on screen equals the same number recomputed
here from the lake's parquet files with plain polars (not with ``build``), the drill-down
opens the Explorer on the same count, nothing leaves the machine, hostile strings stay text.

A screenshot of the Voila page is saved in the test's tmp folder and, when the environment
variable ``WORKBENCH_ARTIFACTS`` names a folder, copied there (CI keeps that folder).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import free_port
from workbench.explorer.query import Query
from workbench.lake import Lake

pytestmark = [pytest.mark.slow, pytest.mark.browser]
RENDER = 120_000  # ms: kernel start, imports, the build, SVG rendering of six charts

# The custom window the page asks for in its address (the To day is included).
START, LAST_DAY = "2026-11-18", "2026-11-20"
ADDRESS = f"voila/render/Dashboard.ipynb?window=custom&start={START}&end={LAST_DAY}"
WINDOW_START = datetime(2026, 11, 18, tzinfo=UTC)
WINDOW_END = datetime(2026, 11, 21, tzinfo=UTC)
STATUS = "2026-11-18 00:00 – 2026-11-21 00:00 UTC"

TILES = ("summary", "efficacy", "protection_status", "trends", "malware", "weekly", "targeted_users", "clickers",
         "alerts", "incidents", "intel")
CHARTS = {"protection_status": 2, "trends": 1, "malware": 2, "efficacy": 1}  # SVG images per tile
EMPTY = ("incidents", "intel")  # no data source yet: they say what will fill them

# The definitions of workbench/dashboard/data.py and projection.py, written out again.
NOT_DELIVERED = ("Junked", "Blocked", "Replaced")
ZERO_DAY = ("File detonation", "File detonation reputation", "File reputation")
ADVANCED_PHISH = ("URL detonation", "URL detonation reputation", "Impersonation brand", "Impersonation domain",
                  "Impersonation user", "Mailbox intelligence impersonation")
BLOCKED_CLICKS = ("ClickBlocked", "ClickBlockedByTenantPolicy")
ZAP_ACTIONS = ("Malware ZAP", "Phish ZAP")
ZAP_DONE = ("Success", "AdminPolicy")
REPORT_TYPES = ("Phish", "Junk", "Not junk")
SEVERITIES = ("High", "Medium", "Low", "Informational")


# --------------------------------------------------------------------------- expected values


def read(lake: Lake, table: str, start: datetime | None = None, end: datetime | None = None) -> pl.DataFrame:
    """Rows of *table* with ``start <= Timestamp < end``, read straight from its parquet files."""
    files = lake.partition_files(table)
    if not files:
        return pl.DataFrame()
    frame = pl.read_parquet(files, hive_partitioning=False)
    if start is not None:
        frame = frame.filter(pl.col("Timestamp") >= start)
    if end is not None:
        frame = frame.filter(pl.col("Timestamp") < end)
    return frame


def _mentions(column: str, word: str) -> pl.Expr:
    return pl.col(column).fill_null("").str.contains(word, literal=True)


def _lists(values: tuple[str, ...]) -> pl.Expr:
    """DetectionMethods names one of *values* as a JSON string (quotes included)."""
    return pl.any_horizontal([_mentions("DetectionMethods", f'"{v}"') for v in values])


def _first_technology(methods: str | None, threat: str) -> str | None:
    found = json.loads(methods).get(threat) if methods else None
    return found[0] if found else None


@dataclass
class Expected:
    """What the dashboard must show for one window, recomputed from the lake files."""

    metrics: dict[tuple[str, str], int] = field(default_factory=dict)
    shares: tuple[float, float, float] = (0.0, 0.0, 0.0)  # exact percentages (not rounded)
    technologies: dict[str, int] = field(default_factory=dict)
    targeted: list[tuple[str, int, int, int, int]] = field(default_factory=list)  # user, messages, phish, malware, delivered
    clickers: dict[str, tuple[int, int]] = field(default_factory=dict)  # user -> clicks, blocked
    insights: dict[str, int] = field(default_factory=dict)


def recompute(lake: Lake, start: datetime, end: datetime, top: int = 10) -> Expected:
    """Every number the dashboard shows for [start, end), following data.py and efficacy.py.

    Counting unit: one EmailEvents row (a copy: message id + lower-cased recipient). Events
    about mail (post-delivery, submissions, clicks) count from the window's start on.
    """
    x = Expected()
    mal, phish, spam = _mentions("ThreatTypes", "Malware"), _mentions("ThreatTypes", "Phish"), _mentions("ThreatTypes", "Spam")
    e = read(lake, "EmailEvents", start, end).with_columns(
        mal.alias("mal"), phish.alias("phish"), spam.alias("spam"), (mal | phish).alias("threat"),
        (pl.col("DeliveryAction") == "Delivered").fill_null(False).alias("delivered"),
        pl.col("DeliveryAction").is_in(NOT_DELIVERED).fill_null(False).alias("blocked"),
        (pl.col("EmailDirection") == "Inbound").fill_null(False).alias("inbound"),
        (mal & _lists(ZERO_DAY)).alias("zero_day"),
        (phish & _lists(ADVANCED_PHISH)).alias("advanced"),
        pl.col("RecipientEmailAddress").str.to_lowercase().alias("who"),
    )

    def n(condition: pl.Expr) -> int:
        return e.filter(condition).height

    threat, blocked, delivered, inbound = pl.col("threat"), pl.col("blocked"), pl.col("delivered"), pl.col("inbound")
    copies: dict[tuple[str, str], dict] = {}
    for r in e.iter_rows(named=True):  # a copy may occur twice (a recipient listed twice): same flags
        seen = copies.setdefault((r["NetworkMessageId"], r["who"]), r)
        assert (seen["threat"], seen["inbound"]) == (r["threat"], r["inbound"]), r["NetworkMessageId"]

    # submissions (CloudAppEvents) and post-delivery events, from the window's start on
    subs = []
    for r in read(lake, "CloudAppEvents", start).iter_rows(named=True):
        if r["ActionType"] not in ("UserSubmission", "AdminSubmissionSubmitted"):
            continue
        raw = json.loads(r["RawEventData"]) if r["RawEventData"] else {}
        subs.append({"action": r["ActionType"], "mid": r["ObjectId"] or raw.get("NetworkMessageId"),
                     "who": (raw.get("UserId") or "").lower(), "report": raw.get("ReportType"),
                     "kind": None if raw.get("SubmissionType") is None else str(raw["SubmissionType"])})
    pde = read(lake, "EmailPostDeliveryEvents", start).filter(
        pl.col("ActionType").is_in([*ZAP_ACTIONS, "Redelivery"])).with_columns(
        pl.col("RecipientEmailAddress").str.to_lowercase().alias("who"))
    pde_rows = [(r["NetworkMessageId"], r["who"], r) for r in pde.iter_rows(named=True)]

    # summary
    reported = {(s["mid"], s["who"]) for s in subs if s["action"] == "UserSubmission" and s["report"] in REPORT_TYPES}
    clicks = read(lake, "UrlClickEvents", start).with_columns(pl.col("AccountUpn").str.to_lowercase().alias("user"))
    x.metrics.update({
        ("summary", "malware_blocked"): n(pl.col("mal") & blocked),
        ("summary", "phish_blocked"): n(pl.col("phish") & blocked),
        ("summary", "reported"): len(reported & copies.keys()),
        ("summary", "zero_day_malware"): n(pl.col("zero_day")),
        ("summary", "advanced_phish"): n(pl.col("advanced")),
        ("summary", "urls_blocked_at_click"):
            clicks.filter((pl.col("Timestamp") < end) & pl.col("ActionType").is_in(BLOCKED_CLICKS)).height,
    })

    # efficacy (mdo-reference §2.2), over inbound copies delivered in the window
    inbound_copies = {k: r for k, r in copies.items() if r["inbound"]}
    fp, clean, removed = set(), set(), set()
    for mid, who, r in pde_rows:
        copy = inbound_copies.get((mid, who))
        if copy is None:
            continue
        if copy["threat"] and r["ActionType"] == "Redelivery" and r["ThreatTypes"] is None:
            fp.add((mid, who))
        if not copy["threat"] and r["ActionType"] in ZAP_ACTIONS:
            clean.add((mid, who))
            if r["ActionResult"] in ZAP_DONE:
                removed.add((mid, who))
    failed = clean - removed
    admin_mids = {s["mid"] for s in subs if s["action"] == "AdminSubmissionSubmitted" and s["kind"] in ("1", "2")}
    admin = {k for k, r in inbound_copies.items() if not r["threat"] and k[0] in admin_mids} - removed - failed
    pre, post, uncaught = max(n(threat & inbound) - len(fp), 0), len(removed), len(failed) + len(admin)
    total = pre + post + uncaught
    x.shares = tuple(100 * v / total for v in (pre, post, uncaught)) if total else (0.0, 0.0, 0.0)
    x.metrics.update({("efficacy", "pre_delivery"): pre, ("efficacy", "post_delivery"): post,
                      ("efficacy", "uncaught"): uncaught, ("efficacy", "malicious"): total})

    # protection status, trends, malware, weekly
    x.metrics.update({
        ("protection_status", "detected"): n(threat),
        ("protection_status", "delivered"): n(threat & delivered),
        ("protection_status", "blocked"): n(threat & blocked),
        ("trends", "malware"): n(pl.col("mal")),
        ("trends", "phish"): n(pl.col("phish") & ~pl.col("mal")),
        ("trends", "spam"): n(pl.col("spam") & ~pl.col("threat")),
        ("trends", "good_mail"): n(~pl.col("spam") & ~pl.col("threat")),
        ("malware", "malware"): n(pl.col("mal")),
        ("weekly", "scanned"): e.height,
        ("weekly", "threats_stopped"): n(threat & blocked),
        ("weekly", "removed_after_delivery"): post,
    })
    # each threat copy under the first technology listed for its class (malware before phish)
    x.technologies = dict(Counter(
        _first_technology(r["DetectionMethods"], "Malware" if r["mal"] else "Phish") or "Other"
        for r in e.filter(threat).iter_rows(named=True)))

    # top targeted users
    per_user = (e.filter(threat).group_by("who")
                .agg(pl.len().alias("messages"), pl.col("phish").sum(), pl.col("mal").sum(), pl.col("delivered").sum())
                .sort(["messages", "who"], descending=[True, False]).head(top))
    x.targeted = [tuple(int(v) if i else v for i, v in enumerate(row)) for row in per_user.iter_rows()]

    # users who clicked: clicks on copies malicious at delivery or acted on by a ZAP later
    clicked_mids = set(clicks["NetworkMessageId"].drop_nulls())
    malicious = {k for k, r in copies.items() if r["threat"] and k[0] in clicked_mids}
    malicious |= {(mid, who) for mid, who, r in pde_rows if r["ActionType"] in ZAP_ACTIONS and (mid, who) in copies}
    hits = [r for r in clicks.iter_rows(named=True) if (r["NetworkMessageId"], r["user"]) in malicious]
    for r in hits:
        c, b = x.clickers.get(r["user"], (0, 0))
        x.clickers[r["user"]] = (c + 1, b + (r["ActionType"] in BLOCKED_CLICKS))
    x.metrics.update({("clickers", "users"): len(x.clickers), ("clickers", "clicks"): len(hits)})

    # alerts raised in the window, by severity (the tile is empty without any)
    alerts = read(lake, "AlertInfo", start, end)
    if alerts.height:
        by = Counter(alerts["Severity"].to_list())
        x.metrics.update({("alerts", s.lower()): by.get(s, 0) for s in SEVERITIES})

    # insights: shown only when not zero
    identity = read(lake, "IdentityInfo").sort("Timestamp").unique("EmailAddress", keep="last")
    priority = {a.lower() for a, tags in identity.select("EmailAddress", "Tags").iter_rows()
                if tags and "Priority account" in tags}
    allowed = (pl.col("OrgLevelAction") == "Allow").fill_null(False) | (pl.col("UserLevelAction") == "Allow").fill_null(False)
    insights = {
        "allowed_threats": n(threat & delivered & allowed),
        "still_in_mailboxes": n(threat & delivered & (pl.col("LatestDeliveryLocation") == "Inbox/folder").fill_null(False)),
        "clicked_malicious": len(x.clickers),
        "priority_targeted": n(threat & pl.col("who").is_in(sorted(priority))),
        "removed_after_delivery": post,
        "user_reports": x.metrics[("summary", "reported")],
    }
    x.insights = {k: v for k, v in insights.items() if v}
    return x


# --------------------------------------------------------------------------- reading the page

ALL_SHOWN = """([tiles, charts, empty]) => tiles.every(key => {
    const tile = document.querySelector('.wb-tile-' + key);
    if (!tile || !tile.offsetParent) return false;
    const note = tile.querySelector('[data-empty]');
    if (note) return !!(note.offsetParent && note.textContent.trim());
    if (empty.includes(key)) return false;
    const nums = [...tile.querySelectorAll('.wb-num')];
    if (key !== 'targeted_users' && !nums.length) return false;
    if (!nums.every(n => n.offsetParent && n.textContent.trim())) return false;
    if (key === 'targeted_users' && !tile.querySelector('table.wb-table')) return false;
    const imgs = [...tile.querySelectorAll('img')];
    return imgs.length === (charts[key] || 0) && imgs.every(i => i.complete && i.naturalWidth > 0);
})"""

DESCRIBE = """tiles => Object.fromEntries(tiles.map(key => {
    const tile = document.querySelector('.wb-tile-' + key);
    return [key, tile ? {visible: !!tile.offsetParent, numbers: tile.querySelectorAll('.wb-num').length,
                         empty: !!tile.querySelector('[data-empty]'),
                         images: [...tile.querySelectorAll('img')].map(i => i.complete && i.naturalWidth > 0)}
                      : 'missing'];
}))"""

READ_NUMBERS = """els => els.map(el => [
    el.closest('.wb-tile').className.match(/\\bwb-tile-([a-z_]+)/)[1],
    el.dataset.metric,
    Number(el.querySelector('.wb-num').dataset.value),
    el.querySelector('.wb-num').textContent,
    el.getAttribute('href')])"""

READ_TABLE = """table => [...table.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))"""


def wait_for_every_tile(page: Page, root: Page | Locator, empty: tuple[str, ...] = EMPTY) -> None:
    """Every tile is on screen with its numbers, tables, loaded chart images or, for exactly
    the tiles *empty*, the text saying what will fill it."""
    try:
        page.wait_for_function(ALL_SHOWN, arg=[list(TILES), CHARTS, list(empty)], timeout=RENDER)
    except PlaywrightTimeout:
        raise AssertionError(f"not every tile appeared within {RENDER // 1000} s: {page.evaluate(DESCRIBE, list(TILES))}"
                             ) from None
    found = root.locator(".wb-tile:has([data-empty])").evaluate_all(
        "els => els.map(el => el.className.match(/\\bwb-tile-([a-z_]+)/)[1])")
    assert sorted(found) == sorted(empty), f"empty tiles: {found}"
    for key in TILES:  # and Playwright agrees that each of them is visible
        tile = root.locator(f".wb-tile-{key}")
        expect(tile).to_have_count(1)
        expect(tile).to_be_visible()
        if key in empty:
            expect(tile.locator("[data-empty]")).to_contain_text("appear here")
        else:
            for i in range(tile.locator(".wb-num").count()):
                expect(tile.locator(".wb-num").nth(i)).to_be_visible()
        for i in range(CHARTS.get(key, 0)):
            expect(tile.locator("img").nth(i)).to_be_visible()


def shown_numbers(root: Page | Locator) -> dict[tuple[str, str], tuple[int, str, str | None]]:
    """(tile, metric) -> (data-value, the text shown, the link) of every number on the page."""
    rows = root.locator(".wb-tile .wb-metric[data-metric]").evaluate_all(READ_NUMBERS)
    found = {(tile, metric): (value, text, href) for tile, metric, value, text, href in rows}
    assert len(found) == len(rows), "a metric appears twice"
    return found


def shown_values(root: Page | Locator) -> dict[tuple[str, str], int]:
    return {k: v[0] for k, v in shown_numbers(root).items()}


def table_rows(root: Page | Locator, tile: str) -> list[list[str]]:
    return root.locator(f".wb-tile-{tile} table.wb-table").first.evaluate(READ_TABLE)


def chart_svgs(page: Page, tile: str) -> list[str]:
    """The SVG text behind a tile's chart images (ipywidgets Image: blob URLs)."""
    return page.locator(f".wb-tile-{tile} img").evaluate_all(
        "imgs => Promise.all(imgs.map(i => fetch(i.src).then(r => r.text())))")


CONTENT_HEIGHT = "() => Math.max(...[...document.querySelectorAll('body, body *')].map(e => e.scrollHeight))"


def save_screenshot(page: Page, path: Path) -> Path:
    """Screenshot the whole dashboard to *path*, and copy it to ``$WORKBENCH_ARTIFACTS`` when
    that is set. Voila's lab template scrolls an inner element, not the body, so a full-page
    screenshot would stop at the viewport: the viewport is made as tall as the content first."""
    size = page.viewport_size or {"width": 1400, "height": 3000}
    height = min(int(page.evaluate(CONTENT_HEIGHT)) + 40, 12_000)
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_function(ALL_SHOWN, arg=[list(TILES), CHARTS, list(EMPTY)], timeout=30_000)
    page.screenshot(path=str(path))
    artifacts = os.environ.get("WORKBENCH_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    print(f"screenshot: {path}")
    return path


# --------------------------------------------------------------------------- Voila


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def expected(lake) -> Expected:
    return recompute(lake, WINDOW_START, WINDOW_END)


def test_expected_values_are_not_trivial(expected):
    """The small tenant exercises most numbers (a zero everywhere would prove little)."""
    nonzero = [k for k, v in expected.metrics.items() if v]
    assert len(nonzero) >= 18, nonzero
    assert expected.targeted and expected.clickers and expected.insights


def test_dashboard_in_voila(page: Page, network_log, voila_server, small_tenant, lake, expected, tmp_path):
    from workbench.dashboard import build, window_named

    page.set_viewport_size({"width": 1400, "height": 3000})
    page.goto(voila_server(small_tenant) + ADDRESS, timeout=RENDER)
    expect(page.locator(".wb-note", has_text=" UTC · computed in ")).to_contain_text(STATUS, timeout=RENDER)
    wait_for_every_tile(page, page)

    # every number on screen equals the recomputed one; the text is the same number
    numbers = shown_numbers(page)
    shown = {k: v[0] for k, v in numbers.items()}
    assert shown == expected.metrics
    for (tile, metric), (value, text, _) in numbers.items():
        assert text == f"{value:,}", (tile, metric, text)
    # and build() agrees (a second check of the panel's wiring, not the source of truth)
    d = build(lake, window_named("custom", START, "2026-11-21"))
    assert shown == {(t.key, m.key): m.value for t in d.tiles for m in t.metrics}

    # efficacy shares: shown with one decimal, adding up to exactly 100, each within rounding
    note = page.locator(".wb-tile-efficacy .wb-note").first.inner_text()
    shares = [float(s) for s in re.findall(r"([\d.]+)%", note)]
    assert len(shares) == 3 and round(sum(shares), 6) == 100.0, note
    assert all(abs(s - exact) <= 0.1 for s, exact in zip(shares, expected.shares)), (shares, expected.shares)

    # detections per technology: recomputed, equal to the chart's data, adding up to the total
    techs = dict(d.tile("protection_status").frames["technologies"].iter_rows())
    assert techs == expected.technologies
    assert sum(techs.values()) == shown[("protection_status", "detected")] > 0
    svg = chart_svgs(page, "protection_status")[0]
    assert svg.startswith("<svg") and all(t in svg for t in techs), "a technology is missing from the chart legend"

    # tables
    targeted = table_rows(page, "targeted_users")
    assert [tuple(r) for r in targeted] == [(u, *map(str, rest)) for u, *rest in expected.targeted]
    clickers = {r[0]: (int(r[1]), int(r[2])) for r in table_rows(page, "clickers")}
    assert clickers == dict(sorted(expected.clickers.items(), key=lambda kv: (-kv[1][0], kv[0]))[:10])
    weeks = table_rows(page, "weekly")
    for column, metric in ((1, "scanned"), (2, "threats_stopped"), (3, "removed_after_delivery")):
        assert sum(int(r[column]) for r in weeks) == shown[("weekly", metric)]
    if ("alerts", "high") in expected.metrics:
        assert len(table_rows(page, "alerts")) == min(10, sum(shown[("alerts", s.lower())] for s in SEVERITIES))

    # insights: the findings that are not zero, each sentence starting with its number
    insights = page.locator(".wb-insight[data-insight]").evaluate_all(
        "els => els.map(el => [el.dataset.insight, el.textContent])")
    assert {k for k, _ in insights} == set(expected.insights)
    for key, text in insights:
        assert re.search(rf"(^|\D){expected.insights[key]:,}\b", text), (key, text)

    save_screenshot(page, tmp_path / "dashboard-voila.png")

    # a number's link opens the Explorer on exactly the rows it counts
    value, _, href = numbers[("summary", "phish_blocked")]
    query = Query.from_link(href)
    assert value > 0 and query.view == "phish" and query.window.resolve() == (WINDOW_START, WINDOW_END)
    with page.context.expect_page() as opened:
        page.locator(".wb-tile-summary a.wb-metric[data-metric='phish_blocked']").click()
    explorer = opened.value
    explorer.on("websocket", lambda ws: network_log.append(ws.url))
    status = explorer.locator(".wb-note", has_text=" rows, ").first
    expect(status).to_contain_text(f"{value:,} rows", timeout=RENDER)
    assert status.locator("b").first.inner_text() == f"{value:,}"
    explorer.wait_for_load_state("networkidle")
    page.wait_for_load_state("networkidle")
    network_log.assert_only_loopback()


# --------------------------------------------------------------------------- hostile strings

PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss2=1</script>'


@pytest.fixture(scope="module")
def hostile_tenant(small_tenant, tmp_path_factory):
    """A copy of the small tenant plus 40 blocked malware copies whose recipient and malware
    family hold markup (the top targeted user, and a malware family)."""
    from workbench import schema
    from workbench.tenant import open_tenant

    base = tmp_path_factory.mktemp("hostile-dashboard-home")
    shutil.copytree(small_tenant.root, base / "tenants" / small_tenant.name, ignore=shutil.ignore_patterns("cache"))
    tenant = open_tenant(small_tenant.name, base=base)
    lake = Lake.for_tenant(tenant)
    rows = pl.read_parquet(lake.partition_files("EmailEvents")[0]).head(1).select(pl.all().repeat_by(40).explode())
    rows = rows.with_columns(
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
    return tenant


def test_hostile_strings_stay_text_in_voila(page: Page, network_log, voila_server, hostile_tenant):
    page.set_viewport_size({"width": 1400, "height": 2000})
    page.goto(voila_server(hostile_tenant) + ADDRESS, timeout=RENDER)
    expect(page.locator(".wb-note", has_text=" UTC · computed in ")).to_contain_text(STATUS, timeout=RENDER)
    wait_for_every_tile(page, page)

    # the hostile recipient is the top targeted user, shown as text (cell and drill-down link)
    top = page.locator(".wb-tile-targeted_users table.wb-table tbody tr").first
    expect(top.locator("td").first).to_have_text(f"{PAYLOAD}@example.com")
    expect(top.locator("td").nth(1)).to_have_text("40")
    page.locator(".wb-tile-targeted_users details summary").click()
    expect(page.locator(".wb-tile-targeted_users details a").first).to_have_text(f"{PAYLOAD}@example.com")
    # the family is chart text inside an SVG image (no script runs in an <img>), escaped there too
    families = chart_svgs(page, "malware")[1]
    assert "Trojan:&lt;img src=x" in families and "<img src=x" not in families and "<script" not in families

    injected = page.evaluate("""() => ({
        images: [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x').length,
        scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.trim() === 'window.__xss2=1').length,
        handlers: document.querySelectorAll('[onerror]').length,
        xss: window.__xss === undefined && window.__xss2 === undefined ? null : 1})""")
    assert injected == {"images": 0, "scripts": 0, "handlers": 0, "xss": None}, injected
    page.wait_for_load_state("networkidle")
    assert not [u for u in network_log if u.rstrip("/").endswith("/x")], "the page requested the injected image"
    network_log.assert_only_loopback()


# --------------------------------------------------------------------------- JupyterLab


@pytest.fixture
def lab_server(small_tenant, tmp_path) -> Iterator[str]:
    """A real JupyterLab on loopback with a copy of Dashboard.ipynb; kernels open the small tenant."""
    from workbench.serve import notebooks_dir, stop_process, tenant_env, wait_for_port

    port, token = free_port(), secrets.token_hex(16)
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(notebooks_dir() / "Dashboard.ipynb", root / "Dashboard.ipynb")
    log = tmp_path / "lab.log"
    env = {**os.environ, **tenant_env(small_tenant), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    env.pop("QUERY_STRING", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.port_retries=0"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, proc, timeout=90)
        yield f"http://127.0.0.1:{port}/lab/tree/Dashboard.ipynb?reset&token={token}"
    finally:
        stop_process(proc, timeout=20)
        if proc.returncode not in (0, -15, None):
            print(log.read_text(errors="replace")[-5000:])


def test_dashboard_in_jupyterlab(page: Page, network_log, lab_server, lake, expected):
    from workbench.dashboard import build, window_named

    def built() -> dict[tuple[str, str], int]:
        d = build(lake, window_named("30d"))
        return {(t.key, m.key): m.value for t in d.tiles for m in t.metrics}

    page.set_viewport_size({"width": 1500, "height": 3000})
    page.add_locator_handler(page.get_by_text("Select kernel for:"),
                             lambda: page.get_by_role("button", name="Select Kernel").click())
    before = built()
    page.goto(lab_server)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_visible(timeout=RENDER)
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").last
    for attempt in range(2):  # a kernel dialog that pops up after the click swallows the first run
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()
        try:
            expect(output.locator(".wb-tile-summary .wb-num").first).to_be_visible(timeout=RENDER // 2)
            break
        except AssertionError:
            if attempt:
                raise
    wait_for_every_tile(page, output)
    status = output.locator(".wb-note", has_text=" UTC · computed in ").first.inner_text()
    shown_start, shown_end = (datetime.strptime(s, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
                              for s in re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", status)[:2])
    assert shown_end - shown_start == timedelta(days=30), status  # no query string: the default 30 days
    assert abs(datetime.now(UTC) - shown_end) < timedelta(minutes=10), status
    shown = shown_values(output)
    # the same numbers as build() for the last 30 days, computed just before or just after
    # (the window slides with the clock; the two agree unless a row crossed its start)
    assert shown in (before, built())
    assert set(shown) >= {("summary", "phish_blocked"), ("protection_status", "detected"), ("weekly", "scanned")}
    if shown_start <= WINDOW_START and shown_end >= WINDOW_END:
        # every row of the small tenant lies in both windows: the Voila page's numbers
        assert shown == expected.metrics
    network_log.assert_only_loopback()
