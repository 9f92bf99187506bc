"""The attack simulator app (mdo-reference §5): campaigns, a create wizard and each campaign's report.

    from workbench.ui.simulator import SimulatorPanel
    SimulatorPanel.for_tenant()      # in Voila, ?campaign=3 opens campaign 3's report

Widgets only: every change is a call to :class:`~workbench.simulator.campaigns.SimulationService`
(or the simulator's modules), whose one-line errors (a missing role, a bad setting, no targets)
show in the error line. Untrusted text (payload fields, names, user agents, IPs) reaches HTML
through :mod:`workbench.ui.render`; email HTML is never rendered, only shown as escaped source;
charts are static SVG images rendered offline (vl-convert).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import altair as alt
import ipywidgets as w
import polars as pl

from workbench.errors import InputError, WorkbenchError
from workbench.simulator import payloads as pl_payloads
from workbench.simulator import reports, targets
from workbench.simulator.campaigns import (ASSIGN_TO, REINFORCEMENT, REMINDERS, Campaign, CampaignSettings,
                                           SimulationService)
from workbench.simulator.model import Recipient, Technique
from workbench.ui.panel import FAILED, ServicePanel
from workbench.ui.render import STYLE, esc, pre, rows_table
from workbench.ui.render import when as _when

SIMULATOR = "Simulator.ipynb"
LIVE_SECONDS = 5.0
USER_ROWS = 1000  # per-user rows shown (the CSV has them all)
_CSS = "<style>.wb-sim th {white-space: nowrap;} .wb-sim-kpi td:first-child {font-weight: 600;}</style>"
COUNT_LABELS = {"targeted": "Targeted", "delivered": "Delivered", "failed": "Failed", "read": "Read",
                "clicked": "Clicked", "attachment_opened": "Attachment opened",
                "attachment_link_clicked": "Attachment link clicked", "file_downloaded": "File downloaded",
                "credentials_supplied": "Credentials supplied", "consent_granted": "Consent granted",
                "compromised": "Compromised", "reported": "Reported", "training_completed": "Training completed",
                "flagged_events": "Flagged events"}
USER_COLUMNS = ["UserName", "UserMail", "Department", "Compromised", "MessageRead_TimeStamp",
                "EmailLinkClicked_TimeStamp", "CredSupplied_TimeStamp", "Phishing Reported On", "Training Status",
                "ExcludedEvents"]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _span(seconds: float | None) -> str:
    return "n/a" if seconds is None else str(timedelta(seconds=round(seconds)))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, attrs: Sequence[str] = ()) -> str:
    """An escaped HTML table (*attrs* are already-escaped row attributes)."""
    return rows_table(head, rows, attrs=attrs, css="wb-sim", limit=300)


def _lines(text: str) -> tuple[str, ...]:
    """Addresses typed one per line or separated by commas / semicolons."""
    return tuple(x.strip().lower() for x in text.replace(";", ",").replace("\n", ",").split(",") if x.strip())


def _svg(chart: alt.TopLevelMixin) -> w.Image:
    """A static chart as an SVG image (offline; an <img> never runs script)."""
    from workbench.dashboard.charts import svg

    return w.Image(value=svg(chart).encode(), format="svg+xml", layout=w.Layout(max_width="100%"))


def timeline_chart(timeline: pl.DataFrame) -> alt.Chart:
    """Counted events per hour, stacked by kind."""
    return (alt.Chart(timeline.with_columns(pl.col("events").cast(pl.Int64)), title="Counted events per hour")
            .mark_bar().encode(x=alt.X("hour:T", title=None), y=alt.Y("events:Q", title="events", stack="zero"),
                               color=alt.Color("kind:N", title="event"))
            .properties(width=460, height=200))


def department_chart(by_department: pl.DataFrame) -> alt.Chart:
    """Compromise rate by department (of the users who received the message)."""
    data = by_department.select("department", "received", pl.col("compromise_rate").cast(pl.Float64)).head(30)
    return (alt.Chart(data, title="Compromise rate by department").mark_bar()
            .encode(x=alt.X("compromise_rate:Q", title="compromise rate", axis=alt.Axis(format="%"),
                            scale=alt.Scale(domain=[0, 1])),
                    y=alt.Y("department:N", title=None, sort="-x"))
            .properties(width=360, height=max(60, 18 * data.height)))


def department_trend_chart(trends: pl.DataFrame) -> alt.Chart:
    """Compromise rate per campaign over time, one line per department (:func:`reports.department_trends`)."""
    data = trends.select("department", "campaign_id", "started", "received",
                         pl.col("compromise_rate").cast(pl.Float64))
    return (alt.Chart(data, title="Compromise rate per campaign by department").mark_line(point=True)
            .encode(x=alt.X("started:T", title="campaign launched"),
                    y=alt.Y("compromise_rate:Q", title="compromise rate", axis=alt.Axis(format="%"),
                            scale=alt.Scale(domain=[0, 1])),
                    color=alt.Color("department:N", title="department"))
            .properties(width=460, height=220))


class SimulatorPanel(ServicePanel):
    """An Overview across campaigns, Campaigns (launch, cancel), a Create wizard and the Report of
    the selected campaign."""

    def __init__(self, service: SimulationService, *, lake: Any = None, tenant: Any = None,
                 export_dir: Path | None = None, live_seconds: float = LIVE_SECONDS, app: str = SIMULATOR) -> None:
        super().__init__(service)
        from workbench import rbac

        self.lake, self.tenant, self.export_dir, self.app = lake, tenant, export_dir, app
        self.live_seconds = live_seconds
        self.campaigns: list[Campaign] = []
        self.report: reports.CampaignReport | None = None
        self.report_id: int | None = None
        self._report_key: Any = None
        self._live_stop: threading.Event | None = None
        self._live_thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self.csv_recipients: list[Recipient] = []
        self.can_manage = rbac.has(service.store, service.actor, rbac.Permission.SIMULATION_MANAGEMENT)
        self._build_overview()
        self._build_campaigns()
        self._build_wizard()
        self._build_report()
        self.tabs = w.Tab(children=[self.overview_box, self.campaigns_box, self.wizard_box, self.report_box])
        for i, title in enumerate(("Overview", "Campaigns", "Create", "Report")):
            self.tabs.set_title(i, title)
        self.children = [w.HTML(STYLE + _CSS + "<h2>Attack simulator</h2>"), self.error, self.note, self.tabs]
        if not self.can_manage:
            why = f"{service.actor} lacks the simulation management permission"
            for b in (self.launch_button, self.cancel_button, self.save_button, self.wizard_launch_button,
                      self.test_button):
                b.disabled, b.tooltip = True, why
        self.refresh()
        self._update_payloads()
        self._update_count()
        self.update_summary()

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> SimulatorPanel:
        """The simulator of a tenant (its store and directory) for the acting user; in Voila,
        ``?campaign=N`` opens campaign N's report."""
        from workbench.identity import acting_user
        from workbench.lake import Lake
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        kwargs.setdefault("export_dir", t.root / "reports")
        panel = cls(SimulationService(open_store(t), acting_user()), lake=Lake.for_tenant(t), tenant=t, **kwargs)
        wanted = parse_qs(os.environ.get("QUERY_STRING", "")).get("campaign", [""])[0].lstrip("#")
        if wanted:
            if wanted.isdigit():
                panel.open_report(int(wanted))
            else:
                panel.show_error(InputError(f"?campaign={wanted!r} is not a campaign number; use e.g. ?campaign=3"))
        return panel

    def act(self, fn: Callable[[], Any], done: str = "", *, clear: bool = True) -> Any:
        """As :meth:`ServicePanel.act`; a new call also clears the previous note."""
        if clear:
            self.note.value = ""
        return super().act(fn, done, clear=clear)

    # ------------------------------------------------------------------ campaigns tab

    def _build_campaigns(self) -> None:
        self.campaign_table = w.HTML()
        self.selector = w.Dropdown(description="Campaign", layout=w.Layout(width="60%"))
        self.launch_button = w.Button(description="Launch", icon="play", button_style="warning")
        self.cancel_button = w.Button(description="Cancel", icon="stop", button_style="danger")
        self.open_button = w.Button(description="Open report", icon="bar-chart")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.launch_button.on_click(lambda _: self.launch())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.open_button.on_click(lambda _: self.open_report(self.selector.value))
        self.refresh_button.on_click(lambda _: self.refresh())
        self.campaigns_box = w.VBox([
            self.campaign_table, self.selector,
            w.HBox([self.launch_button, self.cancel_button, self.open_button, self.refresh_button])])

    def refresh(self) -> None:
        """Re-read the campaigns (keeps the selection when it still exists) and the Overview."""
        found = self.act(self.service.list, clear=False)
        if found is FAILED:
            self.campaigns = []
            self.campaign_table.value = '<div class="wb-empty">No campaigns to show.</div>'
            self.selector.options = []
            self.refresh_overview()
            return
        self.campaigns = found
        rows = [[c.id, c.name, c.technique.label, c.status.value, c.targets, _when(c.started or c.launch_at),
                 _when(c.ended or c.end_at)] for c in self.campaigns]
        self.campaign_table.value = '<div class="wb-scroll">' + _table(
            ["#", "Name", "Technique", "Status", "Targets", "Launched", "Ends"], rows,
            attrs=[f'data-campaign="{c.id}" data-status="{esc(c.status.value)}"' for c in self.campaigns]) + "</div>"
        keep = self.selector.value
        self.selector.options = [(f"#{c.id} · {c.name[:70]} · {c.status.value}", c.id) for c in self.campaigns]
        ids = [c.id for c in self.campaigns]
        self.selector.value = keep if keep in ids else (ids[0] if ids else None)
        self.refresh_overview()

    def _selected(self) -> int | None:
        if self.selector.value is None:
            self.show_error(InputError("select a campaign first"))
        return self.selector.value

    def launch(self) -> Campaign | None:
        """Launch the selected draft or scheduled campaign now."""
        cid = self._selected()
        if cid is None:
            return None
        done = self.act(lambda: self.service.launch(cid), f"campaign {cid} launched")
        if done is FAILED:
            return None
        self.refresh()
        return done

    def cancel(self) -> Campaign | None:
        """Cancel the selected campaign (nothing more is sent; recorded events stay)."""
        cid = self._selected()
        if cid is None:
            return None
        done = self.act(lambda: self.service.cancel(cid), f"campaign {cid} cancelled")
        if done is FAILED:
            return None
        self.refresh()
        return done

    # ------------------------------------------------------------------ overview tab

    def _build_overview(self) -> None:
        self.overview_head = w.HTML()
        self.overview_kpis = w.HTML()
        self.overview_chart = w.HBox()
        self.offenders_table = w.HTML()
        self.trends_table = w.HTML()
        self.overview_button = w.Button(description="Refresh", icon="refresh")
        self.overview_button.on_click(lambda _: self.refresh_overview(clear=True))
        self.overview_box = w.VBox([self.overview_button, self.overview_head, self.overview_kpis, self.overview_chart,
                                    w.HTML("<h4>Repeat offenders</h4>"), self.offenders_table,
                                    w.HTML("<h4>Users over the last 5 campaigns</h4>"), self.trends_table])

    def refresh_overview(self, *, clear: bool = False) -> bool:
        """Across campaigns: coverage (last 90 days), training completion, repeat offenders, the
        department trend chart and per-user trends; refused (one line) without the reports permission."""
        store = self.service.store

        def read() -> tuple[Any, ...]:
            self.service.require_reports("overview")
            users = self._directory()
            emails = users["email"].to_list() if "email" in users.columns else []
            return (reports.coverage(store, emails), reports.training_completion(store),
                    reports.repeat_offender_table(store, users), reports.department_trends(store),
                    *reports.recent_user_trends(store, last=5))
        got = self.act(read, clear=clear)
        if got is FAILED:
            self.overview_head.value = f'<div class="wb-refusal">{self.error.value}</div>'
            self.overview_kpis.value = self.offenders_table.value = self.trends_table.value = ""
            self.overview_chart.children = ()
            return False
        cover, training, offenders, trends, recent, users = got
        self.overview_head.value = (f'<div class="wb-overview"><span class="wb-note">across campaigns · updated '
                                    f"{datetime.now(UTC):%H:%M:%S} UTC</span></div>")
        n = cover["users"]
        share = lambda k: f"{cover[k]:,} ({_pct(cover[k] / n if n else None)})"  # noqa: E731
        coverage = "".join(f'<tr><td>{esc(label)}</td><td data-coverage="{esc(k)}">{esc(v)}</td></tr>'
                           for label, k, v in (("Users in the directory", "users", f"{n:,}"),
                                               ("Simulated (last 90 days)", "simulated", share("simulated")),
                                               ("Not simulated", "not_simulated", share("not_simulated"))))
        done = "".join(f'<tr><td>{esc(label)}</td><td data-training="{esc(k)}">{int(training[k]):,}</td></tr>'
                       for label, k in (("Training assigned", "assigned"), ("Completed", "completed"),
                                        ("In progress", "in_progress"), ("Overdue", "incomplete")))
        self.overview_kpis.value = (
            '<div style="display:flex; gap:24px; flex-wrap:wrap">'
            f'<table class="wb-table wb-sim-kpi wb-coverage" style="width:auto">{coverage}</table>'
            f'<table class="wb-table wb-sim-kpi wb-training" style="width:auto">{done}</table></div>')
        self.overview_chart.children = ((_svg(department_trend_chart(trends)),) if not trends.is_empty() else
                                        (w.HTML('<div class="wb-empty">No launched campaign yet.</div>'),))
        self.offenders_table.value = '<div class="wb-scroll">' + _table(
            ["User", "Department", "Consecutive compromises"],
            [[r["email"], r["department"], r["consecutive"]] for r in offenders.iter_rows(named=True)],
            attrs=[f'data-offender="{esc(e)}"' for e in offenders["email"]]) + "</div>"
        cols = [f"#{i}" for i in recent]
        shown = users.head(USER_ROWS)
        more = (f'<div class="wb-note">first {USER_ROWS:,} of {users.height:,} users shown</div>'
                if users.height > USER_ROWS else "")
        self.trends_table.value = more + '<div class="wb-scroll">' + _table(
            ["User", "Department", *[f"Campaign {c}" for c in cols], "Clicked", "Compromised", "Reported"],
            [[r[c] for c in ("email", "department", *cols, "clicked", "compromised", "reported")]
             for r in shown.iter_rows(named=True)],
            attrs=[f'data-trend-user="{esc(e)}"' for e in shown["email"]]) + "</div>"
        return True

    # ------------------------------------------------------------------ create wizard

    def _build_wizard(self) -> None:
        from workbench.simulator.payload_store import all_payloads
        from workbench.simulator.training import load_catalog

        wide = w.Layout(width="70%")
        style = {"description_width": "initial"}
        self.payloads = self.act(lambda: all_payloads(self.service.store), clear=False)
        if self.payloads is FAILED:
            self.payloads = []
        self.name = w.Text(description="Name", placeholder="e.g. Q4 payroll phish", layout=wide)
        self.description = w.Text(description="Description", layout=wide)
        self.technique = w.Dropdown(options=[(t.label, t.value) for t in Technique], description="Technique")
        self.payload = w.Dropdown(description="Payload", layout=wide)
        self.payload_preview = w.HTML()
        pick = targets.choices(self._directory())
        self.all_users = w.Checkbox(description="All users", indent=False)
        self.departments = w.SelectMultiple(options=pick["departments"], description="Departments", rows=5)
        self.titles = w.SelectMultiple(options=pick["titles"], description="Titles", rows=5)
        self.cities = w.SelectMultiple(options=pick["cities"], description="Cities", rows=5)
        self.countries = w.SelectMultiple(options=pick["countries"], description="Countries", rows=5)
        self.tags = w.SelectMultiple(options=pick["tags"], description="Tags", rows=5)
        self.emails = w.Textarea(description="Users", placeholder="named users: one address per line", layout=wide)
        self.exclude = w.Textarea(description="Exclude", placeholder="addresses to leave out", layout=wide)
        self.suggested = w.Dropdown(options=[("none", ""), ("not simulated in the last 3 months",
                                                            targets.SUGGESTED[0]),
                                             ("repeat offenders", targets.SUGGESTED[1])],
                                    description="Suggested", style=style)
        self.upload = w.FileUpload(accept=".csv,text/csv", multiple=False, description="CSV")
        self.count = w.HTML()
        modules = load_catalog()
        self.training = w.SelectMultiple(options=[(f"{m.title} ({m.minutes} min)", m.id) for m in modules],
                                         description="Modules", rows=min(8, len(modules)), layout=wide)
        self.assign = w.Dropdown(options=list(ASSIGN_TO), value="compromised", description="Assign to")
        self.due = w.Dropdown(options=[("7 days", 7), ("15 days", 15), ("30 days", 30)], value=15,
                              description="Due after")
        self.landing = w.RadioButtons(options=[("Built-in teaching page", "builtin"), ("Custom URL", "custom")],
                                      value="builtin", description="Landing")
        self.landing_url = w.Text(description="URL", placeholder="https://training.example.org/...", layout=wide)
        self.reinforcement = w.Dropdown(options=list(REINFORCEMENT), value="immediately",
                                        description="Positive reinforcement", style=style)
        self.reminder = w.Dropdown(options=list(REMINDERS), value="weekly", description="Reminders", style=style)
        self.when = w.RadioButtons(options=[("Launch now", "now"), ("Schedule", "later")], value="now",
                                   description="Launch")
        self.launch_date = w.DatePicker(description="Date")
        self.launch_time = w.Text(description="Time", value="09:00", placeholder="HH:MM")
        self.launch_zone = w.Text(description="Time zone", value="UTC", placeholder="e.g. Europe/Paris", style=style)
        self.window = w.IntRangeSlider(value=(9, 17), min=0, max=24, description="Send window (h)", style=style)
        self.zone_aware = w.Checkbox(value=True, description="In each user's time zone", indent=False)
        self.spread = w.BoundedIntText(value=0, min=0, max=1440, description="Spread (min)", style=style)
        self.end_days = w.BoundedIntText(value=2, min=2, max=30, description="End after (days)", style=style)
        self.summary = w.HTML()
        self.test_address = w.Text(description="Test to", placeholder="you@example.org")
        self.test_button = w.Button(description="Send a test", icon="envelope")
        self.test_result = w.HTML()
        self.save_button = w.Button(description="Save draft", icon="save")
        self.wizard_launch_button = w.Button(description="Launch campaign", icon="rocket", button_style="warning")
        steps = [
            ("1. Name and technique", [self.name, self.description, self.technique]),
            ("2. Payload", [self.payload, self.payload_preview]),
            ("3. Targets", [self.all_users, w.HBox([self.departments, self.titles]),
                            w.HBox([self.cities, self.countries]), self.tags, self.emails, self.exclude,
                            self.suggested, w.HBox([self.upload, w.HTML('<span class="wb-note">a CSV with an '
                                                                         "email column</span>")]), self.count]),
            ("4. Training", [self.training, w.HBox([self.assign, self.due])]),
            ("5. Landing page", [self.landing, self.landing_url]),
            ("6. Notifications", [self.reinforcement, self.reminder]),
            ("7. Schedule", [self.when, w.HBox([self.launch_date, self.launch_time, self.launch_zone]),
                             self.window, self.zone_aware, self.spread, self.end_days]),
            ("8. Review", [self.summary, w.HBox([self.test_address, self.test_button]), self.test_result,
                           w.HBox([self.save_button, self.wizard_launch_button])]),
        ]
        self.steps = w.Accordion(children=[w.VBox(c) for _, c in steps])
        for i, (title, _) in enumerate(steps):
            self.steps.set_title(i, title)
        self.steps.selected_index = 0
        self.wizard_box = w.VBox([self.steps])
        self.technique.observe(lambda _: self._update_payloads(), names="value")
        self.payload.observe(lambda _: self._show_payload(), names="value")
        for widget in (self.all_users, self.departments, self.titles, self.cities, self.countries, self.tags,
                       self.emails, self.exclude, self.suggested):
            widget.observe(lambda _: self._update_count(), names="value")
        self.upload.observe(lambda _: self._read_upload(), names="value")
        for widget in (self.name, self.training, self.assign, self.due, self.landing, self.landing_url,
                       self.reinforcement, self.reminder, self.when, self.launch_date, self.launch_time,
                       self.launch_zone, self.window, self.zone_aware, self.spread, self.end_days):
            widget.observe(lambda _: self.update_summary(), names="value")
        self.steps.observe(lambda _: self.update_summary(), names="selected_index")
        self.test_button.on_click(lambda _: self.send_test())
        self.save_button.on_click(lambda _: self.save_draft())
        self.wizard_launch_button.on_click(lambda _: self.create_and_launch())

    def _directory(self) -> pl.DataFrame:
        if self.lake is None:
            return pl.DataFrame()
        try:
            return targets.directory(self.lake)
        except Exception:  # noqa: BLE001 - no directory table yet: the filters stay empty
            return pl.DataFrame()

    def _update_payloads(self) -> None:
        technique = Technique(self.technique.value)
        keep = self.payload.value
        options = [(f"{p.name} ({p.source})", p.id) for p in self.payloads if p.technique is technique]
        self.payload.options = options
        ids = [i for _, i in options]
        self.payload.value = keep if keep in ids else (ids[0] if ids else None)
        self._show_payload()

    def selected_payload(self) -> Any:
        for p in self.payloads:
            if p.id == self.payload.value:
                return p
        raise InputError("choose a payload (none of this technique? pick another technique)")

    def _show_payload(self) -> None:
        """Subject, sender, indicators and the text part of the preview; the HTML only as escaped source."""
        if self.payload.value is None:
            self.payload_preview.value = '<div class="wb-empty">No payload of this technique.</div>'
            return
        p = self.selected_payload()
        msg = pl_payloads.render_preview(p)
        text = msg.get_body(preferencelist=("plain",))
        body = msg.get_body(preferencelist=("html",))
        indicators = "".join(f"<li>{esc(x)}</li>" for x in p.indicators) or "<li>(none listed)</li>"
        self.payload_preview.value = (
            f'<div class="wb-payload-preview" data-payload="{esc(p.id)}"><dl class="wb-dl">'
            f"<dt>Subject</dt><dd>{esc(msg['Subject'])}</dd><dt>From</dt><dd>{esc(p.sender)}</dd>"
            f"<dt>Complexity</dt><dd>{esc(p.complexity)}</dd><dt>Language</dt><dd>{esc(p.language)}</dd></dl>"
            f"<h4>Indicators</h4><ul class=\"wb-indicators\">{indicators}</ul><h4>Text part</h4>"
            f"{pre(text.get_content() if text is not None else '')}"
            f"<details><summary>HTML source (not rendered)</summary>"
            f"{pre(body.get_content() if body is not None else '')}</details></div>")

    def _read_upload(self) -> None:
        files = self.upload.value
        if not files:
            self.csv_recipients = []
        else:
            f = files[0]
            text = bytes(f["content"]).decode("utf-8-sig", errors="replace")
            found = self.act(lambda: targets.from_csv(text if "\n" in text else text + "\n", lake=self.lake))
            self.csv_recipients = [] if found is FAILED else found
        self._update_count()

    def target_filter(self) -> targets.TargetFilter:
        return targets.TargetFilter(
            all_users=self.all_users.value, emails=_lines(self.emails.value), departments=self.departments.value,
            titles=self.titles.value, cities=self.cities.value, countries=self.countries.value, tags=self.tags.value,
            exclude=_lines(self.exclude.value), suggested=self.suggested.value)

    def recipients(self) -> list[Recipient]:
        """The chosen users: the filters' matches and the CSV's rows, less the exclusions."""
        f = self.target_filter()
        chosen: dict[str, Recipient] = {}
        if not f.empty:
            for r in targets.select(self.lake, f, store=self.service.store):
                chosen[r.email] = r
        for r in self.csv_recipients:
            if r.email not in f.exclude:
                chosen.setdefault(r.email, r)
        if not chosen:
            if f.empty:
                raise InputError("choose targets: all users, named users, a department/title/city/country/tag "
                                 "filter, a suggested group or a CSV")
            raise InputError("no user matches these targets; widen the filters")
        return list(chosen.values())

    def _update_count(self) -> None:
        try:
            self._chosen: list[Recipient] | WorkbenchError = self.recipients()
            n, problem = len(self._chosen), ""
        except WorkbenchError as exc:
            self._chosen, n, problem = exc, 0, str(exc)
        self.count.value = (f'<span class="wb-count" data-count="{n}"><b>{n:,} users selected</b></span>'
                            + (f' <span class="wb-note">{esc(problem)}</span>' if problem else ""))
        self.update_summary()

    def settings(self) -> CampaignSettings:
        """The campaign settings from the wizard (InputError on a bad value)."""
        start, end = self.window.value
        return CampaignSettings(
            training=tuple(self.training.value), assign_training_to=self.assign.value if self.training.value
            else "none", training_due_days=self.due.value,
            landing_url=self.landing_url.value.strip() if self.landing.value == "custom" else "",
            positive_reinforcement=self.reinforcement.value, training_reminder=self.reminder.value,
            window_start=start, window_end=end, time_zone_aware=self.zone_aware.value,
            spread_minutes=self.spread.value, end_after_days=self.end_days.value)

    def launch_at(self) -> datetime | None:
        """The scheduled launch time (UTC), None to launch now."""
        if self.when.value == "now":
            return None
        if self.launch_date.value is None:
            raise InputError("pick a launch date, or choose Launch now")
        try:
            hour, minute = (int(x) for x in self.launch_time.value.strip().split(":"))
            clock = time(hour, minute)
        except ValueError:
            raise InputError(f"launch time {self.launch_time.value!r} is not HH:MM; type e.g. 09:30") from None
        try:
            zone = ZoneInfo(self.launch_zone.value.strip() or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {self.launch_zone.value!r}; use e.g. UTC or Europe/Paris") from None
        return datetime.combine(self.launch_date.value, clock, zone).astimezone(UTC)

    def update_summary(self) -> None:
        """The Review step: every choice, or the first problem."""
        if not hasattr(self, "summary"):
            return
        problems: list[str] = []

        def get(fn: Callable[[], Any], fallback: Any = None) -> Any:
            try:
                return fn()
            except WorkbenchError as exc:
                problems.append(str(exc))
                return fallback
        payload = get(self.selected_payload)
        chosen = getattr(self, "_chosen", [])  # the targets step keeps it current
        if isinstance(chosen, WorkbenchError):
            problems.append(str(chosen))
            chosen = []
        s = get(self.settings)
        at = get(self.launch_at)
        pairs = [("Name", self.name.value.strip() or "(none yet)"),
                 ("Technique", Technique(self.technique.value).label),
                 ("Payload", f"{payload.name} ({payload.id})" if payload else ""),
                 ("Targets", f"{len(chosen):,} users" + (f" from a CSV of {len(self.csv_recipients):,}"
                                                          if self.csv_recipients else ""))]
        if s is not None:
            pairs += [("Training", ", ".join(s.training) or "none"),
                      ("Assign training to", f"{s.assign_training_to}, due {s.training_due_days} days after the end"),
                      ("Landing page", s.landing_url or "built-in teaching page"),
                      ("Positive reinforcement", s.positive_reinforcement), ("Reminders", s.training_reminder),
                      ("Send window", f"{s.window_start}:00–{s.window_end}:00 "
                                      + ("in each user's time zone" if s.time_zone_aware else "UTC")),
                      ("Spread", f"{s.spread_minutes} minutes"), ("Ends", f"{s.end_after_days} days after launch")]
        pairs.append(("Launch", "now" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"))
        rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
        trouble = "".join(f'<li class="wb-error" style="color:#b00020">{esc(p)}</li>' for p in problems)
        self.summary.value = (f'<div class="wb-review"><dl class="wb-dl">{rows}</dl>'
                              + (f"<ul>{trouble}</ul>" if trouble else "") + "</div>")

    def _create(self) -> Campaign:
        return self.service.create(self.name.value, self.selected_payload().id, self.recipients(),
                                   settings=self.settings(), description=self.description.value.strip(),
                                   technique=self.technique.value)

    def save_draft(self) -> Campaign | None:
        """Create the campaign as a draft."""
        made = self.act(self._create)
        if made is FAILED:
            return None
        self.note.value = (f'<span class="wb-note">campaign {made.id} saved as a draft with {made.targets:,} '
                           "targets</span>")
        self.refresh()
        return made

    def create_and_launch(self) -> Campaign | None:
        """Create the campaign and launch it now, or schedule it when a time is given."""
        at = self.act(self.launch_at)
        if at is FAILED:
            return None
        made = self.act(self._create)
        if made is FAILED:
            return None
        if at is None:
            done = self.act(lambda: self.service.launch(made.id), f"campaign {made.id} launched")
        else:
            done = self.act(lambda: self.service.schedule(made.id, at),
                            f"campaign {made.id} scheduled for {at:%Y-%m-%d %H:%M} UTC")
        self.refresh()
        return None if done is FAILED else done

    def send_test(self) -> Any:
        """Send the payload, rendered for the typed address, through the tenant's SMTP relay."""
        from workbench.simulator import config
        from workbench.simulator.sending import send_test

        self.test_result.value = ""

        def send() -> Any:
            if self.tenant is None:
                raise InputError("no tenant: open the panel with SimulatorPanel.for_tenant()")
            return send_test(self.service.store, config.load(self.tenant), self.service.actor,
                             self.selected_payload(), self.test_address.value.strip())
        result = self.act(send)
        if result is FAILED:
            return None
        colour = "#1b5e20" if result.sent else "#b00020"
        self.test_result.value = (f'<span class="wb-test-result" data-outcome="{esc(result.outcome.value)}" '
                                  f'style="color:{colour}">{esc(result.outcome.value)}: {esc(result.detail)}</span>')
        return result

    # ------------------------------------------------------------------ report tab

    def _build_report(self) -> None:
        self.report_head = w.HTML('<div class="wb-empty">Select a campaign and open its report.</div>')
        self.report_counts = w.HTML()
        self.charts = w.HBox()
        self.flagged_table = w.HTML()
        self.users_table = w.HTML()
        self.live = w.ToggleButton(value=False, description="Live", icon="refresh",
                                   tooltip=f"refresh the report every {LIVE_SECONDS:g} seconds")
        self.reload_button = w.Button(description="Reload", icon="refresh")
        self.export_button = w.Button(description="Export CSV", icon="download")
        self.download = w.HTML()
        self.live.observe(lambda change: self.set_live(change["new"]), names="value")
        self.reload_button.on_click(lambda _: self.open_report(self.report_id))
        self.export_button.on_click(lambda _: self.export())
        self.report_box = w.VBox([w.HBox([self.live, self.reload_button, self.export_button]), self.download,
                                  self.report_head, self.report_counts, self.charts,
                                  w.HTML("<h4>Flagged events (excluded from every rate)</h4>"), self.flagged_table,
                                  w.HTML("<h4>Users</h4>"), self.users_table])

    def open_report(self, campaign_id: int | None, *, clear: bool = True) -> bool:
        """Show campaign *campaign_id*'s report (counts, rates, timing, charts, flagged events, users)."""
        if campaign_id is None:
            self.show_error(InputError("select a campaign first"))
            return False
        self.tabs.selected_index = self.tabs.children.index(self.report_box)
        self.report_id = campaign_id
        ok = self.reload(clear=clear, force=True)
        if not ok:
            self.report_head.value = f'<div class="wb-refusal">{self.error.value}</div>'
            for box in (self.report_counts, self.flagged_table, self.users_table):
                box.value = ""
            self.charts.children = ()
        return ok

    def reload(self, *, clear: bool = False, force: bool = False) -> bool:
        """Re-read the open report; redraw only what changed (the Live toggle calls this)."""
        cid = self.report_id
        if cid is None:
            return False
        store, actor = self.service.store, self.service.actor
        with self._lock:
            got = self.act(lambda: (reports.campaign_report(store, cid, actor=actor), reports.user_rows(store, cid)),
                           clear=clear)
            if got is FAILED:
                return False
            report, users = got
            key = (report.status, tuple(report.counts.items()), report.timeline.height, report.flagged.height,
                   tuple(tuple(u.values()) for u in users))
            if not force and key == self._report_key:
                return True
            self._report_key, self.report = key, report
            self._draw(report, users)
        return True

    def _draw(self, r: reports.CampaignReport, users: list[dict[str, str]]) -> None:
        self.report_head.value = (
            f'<div class="wb-report" data-report="{r.campaign_id}" data-status="{esc(r.status)}">'
            f"<h3>Campaign {r.campaign_id}: {esc(r.name)}</h3>"
            f'<span class="wb-note">{esc(r.technique.label)} · {esc(r.status)} · updated '
            f"{datetime.now(UTC):%H:%M:%S} UTC</span></div>")
        counts = "".join(f'<tr><td>{esc(COUNT_LABELS.get(k, k))}</td><td data-count="{esc(k)}">{int(v):,}</td></tr>'
                         for k, v in r.counts.items())
        rates = "".join(f'<tr><td>{esc(k.replace("_", " ").capitalize())}</td>'
                        f'<td data-rate="{esc(k)}">{esc(_pct(v))}</td></tr>' for k, v in r.rates.items())
        timing = "".join(f'<tr><td>{esc(k.replace("_seconds", "").replace("_", " ").capitalize())}</td>'
                         f'<td data-timing="{esc(k)}">{esc(_span(v))}</td></tr>' for k, v in r.timing.items())
        self.report_counts.value = (
            '<div style="display:flex; gap:24px; flex-wrap:wrap">'
            f'<table class="wb-table wb-sim-kpi wb-counts" style="width:auto">{counts}</table>'
            f'<table class="wb-table wb-sim-kpi wb-rates" style="width:auto">{rates}{timing}</table></div>')
        images: list[w.Widget] = []
        if not r.timeline.is_empty():
            images.append(_svg(timeline_chart(r.timeline)))
        if not r.by_department.is_empty():
            images.append(_svg(department_chart(r.by_department)))
        self.charts.children = images or (w.HTML('<div class="wb-empty">No counted events yet.</div>'),)
        self.flagged_table.value = '<div class="wb-scroll">' + _table(
            ["Time (UTC)", "User", "Kind", "Source", "IP", "User agent", "Reasons"],
            [[_when(x["at"]), x["user"], x["kind"], x["source"], x["ip"], x["user_agent"], x["reasons"]]
             for x in r.flagged.iter_rows(named=True)],
            attrs=['data-flagged="1"'] * r.flagged.height) + "</div>"
        shown = users[:USER_ROWS]
        more = (f'<div class="wb-note">first {USER_ROWS:,} of {len(users):,} users shown; Export CSV has them all'
                "</div>" if len(users) > USER_ROWS else "")
        self.users_table.value = more + '<div class="wb-scroll">' + _table(
            [c.replace("_TimeStamp", "").replace("_", " ") for c in USER_COLUMNS],
            [[u.get(c, "") for c in USER_COLUMNS] for u in shown],
            attrs=[f'data-user="{esc(u["UserMail"])}"' for u in shown]) + "</div>"

    def set_live(self, on: bool) -> None:
        """Refresh the open report every few seconds while *on* (a daemon thread; off stops it)."""
        self._stop_live()
        if not on:
            return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.live_seconds):
                try:
                    ok = self.reload()
                except Exception as exc:  # noqa: BLE001 - keep the kernel alive; say what happened
                    self.show_error(WorkbenchError(f"live refresh stopped: {exc}"))
                    ok = False
                if not ok and not stop.is_set():  # a refusal or a failure: stop rather than repeat it
                    self.live.value = False
                    return
        self._live_stop = stop
        self._live_thread = threading.Thread(target=loop, name="simulator-live", daemon=True)
        self._live_thread.start()

    def _stop_live(self) -> None:
        if self._live_stop is not None:
            self._live_stop.set()
        if self._live_thread is not None and self._live_thread is not threading.current_thread():
            self._live_thread.join(timeout=self.live_seconds + 5)
        self._live_stop = self._live_thread = None

    def close(self) -> None:
        self._stop_live()
        super().close()

    # ------------------------------------------------------------------ export

    def export(self) -> Path | None:
        """Write the open campaign's per-user CSV into the reports folder and offer it for download."""
        cid = self.report_id
        if cid is None:
            self.show_error(InputError("open a campaign's report first"))
            return None
        folder = self.export_dir or Path.cwd()
        path = folder / f"simulation-{cid}-users-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"

        def write() -> int:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WorkbenchError(f"cannot create {folder}: {exc.strerror or exc}; "
                                     "check the reports folder") from None
            return reports.export_users_csv(self.service.store, cid, path, actor=self.service.actor)
        rows = self.act(write)
        if rows is FAILED:
            return None
        data = base64.b64encode(path.read_bytes()).decode()
        self.download.value = (f'<span class="wb-note">Saved {rows:,} users to {esc(path)} · <a download="'
                               f'{esc(path.name)}" href="data:text/csv;base64,{data}">download</a></span>')
        return path


__all__ = ["SimulatorPanel", "timeline_chart", "department_chart", "department_trend_chart", "SIMULATOR"]
