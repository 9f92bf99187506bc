"""The threat intelligence app (mdo-reference §6): security trends and campaigns, noteworthy
threats seen here, tracked queries, and the indicator store (search, import + retro-hunt).

    from workbench.ui.intel import ThreatIntelPanel
    ThreatIntelPanel.for_tenant()      # WORKBENCH_HOME / WORKBENCH_TENANT

Widgets only: data comes from :mod:`workbench.intel` (store, imports, retrohunt, trackers,
trends); their one-line errors (a missing role, a bad file) show in the error line. Untrusted
text reaches HTML only through :mod:`workbench.ui.render` (via :mod:`workbench.ui.intel_widgets`).
Everyone who can open the app sees every tab; importing needs the alert policy configuration
permission (the Import controls are disabled, with the reason as tooltip, otherwise).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.errors import InputError, WorkbenchError
from workbench.intel import imports, retrohunt, trackers, trends
from workbench.intel import store as intel_store
from workbench.intel.model import IndicatorType
from workbench.ui import intel_widgets as iw
from workbench.ui.panel import FAILED, ServicePanel
from workbench.ui.render import STYLE, esc, pre

SEARCH_LIMIT = 500
OVERVIEW_CAMPAIGNS = 5
MAX_UPLOAD = 50 * 1024 * 1024


class _Broken(WorkbenchError):
    """An unexpected service failure, shown as one line instead of a traceback."""


class ThreatIntelPanel(ServicePanel):
    """Tabs Overview, Noteworthy threats, Trackers, Indicators and Campaigns over one tenant's
    indicator store (*store*) and lake, for *actor*. *now* fixes the clock (tests, reports);
    *explorer* is the Explorer app's address the links open (default: next to this app)."""

    def __init__(self, store: Any, lake: Any, actor: str, *, now: datetime | None = None,
                 explorer: str = iw.EXPLORER) -> None:
        super().__init__(store)
        from workbench import rbac

        self.store, self.lake, self.actor, self.fixed_now, self.explorer = store, lake, actor, now, explorer
        self.can_import = rbac.has(store, actor, rbac.Permission.ALERT_POLICY_CONFIGURATION)
        self.statuses: list[trackers.TrackerStatus] | None = None
        self.hunt: retrohunt.RetroHuntRun | None = None
        self._build_overview()
        self._build_threats()
        self._build_trackers()
        self._build_indicators()
        self._build_campaigns()
        self.tabs = w.Tab(children=[self.overview_box, self.threats_box, self.trackers_box, self.indicators_box,
                                    self.campaigns_box])
        for i, title in enumerate(("Overview", "Noteworthy threats", "Trackers", "Indicators", "Campaigns")):
            self.tabs.set_title(i, title)
        self.children = [w.HTML(STYLE + iw.CSS + "<h2>Threat intelligence</h2>"), self.error, self.note, self.tabs]
        if not self.can_import:
            why = f"{actor} lacks the alert policy configuration permission needed to import indicators"
            for control in (self.upload, self.import_button):
                control.disabled, control.tooltip = True, why
            self.import_result.value = f'<span class="wb-note wb-import-denied">{esc(why)}</span>'
        self.refresh()

    @classmethod
    def for_tenant(cls, tenant: Any = None, **kwargs: Any) -> ThreatIntelPanel:
        """The app for a tenant (its store and lake) and the acting user."""
        from workbench.identity import acting_user
        from workbench.lake import Lake
        from workbench.store import open_store
        from workbench.tenant import open_tenant

        t = tenant if hasattr(tenant, "lake_dir") else open_tenant(tenant)
        base = os.environ.get("WORKBENCH_APPS_URL", "").rstrip("/")
        if base:  # e.g. JupyterLab next to a running `workbench serve`
            kwargs.setdefault("explorer", f"{base}/voila/render/{iw.EXPLORER}")
        return cls(open_store(t), Lake.for_tenant(t), acting_user(), **kwargs)

    @property
    def now(self) -> datetime:
        return self.fixed_now or datetime.now(UTC)

    def call(self, fn: Callable[[], Any], done: str = "", *, clear: bool = False) -> Any:
        """As :meth:`ServicePanel.act`, but an unexpected failure is one escaped line too."""
        def guarded() -> Any:
            try:
                return fn()
            except WorkbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - a panel shows one line, never a traceback
                raise _Broken(f"{type(exc).__name__}: {exc}") from exc
        return self.act(guarded, done, clear=clear)

    def refresh(self) -> None:
        """Re-read every tab."""
        self.error.value = ""
        self.refresh_overview()
        self.refresh_threats()
        self.refresh_trackers()
        self.search()

    # ------------------------------------------------------------------ overview + campaigns

    def _build_overview(self) -> None:
        self.overview_head = w.HTML()
        self.trends_box = w.Box()
        self.overview_campaigns = w.Box()
        self.overview_button = w.Button(description="Refresh", icon="refresh")
        self.overview_button.on_click(lambda _: self.refresh_overview(clear=True))
        self.overview_box = w.VBox([self.overview_button, self.overview_head, w.HTML("<h3>Security trends</h3>"),
                                    self.trends_box, w.HTML("<h3>Campaigns (last 30 days)</h3>"),
                                    self.overview_campaigns])

    def _build_campaigns(self) -> None:
        self.campaigns_list = w.Box()
        self.campaigns_box = w.VBox([w.HTML('<div class="wb-note">Malicious mail grouped by shared sender '
                                            "infrastructure, payload and content (last 30 days).</div>"),
                                    self.campaigns_list])

    def refresh_overview(self, *, clear: bool = False) -> bool:
        """Family trends (this week against the prior one) and campaigns of the last 30 days."""
        now = self.now
        got = self.call(lambda: (trends.family_trends(self.lake, now=now), trends.campaigns(self.lake, now=now)),
                        clear=clear)
        if got is FAILED:
            refusal = w.HTML(f'<div class="wb-refusal">{self.error.value}</div>')
            self.trends_box.children = self.overview_campaigns.children = self.campaigns_list.children = (refusal,)
            self.trends = self.campaigns = None
            return False
        self.trends, self.campaigns = got
        self.overview_head.value = f'<span class="wb-note">as of {now:%Y-%m-%d %H:%M} UTC</span>'
        self.trends_box.children = (iw.security_trends(self.trends),)
        self.overview_campaigns.children = (iw.campaign_list(self.campaigns, self.explorer, limit=OVERVIEW_CAMPAIGNS),)
        self.campaigns_list.children = (iw.campaign_list(self.campaigns, self.explorer),)
        return True

    # ------------------------------------------------------------------ noteworthy threats

    def _build_threats(self) -> None:
        self.threats_head = w.HTML()
        self.cards = w.VBox()
        self.threats_button = w.Button(description="Refresh", icon="refresh")
        self.threats_button.on_click(lambda _: self.refresh_threats(clear=True))
        self.threats_box = w.VBox([self.threats_button, self.threats_head, self.cards])

    def refresh_threats(self, *, clear: bool = False) -> bool:
        """A card for every threat note, with where it was seen here (the whole lake)."""
        now = self.now
        got = self.call(lambda: [(n, trends.seen_here(self.lake, n, now=now)) for n in imports.notes(self.store)],
                        clear=clear)
        if got is FAILED:
            self.threats_head.value = f'<div class="wb-refusal">{self.error.value}</div>'
            self.cards.children = ()
            return False
        seen = sum(s.seen for _, s in got)
        self.threats_head.value = (f'<span class="wb-note">{len(got):,} threat note(s); {seen:,} seen here</span>'
                                   if got else '<div class="wb-empty">No threat notes yet: import a STIX bundle '
                                   "with reports, intrusion sets, malware or campaigns.</div>")
        ordered = sorted(got, key=lambda p: (not p[1].seen, p[0].name.lower()))
        self.cards.children = tuple(iw.threat_card(n, s) for n, s in ordered)
        return True

    # ------------------------------------------------------------------ trackers

    def _build_trackers(self) -> None:
        self.trackers_table = w.HTML()
        self.run_button = w.Button(description="Run now", icon="play",
                                   tooltip="count every tracked query for today and the days not yet counted")
        self.run_button.on_click(lambda _: self.run_trackers())
        self.trackers_box = w.VBox([self.run_button, self.trackers_table])

    def refresh_trackers(self, *, clear: bool = False) -> bool:
        """The last run's statuses, or the stored trackers before a run."""
        if self.statuses is not None:
            self.trackers_table.value = iw.tracked_queries_html(self.statuses, self.explorer)
            return True
        got = self.call(lambda: trackers.list_trackers(self.store), clear=clear)
        if got is FAILED:
            self.trackers_table.value = f'<div class="wb-refusal">{self.error.value}</div>'
            return False
        self.trackers_table.value = ('<div class="wb-note">Not counted in this session yet: Run now counts today, '
                                     "the prior day and the trend.</div>" + iw.trackers_list_html(got, self.explorer))
        return True

    def run_trackers(self) -> list[trackers.TrackerStatus] | None:
        """Count every tracked query now (alerts at thresholds, once per tracker and day)."""
        got = self.call(lambda: trackers.run(self.store, self.lake, now=self.now), clear=True)
        if got is FAILED:
            return None
        self.statuses = got
        noun = "query" if len(got) == 1 else "queries"
        self.note.value = f'<span class="wb-note">{len(got):,} tracked {noun} counted</span>'
        self.refresh_trackers()
        return got

    # ------------------------------------------------------------------ indicators

    def _build_indicators(self) -> None:
        self.search_text = w.Text(placeholder="value, family or description contains…", description="Search",
                                  continuous_update=False, layout=w.Layout(width="50%"))
        self.type_filter = w.Dropdown(options=[("All types", "")] + [(k.value, k.value) for k in IndicatorType],
                                      value="", description="Type")
        self.search_button = w.Button(description="Search", icon="search")
        self.search_button.on_click(lambda _: self.search(clear=True))
        self.search_text.observe(lambda _: self.search(clear=True), names="value")
        self.type_filter.observe(lambda _: self.search(clear=True), names="value")
        self.counts = w.HTML()
        self.indicator_table = w.HTML()
        self.upload = w.FileUpload(accept=".json,.txt,.csv", multiple=False, description="Feed file")
        self.import_button = w.Button(description="Import", icon="upload", button_style="warning",
                                      tooltip="import the chosen file (STIX, MISP, warning list, text or CSV) "
                                              "and retro-hunt what it adds")
        self.import_button.on_click(lambda _: self.import_upload())
        self.import_result = w.HTML()
        self.indicators_box = w.VBox([
            w.HBox([self.search_text, self.type_filter, self.search_button]), self.counts,
            self.indicator_table,
            w.HTML("<h4>Import a feed</h4>"), w.HBox([self.upload, self.import_button]), self.import_result])

    def search(self, *, clear: bool = False) -> list[Any] | None:
        """Indicators whose value, family or description contains the search text, of the chosen type."""
        text, kind = self.search_text.value.strip(), self.type_filter.value
        got = self.call(lambda: (intel_store.search(self.store, text=text, types=[kind] if kind else (),
                                                    limit=SEARCH_LIMIT + 1), intel_store.counts(self.store)),
                        clear=clear)
        if got is FAILED:
            self.indicator_table.value = f'<div class="wb-refusal">{self.error.value}</div>'
            return None
        found, counts = got
        shown = found[:SEARCH_LIMIT]
        self.counts.value = iw.counts_html(counts)
        self.indicator_table.value = ('<div class="wb-scroll">' + iw.indicators_html(
            shown, total=len(found)) + "</div>")
        return shown

    def _uploaded(self) -> tuple[str, bytes]:
        files = self.upload.value
        if not files:
            raise InputError("choose a feed file first (STIX or MISP JSON, a warning list, text or CSV)")
        item = files[0]
        name = Path(str(item.get("name") or "")).name.strip()
        name = name if name not in ("", ".", "..") else "feed"
        content = bytes(item.get("content") or b"")
        if len(content) > MAX_UPLOAD:
            raise InputError(f"{name} is larger than {MAX_UPLOAD // (1024 * 1024)} MB; import it with "
                             "`workbench intel import`")
        return name, content

    def import_upload(self) -> tuple[imports.ImportResult, retrohunt.RetroHuntRun] | None:
        """Import the uploaded file (a temporary copy under its own name), then retro-hunt what it added."""
        self.import_result.value = ""

        def run() -> tuple[imports.ImportResult, retrohunt.RetroHuntRun]:
            name, content = self._uploaded()
            with tempfile.TemporaryDirectory(prefix="workbench-intel-") as folder:
                path = Path(folder) / name
                path.write_bytes(content)
                result = imports.import_file(self.store, path, actor=self.actor)
            return result, retrohunt.retro_hunt(self.store, self.lake)
        got = self.call(run, clear=True)
        if got is FAILED:
            return None
        result, self.hunt = got
        self.import_result.value = pre(result.render() + "\n" + self.hunt.render())
        self.note.value = f'<span class="wb-note">{esc(result.render())}</span>'
        self.upload.value = ()
        self.search()
        self.refresh_threats()
        return got


__all__ = ["ThreatIntelPanel"]
