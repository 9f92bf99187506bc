"""The incident queue and the incident page: ipywidgets over :mod:`workbench.incidents`.

    from workbench.ui.incidents import IncidentQueuePanel
    IncidentQueuePanel.for_tenant()     # in Voila, ?incident=12 opens that incident's page

The panels hold no logic: every change is a call to :class:`IncidentService`, whose one-line
errors (unknown id, invalid status change, resolve without a note, empty comment) are shown
in the panel's error line, with nothing changed. Every untrusted string (alert titles,
entity values, names, tags, comments) reaches HTML through :mod:`workbench.ui.render`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import ipywidgets as w

from workbench.actions import Action, ActionKind, ActionService, ActionSource
from workbench.air import records
from workbench.air.dispatch import awaiting_investigation
from workbench.endpoint.incident import HEADINGS as DEVICE_HEADINGS
from workbench.endpoint.incident import UserDevice, incident_devices
from workbench.errors import InputError, WorkbenchError
from workbench.explorer.query import Query
from workbench.identity import acting_user
from workbench.incidents import report, saved_filters
from workbench.incidents.model import (
    Classification, Determination, EntityKind, Incident, IncidentStatus, Severity,
)
from workbench.incidents.repo import SORTS, UNASSIGNED, IncidentFilter, IncidentPage
from workbench.incidents.service import IncidentService
from workbench.lake import Lake
from workbench.ui.panel import FAILED, ServicePanel
from workbench.ui.render import STYLE, defang, esc, rows_table
from workbench.ui.render import when as _when

EXPLORER = "Explorer.ipynb"  # relative: next to this app in Voila
INCIDENTS = "Incidents.ipynb"  # this app: ``INCIDENTS?incident=N`` opens incident N's page
INVESTIGATIONS = "Investigations.ipynb"  # ``?investigation=N``: one automated investigation
ACTION_CENTER = "ActionCenter.ipynb"  # ``?action=N``: one remediation action and its per-message log
PLAYBOOK_APPS = "playbooks"  # ``playbooks/<name>.ipynb?alert=ID`` runs a playbook for an alert
SEVERITY_COLORS = {"high": "#c92a2a", "medium": "#e67700", "low": "#1c7ed6", "informational": "#666", "unknown": "#999"}
EVIDENCE_TABS = [("All evidence", None), ("Emails", EntityKind.EMAIL), ("Email clusters", EntityKind.CLUSTER),
                 ("URLs", EntityKind.URL), ("Files", EntityKind.FILE), ("Mailboxes", EntityKind.MAILBOX),
                 ("Users", EntityKind.USER), ("IPs", EntityKind.IP), ("Devices", EntityKind.DEVICE),
                 ("Domains", EntityKind.DOMAIN)]
WIDE_LABEL = {"description_width": "initial"}  # labels longer than the default width stay readable
_CSS = """<style>
.wb-sev {display:inline-block; min-width:70px; font-size:11px; font-weight:600; color:#fff; border-radius:3px;
  text-align:center; padding:0 4px;}
.wb-inc h3 {margin: 4px 0;}
</style>"""


def _sev(severity: Severity | str) -> str:
    s = Severity(severity).value
    return f'<span class="wb-sev" style="background:{SEVERITY_COLORS[s]}">{esc(s)}</span>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, raw: Sequence[int] = (), attrs: Sequence[str] = ()) -> str:
    """An HTML table; cells are escaped except the columns in *raw* (already-escaped HTML)."""
    return rows_table(head, rows, raw=raw, attrs=attrs)


def _entity_text(kind: EntityKind, value: str) -> str:
    """An entity value as shown: URLs defanged, domains with their dots bracketed (never clickable)."""
    if kind == EntityKind.URL or "://" in value:
        return defang(value)
    return value.replace(".", "[.]") if kind == EntityKind.DOMAIN else value


def _incident_link(base: str, incident_id: int, text: str | None = None) -> str:
    """A link opening incident *incident_id*'s page in the Incidents app (a new tab)."""
    return (f'<a href="{esc(base)}?incident={int(incident_id)}" target="_blank" rel="noopener" '
            f'class="wb-incident-link">{esc(text or f"#{incident_id}")}</a>')


