"""A playbook notebook as an app: what its one code cell calls.

    from workbench.ui.playbook_app import open_playbook
    open_playbook("phish_zap", globals())

:func:`open_playbook` reads the notebook's parameters (:class:`PlaybookParameters`) and, by
where it runs:

- **Voila** (``SERVER_SOFTWARE`` is ``voila/…``): the address overrides them.
  ``?investigation=ID`` shows that investigation's page; ``?alert=ID`` (or ``?messages=…``,
  ``?user=…``) runs the playbook and shows the new investigation's page; no address shows the
  form. A bad address or a failed run is one escaped line on the page, never a traceback.
- **papermill / a kernel**: injected ``messages`` / ``alert_id`` / ``user`` run the playbook,
  ``investigation_id`` shows a recorded one; the result is a static output (the graph as
  SVG and escaped tables as HTML, the tables again as plain text). With nothing to do, the
  form (JupyterLab). Errors raise, so a scheduled run fails.

Widgets and HTML only; the runs are :func:`workbench.air.playbook.run_playbook`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w
import polars as pl

from workbench.air import records
from workbench.air.parameters import MAX_DAYS, PlaybookParameters
from workbench.air.playbook import frames, run_playbook
from workbench.air.records import Record
from workbench.errors import InputError, WorkbenchError
from workbench.store import Store
from workbench.ui.investigation import InvestigationPanel, record_html
from workbench.ui.render import STYLE, esc

VOILA_EXPLORER = "../Explorer.ipynb"  # playbooks are served at voila/render/playbooks/<name>.ipynb
VISITOR_FIELDS = ("messages", "alert_id", "investigation_id", "user", "days")  # what a Voila visitor may set
LABELS = {"tenant": "Tenant", "messages": "Messages", "alert_id": "Alert", "investigation_id": "Investigation",
          "user": "User (UPN)", "days": "Days back", "started_by": "Started by", "db_url": "Database URL",
          "record_notebook": "Notebook"}
HELP = {"messages": "NetworkMessageIds, one a line"}


def under_voila(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this kernel serves a Voila page."""
    return (environ if environ is not None else os.environ).get("SERVER_SOFTWARE", "").startswith("voila")


def _error_html(message: str) -> str:
    return f'<div class="wb-error" style="color:#b00020">{esc(message)}</div>'


