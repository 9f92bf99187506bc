"""The action center app (mdo-reference §4.6): pending and completed remediation actions,
approvals, runs with a dry-run preview, undo, each action's per-message log, CSV export.

    from workbench.ui.actions import ActionCenterPanel
    ActionCenterPanel.for_tenant()      # in Voila, ?action=12 opens action 12's log

Widgets only: every change is a call to :class:`~workbench.actions.ActionService`, whose
one-line errors (mixed types in a bulk approval, a rejection without a comment, a missing
role, an unconfirmed hard delete) show in the error line with nothing changed. Every
untrusted string (names, targets, mailboxes, reasons, comments) reaches HTML through
:mod:`workbench.ui.render`.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as w

from workbench.atomic import write_text
from workbench.actions import Action, ActionKind, ActionService, ActionSource, ActionStatus, Permission
from workbench.actions.permissions import has
from workbench.csv_cells import spreadsheet_safe
from workbench.errors import InputError, WorkbenchError
from workbench.identity import acting_user
from workbench.ui.panel import FAILED, ServicePanel
from workbench.ui.render import STYLE, defang, esc, rows_table
from workbench.ui.render import when as _when

ACTION_CENTER = "ActionCenter.ipynb"  # this app: ``?action=N`` opens action N's log
INVESTIGATIONS = "Investigations.ipynb"  # ``?investigation=N``: one automated investigation
S = ActionStatus
PENDING = (S.PROPOSED, S.PENDING, S.APPROVED, S.QUEUED, S.RUNNING)
HISTORY = (S.COMPLETED, S.PARTIALLY_COMPLETED, S.FAILED, S.REJECTED, S.EXPIRED, S.UNDONE, S.REQUESTED)
WINDOWS = [("any time", ""), ("last 24 hours", "24h"), ("last 7 days", "7d"), ("last 30 days", "30d"),
           ("between dates", "custom")]
_HOURS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
LOG_ROWS = 2000  # per-message rows shown in the panel (the CLI and the CSV have them all)
_CSS = "<style>.wb-ac th {white-space: nowrap;}</style>"
CSV_COLUMNS = ["id", "kind", "status", "source", "sourceRef", "investigation", "name", "target", "copies", "moved",
               "alreadyThere", "notFound", "failed", "proposedBy", "created", "expires", "decidedBy", "decided",
               "finished", "comment"]


def _per_item(kind: ActionKind) -> bool:
    """Whether the action has per-item results (mail copies, or file places for the file kinds)."""
    return kind.moves_mail or kind.moves_files


def _text(value: str) -> str:
    """Entity text as shown: URLs defanged (never clickable)."""
    return defang(value) if "://" in value else value


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: Sequence[int] = (),
           attrs: Sequence[str] = ()) -> str:
    """An HTML table; cells are escaped except the columns in *raw* (already-escaped HTML)."""
    return rows_table(head, rows, raw=raw, attrs=attrs, css="wb-ac")


def csv_text(actions: Sequence[Action]) -> str:
    """The actions as CSV (one row each, per-message totals included)."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(CSV_COLUMNS)
    for a in actions:
        x = a.totals
        out.writerow([spreadsheet_safe(v) for v in (
            a.id, a.kind.value, a.status.value, a.source.value, a.source_ref, a.investigation_id or "", a.name, a.target,
            x.targets, x.success, x.already, x.not_found, x.failure, a.proposed_by, _when(a.created), _when(a.expires),
            a.decided_by, _when(a.decided), _when(a.finished), a.comment)])
    return buf.getvalue()


