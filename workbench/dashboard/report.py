"""The threat dashboard as a report for management: one PNG, or a multi-page PDF, offline.

Everything is drawn by vl-convert from Vega-Lite specs (no browser, no network:
``allowed_base_urls=[]``): the number tiles and tables are text marks placed in pixels,
the charts are those of :mod:`workbench.dashboard.charts`. Strings that come from mail or
alerts (addresses, malware family names, alert titles) only ever go into text marks,
stripped of control characters and truncated, never into HTML or markup.

Pages (the PNG stacks them): 1. summary numbers, efficacy and insights; 2. charts;
3. tables. The PDF is one vector page per part, merged with pypdf.

>>> from workbench.dashboard.report import format_of
>>> format_of("q3/dashboard.PDF")
'pdf'
"""

from __future__ import annotations

import io
import os
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl

from workbench.dashboard import charts
from workbench.dashboard.efficacy import FORMULA
from workbench.dashboard.tiles import UNIT, Dashboard, Severity, Tile
from workbench.errors import InputError, StorageError

FORMATS = ("png", "pdf")
PAGE_WIDTH = 980  # pixels (PNG at scale 1) and points (PDF before PDF_SCALE)
PDF_SCALE = 0.6  # 980 pt * 0.6 = 588 pt: an A4 / Letter page width when printed
MAX_TEXT = 80  # no untrusted string is longer than this in the report, whatever the column
TOP = 10

INK, MUTED = "#1f2933", "#5f6b7a"
BOX_FILL, BOX_STROKE, ZEBRA, RULE = "#f5f7fa", "#d5dae1", "#f3f5f8", "#c9d0d8"
GOOD, BAD = "#2f9e44", "#c92a2a"
SEVERITY_COLORS = {Severity.HIGH: "#c92a2a", Severity.MEDIUM: "#e8590c", Severity.LOW: "#1971c2",
                   Severity.INFORMATIONAL: "#868e96"}
CHAR = 0.55  # average glyph width of the sans-serif font, in font sizes (for truncation and wrapping)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


# --------------------------------------------------------------------------- text


def clip(value: Any, limit: int = MAX_TEXT) -> str:
    r"""*value* as one line of plain text: control and bidi characters become spaces, at most *limit* characters.

    >>> clip("Invoice\u202e <b>due</b>\r\n" + "x" * 200)[:24], len(clip("x" * 200))
    ('Invoice <b>due</b> xxxxx', 80)
    """
    text = " ".join(_CONTROL.sub(" ", "" if value is None else str(value)).split())
    limit = max(1, limit)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fits(width: float, size: float) -> int:
    """How many characters of *size* fit in *width* pixels."""
    return max(4, int(width / (size * CHAR)))


def _wrap(text: str, width: float, size: float) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), _fits(width, size)) or [""]


def _count(n: int) -> str:
    return f"{n:,}"


def _when(t: datetime | None, seconds: bool = False) -> str:
    if t is None:
        return ""
    t = t.astimezone(UTC) if t.tzinfo else t
    return t.strftime("%d %b %Y %H:%M" + (":%S" if seconds else ""))


# --------------------------------------------------------------------------- a sheet of text marks


