"""Reusable threat-intelligence widgets: security trends with sparklines, threat family cards,
tracked queries and campaigns. Each takes what the services already computed
(:mod:`workbench.intel.trends`, :mod:`workbench.intel.trackers`) and returns an ``ipywidgets.HTML``;
the ``*_html`` functions return the markup itself (for embedding in a larger page).

Every untrusted value (family names, note text, tracker names, subjects, senders) goes through
:mod:`workbench.ui.render`; sparklines are tiny inline SVG polylines made of numbers only (no
script, no external reference); Explorer links are ``Query.to_link(explorer)``.

>>> "<polyline" in sparkline_svg([0, 3, 1]) and "script" not in sparkline_svg([0, 3, 1])
True
>>> "&lt;b&gt;" in threat_card_html(ThreatNote("x", "<b>", "f"))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import polars as pl

from workbench.explorer.query import Query
from workbench.intel.model import Indicator, IndicatorType, ThreatNote
from workbench.ui.render import defang, esc, rows_table
from workbench.ui.render import when as _when

EXPLORER = "Explorer.ipynb"  # relative: next to the app in Voila (voila/render/Explorer.ipynb)
DESCRIPTION_LIMIT = 600
CSS = """<style>
.wb-intel h4 {margin: 8px 0 4px 0;}
table.wb-intel th, .wb-explore {white-space: nowrap;}
.wb-spark {vertical-align: middle;}
.wb-card {border: 1px solid #dde; border-radius: 6px; padding: 8px 10px; margin: 0 0 8px 0; background: #fff;
  font-size: 13px;}