class StaticRecord:
    """An investigation as a static notebook output: escaped HTML (graph and tables) and the
    same tables as plain text (for terminals and ``grep``)."""

    def __init__(self, record: Record, explorer: str = "Explorer.ipynb") -> None:
        self.record, self.explorer = record, explorer

    def text(self) -> str:
        parts = []
        with pl.Config(tbl_rows=50, fmt_str_lengths=80, tbl_width_chars=200):
            for title, frame in frames(self.record).items():
                parts.append(f"### {title.capitalize()}\n{frame}")
        return "\n\n".join(parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/html": STYLE + record_html(self.record, self.explorer), "text/plain": self.text()}


class ParametersForm(w.VBox):
    """The widgets that edit a :class:`PlaybookParameters` (only *fields*; the rest is kept)."""

    def __init__(self, params: PlaybookParameters, fields: tuple[str, ...] | None = None,
                 on_run: Callable[[PlaybookParameters], None] | None = None) -> None:
        super().__init__()
        self.base = params
        self.fields = tuple(f for f in PlaybookParameters.fields() if f in (fields or PlaybookParameters.fields()))
        self.inputs: dict[str, w.Widget] = {}
        for name in self.fields:
            value = getattr(params, name)
            style = {"description_width": "110px"}
            layout = w.Layout(width="640px")
            if name == "messages":
                box: w.Widget = w.Textarea("\n".join(value), description=LABELS[name], placeholder=HELP[name],
                                           rows=4, style=style, layout=layout)
            elif name in ("investigation_id", "days"):
                low, high = (0, 2**31 - 1) if name == "investigation_id" else (1, MAX_DAYS)
                box = w.BoundedIntText(value, min=low, max=high, description=LABELS[name], style=style,
                                       layout=w.Layout(width="260px"))
            else:
                box = w.Text(value, description=LABELS[name], style=style, layout=layout)
            self.inputs[name] = box
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.error = w.HTML()
        self.on_run = on_run
        self.run_button.on_click(lambda _: self.submit())
        self.children = [*self.inputs.values(), self.run_button, self.error]

    def parameters(self) -> PlaybookParameters:
        """The edited parameters (validated; raises :class:`InputError`)."""
        changes: dict[str, Any] = {}
        for name, box in self.inputs.items():
            if name == "messages":
                changes[name] = [m for line in box.value.splitlines() for m in line.split(",")]
            else:
                changes[name] = box.value
        return self.base.replace(**changes)

    def set_parameters(self, params: PlaybookParameters) -> None:
        """Show *params* in the widgets."""
        self.base = params
        for name, box in self.inputs.items():
            value = getattr(params, name)
            box.value = "\n".join(value) if name == "messages" else value

    def submit(self) -> None:
        self.error.value = ""
        try:
            params = self.parameters()
            if params.mode == "form":
                raise InputError("nothing to do: give messages, an alert or a user to run the playbook, "
                                 "or an investigation number to show one")
            if self.on_run is not None:
                self.on_run(params)
        except WorkbenchError as exc:
            self.error.value = _error_html(str(exc))


class PlaybookApp(w.VBox):
    """A playbook page: the form, then the investigation it ran or was asked to show."""

    def __init__(self, playbook: str, params: PlaybookParameters, *, fields: tuple[str, ...],
                 explorer: str = VOILA_EXPLORER) -> None:
        super().__init__()
        self.playbook, self.params, self.explorer = playbook, params, explorer
        self._store: Store | None = None
        self._store_key: tuple[str, str] = ("", "")
        self.form = ParametersForm(params, fields, on_run=self.go)
        self.status, self.page_box = w.HTML(), w.VBox()
        title = playbook.replace("_", " ").capitalize()
        self.children = [w.HTML(STYLE + f"<h3>Run {esc(title)}</h3>"), self.form, self.status, self.page_box]

    @property
    def store(self) -> Store:
        """The store of the current parameters' tenant and database (opened again when they change)."""
        key = (self.params.tenant, self.params.db_url)
        if self._store is None or self._store_key != key:
            from workbench.store import open_store
            from workbench.tenant import open_tenant

            fresh = open_store(open_tenant(self.params.tenant or None), self.params.db_url or None)
            if self._store is not None:
                self._store.dispose()
            self._store, self._store_key = fresh, key
        return self._store

    def go(self, params: PlaybookParameters) -> InvestigationPanel | None:
        """Show or run what *params* ask for; errors become one line on the page."""
        self.params = params
        self.status.value = ""
        try:
            if params.mode == "show":
                return self.show(params.investigation_id)
            if params.mode == "run":
                self.status.value = f'<div class="wb-note">Running {esc(self.playbook)}…</div>'
                rec = run_playbook(self.playbook, params)
                inv = rec.investigation
                self.status.value = (f'<div class="wb-note" data-ran="{inv.id}">{esc(self.playbook)} ran: '
                                     f'investigation {inv.id} ({esc(inv.status.value)}); its address: '
                                     f'<a href="?investigation={inv.id}">?investigation={inv.id}</a></div>')
                return self.show(inv.id)
        except WorkbenchError as exc:
            self.status.value = _error_html(str(exc))
        return None

    def show(self, investigation_id: int) -> InvestigationPanel:
        records.load(self.store, investigation_id)  # an unknown id raises NotFound (one line)
        page = InvestigationPanel(self.store, investigation_id, explorer=self.explorer)
        self.page_box.children = [page]
        return page


def open_playbook(playbook: str, namespace: Mapping[str, Any], *,
                  environ: Mapping[str, str] | None = None) -> PlaybookApp | StaticRecord:
    """The playbook's page for its notebook's *namespace* (``globals()``); see the module doc."""
    env = environ if environ is not None else os.environ
    params = PlaybookParameters.from_notebook(namespace)
    declared = tuple(params.declared) or PlaybookParameters.fields()
    if under_voila(env):
        app = PlaybookApp(playbook, params, fields=tuple(f for f in VISITOR_FIELDS if f in declared))
        try:
            params = params.with_query(env.get("QUERY_STRING", ""))
        except WorkbenchError as exc:
            app.status.value = _error_html(str(exc))
            return app
        app.form.set_parameters(params)
        app.go(params)
        return app
    if params.mode == "form":
        return PlaybookApp(playbook, params, fields=tuple(f for f in declared if f != "record_notebook"),
                           explorer="Explorer.ipynb")
    if params.mode == "show":
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        store = open_store(open_tenant(params.tenant or None), params.db_url or None)
        try:
            return StaticRecord(records.load(store, params.investigation_id))
        finally:
            store.dispose()
    return StaticRecord(run_playbook(playbook, params))
