"""The threat dashboard panel: tiles of numbers, charts and tables for one window; every
number links to the Explorer query that lists what it counts. Read-only: no action buttons.

    DashboardPanel.for_tenant()   # the default tenant; in Voila, ?window=7d picks the window

Data comes from :func:`workbench.dashboard.build`; charts are rendered to static SVG offline
and shown as images (nothing in them can run); every untrusted string goes through
:mod:`workbench.ui.render`.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as w
import polars as pl

from workbench.dashboard import WINDOWS, Dashboard, Insight, Metric, Tile, build, window_named
from workbench.dashboard import charts
from workbench.dashboard.efficacy import FORMULA
from workbench.errors import WorkbenchError
from workbench.explorer.query import Query
from workbench.lake import Lake
from workbench.ui.render import STYLE, esc, table_html

EXPLORER = "Explorer.ipynb"  # relative: from /voila/render/Dashboard.ipynb it opens the Explorer app
CUSTOM = "custom"
_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days", CUSTOM: "Custom"}
STALE_AFTER_S = 60  # a preheated kernel recomputes when its page is requested later than this
_SEVERITY_COLORS = {"High": "#c92a2a", "Medium": "#e67700", "Low": "#1c7ed6", "Informational": "#666"}
_TABLES = {  # tile -> (frame, columns, labels)
    "targeted_users": ("users", ["user", "messages", "phish", "malware", "delivered"],
                       {"user": "User", "messages": "Phish + malware", "phish": "Phish", "malware": "Malware",
                        "delivered": "Delivered"}),
    "clickers": ("users", ["user", "clicks", "blocked", "reached_the_site", "last_click"],
                 {"user": "User", "clicks": "Clicks", "blocked": "Blocked", "reached_the_site": "Reached the site",
                  "last_click": "Last click (UTC)"}),
    "weekly": ("weeks", ["week", "scanned", "threats_stopped", "removed_after_delivery"],
               {"week": "Week of", "scanned": "Scanned", "threats_stopped": "Threats stopped",
                "removed_after_delivery": "Removed after delivery"}),
    "incidents": ("open", ["Id", "Severity", "Name", "Alerts", "Last activity"],
                  {"Id": "#", "Severity": "Severity", "Name": "Incident", "Alerts": "Alerts",
                   "Last activity": "Last activity (UTC)"}),
    "alerts": ("recent", ["Timestamp", "Severity", "Title", "Category"],
               {"Timestamp": "Time (UTC)", "Severity": "Severity", "Title": "Alert", "Category": "Category"}),
}
_CSS = """<style>
.wb-tile {border: 1px solid #dde; border-radius: 6px; padding: 8px 10px; background: #fff;}
.wb-tile h3 {font-size: 15px; margin: 0 0 6px 0;}
.wb-metrics {display: flex; flex-wrap: wrap; gap: 6px 18px;}
.wb-metric {display: flex; flex-direction: column; min-width: 90px; text-decoration: none; color: inherit;}
a.wb-metric:hover .wb-num {text-decoration: underline;}
.wb-num {font-size: 24px; font-weight: 600; color: #1b4f9c;}
.wb-metric .wb-label {font-size: 12px; color: #555;}
.wb-drill {font-size: 12px;}
.wb-insight {margin: 3px 0; font-size: 13px;}
.wb-sev {display: inline-block; min-width: 56px; font-size: 11px; font-weight: 600; color: #fff; border-radius: 3px;
  padding: 0 4px; margin-right: 6px; text-align: center;}
</style>"""


def _fmt(value: int) -> str:
    return f"{value:,}"


class DashboardPanel(w.VBox):
    """The dashboard for a lake. *explorer* is the Explorer app's address the drill-down links
    point at (default: relative, next to this app in Voila)."""

    def __init__(self, lake: Lake, *, window: str = "30d", now: datetime | None = None,
                 explorer: str = EXPLORER, export_dir: Path | None = None, store: Any = None) -> None:
        super().__init__()
        self.lake, self.now, self.explorer, self.store = lake, now, explorer, store
        self.export_dir = export_dir
        self.dashboard: Dashboard | None = None
        self.window = w.ToggleButtons(options=[(_LABELS[k], k) for k in (*WINDOWS, CUSTOM)], value=window,
                                      style={"button_width": "80px"}, tooltips=[WINDOWS.get(k, "From, to") for k in (*WINDOWS, CUSTOM)])
        self.start_picker = w.DatePicker(description="From", layout=w.Layout(width="210px"))
        self.end_picker = w.DatePicker(description="To", layout=w.Layout(width="210px"))
        self.apply_button = w.Button(description="Apply", icon="check")
        self.custom_box = w.HBox([self.start_picker, self.end_picker, self.apply_button],
                                 layout=w.Layout(display="none"))
        self.png_button = w.Button(description="PNG", icon="download", tooltip="Download the dashboard as a PNG image")
        self.pdf_button = w.Button(description="PDF report", icon="download", tooltip="Download a PDF report")
        self.download = w.HTML()
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="200px", visibility="hidden"))
        self.status = w.HTML()
        self.error = w.HTML()
        self.insights = w.HTML()
        self.intel = w.HTML()  # security trends (the ThreatIntel app's widget), below the tiles
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(auto-fill, minmax(470px, 1fr))",
                                              grid_gap="10px", width="100%"))
        self.window.observe(self._on_window, "value")
        self.apply_button.on_click(lambda _: self.refresh())
        self.png_button.on_click(lambda _: self.export("png"))
        self.pdf_button.on_click(lambda _: self.export("pdf"))
        self.children = [
            w.HTML(STYLE + _CSS),
            w.HBox([self.window, self.png_button, self.pdf_button, self.progress]),
            self.custom_box, self.error, self.status, self.download, self.insights, self.grid, self.intel,
        ]

    # ------------------------------------------------------------------ construction

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> DashboardPanel:
        """The panel on a tenant (name, Tenant or None for the default), computed for the
        default window. In Voila, ``?window=7d`` (or ``?window=custom&start=…&end=…``)
        chooses another; with a preheated kernel the default is computed before the page is
        requested, and the query string read after."""
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        base = os.environ.get("WORKBENCH_APPS_URL", "").rstrip("/")
        if base:  # e.g. JupyterLab next to a running `workbench serve`
            kwargs.setdefault("explorer", f"{base}/voila/render/{EXPLORER}")
        kwargs.setdefault("export_dir", t.root / "reports")
        if "store" not in kwargs:
            from workbench.store import existing_store

            kwargs["store"] = existing_store(t)  # alerts and incidents, when the tenant has them
        panel = cls(Lake.for_tenant(t), **kwargs)
        panel.refresh()
        computed = time.monotonic()
        _wait_for_request()
        args = parse_qs(os.environ.get("QUERY_STRING", ""))
        wanted = args.get("window", [None])[0]
        if (not wanted or wanted == panel.window.value) and time.monotonic() - computed > STALE_AFTER_S:
            panel.refresh()  # a preheated kernel waited long for its page: show today's numbers, not those of then
        if wanted and wanted != panel.window.value:
            try:
                if wanted == CUSTOM:
                    panel.start_picker.value = date.fromisoformat(args.get("start", [""])[0])
                    panel.end_picker.value = date.fromisoformat(args.get("end", [""])[0])
                panel.window.value = wanted if wanted in (*WINDOWS, CUSTOM) else panel.window.value
                if wanted not in (*WINDOWS, CUSTOM):
                    raise WorkbenchError(f"unknown window {wanted!r} in the address; use one of {', '.join(WINDOWS)} or custom")
            except ValueError:
                panel.show_error(WorkbenchError("a custom window in the address needs start and end dates "
                                                "(YYYY-MM-DD), e.g. ?window=custom&start=2026-01-01&end=2026-04-01"))
            except WorkbenchError as exc:
                panel.show_error(exc)
        return panel

    # ------------------------------------------------------------------ behaviour

    def _on_window(self, change: dict) -> None:
        custom = change["new"] == CUSTOM
        self.custom_box.layout.display = "flex" if custom else "none"
        if custom and not (self.start_picker.value and self.end_picker.value) and self.dashboard:
            self.start_picker.value = self.dashboard.start.date()
            self.end_picker.value = (self.dashboard.end - timedelta(microseconds=1)).date()
        if not custom or (self.start_picker.value and self.end_picker.value):
            self.refresh()

    def current_window(self):  # noqa: ANN201 - explorer.query.Window
        if self.window.value == CUSTOM:
            if not (self.start_picker.value and self.end_picker.value):
                raise WorkbenchError("pick a From and a To date for a custom window")
            end = self.end_picker.value + timedelta(days=1)  # the To day is included
            return window_named(CUSTOM, self.start_picker.value.isoformat(), end.isoformat())
        return window_named(self.window.value)

    def show_error(self, exc: Exception) -> None:
        self.error.value = f'<span style="color:#b00020">{esc(str(exc))}</span>'

    def refresh(self) -> None:
        """Recompute every tile for the chosen window and redraw."""
        self.error.value = ""
        try:
            window = self.current_window()
        except WorkbenchError as exc:
            self.show_error(exc)
            return
        self.progress.layout.visibility = "visible"
        self.progress.max, self.progress.value = 2 + sum(len(f) for f in charts.CHARTS.values()), 0
        self.status.value = '<span class="wb-note">Computing…</span>'
        try:
            started = time.perf_counter()
            d = build(self.lake, window, now=self.now, store=self.store)
            self.progress.value += 1
            self.dashboard = d
            self.insights.value = self._insights_html(d.insights)
            tiles = [self._tile(t) for t in d.tiles]
            self.grid.children = tiles
            self.progress.value += 1
            for key, fns in charts.CHARTS.items():  # numbers first, then the charts fill in
                box = next(b for b, t in zip(tiles, d.tiles) if t.key == key)
                images = [w.Image(value=charts.svg(fn(d)).encode(), format="svg+xml",
                                  layout=w.Layout(max_width="100%", align_self="flex-start"))
                          for fn in fns]
                box.children = (*box.children[:1], *images, *box.children[1:])
                self.progress.value += len(fns)
            self.intel.value = self._intel_html(d.end)
            shown = f"{d.start:%Y-%m-%d %H:%M} – {d.end:%Y-%m-%d %H:%M} UTC"
            self.status.value = (f'<span class="wb-note">{esc(shown)} · computed in '
                                 f'{time.perf_counter() - started:.1f} s · counts are messages per recipient</span>')
        except WorkbenchError as exc:
            self.show_error(exc)
            self.status.value = ""
        finally:
            self.progress.layout.visibility = "hidden"

    def _intel_html(self, end: datetime) -> str:
        """Rising and declining threat families over the week before *end*, linking to the ThreatIntel app."""
        from workbench.intel.trends import family_trends
        from workbench.ui.intel_widgets import security_trends_html

        try:
            trends = family_trends(self.lake, now=end)
        except WorkbenchError as exc:
            return f'<span class="wb-note">Security trends unavailable: {esc(str(exc))}</span>'
        return ('<h3>Security trends <a class="wb-drill" href="ThreatIntel.ipynb">threat intelligence →</a></h3>'
                + security_trends_html(trends, limit=6))

    def export(self, kind: str) -> Path | None:
        """Write the dashboard as a PNG or PDF (into the tenant's reports folder) and offer it for download."""
        if self.dashboard is None:
            return None
        from workbench.dashboard import report

        self.download.value = '<span class="wb-note">Rendering…</span>'
        try:
            folder = self.export_dir or Path(tempfile.mkdtemp(prefix="workbench-report-"))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"dashboard-{datetime.now(UTC):%Y%m%d-%H%M%S}.{kind}"
            (report.write_png if kind == "png" else report.write_pdf)(self.dashboard, path)
        except WorkbenchError as exc:
            self.download.value = ""
            self.show_error(exc)
            return None
        data = base64.b64encode(path.read_bytes()).decode()
        mime = "image/png" if kind == "png" else "application/pdf"
        self.download.value = (f'<span class="wb-note">Saved {esc(path)} ({path.stat().st_size / 1024:,.0f} KB) · '
                               f'<a download="{esc(path.name)}" href="data:{mime};base64,{data}">download</a></span>')
        return path

    # ------------------------------------------------------------------ drawing

    def link(self, q: Query | None) -> str:
        return q.to_link(self.explorer) if q is not None else ""

    def _metric_html(self, m: Metric) -> str:
        inner = (f'<span class="wb-num" data-value="{m.value}">{_fmt(m.value)}</span>'
                 f'<span class="wb-label">{esc(m.label)}</span>')
        title = f' title="{esc(m.hint)}"' if m.hint else ""
        if m.query is None:
            return f'<span class="wb-metric" data-metric="{esc(m.key)}"{title}>{inner}</span>'
        return (f'<a class="wb-metric" data-metric="{esc(m.key)}" href="{esc(self.link(m.query))}" '
                f'target="_blank" rel="noopener"{title}>{inner}</a>')

    def _tile(self, t: Tile) -> w.VBox:
        parts = [f'<h3>{esc(t.title)}</h3>']
        if t.empty:
            parts.append(f'<div class="wb-empty" data-empty="1">{esc(t.empty)}</div>')
        if t.metrics:
            title = f' title="{esc(FORMULA)}"' if t.key == "efficacy" else ""
            parts.append(f'<div class="wb-metrics"{title}>{"".join(self._metric_html(m) for m in t.metrics)}</div>')
        if t.key == "efficacy" and t.frames:
            shares = t.frames["shares"]
            parts.append('<div class="wb-note" title="' + esc(FORMULA) + '">' + " · ".join(
                f"{esc(s)} <b>{share:.1f}%</b>" for s, share in zip(shares["stage"], shares["share"]))
                + ' <span style="cursor:help; text-decoration: underline dotted">(formula)</span></div>')
        head = w.HTML("".join(parts))
        tail: list[w.Widget] = []
        if t.key in _TABLES and t.frames:
            name, columns, labels = _TABLES[t.key]
            frame = t.frames[name]
            tail.append(w.HTML(self._table(t, frame, columns, labels)))
        if t.query is not None:
            tail.append(w.HTML(f'<a class="wb-drill" href="{esc(self.link(t.query))}" target="_blank" '
                               f'rel="noopener">Open in Explorer ↗</a>'))
        box = w.VBox([head, *tail], layout=w.Layout(overflow="hidden"))
        box.add_class("wb-tile")
        box.add_class(f"wb-tile-{t.key}")
        return box

    def _table(self, t: Tile, frame: pl.DataFrame, columns: list[str], labels: dict[str, str]) -> str:
        if "week" in frame.columns:  # a week is named by its first day
            frame = frame.with_columns(pl.col("week").dt.date())
        html = table_html(frame, columns, labels=labels)
        if t.key == "targeted_users" and frame.height and self.dashboard is not None:
            # each user's row links to that user's phish and malware in the Explorer
            from workbench.dashboard.data import user_drill

            links = "".join(f'<li><a href="{esc(self.link(user_drill(self.dashboard, u)))}" target="_blank" '
                            f'rel="noopener">{esc(u)}</a></li>' for u in frame["user"].to_list())
            html += f'<details class="wb-note"><summary>Open a user in Explorer</summary><ul>{links}</ul></details>'
        return f'<div class="wb-scroll" style="max-height:260px">{html}</div>'

    def _insights_html(self, insights: tuple[Insight, ...]) -> str:
        if not insights:
            return '<div class="wb-tile wb-insights"><h3>Insights</h3><div class="wb-empty">Nothing stands out in this window.</div></div>'
        rows = "".join(
            f'<div class="wb-insight" data-insight="{esc(i.key)}"><span class="wb-sev" '
            f'style="background:{_SEVERITY_COLORS[i.severity.value]}">{esc(i.severity.value)}</span>'
            + (f'<a href="{esc(self.link(i.query))}" target="_blank" rel="noopener">{esc(i.text)}</a>'
               if i.query is not None else esc(i.text)) + "</div>" for i in insights)
        return f'<div class="wb-tile wb-insights"><h3>Insights</h3>{rows}</div>'


def _wait_for_request() -> None:
    """In a preheated Voila kernel, block until the page is requested (then QUERY_STRING and
    the request headers are in the environment); elsewhere return at once."""
    if os.environ.get("VOILA_PREHEAT", "False") != "True":
        return
    from voila.utils import wait_for_request

    wait_for_request()


__all__ = ["DashboardPanel"]