@dataclass
class _Sheet:
    """Text and boxes placed in pixels (x right, y down), drawn as one layered chart."""

    width: int
    texts: list[dict] = field(default_factory=list)
    boxes: list[dict] = field(default_factory=list)
    height: float = 0

    def text(self, x: float, y: float, text: str, *, size: float = 12, color: str = INK, bold: bool = False,
             align: str = "left", italic: bool = False) -> None:
        self.texts.append({"x": float(x), "y": float(y), "text": str(text), "size": float(size), "color": color,
                           "style": (bold, align, italic)})
        self.height = max(self.height, y + size * 0.45 + 2)

    def box(self, x: float, y: float, w: float, h: float, fill: str = BOX_FILL, stroke: str = BOX_STROKE) -> None:
        self.boxes.append({"x": float(x), "x2": float(x + w), "y": float(y), "y2": float(y + h), "fill": fill,
                           "stroke": stroke})
        self.height = max(self.height, y + h + 1)

    def chart(self, title: str | alt.Title | None = None) -> alt.LayerChart:
        layers: list[alt.Chart] = []
        px = {"scale": None, "axis": None}
        if self.boxes:
            layers.append(alt.Chart(pl.DataFrame(self.boxes)).mark_rect(strokeWidth=1).encode(
                alt.X("x:Q", **px), alt.X2("x2:Q"), alt.Y("y:Q", **px), alt.Y2("y2:Q"),
                alt.Fill("fill:N", scale=None), alt.Stroke("stroke:N", scale=None)))
        styles = sorted({t["style"] for t in self.texts})
        for bold, align, italic in styles:
            rows = [{k: v for k, v in t.items() if k != "style"} for t in self.texts
                    if t["style"] == (bold, align, italic)]
            layers.append(alt.Chart(pl.DataFrame(rows)).mark_text(
                align=align, baseline="middle", fontWeight="bold" if bold else "normal",
                fontStyle="italic" if italic else "normal").encode(
                alt.X("x:Q", **px), alt.Y("y:Q", **px), alt.Text("text:N"),
                alt.Size("size:Q", scale=None, legend=None), alt.Color("color:N", scale=None, legend=None)))
        if not layers:  # never blank: an empty sheet still has its (empty) text layer
            layers.append(alt.Chart(pl.DataFrame({"x": [0], "y": [0], "text": [""]})).mark_text().encode(
                alt.X("x:Q", **px), alt.Y("y:Q", **px), alt.Text("text:N")))
        props: dict[str, Any] = {"width": self.width, "height": int(self.height) + 2}
        if title is not None:
            props["title"] = title
        return alt.layer(*layers).properties(**props)


def _title(text: str, subtitle: str | Sequence[str] = "") -> alt.Title:
    return alt.Title(text, subtitle=subtitle or alt.Undefined, anchor="start", fontSize=16, fontWeight="bold",
                     color=INK, subtitleColor=MUTED, subtitleFontSize=11, offset=8)


@dataclass(frozen=True)
class _Number:
    value: str
    label: str
    color: str = INK
    detail: str = ""


