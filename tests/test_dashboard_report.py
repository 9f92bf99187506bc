"""The dashboard report: a PNG and a multi-page PDF, offline, from Python and from `workbench report dashboard`."""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader

from workbench.cli import main
from workbench.dashboard import build, window_named
from workbench.dashboard import report
from workbench.errors import InputError, StorageError
from workbench.lake import Lake

NOW = datetime(2026, 11, 20, tzinfo=UTC)  # the small tenant's data ends here
ROOT = Path(__file__).resolve().parent.parent


def _token(number: int) -> str:
    """A number as the report prints it, matched as a whole token."""
    return rf"(?<![\d,.]){re.escape(f'{number:,}')}(?![\d,])"


@pytest.fixture(scope="module")
def dash(small_tenant):
    return build(Lake.for_tenant(small_tenant), window_named("7d"), now=NOW)


@pytest.fixture(scope="module")
def rendered(dash, tmp_path_factory):
    """The PNG and the PDF of the small tenant's last 7 days, each written once, with timings."""
    folder = tmp_path_factory.mktemp("report")
    seconds = {}
    started = time.perf_counter()
    png = report.write_png(dash, folder / "dashboard.png", tenant="small", generated=NOW)
    seconds["png"] = time.perf_counter() - started
    started = time.perf_counter()
    pdf = report.write_pdf(dash, folder / "dashboard.pdf", tenant="small", generated=NOW)
    seconds["pdf"] = time.perf_counter() - started
    print(f"report timings: {seconds}; sizes: png {png.stat().st_size:,} B, pdf {pdf.stat().st_size:,} B")
    return folder, png, pdf, seconds


def test_png_is_a_whole_dashboard_image(rendered, dash):
    folder, png, _, seconds = rendered
    assert png.stat().st_size > 300_000  # text, boxes and six charts at scale 2: measured ~0.67 MB
    with Image.open(png) as im:
        assert im.format == "PNG"
        width, height = im.size
        assert width >= 2 * report.PAGE_WIDTH  # scale 2
        assert height > 2.5 * width  # three pages stacked
        colors = im.convert("RGB").resize((200, 600)).getcolors(200 * 600)
        assert colors is not None and len(colors) > 50  # not a blank canvas
    assert sorted(p.name for p in folder.iterdir()) == ["dashboard.pdf", "dashboard.png"]  # no temporary left
    assert seconds["png"] < 60


def test_pdf_has_summary_charts_and_tables_pages(rendered, dash):
    _, _, pdf, seconds = rendered
    assert pdf.stat().st_size > 30_000
    reader = PdfReader(pdf)
    assert len(reader.pages) == 3
    first, second, third = (page.extract_text() for page in reader.pages)
    assert "Threat management summary" in first
    blocked = dash.tile("summary").value("malware_blocked")
    assert blocked > 0 and re.search(_token(blocked), first)
    assert "Tenant small" in first
    assert "13 Nov 2026 00:00 – 20 Nov 2026 00:00 UTC (7 days)" in first
    assert "Generated 20 Nov 2026 00:00 UTC" in first
    assert "Share = count / (pre-delivery + post-delivery + uncaught)" in first  # the efficacy formula
    for title in ("Efficacy", "Threat protection status", "Weekly detections", "Trends", "Insights"):
        assert title in first
    for title in ("Phish and malware by detection technology", "Mail by verdict", "Malware trend",
                  "Top malware families", "Threat-intelligence trends"):
        assert title in second
    assert "indicator store" in second  # the empty intel tile says what will fill it
    for title in ("Top targeted users", "Users who clicked malicious links", "Recent alerts", "Open incidents"):
        assert title in third
    top_user = dash.tile("targeted_users").frames["users"]["user"][0]
    assert top_user in third
    width = float(reader.pages[0].mediabox.width)
    assert 500 < width < 700  # about A4 / Letter width
    assert seconds["pdf"] < 60


def test_spec_holds_every_chart_and_every_tile(dash):
    spec = report.dashboard_spec(dash, tenant="small", generated=NOW).to_dict()
    text = str(spec)
    for fns in report.charts.CHARTS.values():
        for fn in fns:
            title = fn(dash).to_dict()["title"]
            assert str(title) in text, f"chart {fn.__name__} missing"
    for tile in dash.tiles:
        assert tile.title in text, f"tile {tile.key} missing"
        if tile.empty:
            assert tile.empty.split()[0] in text
    for insight in dash.insights:
        assert insight.text[:40] in text


def test_bad_extension_gives_one_line_and_writes_nothing(dash, tmp_path):
    for name in ("dashboard.gif", "dashboard", "report.pdf.txt"):
        with pytest.raises(InputError) as err:
            report.write(dash, tmp_path / name)
        message = str(err.value)
        assert "\n" not in message and ".png or .pdf" in message
    with pytest.raises(InputError, match=r"give the file a \.png extension"):
        report.write_png(dash, tmp_path / "dashboard.pdf")
    assert list(tmp_path.iterdir()) == []


