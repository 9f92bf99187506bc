"""The automated-investigation app: the list of investigations and one investigation's page
(graph, analyzer log, evidence, clusters, pending actions). Widgets only: the record comes
from :mod:`workbench.air.records`; every value reaches HTML through ``ui/render``.

    from workbench.ui.investigation import InvestigationsPanel
    InvestigationsPanel.for_tenant()    # in Voila, ?investigation=ID opens that investigation
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from workbench.air import records
from workbench.air.parameters import PlaybookParameters
from workbench.air.records import Record
from workbench.errors import WorkbenchError
from workbench.explorer.query import Query
from workbench.store import Store
from workbench.ui.render import STYLE, defang, esc

EXPLORER = "Explorer.ipynb"


def graph_svg(rec: Record) -> str:
    """The investigation graph: alert → entities analysed → evidence → pending actions → result,
    each box with its count (text escaped)."""
    inv = rec.investigation
    bad = sum(e.verdict.value in ("malicious", "suspicious") for e in rec.evidence)
    boxes = [("Alert", inv.alert_id or "analyst request"), ("Analyzers", f"{len(rec.log)} run"),
             ("Entities analysed", f"{len(rec.evidence)} ({len(rec.clusters)} clusters)"),
             ("Evidence", f"{bad} malicious or suspicious"), ("Pending actions", f"{len(rec.actions)}"),
             ("Result", inv.status.value)]
    width, gap = 150, 30
    parts = []
    for i, (title, value) in enumerate(boxes):
        x = i * (width + gap)
        parts.append(f'<rect x="{x}" y="10" width="{width}" height="56" rx="6" fill="#eef3fb" stroke="#1b4f9c"/>'
                     f'<text x="{x + width / 2}" y="32" text-anchor="middle" font-size="12" font-weight="600">{esc(title)}</text>'
                     f'<text x="{x + width / 2}" y="52" text-anchor="middle" font-size="11">{esc(value, 24)}</text>')
        if i:
            parts.append(f'<line x1="{x - gap}" y1="38" x2="{x - 4}" y2="38" stroke="#1b4f9c" marker-end="url(#arrow)"/>')
    total = len(boxes) * (width + gap) - gap
    return (f'<svg class="wb-graph" xmlns="http://www.w3.org/2000/svg" width="{total}" height="76" '
            f'viewBox="0 0 {total} 76"><defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
            f'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#1b4f9c"/></marker></defs>{"".join(parts)}</svg>')


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], raw: Sequence[int] = ()) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c if j in raw else esc(c)}</td>" for j, c in enumerate(r)) + "</tr>"
                   for r in rows) or f'<tr><td colspan="{len(head)}" class="wb-empty">None.</td></tr>'
    return f'<table class="wb-table"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def record_html(rec: Record, explorer: str = EXPLORER) -> str:
    """One investigation's page as HTML (graph, pending actions, evidence, clusters, analyzer log),
    every value escaped; *explorer* is where the clusters' "Open in Explorer" links point."""
    inv = rec.investigation
    link = lambda q: f'<a href="{esc(Query.from_json(q).to_link(explorer))}" target="_blank" rel="noopener">Open in Explorer</a>'  # noqa: E731
    return (
        f'<div data-investigation="{inv.id}"><h3>Investigation {inv.id}: {esc(inv.name)}</h3>'
        f'<div class="wb-note">{esc(inv.playbook)} · {esc(inv.status.value)} · started by {esc(inv.started_by)} '
        f'· {esc(inv.started)} → {esc(inv.ended or "")}'
        + (f' · error: {esc(inv.error)}' if inv.error else "") + "</div>"
        + graph_svg(rec)
        + "<h4>Pending actions</h4>" + _table(["Action", "Target", "Messages", "Reason", "Status"],
                                              [[a.action.value, defang(a.target) if "://" in a.target else a.target,
                                                len(a.messages), a.reason, a.status] for a in rec.actions])
        + "<h4>Evidence</h4>" + _table(["Kind", "Entity", "Verdict", "Remediation", "Analyzer"],
                                       [[e.entity.kind.value, defang(e.entity.value) if "://" in e.entity.value
                                         else e.entity.value, e.verdict.value, e.remediation.value, e.analyzer]
                                        for e in rec.evidence])
        + "<h4>Email clusters</h4>" + _table(
            ["Cluster", "Verdict", "Copies", "Threats", "In mailbox", "Volume anomaly", "Query"],
            [[defang(c.name) if "://" in c.name else c.name, c.verdict.value, c.counts.total, c.counts.threats,
              c.counts.in_mailbox, "yes" if c.volume_anomaly else "", link(c.query)] for c in rec.clusters], raw=(6,))
        + "<h4>Analyzer log</h4>" + _table(["#", "Analyzer", "Status", "Seconds", "Summary", "Error"],
                                           [[x.seq, x.analyzer, x.status, f"{x.seconds:.3f}", x.summary, x.error]
                                            for x in rec.log])
        + "</div>")


class InvestigationPanel(w.VBox):
    """One investigation's record."""

    def __init__(self, store: Store, investigation_id: int, *, explorer: str = EXPLORER) -> None:
        super().__init__()
        self.store, self.id, self.explorer = store, investigation_id, explorer
        self.error, self.body = w.HTML(), w.HTML()
        self.children = [w.HTML(STYLE), self.error, self.body]
        self.refresh()

    def refresh(self) -> None:
        try:
            rec = records.load(self.store, self.id)
        except WorkbenchError as exc:
            self.error.value = f'<span style="color:#b00020">{esc(str(exc))}</span>'
            return
        self.body.value = record_html(rec, self.explorer)


class InvestigationsPanel(w.VBox):
    """The list of investigations; choosing one shows its page."""

    def __init__(self, store: Store, *, explorer: str = EXPLORER) -> None:
        super().__init__()
        self.store, self.explorer = store, explorer
        self.table, self.error = w.HTML(), w.HTML()
        self.pick = w.Dropdown(description="Open")
        self.open_button = w.Button(description="Open investigation", icon="folder-open")
        self.page_box = w.VBox()
        self.open_button.on_click(lambda _: self.open_investigation(self.pick.value))
        self.children = [w.HTML(STYLE + "<h2>Automated investigations</h2>"), self.table,
                         w.HBox([self.pick, self.open_button]), self.error, self.page_box]
        self.refresh()

    @classmethod
    def for_tenant(cls, tenant: Any = None) -> InvestigationsPanel:
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        t_ = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        panel = cls(open_store(t_))
        try:  # the address is read as a playbook's is (workbench.air.parameters)
            wanted = PlaybookParameters().with_query(os.environ.get("QUERY_STRING", "")).investigation_id
        except WorkbenchError as exc:
            panel.error.value = f'<span style="color:#b00020">{esc(str(exc))}</span>'
            return panel
        if wanted:
            panel.open_investigation(wanted)
        return panel

    def refresh(self) -> None:
        rows = records.recent(self.store)
        self.table.value = _table(["#", "Status", "Playbook", "Name", "Started by", "Started"],
                                  [[r.id, r.status.value, r.playbook, r.name, r.started_by, r.started] for r in rows])
        self.pick.options = [(f"#{r.id} · {r.status.value} · {r.name[:60]}", r.id) for r in rows]

    def open_investigation(self, investigation_id: int | None) -> InvestigationPanel | None:
        if investigation_id is None:
            self.error.value = '<span style="color:#b00020">no investigation chosen</span>'
            return None
        page = InvestigationPanel(self.store, investigation_id, explorer=self.explorer)
        self.page_box.children = [page]
        return page