def _numbers(title: str, numbers: Sequence[_Number], *, note: str = "", columns: int | None = None,
             width: int = PAGE_WIDTH) -> alt.LayerChart:
    """Boxes with a big number and a label each, *columns* to a row."""
    sheet = _Sheet(width)
    columns = columns or len(numbers) or 1
    gap, h = 12, 66
    w = (width - gap * (columns - 1)) / columns
    for i, n in enumerate(numbers):
        x, y = (i % columns) * (w + gap), (i // columns) * (h + gap)
        sheet.box(x, y, w, h)
        sheet.text(x + 14, y + 25, n.value, size=26, bold=True, color=n.color)
        sheet.text(x + 14, y + 51, clip(n.label, _fits(w - 28, 12)), size=12, color=MUTED)
        if n.detail:
            sheet.text(x + w - 14, y + 25, clip(n.detail, _fits(w / 2, 12)), size=12, color=MUTED, align="right")
    return sheet.chart(_title(title, note))


def _metric_numbers(tile: Tile, colors: dict[str, str] | None = None, keys: Sequence[str] | None = None,
                    columns: int | None = None) -> alt.LayerChart:
    colors = colors or {}
    metrics = [tile.metric(k) for k in keys] if keys else list(tile.metrics)
    if not metrics:
        return _empty_tile(tile)
    return _numbers(tile.title, [_Number(_count(m.value), m.label, colors.get(m.key, INK) if m.value else INK)
                                 for m in metrics],
                    note=tile.note, columns=columns)


def _lines(title: str, lines: Sequence[str], *, size: float = 12, color: str = INK, note: str = "",
           width: int = PAGE_WIDTH, italic: bool = False) -> alt.LayerChart:
    sheet = _Sheet(width)
    y, step = size * 0.7, size * 1.5
    for line in lines:
        for part in _wrap(line, width, size):
            sheet.text(0, y, part, size=size, color=color, italic=italic)
            y += step
    return sheet.chart(_title(title, note) if title else None)


def _empty_tile(tile: Tile, width: int = PAGE_WIDTH, height: int = 0) -> alt.LayerChart:
    """The tile's *empty* text in a box: an empty tile says what will fill it, it is never blank."""
    text = tile.empty or "Nothing to show in this window."
    sheet = _Sheet(width)
    lines = _wrap(text, width - 32, 12)
    h = max(height, 24 + 18 * len(lines))
    sheet.box(0, 0, width, h)
    for i, line in enumerate(lines):
        sheet.text(16, 21 + 18 * i, line, size=12, color=MUTED, italic=True)
    return sheet.chart(_title(tile.title, tile.note))


@dataclass(frozen=True)
class _Column:
    key: str
    header: str
    share: float  # of the table's width
    align: str = "left"
    format: Callable[[Any], str] = str


def _table(title: str, frame: pl.DataFrame, columns: Sequence[_Column], *, note: str = "", empty: str = "",
           width: int = PAGE_WIDTH) -> alt.LayerChart:
    """Up to TOP rows of *frame* as text marks, header row first, every cell clipped to its column."""
    if not frame.height:
        return _lines(title, [empty or "None in this window."], color=MUTED, note=note, italic=True, width=width)
    sheet = _Sheet(width)
    row_h, size, pad = 22, 12, 8
    total = sum(c.share for c in columns)
    lefts, x = [], 0.0
    for c in columns:
        lefts.append(x)
        x += width * c.share / total
    widths = [width * c.share / total for c in columns]
    sheet.box(0, 0, width, row_h, fill="#e9edf2", stroke="#e9edf2")
    for c, left, w in zip(columns, lefts, widths):
        at = left + w - pad if c.align == "right" else left + pad
        sheet.text(at, row_h / 2, clip(c.header, _fits(w - 2 * pad, size)), size=size, bold=True, color=MUTED,
                   align=c.align)
    for r, row in enumerate(frame.head(TOP).iter_rows(named=True)):
        top = (r + 1) * row_h
        if r % 2:
            sheet.box(0, top, width, row_h, fill=ZEBRA, stroke=ZEBRA)
        for c, left, w in zip(columns, lefts, widths):
            at = left + w - pad if c.align == "right" else left + pad
            cell = clip(c.format(row[c.key]), min(_fits(w - 2 * pad, size), MAX_TEXT))  # untrusted: clipped
            sheet.text(at, top + row_h / 2, cell, size=size,
                       align=c.align)
    sheet.box(0, (min(frame.height, TOP) + 1) * row_h, width, 0.5, fill=RULE, stroke=RULE)
    return sheet.chart(_title(title, note))


def _number(v: Any) -> str:
    return "" if v is None else _count(int(v))


def _time(v: Any) -> str:
    return _when(v) if isinstance(v, datetime) else clip(v)


def _day(v: Any) -> str:
    return v.strftime("%d %b %Y") if isinstance(v, datetime) else clip(v)


# --------------------------------------------------------------------------- pages


def _span(d: Dashboard) -> str:
    days = (d.end - d.start).total_seconds() / 86400
    length = f"{days:g} days" if days >= 2 else f"{days * 24:g} hours"
    return f"{_when(d.start)} – {_when(d.end)} UTC ({length})"


def _header(d: Dashboard, part: str, *, tenant: str, generated: datetime, first: bool) -> alt.LayerChart:
    sheet = _Sheet(PAGE_WIDTH)
    who = f"Tenant {clip(tenant, 40)} · " if tenant else ""
    if first:
        sheet.text(0, 14, "Threat dashboard", size=24, bold=True)
        sheet.text(PAGE_WIDTH, 14, part, size=13, color=MUTED, align="right")
        sheet.text(0, 44, f"{who}Window {_span(d)}", size=13)
        sheet.text(0, 64, f"Generated {_when(generated)} UTC · what was stopped and what got through, "
                   f"counting {UNIT}", size=11, color=MUTED)
        sheet.box(0, 78, PAGE_WIDTH, 1.5, fill=INK, stroke=INK)
    else:  # a page of its own in the PDF, a section band in the PNG
        sheet.text(0, 30, f"Threat dashboard · {part}", size=17, bold=True)
        sheet.text(PAGE_WIDTH, 30, f"{who}{_span(d)}", size=11, color=MUTED, align="right")
        sheet.box(0, 46, PAGE_WIDTH, 1.5, fill=INK, stroke=INK)
    return sheet.chart()


def _efficacy(d: Dashboard) -> list[Any]:
    tile = d.tile("efficacy")
    shares = dict(zip(tile.frames["shares"]["stage"].to_list(), tile.frames["shares"]["share"].to_list()))
    stages = (("pre_delivery", "Pre-delivery", "Stopped before delivery", GOOD),
              ("post_delivery", "Post-delivery", "Removed after delivery (ZAP)", "#e67700"),
              ("uncaught", "Uncaught", "Got through, not caught", BAD))
    numbers = []
    for key, stage, label, color in stages:
        n = tile.value(key)
        numbers.append(_Number(f"{shares.get(stage, 0.0):.1f}%", label, color if n else INK,
                               f"{_count(n)} messages"))
    total = tile.value("malicious")
    boxes = _numbers(tile.title, numbers, note=f"{_count(total)} malicious inbound messages; shares add up to 100%")
    bar = charts.efficacy(d).properties(width=PAGE_WIDTH, height=40, title="Share of malicious inbound mail by stage")
    formula = _lines("", FORMULA.splitlines(), size=11, color=MUTED)
    return [boxes, bar, formula]


def _insights(d: Dashboard) -> alt.LayerChart:
    sheet = _Sheet(PAGE_WIDTH)
    if not d.insights:
        sheet.text(0, 10, "No findings in this window: nothing was delivered through an allow entry, left in "
                   "inboxes, clicked, or reported.", size=12, color=MUTED, italic=True)
    y = 0.0
    for insight in d.insights:
        color = SEVERITY_COLORS.get(insight.severity, MUTED)
        lines = _wrap(clip(insight.text, 1000), PAGE_WIDTH - 120, 13)
        sheet.box(0, y, 96, 22, fill=color, stroke=color)
        sheet.text(48, y + 11, str(insight.severity.value), size=11, bold=True, color="#ffffff", align="center")
        for i, line in enumerate(lines):
            sheet.text(110, y + 11 + 19 * i, line, size=13)
        y += max(30, 19 * len(lines) + 11)
    return sheet.chart(_title("Insights", "computed findings, most severe first"))


def _summary(d: Dashboard, tenant: str, generated: datetime) -> list[Any]:
    """Page 1: the summary numbers, efficacy with its formula, protection status, weekly and trend totals, insights."""
    status, trends = d.tile("protection_status"), d.tile("trends")
    return [
        _header(d, "Summary", tenant=tenant, generated=generated, first=True),
        _metric_numbers(d.tile("summary"), {"malware_blocked": GOOD, "phish_blocked": GOOD}, columns=3),
        *_efficacy(d),
        _metric_numbers(status, {"blocked": GOOD, "delivered": BAD if status.value("delivered") else INK}),
        _metric_numbers(d.tile("weekly"), {"threats_stopped": GOOD}),
        _metric_numbers(trends, {m.key: charts.CLASS_COLORS.get(m.label, INK) for m in trends.metrics}),
        _insights(d),
    ]


def _charts(d: Dashboard, tenant: str, generated: datetime) -> list[Any]:
    """Page 2: every chart of :data:`charts.CHARTS` (efficacy's bar is on page 1), and the intel tile."""
    placed = {charts.efficacy, charts.protection_status, charts.delivery_status, charts.trends, charts.malware_trend,
              charts.malware_families}
    later = [fn(d) for fns in charts.CHARTS.values() for fn in fns if fn not in placed]  # added to CHARTS later
    return [
        _header(d, "Charts", tenant=tenant, generated=generated, first=False),
        _hconcat(charts.protection_status(d), charts.delivery_status(d), spacing=50),
        _hconcat(charts.trends(d), charts.malware_trend(d), spacing=50),
        _hconcat(_empty_tile(d.tile("intel"), width=330, height=110), charts.malware_families(d), spacing=50),
        *later,
    ]


def _tables(d: Dashboard, tenant: str, generated: datetime) -> list[Any]:
    """Page 3: top targeted users, users who clicked, weekly detections per week, recent alerts, incidents."""
    targeted, clickers, weekly, alerts = (d.tile(k) for k in ("targeted_users", "clickers", "weekly", "alerts"))
    weeks = weekly.frames["weeks"]
    parts = [
        _header(d, "Tables", tenant=tenant, generated=generated, first=False),
        _table(targeted.title, targeted.frames["users"], [
            _Column("user", "User", 4), _Column("messages", "Phish + malware", 1.3, "right", _number),
            _Column("phish", "Phish", 1, "right", _number), _Column("malware", "Malware", 1, "right", _number),
            _Column("delivered", "Delivered", 1, "right", _number)],
            note=f"top {TOP}; {targeted.note}", empty="No user received phish or malware in this window."),
        _table(clickers.title, clickers.frames["users"], [
            _Column("user", "User", 4), _Column("clicks", "Clicks", 1, "right", _number),
            _Column("blocked", "Blocked", 1, "right", _number),
            _Column("reached_the_site", "Reached the site", 1.3, "right", _number),
            _Column("last_click", "Last click (UTC)", 1.6, "right", _time)],
            note=f"{_count(clickers.value('users'))} users, {_count(clickers.value('clicks'))} clicks; top {TOP}; "
                 f"{clickers.note}", empty="Nobody clicked a link in malicious mail in this window."),
        _table(weekly.title, weeks.tail(TOP), [
            _Column("week", "Week of", 2, format=_day), _Column("scanned", "Messages scanned", 1.5, "right", _number),
            _Column("threats_stopped", "Threats stopped", 1.5, "right", _number),
            _Column("removed_after_delivery", "Removed after delivery (ZAP)", 2, "right", _number)],
            note=(f"latest {TOP} of {weeks.height} weeks; " if weeks.height > TOP else "") + weekly.note),
    ]
    if alerts.empty or "recent" not in alerts.frames:
        parts.append(_empty_tile(alerts))
    else:
        by_severity = ", ".join(f"{_count(m.value)} {m.label.lower()}" for m in alerts.metrics if m.value)
        parts.append(_table(alerts.title, alerts.frames["recent"], [
            _Column("Timestamp", "Time (UTC)", 1.6, format=_time), _Column("Severity", "Severity", 1.1),
            _Column("Title", "Title", 4.4), _Column("Category", "Category", 1.6)],
            note=f"{by_severity or 'none'}; the {TOP} most recent; {alerts.note}"))
    incidents = d.tile("incidents")
    parts.append(_empty_tile(incidents) if incidents.empty or not incidents.metrics else _metric_numbers(incidents))
    return parts


PAGES = (("Summary", _summary), ("Charts", _charts), ("Tables", _tables))

# Independent colour (and size) scales in every concat: otherwise legends merge and a chart
# can come out empty. Set in the constructor, the concats kept flat and the data in frames,
# because altair deep-copies the whole tree on every chained call and at every nesting level.
_INDEPENDENT = alt.Resolve(scale=alt.ScaleResolveMap(color="independent", size="independent"))


def _vconcat(*charts_: Any, spacing: int = 26) -> alt.VConcatChart:
    return alt.vconcat(*charts_, spacing=spacing, resolve=_INDEPENDENT)


def _hconcat(*charts_: Any, spacing: int = 20) -> alt.HConcatChart:
    return alt.hconcat(*charts_, spacing=spacing, resolve=_INDEPENDENT)


def _configure(chart: Any) -> Any:
    return chart.configure(
        font="sans-serif", background="#ffffff", padding=24, view=alt.ViewConfig(stroke=None),
        title=alt.TitleConfig(anchor="start", frame="group", fontSize=14, color=INK),  # titles line up with the plots
        axis=alt.AxisConfig(labelColor=MUTED, titleColor=MUTED, labelFontSize=11, titleFontSize=11),
        legend=alt.LegendConfig(labelColor=INK, labelFontSize=11, titleFontSize=11, symbolSize=90, labelLimit=260))


def page_specs(d: Dashboard, *, tenant: str = "", generated: datetime | None = None) -> list[Any]:
    """The report's pages, each a top-level chart: 1. summary numbers, efficacy and insights; 2. charts; 3. tables."""
    generated = generated or datetime.now(UTC)
    return [_configure(_vconcat(*blocks(d, tenant, generated))) for _, blocks in PAGES]


def dashboard_spec(d: Dashboard, *, tenant: str = "", generated: datetime | None = None) -> Any:
    """The whole dashboard as one composed Vega-Lite chart: the pages, stacked.

    A title line with the window (UTC) and the generation time; the number tiles as boxes;
    every chart of :data:`charts.CHARTS`; the tables (top 10 rows); the insights; empty tiles
    with their *empty* text.
    """
    generated = generated or datetime.now(UTC)
    return _configure(_vconcat(*(c for _, blocks in PAGES for c in blocks(d, tenant, generated))))


# --------------------------------------------------------------------------- rendering and files


def _convert(kind: str, chart: Any, **kw: Any) -> bytes:
    import vl_convert as vlc

    convert = {"png": vlc.vegalite_to_png, "pdf": vlc.vegalite_to_pdf}[kind]
    return convert(chart.to_json(), vl_version=charts.vl_version(), allowed_base_urls=[], **kw)


def png_bytes(d: Dashboard, *, scale: float = 2, tenant: str = "", generated: datetime | None = None) -> bytes:
    """The whole dashboard as one PNG image (RGB on white)."""
    from PIL import Image

    raw = _convert("png", dashboard_spec(d, tenant=tenant, generated=generated), scale=scale)
    # vl-convert compresses lightly and keeps an alpha channel the white background never uses:
    # re-encoding as RGB with zlib level 6 makes the file about 3.5x smaller, in half a second
    with Image.open(io.BytesIO(raw)) as im:
        if im.mode == "RGBA" and im.getextrema()[3][0] < 255:
            return raw
        out = io.BytesIO()
        im.convert("RGB").save(out, "PNG", compress_level=6)
    return out.getvalue()


def pdf_bytes(d: Dashboard, *, tenant: str = "", generated: datetime | None = None) -> bytes:
    """The report as a multi-page vector PDF: vl-convert renders each page, pypdf merges them."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for spec in page_specs(d, tenant=tenant, generated=generated):
        for page in PdfReader(io.BytesIO(_convert("pdf", spec))).pages:
            # vl-convert sizes a page 1 pt per pixel: shrink it to about A4 / Letter width (still vector)
            added = writer.add_page(page)
            added.scale_by(PDF_SCALE)
            added.compress_content_streams()
    writer.add_metadata({"/Title": f"Threat dashboard {_span(d)}", "/Creator": "workbench"})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def format_of(path: Path | str) -> str:
    """``png`` or ``pdf`` from *path*'s extension, else an InputError naming the fix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"cannot write a dashboard report to {path.name!r}: choose a .png or .pdf file name")
    return fmt


def _check_folder(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise StorageError(f"cannot write {path}: folder {folder} does not exist; create it or choose another file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write {path}: folder {folder} is not writable; choose a writable folder")


def _write_atomic(path: Path, data: bytes) -> Path:
    """Write *data* to *path*, never half-written (workbench.atomic)."""
    from workbench.atomic import atomic_open

    with atomic_open(path, "wb") as out:
        out.write(data)
    return path


def check_target(path: Path | str, fmt: str | None = None) -> str:
    """The format *path* asks for (``png`` or ``pdf``, or *fmt* when given, which the extension must match),
    once its folder is known to be writable: call it before the (slow) build to fail fast."""
    found = format_of(path)
    if fmt is not None and found != fmt:
        raise InputError(f"cannot write a {fmt.upper()} to {Path(path).name!r}: give the file a .{fmt} extension")
    _check_folder(Path(path))
    return found


def write_png(d: Dashboard, path: Path | str, scale: float = 2, *, tenant: str = "",
              generated: datetime | None = None) -> Path:
    """The whole dashboard as one PNG at *path* (atomic)."""
    check_target(path, "png")
    return _write_atomic(Path(path), png_bytes(d, scale=scale, tenant=tenant, generated=generated))


def write_pdf(d: Dashboard, path: Path | str, *, tenant: str = "", generated: datetime | None = None) -> Path:
    """The dashboard as a multi-page vector PDF at *path* (atomic)."""
    check_target(path, "pdf")
    return _write_atomic(Path(path), pdf_bytes(d, tenant=tenant, generated=generated))


def write(d: Dashboard, path: Path | str, *, tenant: str = "", generated: datetime | None = None) -> Path:
    """PNG or PDF, from *path*'s extension."""
    writer = write_png if format_of(path) == "png" else write_pdf
    return writer(d, path, tenant=tenant, generated=generated)


def report_bytes(d: Dashboard, fmt: str, *, tenant: str = "", generated: datetime | None = None) -> bytes:
    """The report as bytes, for a download button: *fmt* is ``png`` or ``pdf``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown report format {fmt!r}; choose png or pdf")
    if fmt == "png":
        return png_bytes(d, tenant=tenant, generated=generated)
    return pdf_bytes(d, tenant=tenant, generated=generated)


__all__ = ["dashboard_spec", "page_specs", "write_png", "write_pdf", "write", "png_bytes", "pdf_bytes",
           "report_bytes", "format_of", "check_target", "clip", "FORMATS"]