class ActionCenterPanel(ServicePanel):
    """Pending and History tabs with filters; select actions to approve (bulk, one type),
    reject (with a comment), dry-run and run, undo, or open their per-message log."""

    def __init__(self, service: ActionService, *, investigations: str = INVESTIGATIONS,
                 action_center: str = ACTION_CENTER, export_dir: Path | None = None, limit: int = 1000) -> None:
        super().__init__(service)
        self.investigations_app, self.app = investigations, action_center
        self.export_dir, self.limit = export_dir, limit
        self.pending: list[Action] = []
        self.history: list[Action] = []
        self.log_id: int | None = None
        self.kind = w.Dropdown(options=[("any", "")] + [(k.label, k.value) for k in ActionKind], description="Type")
        self.source = w.Dropdown(options=[("any", "")] + [(s.value, s.value) for s in ActionSource], description="Source")
        self.status = w.Dropdown(options=[("any", "")] + [(s.value, s.value) for s in S], description="Status")
        self.investigation = w.Text(description="Investigation", placeholder="id, e.g. 3",
                                    style={"description_width": "initial"})
        self.window = w.Dropdown(options=WINDOWS, value="", description="Created")
        self.start = w.DatePicker(description="From", layout=w.Layout(display="none"))
        self.end = w.DatePicker(description="To", layout=w.Layout(display="none"))
        self.apply_button = w.Button(description="Apply", icon="filter", button_style="primary")
        self.pending_table, self.history_table = w.HTML(), w.HTML()
        self.tabs = w.Tab(children=[self.pending_table, self.history_table])
        self.tabs.set_title(0, "Pending")
        self.tabs.set_title(1, "History")
        self.selection = w.SelectMultiple(description="Select", rows=6, layout=w.Layout(width="80%"))
        self.comment = w.Text(description="Comment", placeholder="why (required to reject)",
                              layout=w.Layout(width="60%"))
        self.approve_button = w.Button(description="Approve", icon="check", button_style="success")
        self.reject_button = w.Button(description="Reject", icon="times", button_style="danger")
        self.dry_run_button = w.Button(description="Dry run", icon="eye")
        self.confirm = w.Checkbox(value=False, description="I confirm (hard delete / many mailboxes)", indent=False,
                                  layout=w.Layout(width="auto"))
        self.run_button = w.Button(description="Run", icon="play", button_style="warning")
        self.undo_button = w.Button(description="Undo", icon="undo")
        self.log_button = w.Button(description="Show log", icon="list")
        self.export_button = w.Button(description="Export CSV", icon="download")
        self.progress = w.IntProgress(min=0, max=1, value=0, description="Running",
                                      layout=w.Layout(width="320px", visibility="hidden"))
        self.preview, self.action_log, self.download = w.HTML(), w.HTML(), w.HTML()
        self.children = [
            w.HTML(STYLE + _CSS + "<h2>Action center</h2>"),
            w.HBox([self.kind, self.source, self.status]),
            w.HBox([self.investigation, self.window, self.start, self.end, self.apply_button]),
            self.error, self.note, self.tabs, self.selection,
            w.HBox([self.comment, self.approve_button, self.reject_button]),
            w.HBox([self.dry_run_button, self.confirm, self.run_button, self.undo_button, self.progress]),
            w.HBox([self.log_button, self.export_button]), self.download, self.preview, self.action_log,
        ]
        self.apply_button.on_click(lambda _: self.apply())
        self.window.observe(self._on_window, names="value")
        self.tabs.observe(lambda _: self._fill_selection(), names="selected_index")
        self.approve_button.on_click(lambda _: self.approve())
        self.reject_button.on_click(lambda _: self.reject())
        self.dry_run_button.on_click(lambda _: self.dry_run())
        self.run_button.on_click(lambda _: self.run())
        self.undo_button.on_click(lambda _: self.undo())
        self.log_button.on_click(lambda _: self.open_log(self._first()))
        self.export_button.on_click(lambda _: self.export())
        if not has(service.actor, Permission.SEARCH_AND_PURGE, approvers=service.approvers, store=service.store):
            why = f"{service.actor} lacks the {Permission.SEARCH_AND_PURGE.value} role"
            for b in (self.approve_button, self.reject_button, self.run_button, self.undo_button):
                b.disabled, b.tooltip = True, why
        self.refresh()

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> ActionCenterPanel:
        """The action center of a tenant (its store, mail store and lake) for the acting user;
        in Voila, ``?action=N`` opens action N's log."""
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        base = os.environ.get("WORKBENCH_APPS_URL", "").rstrip("/")
        if base:
            kwargs.setdefault("investigations", f"{base}/voila/render/{INVESTIGATIONS}")
            kwargs.setdefault("action_center", f"{base}/voila/render/{ACTION_CENTER}")
        kwargs.setdefault("export_dir", t.root / "reports")
        panel = cls(ActionService.for_tenant(t, open_store(t), acting_user()), **kwargs)
        wanted = parse_qs(os.environ.get("QUERY_STRING", "")).get("action", [""])[0].lstrip("#")
        if wanted:
            if wanted.isdigit():
                panel.open_log(int(wanted))
            else:
                panel.show_error(InputError(f"?action={wanted!r} is not an action number; use e.g. ?action=12"))
        return panel

    # ------------------------------------------------------------------ plumbing

    def error_text(self, exc: Exception) -> str:
        return str(exc).replace("run it with --confirm", 'tick “I confirm” and run it')

    def act(self, fn: Callable[[], Any], done: str = "", *, clear: bool = True) -> Any:
        """As :meth:`ServicePanel.act`; a new call also clears the previous note."""
        if clear:
            self.note.value = ""
        return super().act(fn, done, clear=clear)

    def selected(self) -> list[int]:
        return list(self.selection.value)

    def _first(self) -> int | None:
        ids = self.selected()
        if not ids:
            self.show_error(InputError("select an action first"))
            return None
        return ids[0]

    def _need_selection(self) -> list[int]:
        ids = self.selected()
        if not ids:
            self.show_error(InputError("select one or more actions first"))
        return ids

    def _progress(self, label: str) -> Callable[[int, int], None]:
        self.progress.description, self.progress.value, self.progress.max = label, 0, 1
        self.progress.layout.visibility = "visible"

        def update(done: int, total: int) -> None:
            self.progress.max, self.progress.value = max(total, 1), done
        return update

    # ------------------------------------------------------------------ reading

    def filters(self) -> dict[str, Any]:
        """The service's list filters from the widgets (raises InputError on a bad investigation id)."""
        text = self.investigation.value.strip().lstrip("#")
        if text and not text.isdigit():
            raise InputError(f"investigation {self.investigation.value!r} is not a number; type e.g. 3")
        since = until = None
        if self.window.value == "custom":
            if self.start.value is None or self.end.value is None or self.start.value > self.end.value:
                raise InputError("between dates: pick a From date on or before the To date")
            since = datetime.combine(self.start.value, time(), UTC)
            until = datetime.combine(self.end.value, time(), UTC) + timedelta(days=1)
        elif self.window.value:
            since = self.service.clock() - timedelta(hours=_HOURS[self.window.value])
        return dict(kind=self.kind.value or None, source=self.source.value or None,
                    investigation_id=int(text) if text else None, since=since, until=until, limit=self.limit)

    def _on_window(self, _: Any = None) -> None:
        shown = "flex" if self.window.value == "custom" else "none"
        self.start.layout.display = self.end.layout.display = shown

    def _statuses(self, tab: Sequence[ActionStatus]) -> list[ActionStatus]:
        if not self.status.value:
            return list(tab)
        return [s for s in tab if s.value == self.status.value]

    def apply(self) -> None:
        self.error.value = ""
        self.refresh()

    def refresh(self) -> None:
        """Re-read both tabs with the current filters (keeps the selection where it still applies)."""
        def read() -> tuple[list[Action], list[Action]]:
            f = self.filters()
            pend, hist = self._statuses(PENDING), self._statuses(HISTORY)
            return (self.service.list(pend, **f) if pend else [], self.service.list(hist, **f) if hist else [])
        found = self.act(read, clear=False)
        if found is FAILED:
            return
        self.pending, self.history = found
        self.pending_table.value = (
            f'<div class="wb-note">{len(self.pending):,} action(s) waiting or running</div><div class="wb-scroll">'
            + _table(["#", "Type", "Status", "Source", "Investigation", "Copies / target", "Name", "Proposed by",
                      "Created", "Expires"],
                     [[self._link(a.id), a.kind.label, a.status.value, self._source(a), self._inv(a),
                       self._target(a), a.name, a.proposed_by, _when(a.created),
                       _when(a.expires) if a.status.decidable else ""] for a in self.pending],
                     raw=(0, 4), attrs=[f'data-action="{a.id}" data-status="{esc(a.status.value)}"'
                                        for a in self.pending]) + "</div>")
        self.history_table.value = (
            f'<div class="wb-note wb-totals">{esc(self._totals(self.history))}</div><div class="wb-scroll">'
            + _table(["#", "Type", "Status", "Source", "Investigation", "Copies / target", "Moved", "Already there",
                      "Not found", "Failed", "Name", "Proposed by", "Decided by", "Finished", "Comment"],
                     [[self._link(a.id), a.kind.label, a.status.value, self._source(a), self._inv(a), self._target(a),
                       a.totals.success, a.totals.already, a.totals.not_found, a.totals.failure, a.name, a.proposed_by,
                       a.decided_by, _when(a.finished or a.decided), a.comment] for a in self.history],
                     raw=(0, 4), attrs=[f'data-action="{a.id}" data-status="{esc(a.status.value)}"'
                                        for a in self.history]) + "</div>")
        self._fill_selection()

    def visible(self) -> list[Action]:
        """The actions of the tab shown (what the selection and the CSV export cover)."""
        return self.history if self.tabs.selected_index == 1 else self.pending

    def _fill_selection(self) -> None:
        keep = set(self.selection.value)
        actions = self.visible()
        self.selection.options = [(f"#{a.id} · {a.kind.label} · {a.status.value} · {a.name[:70]}", a.id)
                                  for a in actions]
        self.selection.value = tuple(a.id for a in actions if a.id in keep)

    def _link(self, action_id: int) -> str:
        return (f'<a href="{esc(self.app)}?action={int(action_id)}" target="_blank" rel="noopener" '
                f'class="wb-action-link">{int(action_id)}</a>')

    def _inv(self, a: Action) -> str:
        if a.investigation_id is None:
            return ""
        return (f'<a href="{esc(self.investigations_app)}?investigation={int(a.investigation_id)}" target="_blank" '
                f'rel="noopener">{int(a.investigation_id)}</a>')

    @staticmethod
    def _source(a: Action) -> str:
        return f"{a.source.value} {a.source_ref}".strip()

    @staticmethod
    def _target(a: Action) -> str:
        if _per_item(a.kind):
            return f"{a.totals.targets:,} {'copies' if a.kind.moves_mail else 'files'}"
        return f"{a.target_kind} {_text(a.target)}".strip()

    @staticmethod
    def _totals(actions: Sequence[Action]) -> str:
        by_status: dict[str, int] = {}
        for a in actions:
            by_status[a.status.value] = by_status.get(a.status.value, 0) + 1
        moved = sum(a.totals.success for a in actions)
        already = sum(a.totals.already for a in actions)
        missing = sum(a.totals.not_found for a in actions)
        failed = sum(a.totals.failure for a in actions)
        statuses = ", ".join(f"{n:,} {s}" for s, n in sorted(by_status.items())) or "no actions"
        return (f"{len(actions):,} action(s): {statuses}. Copies: {moved:,} moved, {already:,} already there, "
                f"{missing:,} not found, {failed:,} failed")

    # ------------------------------------------------------------------ deciding and running

    def approve(self) -> list[Action] | None:
        """Approve the selected actions (one type; the service refuses a mix, all or none)."""
        ids = self._need_selection()
        if not ids:
            return None
        done = self.act(lambda: self.service.approve(ids, self.comment.value.strip()))
        if done is FAILED:
            return None
        self.note.value = f'<span class="wb-note">{len(done):,} action(s) approved; run them next</span>'
        self.comment.value = ""
        self.refresh()
        return done

    def reject(self) -> list[Action] | None:
        """Reject the selected actions with the comment (required); stops at the first refusal."""
        ids = self._need_selection()
        if not ids:
            return None
        comment = self.comment.value
        out: list[Action] = []
        for action_id in ids:
            a = self.act(lambda i=action_id: self.service.reject(i, comment), clear=not out)
            if a is FAILED:
                break
            out.append(a)
        if out:
            self.note.value = f'<span class="wb-note">{len(out):,} action(s) rejected</span>'
            self.comment.value = ""
        self.refresh()
        return out

    def dry_run(self, *, clear: bool = True) -> int:
        """Show exactly what a run of the selected actions would do now; returns the copies listed."""
        ids = self._need_selection()
        if not ids:
            return 0
        rows: list[list[Any]] = []
        for n, action_id in enumerate(ids):
            found = self.act(lambda i=action_id: self.service.dry_run(i), clear=clear and not n)
            if found is FAILED:
                return 0
            rows += [[action_id, r.network_message_id, r.mailbox, r.current or "(none)", r.destination, r.would.value]
                     for r in found]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r[5]] = counts.get(r[5], 0) + 1
        said = ", ".join(f"{n:,} {k}" for k, n in counts.items()) or "nothing to move"
        shown = rows[:LOG_ROWS]
        self.preview.value = (
            f'<div class="wb-dry-run"><h4>Dry run: {esc(said)}</h4>'
            + (f'<div class="wb-note">first {LOG_ROWS:,} of {len(rows):,} copies shown</div>' if len(rows) > LOG_ROWS
               else "")
            + '<div class="wb-scroll">'
            + _table(["Action", "NetworkMessageId", "Mailbox", "Now in", "Would go to", "Would be"], shown)
            + "</div></div>")
        return len(rows)

    def run(self) -> list[Action]:
        """Run the selected approved actions one after another (the confirm box for a hard
        delete or a large blast radius); stops at the first refusal and opens the last log."""
        ids = self._need_selection()
        out: list[Action] = []
        if not ids:
            return out
        update = self._progress("Running")
        try:
            for action_id in ids:
                a = self.act(lambda i=action_id: self.service.run(i, confirm=self.confirm.value, progress=update),
                             clear=not out)
                if a is FAILED:
                    if "confirm" in self.error.value:  # show what it would do next to the refusal
                        self.selection.value = (action_id,)
                        self.dry_run(clear=False)
                    break
                out.append(a)
        finally:
            self.progress.layout.visibility = "hidden"
        if out:
            self.note.value = "<br>".join(f'<span class="wb-note">{esc(_summary(a))}</span>' for a in out)
            self.confirm.value = False
            self.preview.value = ""
            self.refresh()
            self.open_log(out[-1].id, clear=False)
        return out

    def undo(self) -> Action | None:
        """Undo the selected finished move or soft delete (a restore action, run now)."""
        action_id = self._first()
        if action_id is None:
            return None
        update = self._progress("Undoing")
        try:
            a = self.act(lambda: self.service.undo(action_id, progress=update))
        finally:
            self.progress.layout.visibility = "hidden"
        if a is FAILED:
            return None
        self.note.value = f'<span class="wb-note">{esc(_summary(a))} (undo of action {action_id})</span>'
        self.refresh()
        self.open_log(a.id, clear=False)
        return a

    # ------------------------------------------------------------------ one action's log

    def open_log(self, action_id: int | None, *, clear: bool = True) -> bool:
        """Show one action: its fields, history and per-message log (copy, mailbox, outcome,
        source folder → destination, reason, time)."""
        if action_id is None:
            return False
        svc = self.service
        got = self.act(lambda: (svc.get(action_id), svc.history(action_id), svc.results(action_id)), clear=clear)
        if got is FAILED:
            return False
        a, events, results = got
        self.log_id = a.id
        fields = [("Type", a.kind.label), ("Status", a.status.value), ("Source", self._source(a)),
                  ("Target", self._target(a)), ("Reason", a.reason), ("Proposed by", a.proposed_by),
                  ("Created", _when(a.created)), ("Expires", _when(a.expires) if a.status.decidable else ""),
                  ("Decided by", a.decided_by), ("Comment", a.comment),
                  ("Undo of", str(a.undo_of) if a.undo_of else ""),
                  ("Results", a.totals.render() if _per_item(a.kind) and a.totals.done else "")]
        dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in fields if v)
        if a.investigation_id is not None:
            dl += f"<dt>Investigation</dt><dd>{self._inv(a)}</dd>"
        shown = results[:LOG_ROWS]
        per_copy = _table(
            ["#", "NetworkMessageId", "Mailbox", "Outcome", "From → to", "Reason", "Time (UTC)", "Attempts"],
            [[r.seq, r.network_message_id, r.mailbox, r.outcome.value if r.outcome else r.state,
              f"{r.source_folder or '?'} → {r.destination or '(back to its place)'}" if _per_item(a.kind) else "",
              r.reason, _when(r.attempted), r.attempts or ""] for r in shown],
            attrs=[f'data-copy="{r.seq}" data-outcome="{esc(r.outcome.value if r.outcome else r.state)}"'
                   for r in shown])
        more = (f'<div class="wb-note">first {LOG_ROWS:,} of {len(results):,} copies shown; all of them: '
                f'<code>workbench actions show {a.id} --copies</code></div>' if len(results) > LOG_ROWS else "")
        self.action_log.value = (
            f'<div class="wb-action-log" data-action-log="{a.id}"><h3>Action {a.id}: {esc(_text(a.name))}</h3>'
            f'<dl class="wb-dl">{dl}</dl><h4>Per-message log</h4>{more}<div class="wb-scroll">{per_copy}</div>'
            "<h4>History</h4>"
            + _table(["Time (UTC)", "Who", "What", "Comment"], [[_when(e.at), e.actor, e.event, e.comment]
                                                               for e in events]) + "</div>")
        return True

    # ------------------------------------------------------------------ export

    def export(self) -> Path | None:
        """Write the visible list as CSV into the tenant's reports folder and offer it for download."""
        tab = "history" if self.tabs.selected_index == 1 else "pending"
        folder = self.export_dir or Path.cwd()
        path = folder / f"actions-{tab}-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
        text = csv_text(self.visible())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written = write_text(path, text, newline="")
        except OSError as exc:
            self.show_error(WorkbenchError(f"cannot create {path.parent}: {exc.strerror or exc}; check the reports folder"))
            return None
        except WorkbenchError as exc:
            self.show_error(exc)
            return None
        from workbench import audit

        audit.record(self.service.store, actor=self.service.actor, activity="actions.export", target=written.name,
                     details={"tab": tab, "actions": [a.id for a in self.visible()][:1000]})
        data = base64.b64encode(text.encode("utf-8")).decode()
        self.download.value = (f'<span class="wb-note">Saved {esc(written)} · <a download="{esc(written.name)}" '
                               f'href="data:text/csv;base64,{data}">download</a></span>')
        return written


def _summary(a: Action) -> str:
    x = a.totals
    counts = f"; {x.render()}" if _per_item(a.kind) and x.done else ""
    return f"action {a.id} ({a.kind.label}) is {a.status.value}{counts}"


__all__ = ["ActionCenterPanel", "csv_text"]