.wb-card h3 {font-size: 15px; margin: 0 0 4px 0; overflow-wrap: anywhere;}
.wb-card ul {margin: 2px 0 4px 18px; padding: 0;}
.wb-card .wb-desc {margin: 4px 0; overflow-wrap: anywhere;}
.wb-seen {font-weight: 600;} .wb-seen[data-seen="1"] {color: #c92a2a;} .wb-seen[data-seen="0"] {color: #2b8a3e;}
.wb-trend-rising, .wb-trend-new {color: #c92a2a; font-weight: 600;}
.wb-trend-declining {color: #2b8a3e; font-weight: 600;}
</style>"""


# ------------------------------------------------------------------ small pieces


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, attrs: Sequence[str] = (),
           empty: str = "None.") -> str:
    """A table of cells that are **already** safe HTML (callers escape); *attrs* are safe row attributes."""
    return rows_table(head, rows, raw=True, attrs=attrs, css="wb-intel", empty=empty)


def explore_link(query: Query | Mapping[str, Any] | str | None, explorer: str = EXPLORER,
                 label: str = "View in Explorer") -> str:
    """An escaped ``<a>`` opening *query* (a Query, its JSON or JSON text) in the Explorer app."""
    if query is None or query == "":
        return ""
    q = query if isinstance(query, Query) else Query.from_json(query)
    return (f'<a class="wb-explore" href="{esc(q.to_link(explorer))}" target="_blank" rel="noopener">'
            f"{esc(label)}</a>")


def sparkline_svg(values: Sequence[int | float], *, width: int = 112, height: int = 22) -> str:
    """An inline SVG polyline of *values* (oldest first); only numbers reach the markup."""
    nums = [max(float(v or 0), 0.0) for v in values] or [0.0]
    top = max(nums) or 1.0
    step = (width - 2) / max(len(nums) - 1, 1)
    points = " ".join(f"{1 + i * step:.1f},{height - 1 - v / top * (height - 2):.1f}" for i, v in enumerate(nums))
    label = "daily messages: " + ", ".join(str(int(v)) for v in nums)
    return (f'<svg class="wb-spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>'
            f'<polyline fill="none" stroke="#1b4f9c" stroke-width="1.5" points="{points}"/></svg>')


def _html(markup: str) -> w.HTML:
    return w.HTML(CSS + markup, layout=w.Layout(width="100%"))


# ------------------------------------------------------------------ security trends


def _trend_rows(frame: pl.DataFrame) -> tuple[list[list[str]], list[str]]:
    rows, attrs = [], []
    for r in frame.iter_rows(named=True):
        change = "new" if r["change"] is None else f"{r['change']:+.0%}"
        rows.append([esc(r["family"], 120), esc(r["type"]), f"{int(r['this_week']):,}", f"{int(r['prior_week']):,}",
                     f'<span class="wb-trend-{esc(r["trend"])}">{esc(change)}</span>',
                     sparkline_svg(list(r["daily"] or []))])
        attrs.append(f'data-family="{esc(r["family"], 120)}" data-trend="{esc(r["trend"])}"')
    return rows, attrs


def security_trends_html(trends: pl.DataFrame, *, limit: int = 10) -> str:
    """Rising (and new) and declining families of :func:`~workbench.intel.trends.family_trends`,
    each with its 14-day sparkline."""
    head = ["Family", "Type", "This week", "Prior week", "Change", "Last 14 days"]
    parts = ['<div class="wb-intel wb-trends">']
    for title, labels, empty in (("Rising threat families", ("new", "rising"), "No family is rising."),
                                 ("Declining threat families", ("declining",), "No family is declining.")):
        part = trends.filter(pl.col("trend").is_in(list(labels))).head(limit) if trends.height else trends
        rows, attrs = _trend_rows(part)
        parts.append(f"<h4>{esc(title)}</h4>" + _table(head, rows, attrs=attrs, empty=empty))
    return "".join(parts) + "</div>"


def security_trends(trends: pl.DataFrame, *, limit: int = 10) -> w.HTML:
    """The security-trends widget (rising and declining families with sparklines)."""
    return _html(security_trends_html(trends, limit=limit))


# ------------------------------------------------------------------ threat family card


def _items(title: str, values: Sequence[str]) -> str:
    if not values:
        return ""
    return f"<div><b>{esc(title)}</b><ul>" + "".join(f"<li>{esc(v, 200)}</li>" for v in values) + "</ul></div>"


def threat_card_html(note: ThreatNote, sighting: Any = None) -> str:
    """One noteworthy threat: name, family, description (escaped, truncated), techniques,
    protections and where it was seen here (a :class:`~workbench.intel.trends.Sighting`)."""
    meta = " · ".join(x for x in (f"family {esc(note.family, 120)}" if note.family else "",
                                   f"source {esc(note.source, 120)}" if note.source else "",
                                   f"TLP:{esc(note.tlp.value.upper())}",
                                   f"published {_when(note.published)}" if note.published else "") if x)
    seen = ""
    if sighting is not None:
        how = f" (matched by {', '.join(sighting.matched_by)})" if sighting.matched_by else ""
        seen = (f'<div class="wb-seen" data-seen="{int(sighting.seen)}">{esc(sighting.render() + how)}</div>')
    desc = (f'<div class="wb-desc">{esc(note.description, DESCRIPTION_LIMIT)}</div>' if note.description
            else '<div class="wb-desc wb-empty">No description.</div>')
    return (f'<div class="wb-card" data-note="{esc(note.id, 200)}"><h3>{esc(note.name, 200)}</h3>'
            f'<div class="wb-note">{meta}</div>{seen}{desc}'
            f'{_items("Techniques", note.techniques)}{_items("Recommended protections", note.protections)}'
            f'<div class="wb-note">{len(note.indicators):,} indicator(s)</div></div>')


def threat_card(note: ThreatNote, sighting: Any = None) -> w.HTML:
    """The threat family card widget."""
    return _html(threat_card_html(note, sighting))


# ------------------------------------------------------------------ tracked queries


def tracked_queries_html(statuses: Sequence[Any], explorer: str = EXPLORER) -> str:
    """:class:`~workbench.intel.trackers.TrackerStatus` rows: today, prior day, prior-week average,
    trend, threshold (crossed?) and an Explore link."""
    rows, attrs = [], []
    for s in statuses:
        ratio = "" if s.trend.ratio is None else f" (×{s.trend.ratio:.2f})"
        limit = "" if s.threshold is None else f"{s.threshold:,}" + (" · crossed" if s.crossed else "")
        rows.append([esc(s.name, 120), f"{s.today:,}", f"{s.prior_day:,}", f"{s.prior_week_average:,.1f}",
                     f'<span class="wb-trend-{esc(s.trend.label)}">{esc(s.trend.label + ratio)}</span>',
                     esc(limit), esc(_when(s.last_run)), explore_link(s.explore, explorer, "Explore")])
        attrs.append(f'data-tracker="{esc(s.name, 120)}" data-trend="{esc(s.trend.label)}"')
    return _table(["Tracked query", "Today", "Prior day", "Prior week (avg/day)", "Trend", "Threshold",
                   "Last run (UTC)", "Explore"], rows, attrs=attrs, empty="No tracked queries.")


def trackers_list_html(trackers: Sequence[Any], explorer: str = EXPLORER) -> str:
    """Trackers as stored (before a run): name, view, threshold, who, last run and an Explore link."""
    rows = [[esc(k.name, 120), esc(k.query.view), esc("" if k.threshold is None else f"{k.threshold:,}"),
             esc(k.created_by), esc(_when(k.last_run) or "never"), explore_link(k.query, explorer, "Explore")]
            for k in trackers]
    attrs = [f'data-tracker="{esc(k.name, 120)}"' for k in trackers]
    return _table(["Tracked query", "View", "Threshold", "Created by", "Last run (UTC)", "Explore"], rows,
                  attrs=attrs, empty="No tracked queries.")


def tracked_queries(statuses: Sequence[Any], explorer: str = EXPLORER) -> w.HTML:
    """The tracked-queries widget."""
    return _html(tracked_queries_html(statuses, explorer))


# ------------------------------------------------------------------ campaigns


def campaigns_html(frame: pl.DataFrame, explorer: str = EXPLORER, *, limit: int | None = None) -> str:
    """Rows of :func:`~workbench.intel.trends.campaigns`: name, type, messages, recipients, inboxed,
    clicked, click rate, senders, last seen and a "View in Explorer" link."""
    shown = frame if limit is None else frame.head(limit)
    rows, attrs = [], []
    for r in shown.iter_rows(named=True):
        senders = ", ".join(r["senders"] or [])
        rows.append([esc(r["name"], 120), esc(r["type"]), f"{r['messages']:,}", f"{r['recipients']:,}",
                     f"{r['inboxed']:,}", f"{r['clicked']:,}", esc(_pct(r["click_rate"])), esc(senders, 160),
                     esc(_when(r["last_seen"])), explore_link(r["query"], explorer)])
        attrs.append(f'data-campaign="{esc(r["campaign_id"])}"')
    more = (f'<div class="wb-note">{shown.height:,} of {frame.height:,} campaigns shown</div>'
            if shown.height < frame.height else "")
    return more + _table(["Campaign", "Type", "Messages", "Recipients", "Inboxed", "Clicked", "Click rate",
                          "Sender domains", "Last seen (UTC)", "Explorer"], rows, attrs=attrs,
                         empty="No campaigns in the window.")


def campaign_list(frame: pl.DataFrame, explorer: str = EXPLORER, *, limit: int | None = None) -> w.HTML:
    """The campaign-list widget."""
    return _html(campaigns_html(frame, explorer, limit=limit))


# ------------------------------------------------------------------ indicators


_DEFANGED = frozenset({IndicatorType.URL, IndicatorType.DOMAIN, IndicatorType.SENDER_DOMAIN})


def indicator_value(ind: Indicator) -> str:
    """The indicator's value as safe HTML (URLs and domains defanged: nothing to click)."""
    value = defang(ind.value) if ind.type in _DEFANGED else ind.value
    return esc(value, 300)


def indicators_html(indicators: Sequence[Indicator], *, total: int | None = None) -> str:
    """Indicators: type, value (defanged), source, confidence, TLP, family, description, expires."""
    rows = [[esc(i.type.value), indicator_value(i), esc(i.source, 120), f"{i.confidence}",
             esc(i.tlp.value.upper()), esc(i.family, 120), esc(i.description, 300), esc(_when(i.expires))]
            for i in indicators]
    attrs = [f'data-indicator="{esc(i.type.value)}"' + (' data-allow="1"' if i.allow else "") for i in indicators]
    more = (f'<div class="wb-note">first {len(indicators):,} shown; narrow the search</div>'
            if total is not None and total > len(indicators) else "")
    return more + _table(["Type", "Value", "Source", "Confidence", "TLP", "Family", "Description", "Expires (UTC)"],
                         rows, attrs=attrs, empty="No indicators match.")


def counts_html(counts: Mapping[str, int]) -> str:
    """How many indicators per type, one line."""
    if not counts:
        return '<span class="wb-empty">The indicator store is empty.</span>'
    return '<span class="wb-note">' + " · ".join(f"{esc(k)} {int(v):,}" for k, v in counts.items()) + "</span>"


__all__ = ["EXPLORER", "CSS", "explore_link", "sparkline_svg", "security_trends", "security_trends_html",
           "threat_card", "threat_card_html", "tracked_queries", "tracked_queries_html", "trackers_list_html",
           "campaign_list", "campaigns_html", "indicators_html", "indicator_value", "counts_html"]