def _disable_unless_manager(service: IncidentService, buttons: list[w.Button]) -> None:
    """Disable the change buttons of a user without incident management (the service refuses anyway)."""
    if not service.may_manage():
        why = f"{service.actor} lacks the incident management permission (docs/rbac.md)"
        for b in buttons:
            b.disabled, b.tooltip = True, why


class IncidentPanel(ServicePanel):
    """One incident: summary, alerts, evidence, timeline, comments, history, and the changes
    an analyst makes to it."""

    def __init__(self, service: IncidentService, incident_id: int, *, explorer: str = EXPLORER,
                 incidents: str = INCIDENTS, export_dir: Path | None = None,
                 on_change: Callable[[], None] | None = None, actions: ActionService | None = None,
                 action_center: str = ACTION_CENTER, lake: Lake | None = None) -> None:
        super().__init__(service)
        self.incident_id, self.explorer, self.export_dir, self.on_change = incident_id, explorer, export_dir, on_change
        self.lake = lake  # the tenant's lake: the "User devices" of the incident's users come from it
        self.devices = w.HTML()
        self.incidents_app, self.actions, self.action_center = incidents, actions, action_center
        self.page: IncidentPage | None = None
        self.summary = w.HTML()
        self.name = w.Text(description="Name", layout=w.Layout(width="60%"))
        self.rename_button = w.Button(description="Rename", icon="pencil")
        self.severity = w.Dropdown(options=[s.value for s in Severity if s != Severity.UNKNOWN], description="Severity")
        self.severity_button = w.Button(description="Set severity")
        self.assignee = w.Text(description="Assign to", placeholder="user (empty: nobody)")
        self.assign_button = w.Button(description="Assign", icon="user")
        self.classification = w.Dropdown(options=[c.value for c in Classification], description="Classification",
                                         style=WIDE_LABEL)
        self.determination = w.Dropdown(options=[d.value for d in Determination], description="Determination",
                                        style=WIDE_LABEL)
        self.classify_button = w.Button(description="Classify")
        self.tag_text = w.Text(description="Tag", placeholder="add a tag")
        self.tag_button = w.Button(description="Add tag", icon="tag")
        self.untag = w.Dropdown(description="Remove")
        self.untag_button = w.Button(description="Remove tag")
        self.in_progress_button = w.Button(description="In progress", icon="play")
        self.reopen_button = w.Button(description="Reopen", icon="undo")
        self.resolve_note = w.Text(description="Note", placeholder="why it is resolved (required)", layout=w.Layout(width="50%"))
        self.resolve_button = w.Button(description="Resolve", icon="check", button_style="success")
        self.merge_ids = w.Text(description="Merge", placeholder="incident numbers, e.g. 12 14")
        self.merge_button = w.Button(description="Merge into this")
        self.link_alert = w.Text(description="Alert id", placeholder="link an alert here")
        self.link_button = w.Button(description="Link alert")
        self.unlink = w.Dropdown(description="Unlink")
        self.unlink_button = w.Button(description="Unlink alert")
        self.take_action = w.Button(
            description="Take action", icon="gavel", disabled=actions is None,
            tooltip=("Propose a soft delete of this incident's emails still in mailboxes (an approver runs it)"
                     if actions is not None else "No action center for this incident's tenant"))
        self.take_action_result = w.HTML()
        self.alerts = w.HTML()
        self.evidence = w.Tab()
        self.timeline = w.HTML()
        self.comments = w.HTML()
        self.comment_text = w.Textarea(placeholder="Add a comment", layout=w.Layout(width="70%", height="70px"))
        self.comment_button = w.Button(description="Comment", icon="comment", button_style="primary")
        self.history = w.HTML()
        self.html_button = w.Button(description="HTML report", icon="download")
        self.md_button = w.Button(description="Markdown report", icon="download")
        self.download = w.HTML()
        self.investigations = w.HTML('<div class="wb-empty">Automated investigations of this incident appear here '
                                     "once automated investigation and response is set up for this tenant.</div>")
        sections = w.Tab(children=[self.alerts, w.VBox([self.evidence, self.devices, w.HBox([self.take_action, self.take_action_result])]), self.investigations,
                                   self.timeline, w.VBox([self.comments, w.HBox([self.comment_text, self.comment_button])]),
                                   self.history])
        for i, title in enumerate(["Alerts", "Evidence", "Investigations", "Timeline", "Comments",
                                   "History"]):
            sections.set_title(i, title)
        self.sections = sections
        self.children = [
            w.HTML(STYLE + _CSS), self.summary, self.error, self.note,
            w.HBox([self.name, self.rename_button]),
            w.HBox([self.severity, self.severity_button, self.assignee, self.assign_button]),
            w.HBox([self.classification, self.determination, self.classify_button]),
            w.HBox([self.tag_text, self.tag_button, self.untag, self.untag_button]),
            w.HBox([self.in_progress_button, self.reopen_button, self.resolve_note, self.resolve_button]),
            w.HBox([self.merge_ids, self.merge_button, self.link_alert, self.link_button, self.unlink, self.unlink_button]),
            sections, w.HBox([self.html_button, self.md_button]), self.download,
        ]
        svc, iid = self.service, incident_id
        self._on(self.rename_button, lambda: svc.rename(iid, self.name.value), "renamed")
        self._on(self.severity_button, lambda: svc.set_severity(iid, self.severity.value), "severity set")
        self._on(self.assign_button, lambda: svc.assign(iid, self.assignee.value), "assigned")
        self._on(self.classify_button, lambda: svc.classify(iid, self.classification.value, self.determination.value),
                 "classified")
        self._on(self.tag_button, lambda: svc.tag(iid, self.tag_text.value), "tag added")
        self._on(self.untag_button, lambda: svc.untag(iid, self.untag.value or ""), "tag removed")
        self._on(self.in_progress_button, lambda: svc.set_status(iid, IncidentStatus.IN_PROGRESS), "in progress")
        self._on(self.reopen_button, lambda: svc.set_status(iid, IncidentStatus.ACTIVE), "reopened")
        self._on(self.resolve_button, lambda: svc.resolve(iid, self.resolve_note.value), "resolved")
        self._on(self.merge_button, lambda: svc.merge(self._ids(self.merge_ids.value), iid), "merged")
        self._on(self.link_button, lambda: svc.link_alert(iid, self.link_alert.value.strip()), "alert linked")
        self._on(self.unlink_button, lambda: svc.unlink_alert(self.unlink.value or ""), "alert moved to a new incident")
        self._on(self.comment_button, self._comment, "comment added")
        self.take_action.on_click(lambda _: self.propose_remediation())
        self.html_button.on_click(lambda _: self.export("html"))
        self.md_button.on_click(lambda _: self.export("md"))
        _disable_unless_manager(svc, [self.rename_button, self.severity_button, self.assign_button,
                                      self.classify_button, self.tag_button, self.untag_button,
                                      self.in_progress_button, self.reopen_button, self.resolve_button,
                                      self.merge_button, self.link_button, self.unlink_button, self.comment_button])
        self.refresh()

    @staticmethod
    def _ids(text: str) -> list[int]:
        parts = text.replace(",", " ").replace("#", " ").split()
        if not parts or not all(p.isdigit() for p in parts):
            raise WorkbenchError(f"merge: {text!r} is not a list of incident numbers; type e.g. 12 14")
        return [int(p) for p in parts]

    def _comment(self) -> None:
        self.service.comment(self.incident_id, self.comment_text.value)
        self.comment_text.value = ""

    def _on(self, button: w.Button, fn: Callable[[], Any], done: str) -> None:
        def click(_: Any) -> None:
            if self.act(fn, done) is not FAILED:
                self.refresh()
                if self.on_change:
                    self.on_change()
        button.on_click(click)

    def link(self, query: dict | None) -> str:
        return Query.from_json(query).to_link(self.explorer) if query else ""

    def refresh(self) -> None:
        page = self.act(lambda: self.service.page(self.incident_id), clear=False)
        if page is FAILED:
            return
        self.page = page
        i = page.incident
        self.name.value, self.severity.value = i.name, i.severity.value if i.severity != Severity.UNKNOWN else "informational"
        self.assignee.value = i.assigned_to
        self.classification.value, self.determination.value = i.classification.value, i.determination.value
        self.untag.options = list(i.tags)
        self.unlink.options = [(f"{a.id} · {a.title[:60]}", a.id) for a in page.alerts]
        rows = [("Status", esc(i.status.value)), ("Severity", _sev(i.severity)),
                ("Assigned to", esc(i.assigned_to or "unassigned")),
                ("Classification", esc(f"{i.classification.value} / {i.determination.value}")),
                ("First activity", esc(_when(i.first_activity))), ("Last activity", esc(_when(i.last_activity))),
                ("Created", esc(_when(i.created))), ("Tags", esc(", ".join(i.tags + i.system_tags)))]
        if i.redirect_id:
            rows.append(("Merged into", _incident_link(self.incidents_app, i.redirect_id)))
        if page.merged_from:
            rows.append(("Merged from", ", ".join(_incident_link(self.incidents_app, m) for m in page.merged_from)))
        if i.resolution_note:
            rows.append(("Resolution note", esc(i.resolution_note)))
        dl = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows)
        self.summary.value = (f'<div class="wb-inc" data-incident="{i.id}"><h3>Incident {i.id}: {esc(i.name)}</h3>'
                              f'<dl class="wb-dl">{dl}</dl></div>')
        self.alerts.value = _table(
            ["Alert", "Severity", "Status", "Policy", "Category", "First activity", "Messages", "Explorer"],
            [[a.title, _sev(a.severity), a.status.value, a.policy_id, a.category, _when(a.first_activity),
              str(a.message_count),
              (f'<a href="{esc(self.link(a.explorer_query))}" target="_blank" rel="noopener">View messages in Explorer</a>'
               if a.explorer_query else "")] for a in page.alerts], raw=(1, 7),
            attrs=[f'data-alert="{esc(a.id)}"' for a in page.alerts])
        tabs = []
        for title, kind in EVIDENCE_TABS:
            items = [e for e in page.evidence if kind is None or e.entity.kind == kind]
            tabs.append(w.HTML(_table(["Kind", "Entity", "Verdict", "Remediation", "Source", "Added"],
                                      [[e.entity.kind.value, _entity_text(e.entity.kind, e.entity.value), e.verdict.value,
                                        e.remediation.value, e.source, _when(e.added)] for e in items])))
        self.evidence.children = tabs
        self.devices.value = self._devices_html(page)
        for n, (title, kind) in enumerate(EVIDENCE_TABS):
            count = sum(1 for e in page.evidence if kind is None or e.entity.kind == kind)
            self.evidence.set_title(n, f"{title} ({count})")
        events = sorted([(a.first_activity, "alert", f"alert {a.id}: {a.title} ({a.severity.value})")
                         for a in page.alerts]
                        + [(a.at, a.actor, f"{a.action}: {a.old} → {a.new}" if a.old else f"{a.action}: {a.new}")
                           for a in page.activity], key=lambda e: e[0])
        self.timeline.value = _table(["Time (UTC)", "Who", "What"], [[_when(t), who, what] for t, who, what in events])
        self.comments.value = "".join(
            f'<div class="wb-comment"><b>{esc(c.author)}</b> <span class="wb-note">{esc(_when(c.created))}</span>'
            f'<div style="white-space:pre-wrap">{esc(c.text)}</div></div>' for c in page.comments) or \
            '<div class="wb-empty">No comments yet.</div>'
        runs = records.of_alerts(self.service.store, [a.id for a in page.alerts], incident_id=i.id)
        parts = []
        if runs:
            parts.append(_table(
                ["#", "Playbook", "Status", "Started by", "Started", "Ended"],
                [[f'<a href="{INVESTIGATIONS}?investigation={int(r.id)}" target="_blank" rel="noopener">{int(r.id)}</a>',
                  r.playbook, r.status.value, r.started_by, _when(r.started), _when(r.ended)] for r in runs],
                raw=(0,), attrs=[f'data-investigation="{r.id}"' for r in runs]))
        waiting = awaiting_investigation(self.service.store, page.alerts)
        if waiting:  # alerts AIR handles with no run yet: the dispatcher takes them, or start one now
            parts.append('<div class="wb-note">Alerts waiting for the dispatcher (<code>workbench air dispatch</code>); '
                         '"Run now" runs the playbook for the alert in a new tab:</div>')
            parts.append(_table(["Alert", "Playbook", ""], [
                [f"{a.id}: {a.title}", playbook,
                 f'<a href="{PLAYBOOK_APPS}/{esc(playbook)}.ipynb?alert={esc(quote(a.id, safe=""))}" target="_blank" '
                 f'rel="noopener" class="wb-run-playbook">Run now</a>'] for a, playbook in waiting], raw=(2,)))
        if parts:
            self.investigations.value = "".join(parts)
        self.history.value = _table(["Time (UTC)", "Who", "Action", "Old", "New"],
                                    [[_when(a.at), a.actor, a.action, a.old, a.new] for a in reversed(page.activity)])

    def user_devices(self, page: IncidentPage) -> tuple[UserDevice, ...] | None:
        """The devices of the incident's users (None without a lake)."""
        return None if self.lake is None else incident_devices(self.lake, page)

    def _devices_html(self, page: IncidentPage) -> str:
        found = self.act(lambda: self.user_devices(page), clear=False)
        if found is FAILED or found is None:
            return ""
        return "<h4>User devices</h4>" + _table(DEVICE_HEADINGS, [d.row for d in found],
                                                attrs=[f'data-device="{esc(d.device.key)}"' for d in found])

    def propose_remediation(self) -> Action | None:
        """"Take action": propose a soft delete of the incident's email evidence still in
        mailboxes, through the action center (pending until an approver approves and runs it)."""
        if self.actions is None or self.page is None:
            return None
        actions, page, iid = self.actions, self.page, self.incident_id

        def propose() -> Action:
            emails = [e.entity.value.rpartition("|") for e in page.evidence if e.entity.kind == EntityKind.EMAIL]
            if not emails:
                raise InputError(f"incident {iid} has no email evidence; add emails to it from the Explorer first")
            copies = actions.in_mailboxes([(nmid, rcpt) for nmid, _, rcpt in emails])
            if not copies:
                raise InputError(f"none of incident {iid}'s {len(emails):,} email(s) is still in a mailbox; "
                                 "nothing to remediate")
            return actions.propose(ActionKind.SOFT_DELETE, copies=copies, source=ActionSource.INCIDENT,
                                   source_ref=f"incident {iid}", reason=f"email evidence of incident {iid}",
                                   name=f"Soft delete: {len(copies):,} email copies of incident {iid}",
                                   proposed_by=self.service.actor)
        self.take_action_result.value = ""
        action = self.act(propose)
        if action is FAILED:
            return None
        then = "approve it" if action.status.decidable else "see it"
        self.take_action_result.value = (
            f'<span class="wb-note wb-take-action">Action {int(action.id)} ({esc(action.kind.label)}, '
            f'{action.totals.targets:,} copies still in mailboxes) is {esc(action.status.value)}: {then} in the '
            f'<a href="{esc(self.action_center)}?action={int(action.id)}" target="_blank" rel="noopener">'
            "Action center</a></span>")
        return action

    def export(self, kind: str) -> Path | None:
        """Write the report into the tenant's reports folder and offer it for download."""
        if self.page is None:
            return None
        folder = self.export_dir or Path.cwd()
        path = folder / f"incident-{self.incident_id}-{datetime.now(UTC):%Y%m%d-%H%M%S}.{kind}"
        def write() -> Path:
            page = self.service.page(self.incident_id)
            return report.write(page, path, generated_by=self.service.actor, devices=self.user_devices(page))
        written = self.act(write)
        if written is FAILED:
            return None
        mime = "text/html" if kind == "html" else "text/markdown"
        data = base64.b64encode(written.read_bytes()).decode()
        self.download.value = (f'<span class="wb-note">Saved {esc(written)} · <a download="{esc(written.name)}" '
                               f'href="data:{mime};base64,{data}">download</a></span>')
        return written


