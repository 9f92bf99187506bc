"""The audit log app: records filtered by user, activity, target, result and time; chain verification;
export as JSON lines or CSV (the export is itself audited).

    from workbench.ui.audit import AuditPanel
    AuditPanel.for_tenant()

Widgets only: reads go through :mod:`workbench.audit`; every stored string (actors, targets,
details) reaches HTML through :func:`workbench.ui.render.esc`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.audit import AuditRecord, export, query, verify
from workbench.errors import WorkbenchError
from workbench.identity import acting_user
from workbench.ui.render import STYLE, esc, rows_table

RESULTS = [("any result", ""), ("allowed", "allowed"), ("denied", "denied"), ("ok", "ok"), ("failed", "failed")]
HEAD = ["seq", "at (UTC)", "actor", "activity", "target", "result", "request", "details"]


def _day(value: date | None, end: bool = False) -> datetime | None:
    if value is None:
        return None
    start = datetime.combine(value, time(0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def rows_html(records: list[AuditRecord]) -> str:
    """The records as an escaped HTML table."""
    rows = [[r.seq, r.at.astimezone(UTC), r.actor, r.activity, esc(r.target, 200), r.result.value, r.request_id[:12],
             esc(json.dumps(r.details, ensure_ascii=False, sort_keys=True), 300)] for r in records]
    return '<div class="wb-scroll">' + rows_table(HEAD, rows, raw=(4, 7), css="wb-audit",
                                                  attrs=[f'class="wb-audit-{esc(r.result.value)}"' for r in records]) + "</div>"


class AuditPanel(w.VBox):
    """Filters, a table of records (newest first), verify and export buttons; headless-testable."""

    def __init__(self, store: Any, actor: str, *, export_dir: Path | None = None, limit: int = 500) -> None:
        self.store, self.actor, self.export_dir = store, actor, export_dir
        self.user, self.activity, self.target = (w.Text(description=d, placeholder=p) for d, p in (
            ("User", "exact name"), ("Activity", "e.g. mail.preview or action."), ("Target", "contains")))
        self.result = w.Dropdown(options=RESULTS, value="", description="Result")
        self.since, self.until = w.DatePicker(description="From"), w.DatePicker(description="To")
        self.limit = w.BoundedIntText(value=limit, min=1, max=100_000, description="Rows")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.verify_button = w.Button(description="Verify chain", icon="check")
        self.format = w.Dropdown(options=[("JSON lines", "jsonl"), ("CSV", "csv")], value="jsonl", description="Format")
        self.export_button = w.Button(description="Export", icon="download")
        self.status, self.table, self.download = w.HTML(), w.HTML(), w.HTML()
        self.records: list[AuditRecord] = []
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.verify_button.on_click(lambda _b: self.check())
        self.export_button.on_click(lambda _b: self.export())
        super().__init__([
            w.HTML(STYLE), w.HBox([self.user, self.activity, self.target]),
            w.HBox([self.result, self.since, self.until, self.limit]),
            w.HBox([self.refresh_button, self.verify_button, self.format, self.export_button]),
            self.status, self.download, self.table,
        ])
        self.refresh()

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> AuditPanel | w.HTML:
        """The audit log of a tenant (``WORKBENCH_TENANT`` by default) for the acting user, who needs
        metadata read (:func:`workbench.audit.require_reader`)."""
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "root") else open_tenant(tenant)
        from workbench.audit import require_reader

        kwargs.setdefault("export_dir", Path(t.root) / "reports")
        store, actor = open_store(t), acting_user()
        try:
            require_reader(store, actor)
        except WorkbenchError as exc:  # the page shows the one-line refusal, not a traceback
            store.dispose()
            return w.HTML(f'<span class="wb-error" style="color:#b00020">{esc(exc)}</span>')
        return cls(store, actor, **kwargs)

    def filters(self) -> dict[str, Any]:
        """The filters as :func:`workbench.audit.query` takes them."""
        return {"user": self.user.value.strip() or None, "activity": self.activity.value.strip() or None,
                "target": self.target.value.strip() or None, "result": self.result.value or None,
                "since": _day(self.since.value), "until": _day(self.until.value, end=True)}

    def _error(self, exc: WorkbenchError) -> None:
        self.status.value = f'<span class="wb-error" style="color:#b00020">{esc(exc)}</span>'

    def refresh(self) -> None:
        """Read the records matching the filters into the table."""
        try:
            self.records = query(self.store, **self.filters(), limit=self.limit.value)
        except WorkbenchError as exc:
            self._error(exc)
            return
        self.table.value = rows_html(self.records)
        self.status.value = f'<span class="wb-note">{len(self.records):,} record(s), newest first</span>'

    def check(self) -> None:
        """Verify the whole chain and say so in the status line."""
        outcome = verify(self.store)
        css = 'class="wb-note"' if outcome.ok else 'class="wb-error" style="color:#b00020"'
        self.status.value = f'<span {css}>{esc(outcome.render())}</span>'

    def export(self) -> Path | None:
        """Export the filtered records (no row limit) into the export folder and offer a download."""
        folder = self.export_dir
        if folder is None:
            self.status.value = ('<span class="wb-error" style="color:#b00020">no export folder: '
                                 "open the panel with export_dir=</span>")
            return None
        fmt = self.format.value
        path = folder / f"audit-{datetime.now(UTC):%Y%m%dT%H%M%S}.{fmt}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            n = export(self.store, path, fmt, actor=self.actor, **self.filters())
        except (WorkbenchError, OSError) as exc:
            self.status.value = f'<span class="wb-error" style="color:#b00020">{esc(exc)}</span>'
            return None
        mime = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
        data = base64.b64encode(path.read_bytes()).decode() if path.stat().st_size <= 20_000_000 else ""
        link = f' · <a download="{esc(path.name)}" href="data:{mime};base64,{data}">download</a>' if data else ""
        self.download.value = f'<span class="wb-note">{n:,} record(s) saved to {esc(path)}{link}</span>'
        self.refresh()
        return path


__all__ = ["AuditPanel", "rows_html"]