def test_missing_or_unwritable_folder_is_a_storage_error(dash, tmp_path):
    with pytest.raises(StorageError, match="does not exist; create it"):
        report.write_png(dash, tmp_path / "missing" / "d.png")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StorageError, match="not writable"):
            report.write_pdf(dash, locked / "d.pdf")
        assert list(locked.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(dash, tmp_path, monkeypatch):
    target = tmp_path / "d.pdf"
    target.write_bytes(b"old report")

    def full_disk(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report.os, "replace", full_disk)
    with pytest.raises(StorageError, match="No space left on device"):
        report.write_pdf(dash, target)
    assert target.read_bytes() == b"old report"
    assert [p.name for p in tmp_path.iterdir()] == ["d.pdf"]


def test_custom_window(small_tenant, tmp_path):
    d = build(Lake.for_tenant(small_tenant), window_named("custom", "2026-11-18", "2026-11-20"), now=NOW)
    pdf = report.write_pdf(d, tmp_path / "custom.pdf", generated=NOW)
    reader = PdfReader(pdf)
    assert len(reader.pages) == 3
    first = reader.pages[0].extract_text()
    assert "18 Nov 2026 00:00 – 20 Nov 2026 00:00 UTC (2 days)" in first
    assert re.search(_token(d.tile("summary").value("malware_blocked")), first)


def test_empty_window_says_so_everywhere(small_tenant, tmp_path):
    d = build(Lake.for_tenant(small_tenant), window_named("custom", "2025-01-01", "2025-01-08"), now=NOW)
    assert d.tile("protection_status").value("detected") == 0
    reader = PdfReader(report.write_pdf(d, tmp_path / "empty.pdf", generated=NOW))
    first, second, third = (page.extract_text() for page in reader.pages)
    assert "No findings in this window" in first
    assert "no malicious inbound mail in this window" in first
    assert second.count("no data in this window") >= 5
    assert "No alerts in this window" in third and "No user received phish or malware" in third
    png = report.write_png(d, tmp_path / "empty.png", scale=1)
    with Image.open(png) as im:
        assert im.size[0] >= report.PAGE_WIDTH


def test_untrusted_strings_are_clipped_plain_text(dash):
    evil = "Invoice <script>alert(1)</script>\n\u202eexe.pdf " + "A" * 500
    recent = pl.DataFrame({"Timestamp": [NOW], "AlertId": ["x"], "Title": [evil], "Category": ["<b>Phish</b>"],
                           "Severity": ["High"]})
    users = pl.DataFrame({"user": ["x" * 300 + "@evil.example"], "messages": [1], "phish": [1], "malware": [0],
                          "delivered": [0]})
    tiles = tuple(
        replace(t, frames={**t.frames, "recent": recent}, empty="") if t.key == "alerts"
        else replace(t, frames={**t.frames, "users": users}) if t.key == "targeted_users" else t
        for t in dash.tiles)
    spec = report.dashboard_spec(replace(dash, tiles=tiles), generated=NOW).to_dict()
    texts = [row["text"] for rows in spec["datasets"].values() for row in rows if "text" in row]
    cells = [t for t in texts if "Invoice" in t or "xxxx" in t]
    assert len(cells) == 2
    for cell in cells:
        assert len(cell) <= report.MAX_TEXT and cell.endswith("…")
        assert "\n" not in cell and "\u202e" not in cell
    assert any(t.startswith("Invoice <script>alert(1)</script> exe.pdf") for t in cells)  # shown as text, not run


def test_doctests():
    import doctest

    assert doctest.testmod(report).failed == 0


def test_clip():
    assert report.clip(None) == ""
    assert report.clip("a\tb\r\nc") == "a b c"
    assert report.clip("x" * 10, 5) == "xxxx…"


def test_cli_writes_png_and_pdf(small_tenant, tmp_path):
    home = small_tenant.root.parent.parent
    runner = CliRunner()
    out = tmp_path / "report.png"
    args = ["report", "dashboard", "--home", str(home), "--tenant", "small", "--start", "2026-11-17",
            "--end", "2026-11-20"]
    result = runner.invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout and f"{out.stat().st_size:,} bytes" in result.stdout
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] >= 2 * report.PAGE_WIDTH

    bad = runner.invoke(main, [*args, "--out", str(tmp_path / "report.docx")])
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and ".png or .pdf" in lines[0]
    both = runner.invoke(main, [*args, "--window", "7d", "--out", str(tmp_path / "r.pdf")])
    assert both.exit_code == 2 and "either --window or --start and --end" in both.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.png"]


def test_docs_keep_the_demo_report():
    image = ROOT / "docs" / "img" / "dashboard-report.png"
    assert image.stat().st_size > 300_000
    with Image.open(image) as im:
        assert im.format == "PNG" and im.size[0] >= 2 * report.PAGE_WIDTH and im.size[1] > 2.5 * im.size[0]
