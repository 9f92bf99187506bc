"""The Threat Explorer panel: ipywidgets over :mod:`workbench.explorer` (no query logic here).

    from workbench.ui.explorer import ExplorerPanel
    ExplorerPanel.for_tenant()    # the default tenant; in Voila, a ?q=<link> prefills the query

Layout: view, window and Refresh on top; the condition builder (nested AND / OR groups, NOT
per condition or group); the pivot chart (click a legend entry to filter on it, brush a time
range to narrow the window); the view's tabs (grid with paging, sort and selection, top
panels); the email entity of the selected row; export and actions on the selection.
Every value shown in HTML passes through :mod:`workbench.ui.render` (escaped, URLs defanged).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as w
import polars as pl

from workbench.errors import WorkbenchError
from workbench.identity import acting_user
from workbench.explorer import aggregate as agg
from workbench import schema
from workbench.explorer.actions import CONFIRM_ABOVE, ActionKind, ActionRequest, MessageRef, build_request
from workbench.explorer.entity import email_entity
from workbench.explorer.export import export
from workbench.explorer.properties import Kind, prop, properties
from workbench.explorer.query import OP_LABELS, And, Cond, Node, Not, Op, Or, Query, Window, split_values
from workbench.explorer.views import VIEWS, view
from workbench.lake import Lake
from workbench.ui.render import STYLE, definitions, esc, pre, table_html

WINDOWS = [("Last 24 hours", "24h"), ("Last 7 days", "7d"), ("Last 30 days", "30d"), ("Last 90 days", "90d"),
           ("Last 365 days", "365d"), ("Custom", "custom")]
TAB_FUNCTIONS: dict[str, Callable[..., pl.DataFrame]] = {
    "Top URLs": agg.top_urls, "Top clicks": agg.top_clicks, "Top targeted users": agg.top_targeted_users,
    "Top malware families": agg.top_malware_families, "Email origin": agg.email_origin, "Campaign": agg.campaigns,
    "URL clicks": agg.clicks_of_mail,
}


class ConditionRow(w.HBox):
    """``[NOT] <property> <operator> <values> [x]``"""

    def __init__(self, table: str, on_remove: Callable[[w.Widget], None], cond: Cond | None = None,
                 negated: bool = False) -> None:
        self.table = table
        props = properties(table)
        self.negate = w.Checkbox(value=negated, description="NOT", indent=False, layout=w.Layout(width="60px"))
        self.prop = w.Dropdown(options=[(p.label, p.key) for p in props], layout=w.Layout(width="220px"))
        self.op = w.Dropdown(layout=w.Layout(width="150px"))
        self.text = w.Text(placeholder="values, comma-separated", layout=w.Layout(width="320px"))
        self.tags = w.TagsInput(allow_duplicates=False, layout=w.Layout(width="320px"))
        self.values_box = w.Box([self.text])
        self.remove = w.Button(description="", icon="times", tooltip="remove this condition", layout=w.Layout(width="36px"))
        self.remove.on_click(lambda _: on_remove(self))
        self.prop.observe(self._on_prop, names="value")
        self.op.observe(self._on_op, names="value")
        super().__init__([self.negate, self.prop, self.op, self.values_box, self.remove])
        if cond is not None:
            self.prop.value = prop(cond.property, table).key
            self._on_prop()
            self.op.value = cond.op
            self.set_values(list(cond.values))
        else:
            self._on_prop()

    def _on_prop(self, _: Any = None) -> None:
        p = prop(self.prop.value, self.table)
        self.op.options = [(OP_LABELS[o], o) for o in p.operators]
        self.op.value = Op.CONTAINS if p.key == "subject" else Op.ANY  # Explorer matches subjects as substrings
        self.tags.allowed_tags = list(p.values)
        self._on_op()

    def _on_op(self, _: Any = None) -> None:
        p = prop(self.prop.value, self.table)
        picker = p.kind is Kind.ENUM and self.op.value in (Op.ANY, Op.NONE)
        self.values_box.children = [self.tags if picker else self.text]

    def set_values(self, values: list[str]) -> None:
        if self.values_box.children[0] is self.tags:
            self.tags.value = values
        else:
            self.text.value = ", ".join(values)

    def to_node(self) -> Node:
        values = list(self.tags.value) if self.values_box.children[0] is self.tags else list(split_values(self.text.value))
        cond = Cond(self.prop.value, self.op.value, tuple(values))
        return Not(cond) if self.negate.value else cond


class GroupEditor(w.VBox):
    """A group of conditions and subgroups joined by AND or OR, optionally negated."""

    def __init__(self, table: str, on_remove: Callable[[w.Widget], None] | None = None, depth: int = 0) -> None:
        self.table, self.depth = table, depth
        self.connective = w.ToggleButtons(options=["AND", "OR"], value="AND", style={"button_width": "48px"})
        self.negate = w.Checkbox(value=False, description="NOT", indent=False, layout=w.Layout(width="60px"))
        self.items = w.VBox([])
        add_cond = w.Button(description="Condition", icon="plus", tooltip="add a condition", layout=w.Layout(width="110px"))
        add_group = w.Button(description="Group", icon="plus", tooltip="add a nested group", layout=w.Layout(width="90px"))
        add_cond.on_click(lambda _: self.add_condition())
        add_group.on_click(lambda _: self.add_group())
        head = [self.negate, self.connective, add_cond, add_group]
        if on_remove is not None:
            remove = w.Button(description="", icon="times", tooltip="remove this group", layout=w.Layout(width="36px"))
            remove.on_click(lambda _: on_remove(self))
            head.append(remove)
        border = "1px solid #ccc" if depth else "none"
        super().__init__([w.HBox(head), self.items],
                         layout=w.Layout(border=border, padding="2px 2px 2px 12px" if depth else "0"))

    def _remove(self, child: w.Widget) -> None:
        self.items.children = tuple(c for c in self.items.children if c is not child)

    def add_condition(self, cond: Cond | None = None, negated: bool = False) -> ConditionRow:
        row = ConditionRow(self.table, self._remove, cond, negated)
        self.items.children = (*self.items.children, row)
        return row

    def add_group(self) -> GroupEditor:
        group = GroupEditor(self.table, self._remove, self.depth + 1)
        self.items.children = (*self.items.children, group)
        return group

    def clear(self) -> None:
        self.items.children = ()
        self.connective.value, self.negate.value = "AND", False

    def to_node(self) -> Node | None:
        nodes = [n for n in (c.to_node() for c in self.items.children) if n is not None]
        if not nodes:
            return None
        node: Node = nodes[0] if len(nodes) == 1 else (And(*nodes) if self.connective.value == "AND" else Or(*nodes))
        return Not(node) if self.negate.value else node

    def load(self, node: Node | None) -> None:
        """Show *node* (from a link or a saved query) in this editor."""
        self.clear()
        if node is None:
            return
        if isinstance(node, Not) and not isinstance(node.item, Cond):
            self.negate.value = True
            node = node.item
        if isinstance(node, (And, Or)):
            self.connective.value = "AND" if isinstance(node, And) else "OR"
            items = node.items
        else:
            items = (node,)
        for item in items:
            if isinstance(item, Cond):
                self.add_condition(item)
            elif isinstance(item, Not) and isinstance(item.item, Cond):
                self.add_condition(item.item, negated=True)
            else:
                self.add_group().load(item)


def _short(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value if value is not None else "")[:60]


class ExplorerPanel(w.VBox):
    """The Explorer for one lake. ``now`` pins relative windows (tests); ``read_content`` allows
    the body preview (checked and audited in ``roles``, the tenant's store, when given);
    ``on_request`` receives every :class:`ActionRequest` built; ``actions`` are the kinds
    offered (default: all; none hides the action row)."""

    def __init__(self, lake: Lake, *, mail_store: Any = None, query: Query | None = None, now: datetime | None = None,
                 read_content: bool = False, chart: bool = True, page_size: int = 50,
                 on_request: Callable[[ActionRequest], None] | None = None, export_dir: Path | None = None,
                 saved_dir: Path | None = None, link_base: str = "",
                 actions: Sequence[ActionKind] = tuple(ActionKind), roles: Any = None) -> None:
        self.roles = roles
        self.lake, self.mail_store, self.now = lake, mail_store, now
        self.read_content, self.page_size, self.on_request = read_content, page_size, on_request
        self.export_dir = export_dir or Path.cwd()
        self.saved_dir, self.link_base = saved_dir, link_base
        self.requests: list[ActionRequest] = []
        self.snapshot: agg.Snapshot | None = None
        self.offset = 0
        self._page: pl.DataFrame = pl.DataFrame()
        self._chart_enabled = chart
        self._chart: Any = None
        self._exact: tuple[datetime, datetime] | None = None  # the last brushed time range

        self.view = w.Dropdown(options=[(v.label, v.key) for v in VIEWS.values()], description="View")
        self.window = w.Dropdown(options=WINDOWS, value="7d", description="Window")
        self.start = w.DatePicker(description="From", layout=w.Layout(display="none"))
        self.end = w.DatePicker(description="To", layout=w.Layout(display="none"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", button_style="primary")
        self.status = w.HTML()
        self.error = w.HTML()
        self.builder = GroupEditor("EmailEvents")
        self.pivot = w.Dropdown(description="Pivot")
        self.chart_box = w.Box(layout=w.Layout(min_height="60px", width="100%"))
        self.sort = w.Dropdown(description="Sort by")
        self.columns = w.TagsInput(allow_duplicates=False, layout=w.Layout(width="95%"))
        self.selected_count = w.Label("0 selected")
        self.descending = w.Checkbox(value=True, description="newest / largest first", indent=False)
        self.grid = w.HTML()
        self.prev_button = w.Button(description="Previous", icon="chevron-left", layout=w.Layout(width="110px"))
        self.next_button = w.Button(description="Next", icon="chevron-right", layout=w.Layout(width="110px"))
        self.page_label = w.Label()
        self.selection = w.SelectMultiple(description="Select", rows=8, layout=w.Layout(width="95%"))
        self.open_button = w.Button(description="Open email", icon="envelope-open")
        self.entity = w.VBox()
        self.tabs = w.Tab()
        self.tab_outputs: dict[str, w.HTML] = {}
        self.export_format = w.Dropdown(options=["csv", "parquet"], value="csv", layout=w.Layout(width="90px"))
        self.export_name = w.Text(value="explorer-export", layout=w.Layout(width="200px"))
        self.export_button = w.Button(description="Export all rows", icon="download")
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="200px", visibility="hidden"))
        self.action = w.Dropdown(options=[k.value for k in actions], description="Action")
        self.incident = w.Text(placeholder="incident # / new name", layout=w.Layout(width="170px"))
        self.confirm = w.Checkbox(value=False, description="I confirm", indent=False)
        self.action_button = w.Button(description="Request", icon="gavel")
        self.action_result = w.HTML()
        self.saved = w.Dropdown(description="Saved", layout=w.Layout(width="320px"))
        self.open_saved_button = w.Button(description="Open", icon="folder-open", layout=w.Layout(width="80px"))
        self.save_name = w.Text(placeholder="name this query", layout=w.Layout(width="220px"))
        self.save_button = w.Button(description="Save query", icon="save", layout=w.Layout(width="120px"))
        self.link = w.HTML()

        self._grid_tab = w.VBox([w.HBox([w.Label("Columns"), self.columns]), w.HBox([self.sort, self.descending]), self.grid,
                                 w.HBox([self.prev_button, self.page_label, self.next_button]),
                                 self.selection, w.HBox([self.open_button, self.selected_count]),
                                 w.HBox([self.action, self.incident, self.confirm, self.action_button],
                                        layout=w.Layout(display="flex" if actions else "none")),
                                 self.action_result,
                                 w.HBox([w.Label("Export"), self.export_format, self.export_name, self.export_button,
                                         self.progress])])
        self.refresh_button.on_click(lambda _: self.refresh())
        self.tabs.observe(lambda _: self._fill_tab(), names="selected_index")
        self.window.observe(self._on_window, names="value")
        self.view.observe(self._on_view, names="value")
        self.pivot.observe(lambda _: self._maybe_refresh(), names="value")
        self.sort.observe(lambda _: self._reload_page(reset=True), names="value")
        self.columns.observe(self._on_columns, names="value")
        self.selection.observe(lambda _: self._count_selection(), names="value")
        self.descending.observe(lambda _: self._reload_page(reset=True), names="value")
        self.prev_button.on_click(lambda _: self._turn(-1))
        self.next_button.on_click(lambda _: self._turn(+1))
        self.open_button.on_click(lambda _: self.open_selected())
        self.export_button.on_click(lambda _: self.export())
        self.action_button.on_click(lambda _: self.request_action())
        self.save_button.on_click(lambda _: self.save_query())
        self.open_saved_button.on_click(lambda _: self.open_saved())
        self._loading = True
        self._on_view()
        if query is not None:
            self.load(query)
        self._loading = False
        self._list_saved()

        super().__init__([
            w.HTML(STYLE),
            w.HBox([self.view, self.window, self.start, self.end, self.refresh_button]),
            self.builder,
            w.HBox([self.saved, self.open_saved_button, self.save_name, self.save_button]),
            self.error, self.status, self.link,
            w.HBox([self.pivot]), self.chart_box,
            self.tabs, self.entity,
        ])

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> ExplorerPanel:
        """The panel on a tenant (name, Tenant or None for the default); a ``q`` in the page's
        query string (Voila passes it as QUERY_STRING) prefills the query and refreshes."""
        from workbench.mail.config import open_mail_store
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        store = open_mail_store(t, missing_ok=True)  # the embedded store, or the Maildir tree it is pointed at
        link = parse_qs(os.environ.get("QUERY_STRING", "")).get("q", [None])[0]
        from workbench.explorer.saved import folder_of

        kwargs.setdefault("saved_dir", folder_of(t))
        env = os.environ
        if env.get("SCRIPT_NAME") and env.get("SERVER_NAME"):  # Voila tells the kernel where the page lives
            port = f":{env['SERVER_PORT']}" if env.get("SERVER_PORT") else ""
            kwargs.setdefault("link_base", f"http://{env['SERVER_NAME']}{port}{env['SCRIPT_NAME']}")
        kwargs.setdefault("on_request", _incident_handler(t))
        from workbench.store import existing_store

        roles = kwargs.setdefault("roles", existing_store(t))  # kept open: previews are checked and audited
        for key, value in role_settings(roles, acting_user()).items():
            kwargs.setdefault(key, value)
        panel = cls(Lake.for_tenant(t), mail_store=store, **kwargs)
        if link:
            try:
                from workbench.explorer import as_query

                panel.load(as_query(link))
            except WorkbenchError as exc:
                panel.show_error(exc)
        panel.refresh()
        return panel

    def _on_window(self, _: Any = None) -> None:
        custom = self.window.value == "custom"
        for picker in (self.start, self.end):
            picker.layout.display = None if custom else "none"

    def _on_view(self, _: Any = None) -> None:
        v = view(self.view.value)
        self.builder.table = v.table
        self.builder.clear()
        loading, self._loading = self._loading, True
        self.pivot.options = [(prop(k, v.table).label, k) for k in v.pivots]
        self.pivot.value = v.pivots[0]
        self.columns.allowed_tags = schema.table(v.table).column_names
        self.columns.value = list(v.columns)
        self.sort.options = list(v.columns)
        self.sort.value = "Timestamp"
        self._loading = loading
        self.tab_outputs = {}
        children, titles = [], []
        for title in v.tabs:
            if title in ("Email", "Results", "Documents"):
                children.append(self._grid_tab)
            else:
                self.tab_outputs[title] = w.HTML()
                children.append(self.tab_outputs[title])
            titles.append(title)
        self.tabs.children = children
        self.tabs.titles = titles

    def _maybe_refresh(self) -> None:
        if not self._loading and self.snapshot is not None:
            self.refresh()

    # ------------------------------------------------------------------ query state

    def current_window(self) -> Window:
        if self.window.value != "custom":
            return Window.last(self.window.value)
        if self._exact and self.start.value == self._exact[0].date() and self.end.value == self._exact[1].date():
            return Window(start=self._exact[0], end=self._exact[1])  # a brushed range, to the minute
        if not self.start.value:
            raise WorkbenchError("custom window: pick a start date (the end is optional)")
        end = self.end.value + timedelta(days=1) if self.end.value else None
        return Window.between(self.start.value, end)

    def current_query(self) -> Query:
        return Query(self.view.value, self.current_window(), self.builder.to_node())

    def load(self, q: Query) -> None:
        """Show *q*: view, window and conditions (a link, a saved query, a drill-down)."""
        loading, self._loading = self._loading, True
        if self.view.value != view(q.view).key:
            self.view.value = view(q.view).key  # the observer resets pivots, columns and tabs
        span = q.window.span
        match = next((v for _, v in WINDOWS if v != "custom" and span == Window.last(v).span), None) if span else None
        if match:
            self.window.value = match
        else:
            start, end = q.window.resolve(self.now)
            self.window.value = "custom"
            self.start.value = start.date()
            self.end.value = (end - timedelta(microseconds=1)).date() if end else None
        self.builder.load(q.where)
        self._loading = loading

    def show_error(self, exc: Exception) -> None:
        self.error.value = f'<span style="color:#b00020">{esc(str(exc))}</span>'

    # ------------------------------------------------------------------ refresh

    def refresh(self) -> agg.Snapshot | None:
        """Run the query: chart, counts, first page, the open tab."""
        self.error.value = ""
        try:
            q = self.current_query()
            snap = agg.snapshot(self.lake, q, pivot=self.pivot.value, sort=self.sort.value, columns=self._query_columns(),
                                descending=self.descending.value, page_size=self.page_size, now=self.now)
        except WorkbenchError as exc:
            self.show_error(exc)
            return None
        self.snapshot, self.offset = snap, 0
        end = f"{snap.end:%Y-%m-%d %H:%M}" if snap.end else "now"
        messages = f"<b>{snap.messages:,}</b> messages" if snap.messages is not None else "messages not counted"
        self.status.value = (f'<span class="wb-note"><b>{snap.rows:,}</b> rows, {messages}, '
                             f'{snap.start:%Y-%m-%d %H:%M} – {end} UTC, {esc(view(q.view).label)}</span>')
        self._show_page(snap.page)
        link = q.to_link(self.link_base)
        self.link.value = (f'<span class="wb-note">Link to this query: <code>{esc(link, 2000)}</code></span>'
                           if self.link_base else f'<span class="wb-note">Query link token: <code>{esc(link, 2000)}</code></span>')
        self._draw_chart(snap)
        self._fill_tab()
        return snap

    def _draw_chart(self, snap: agg.Snapshot) -> None:
        if not self._chart_enabled:
            return
        from workbench.ui.charts import pivot_chart

        chart = pivot_chart(snap.histogram, snap.series, title=prop(snap.pivot, view(snap.query.view).table).label,
                            bucket=snap.bucket)
        if self._chart is None:
            import altair as alt

            alt.JupyterChart.enable_offline()
            self._chart = alt.JupyterChart(chart, embed_options={"renderer": "svg", "actions": False})
            self._chart.observe(self._on_chart_selection, names="_vl_selections")
            self.chart_box.children = [self._chart]
        else:
            self._chart.chart = chart

    def _on_chart_selection(self, change: dict) -> None:
        new = change.get("new") or {}
        legend = (new.get("legend") or {}).get("value")
        if legend:
            picked = [p.get("series") for p in (legend.get("vlPoint", {}).get("or", []))]
            if picked:
                self.on_legend_pick(picked)
                return
        brush = (new.get("brush") or {}).get("value")
        if brush and brush.get("bucket"):
            self.on_brush(*brush["bucket"][:2])

    def on_legend_pick(self, series: list[str]) -> None:
        """A legend click: filter on the picked pivot values and refresh (Explorer's click-to-filter)."""
        values = [s for s in series if s not in (agg.OTHER, "(none)")]
        if not values or self.snapshot is None:
            return
        row = self.builder.add_condition()
        row.prop.value = self.snapshot.pivot
        row.op.value = Op.ANY
        row.set_values(values)
        self.refresh()

    def on_brush(self, lo: Any, hi: Any) -> None:
        """A brushed time range on the chart: narrow the window to it and refresh."""
        def when(v: Any) -> datetime:
            if isinstance(v, (int, float)):
                return datetime.fromtimestamp(v / 1000, UTC)
            return datetime.fromisoformat(str(v).replace("Z", "+00:00"))

        start, end = sorted((when(lo), when(hi)))
        self._exact = (start, end)
        loading, self._loading = self._loading, True
        self.window.value = "custom"
        self.start.value, self.end.value = start.date(), end.date()
        self._loading = loading
        self.refresh()

    # ------------------------------------------------------------------ grid

    def grid_columns(self) -> list[str]:
        """The chosen columns (the view's defaults until the analyst changes them)."""
        return list(self.columns.value) or list(view(self.view.value).columns)

    def _query_columns(self) -> list[str]:
        """The chosen columns plus the row key, which selection needs even when hidden."""
        return list(dict.fromkeys([*self.grid_columns(), *view(self.view.value).row_key]))

    def _on_columns(self, _: Any = None) -> None:
        if self._loading:
            return
        chosen = self.grid_columns()
        loading, self._loading = self._loading, True
        self.sort.options = chosen
        self.sort.value = "Timestamp" if "Timestamp" in chosen else chosen[0]
        self._loading = loading
        self._reload_page(reset=True)

    def _count_selection(self) -> None:
        n = len(self.selection.value)
        self.selected_count.value = f"{n} selected" + (" (more than 100 need confirmation)" if n > CONFIRM_ABOVE else "")

    def _show_page(self, frame: pl.DataFrame) -> None:
        self._page = frame
        v = view(self.view.value)
        shown = [c for c in self.grid_columns() if c in frame.columns]
        self.grid.value = f'<div class="wb-scroll">{table_html(frame, shown, numbered_from=self.offset + 1)}</div>'
        total = self.snapshot.rows if self.snapshot else 0
        last = min(self.offset + frame.height, total)
        self.page_label.value = f"rows {self.offset + 1 if frame.height else 0}–{last} of {total:,}"
        self.prev_button.disabled = self.offset == 0
        self.next_button.disabled = last >= total
        labels = []
        for i, row in enumerate(frame.iter_rows(named=True)):
            label = " | ".join(_short(row.get(c)) for c in (shown or list(v.columns))[:4])
            labels.append((f"{self.offset + i + 1}. {label}", i))
        self.selection.options = labels
        self.selection.value = ()

    def _reload_page(self, reset: bool = False) -> None:
        if self._loading or self.snapshot is None:
            return
        if reset:
            self.offset = 0
        try:
            frame = agg.page(self.lake, self.snapshot.query, columns=self._query_columns(), sort=self.sort.value,
                             descending=self.descending.value,
                             offset=self.offset, limit=self.page_size, now=self.now)
        except WorkbenchError as exc:
            self.show_error(exc)
            return
        self._show_page(frame)

    def _turn(self, step: int) -> None:
        self.offset = max(0, self.offset + step * self.page_size)
        self._reload_page()

    def _selected_rows(self) -> pl.DataFrame:
        picked = sorted(self.selection.value)
        return self._page.with_row_index("__i").filter(pl.col("__i").is_in(picked)).drop("__i")

    def selected(self) -> list[MessageRef]:
        """The selected rows' keys (NetworkMessageId + recipient)."""
        rows = self._selected_rows()
        recipient = "RecipientEmailAddress" if "RecipientEmailAddress" in rows.columns else "AccountUpn"
        if "NetworkMessageId" not in rows.columns or recipient not in rows.columns:
            return []
        return [MessageRef(n, r or "") for n, r in rows.select("NetworkMessageId", recipient).iter_rows() if n]

    # ------------------------------------------------------------------ tabs

    def _fill_tab(self) -> None:
        if self.snapshot is None or self.tabs.selected_index is None:
            return
        title = self.tabs.titles[self.tabs.selected_index]
        out = self.tab_outputs.get(title)
        if out is None:  # the grid tab
            return
        try:
            frame = TAB_FUNCTIONS[title](self.lake, self.snapshot.query, now=self.now)
        except WorkbenchError as exc:
            out.value = f'<span class="wb-note">{esc(str(exc))}</span>'
            return
        out.value = table_html(frame)

    # ------------------------------------------------------------------ entity

    def open_selected(self) -> None:
        refs = self.selected()
        if not refs:
            self.show_error(WorkbenchError("select a row first, then Open email"))
            return
        row = self._selected_rows().row(0, named=True)
        self.open_email(refs[0], at=row.get("Timestamp"))

    def open_email(self, ref: MessageRef, at: datetime | None = None) -> None:
        try:
            e = email_entity(self.lake, ref.network_message_id, ref.recipient, at=at, mail_store=self.mail_store,
                             read_content=self.read_content, roles=self.roles)
        except WorkbenchError as exc:
            self.show_error(exc)
            return
        ev = e.event
        details = definitions([
            ("Subject", ev.get("Subject")), ("Sender", ev.get("SenderFromAddress")),
            ("Sender display name", ev.get("SenderDisplayName")), ("Sender IP", ev.get("SenderIPv4") or ev.get("SenderIPv6")),
            ("Recipient", ev.get("RecipientEmailAddress")), ("Time received", ev.get("Timestamp")),
            ("Directionality", ev.get("EmailDirection")), ("Original delivery location", ev.get("DeliveryLocation")),
            ("Latest delivery location", ev.get("LatestDeliveryLocation")), ("Delivery action", ev.get("DeliveryAction")),
            ("Threats", ev.get("ThreatTypes")), ("Detection technologies", ev.get("DetectionMethods")),
            ("Overrides", ev.get("OrgLevelAction") or ev.get("UserLevelAction")),
            ("Internet message ID", ev.get("InternetMessageId")), ("Network message ID", ev.get("NetworkMessageId")),
            ("Cluster ID", ev.get("EmailClusterId")), ("Language", ev.get("EmailLanguage")),
            *((k, v) for k, v in e.authentication.items()),
        ])
        analysis = (f"<h4>Why this verdict</h4>{pre(e.explanation or 'No detection: nothing in the message met a rule.')}")
        preview = (pre(e.preview) if e.preview is not None
                   else '<span class="wb-note">Body preview needs permission to read mail content.</span>')
        pages = [("Details", details), ("Timeline", table_html(e.timeline)), ("Analysis", analysis),
                 ("URLs", table_html(e.urls)), ("Attachments", table_html(e.attachments)),
                 ("Similar emails", table_html(e.similar)),
                 ("Devices", table_html(e.device_table()) + "<h4>Endpoint alerts around the message</h4>"
                  + table_html(e.alert_table())),
                 ("Headers", pre(e.headers) if e.headers else '<span class="wb-note">No raw message stored.</span>'),
                 ("Preview", preview)]
        tabs = w.Tab(children=[w.HTML(html) for _, html in pages])
        tabs.titles = [t for t, _ in pages]
        self.entity.children = [w.HTML(f"<h3>Email: {esc(ev.get('Subject'), 200)}</h3>"), tabs]

    # ------------------------------------------------------------------ saved queries

    def _list_saved(self) -> None:
        from workbench.explorer.saved import list_saved

        names = [s.name for s in list_saved(self.saved_dir)] if self.saved_dir else []
        self.saved.options = names
        self.saved.disabled = self.open_saved_button.disabled = not names
        self.save_button.disabled = self.save_name.disabled = self.saved_dir is None

    def save_query(self, overwrite: bool = False) -> None:
        from workbench.explorer.saved import save

        try:
            saved = save(self.saved_dir, self.save_name.value, self.current_query(), author=acting_user(),
                         overwrite=overwrite)
        except WorkbenchError as exc:
            self.show_error(exc)
            return
        self._list_saved()
        self.saved.value = saved.name
        self.error.value = ""

    def open_saved(self) -> None:
        from workbench.explorer.saved import load

        try:
            self.load(load(self.saved_dir, self.saved.value).query)
        except WorkbenchError as exc:
            self.show_error(exc)
            return
        self.refresh()

    # ------------------------------------------------------------------ export and actions

    def export(self) -> Path | None:
        if self.snapshot is None:
            self.show_error(WorkbenchError("refresh first: there is nothing to export yet"))
            return None
        name = Path(self.export_name.value.strip() or "explorer-export").name
        path = self.export_dir / f"{name}.{self.export_format.value}"
        self.progress.layout.visibility = "visible"

        def step(done: int, total: int) -> None:
            self.progress.max, self.progress.value = total, done

        try:
            result = export(self.lake, self.snapshot.query, path, progress=step, now=self.now,
                            audit_store=self.roles, actor=acting_user())
        except WorkbenchError as exc:
            self.show_error(exc)
            return None
        finally:
            self.progress.layout.visibility = "hidden"
        self.status.value += f'<br><span class="wb-note">Exported {result.rows:,} rows to {esc(result.path)}</span>'
        return result.path

    def request_action(self) -> ActionRequest | None:
        try:
            create = self.action.value == ActionKind.CREATE_INCIDENT.value  # the box names the new incident
            request = build_request(self.action.value, self.selected(), requested_by=acting_user(),
                                    confirmed=self.confirm.value,
                                    incident_id=None if create else (self.incident.value.strip() or None),
                                    comment=self.incident.value.strip() if create else "",
                                    query=self.snapshot.query.to_json() if self.snapshot else None)
            outcome = self.on_request(request) if self.on_request else None
        except WorkbenchError as exc:
            self.show_error(exc)
            return None
        self.requests.append(request)
        self.error.value = ""
        self.action_result.value = (f'<span class="wb-note">{esc(outcome)}.</span>' if isinstance(outcome, str) else
                                    f'<span class="wb-note">{esc(request.kind.value)} requested for '
                                    f'{len(request.targets):,} message(s); sent to {esc(request.handler)}.</span>')
        self.confirm.value = False
        return request


def _incident_handler(tenant: Any) -> Callable[[ActionRequest], str | None]:
    """Requests for incidents and investigations go to the tenant's incident service; the
    remediation kinds ("Move or delete", "Propose remediation") become actions in the action
    center (:meth:`ActionService.from_explorer`). The store is opened on first use."""
    def handle(request: ActionRequest) -> str | None:
        from workbench.store import open_store

        if request.handler in ("remediation", "action center"):
            from workbench.actions import ActionService

            action = ActionService.for_tenant(tenant, open_store(tenant), acting_user()).from_explorer(request)
            then = "approve it in the Action center" if action.status.decidable else "run it in the Action center"
            return (f"action {action.id} ({action.kind.label}, {action.totals.targets:,} copies) is "
                    f"{action.status.value}; {then} (ActionCenter.ipynb?action={action.id})")
        if request.handler not in ("incidents", "investigations"):
            return None
        from workbench.incidents.explorer_actions import carry_out
        from workbench.incidents.service import IncidentService

        return carry_out(IncidentService(open_store(tenant), acting_user()), request)
    return handle


def role_settings(roles: Any, user: str) -> dict[str, Any]:
    """What *user*'s roles in the tenant store *roles* (or None) allow the panel: ``read_content``
    (previews; off in a tenant without role assignments, as before) and ``actions`` (the kinds
    offered; all while the tenant has no roles). The services check again (docs/rbac.md)."""
    from workbench import rbac
    from workbench.explorer.actions import allowed_kinds

    if roles is None:
        return {"read_content": False, "actions": tuple(ActionKind)}
    return {"read_content": rbac.has_assignments(roles) and rbac.has(roles, user, rbac.Permission.CONTENT_READ),
            "actions": allowed_kinds(roles, user)}


__all__ = ["ExplorerPanel", "role_settings", "GroupEditor", "ConditionRow", "acting_user"]