class IncidentQueuePanel(ServicePanel):
    """The incident queue: filters, sort, search, saved filters, bulk assign and resolve;
    opening an incident shows its page below."""

    def __init__(self, service: IncidentService, *, explorer: str = EXPLORER, incidents: str = INCIDENTS,
                 export_dir: Path | None = None, policies: Sequence[str] = (),
                 now: Callable[[], datetime] | None = None, actions: ActionService | None = None,
                 action_center: str = ACTION_CENTER, lake: Lake | None = None) -> None:
        super().__init__(service)
        self.explorer, self.incidents_app, self.export_dir = explorer, incidents, export_dir
        self.actions, self.action_center, self.lake = actions, action_center, lake
        self._now = now or (lambda: datetime.now(UTC))
        self.incidents: list[Incident] = []
        self.page: IncidentPanel | None = None
        default = IncidentFilter()
        self.last_day = w.HTML()
        self.status = w.SelectMultiple(options=[s.value for s in IncidentStatus], value=[s.value for s in default.status],
                                       description="Status", rows=4)
        self.severity = w.SelectMultiple(options=[s.value for s in Severity if s != Severity.UNKNOWN],
                                         description="Severity", rows=4)
        self.classification = w.SelectMultiple(options=[c.value for c in Classification], description="Classification",
                                               rows=4, style=WIDE_LABEL)
        self.assigned = w.Text(description="Assigned to", placeholder=f"user, or {UNASSIGNED}")
        self.policy = w.Dropdown(options=[("any", "")] + [(p, p) for p in policies], description="Policy")
        self.source = w.Text(description="Source", placeholder="detection source")
        self.category = w.Text(description="Category", placeholder="e.g. InitialAccess")
        self.tags = w.Text(description="Tag")
        self.search = w.Text(description="Search", placeholder="name, number, user, URL, IP, device, message id")
        self.sort = w.Dropdown(options=list(SORTS), value=default.sort, description="Sort by")
        self.descending = w.Checkbox(value=True, description="descending", indent=False)
        self.apply_button = w.Button(description="Apply", icon="filter", button_style="primary")
        self.saved = w.Dropdown(description="Saved")
        self.save_name = w.Text(placeholder="name these filters")
        self.save_button = w.Button(description="Save filters", icon="save")
        self.load_button = w.Button(description="Load")
        self.delete_button = w.Button(description="Delete")
        self.table = w.HTML()
        self.selection = w.SelectMultiple(description="Select", rows=6, layout=w.Layout(width="70%"))
        self.open_button = w.Button(description="Open incident", icon="folder-open", button_style="info")
        self.goto = w.Text(description="Incident #", placeholder="e.g. 12", layout=w.Layout(width="200px"))
        self.goto_button = w.Button(description="Go", layout=w.Layout(width="60px"))
        self.bulk_assignee = w.Text(description="Assign to")
        self.bulk_assign_button = w.Button(description="Assign selected")
        self.bulk_note = w.Text(description="Note", placeholder="resolution note (required)")
        self.bulk_resolve_button = w.Button(description="Resolve selected", button_style="success")
        self.page_box = w.VBox()
        self.children = [
            w.HTML(STYLE + _CSS + "<h2>Incidents</h2>"), self.last_day,
            w.HBox([self.status, self.severity, self.classification]),
            w.HBox([self.assigned, self.policy, self.tags]), w.HBox([self.source, self.category, self.search]),
            w.HBox([self.sort, self.descending, self.apply_button]),
            w.HBox([self.saved, self.load_button, self.delete_button, self.save_name, self.save_button]),
            self.error, self.note, self.table, w.HBox([self.selection, self.open_button]),
            w.HBox([self.goto, self.goto_button]),
            w.HBox([self.bulk_assignee, self.bulk_assign_button]), w.HBox([self.bulk_note, self.bulk_resolve_button]),
            self.page_box,
        ]
        self.apply_button.on_click(lambda _: self.apply())
        self.open_button.on_click(lambda _: self.open_selected())
        self.goto_button.on_click(lambda _: self.open_typed())
        self.save_button.on_click(lambda _: self.save_filters())
        self.load_button.on_click(lambda _: self.load_filters())
        self.delete_button.on_click(lambda _: self.delete_filters())
        self.bulk_assign_button.on_click(lambda _: self.bulk(lambda i: self.service.assign(i, self.bulk_assignee.value),
                                                             "assigned"))
        self.bulk_resolve_button.on_click(lambda _: self.bulk(lambda i: self.service.resolve(i, self.bulk_note.value),
                                                              "resolved"))
        _disable_unless_manager(self.service, [self.bulk_assign_button, self.bulk_resolve_button])
        self._fill_saved()
        self.refresh()

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> IncidentQueuePanel:
        """The queue of a tenant's store (``WORKBENCH_DB_URL`` or its SQLite file); in Voila,
        ``?incident=N`` opens that incident's page."""
        from workbench.detect.policies import load_policies
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        base = os.environ.get("WORKBENCH_APPS_URL", "").rstrip("/")
        if base:
            kwargs.setdefault("explorer", f"{base}/voila/render/{EXPLORER}")
            kwargs.setdefault("incidents", f"{base}/voila/render/{INCIDENTS}")
            kwargs.setdefault("action_center", f"{base}/voila/render/{ACTION_CENTER}")
        kwargs.setdefault("export_dir", t.root / "reports")
        kwargs.setdefault("policies", [p.id for p in load_policies()])
        store = open_store(t)
        kwargs.setdefault("actions", ActionService.for_tenant(t, store, acting_user()))
        kwargs.setdefault("lake", Lake.for_tenant(t))
        panel = cls(IncidentService(store, acting_user()), **kwargs)
        wanted = parse_qs(os.environ.get("QUERY_STRING", "")).get("incident", [""])[0].lstrip("#")
        if wanted:
            if wanted.isdigit():
                panel.open_incident(int(wanted))
            else:
                panel.show_error(WorkbenchError(f"?incident={wanted!r} is not an incident number; use e.g. ?incident=12"))
        return panel

    def current_filter(self) -> IncidentFilter:
        split = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())  # noqa: E731
        return IncidentFilter(status=tuple(self.status.value), severity=tuple(self.severity.value),
                              classification=tuple(self.classification.value), assigned_to=split(self.assigned.value),
                              policy=(self.policy.value,) if self.policy.value else (),
                              detection_source=split(self.source.value), category=split(self.category.value),
                              tags=split(self.tags.value), search=self.search.value, sort=self.sort.value,
                              descending=self.descending.value)

    def show_filter(self, f: IncidentFilter) -> None:
        self.status.value = [s.value for s in f.status]
        self.severity.value = [s.value for s in f.severity]
        self.classification.value = [c.value for c in f.classification]
        self.assigned.value = ", ".join(f.assigned_to)
        known = {value for _, value in self.policy.options}
        self.policy.value = f.policy[0] if f.policy and f.policy[0] in known else ""
        self.source.value, self.category.value = ", ".join(f.detection_source), ", ".join(f.category)
        self.tags.value, self.search.value = ", ".join(f.tags), f.search
        self.sort.value, self.descending.value = f.sort, f.descending

    def apply(self) -> None:
        self.error.value = ""
        self.refresh()

    def refresh(self) -> None:
        self._last_day()
        found = self.act(lambda: self.service.list(self.current_filter()), clear=False)
        if found is FAILED:
            return
        self.incidents = found
        rows = [[_incident_link(self.incidents_app, i.id), i.name, _sev(i.severity), i.status.value,
                 i.assigned_to or "", str(i.alert_count), _when(i.last_activity), ", ".join(i.tags),
                 i.classification.value] for i in found]
        self.table.value = (f'<div class="wb-note">{len(found):,} incident(s)</div><div class="wb-scroll">'
                            + _table(["#", "Incident", "Severity", "Status", "Assigned to", "Alerts", "Last activity",
                                      "Tags", "Classification"], rows, raw=(0, 2),
                                     attrs=[f'data-incident="{i.id}"' for i in found]) + "</div>")
        self.selection.options = [(f"#{i.id} · {i.severity.value} · {i.name[:70]}", i.id) for i in found]

    def _last_day(self) -> None:
        since = self._now() - timedelta(hours=24)
        try:
            alerts = self.service.alerts(since=since)
            created = [i for i in self.service.list(IncidentFilter(status=(), since=since)) if i.created >= since]
        except WorkbenchError as exc:
            self.show_error(exc)
            return
        def per(items: Sequence[Any]) -> str:
            counts = {s: sum(1 for x in items if x.severity == s) for s in reversed(Severity) if s != Severity.UNKNOWN}
            return " · ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "none"
        self.last_day.value = (f'<div class="wb-note">Last 24 hours: alerts {esc(per(alerts))}; '
                               f'new incidents {esc(per(created))}</div>')

    def open_incident(self, incident_id: int) -> IncidentPanel | None:
        if self.act(lambda: self.service.get(incident_id)) is FAILED:
            return None
        self.page = IncidentPanel(self.service, incident_id, explorer=self.explorer, incidents=self.incidents_app,
                                  export_dir=self.export_dir, on_change=self.refresh, actions=self.actions,
                                  action_center=self.action_center, lake=self.lake)
        self.page_box.children = [self.page]
        return self.page

    def open_typed(self) -> IncidentPanel | None:
        text = self.goto.value.strip().lstrip("#")
        if not text.isdigit():
            self.show_error(WorkbenchError(f"{self.goto.value!r} is not an incident number; type e.g. 12"))
            return None
        return self.open_incident(int(text))

    def open_selected(self) -> IncidentPanel | None:
        if not self.selection.value:
            self.show_error(WorkbenchError("select an incident first"))
            return None
        return self.open_incident(self.selection.value[0])

    def bulk(self, fn: Callable[[int], Any], done: str) -> int:
        """Apply *fn* to every selected incident; stops at the first error (the ones before stay done)."""
        ids = list(self.selection.value)
        if not ids:
            self.show_error(WorkbenchError("select one or more incidents first"))
            return 0
        ok = 0
        for incident_id in ids:
            if self.act(lambda i=incident_id: fn(i)) is FAILED:
                break
            ok += 1
        if ok:
            self.note.value = f'<span class="wb-note">{ok} incident(s) {esc(done)}</span>'
        self.refresh()
        return ok

    def _fill_saved(self) -> None:
        names = self.act(lambda: saved_filters.names(self.service.store, self.service.actor))
        self.saved.options = [] if names is FAILED else names

    def save_filters(self) -> None:
        name = self.save_name.value
        if self.act(lambda: saved_filters.save(self.service.store, self.service.actor, name, self.current_filter()),
                    f"filters saved as {name.strip()}") is not FAILED:
            self._fill_saved()
            self.saved.value = name.strip()

    def load_filters(self) -> None:
        f = self.act(lambda: saved_filters.load(self.service.store, self.service.actor, self.saved.value or ""))
        if f is not FAILED:
            self.show_filter(f)
            self.refresh()

    def delete_filters(self) -> None:
        name = self.saved.value or ""
        self.act(lambda: saved_filters.delete(self.service.store, self.service.actor, name), f"deleted {name}")
        self._fill_saved()


__all__ = ["IncidentQueuePanel", "IncidentPanel"]
