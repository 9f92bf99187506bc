"""Altair charts of the dashboard tiles (specs only: the panel renders them to SVG, the
report to PNG and PDF, both offline with vl-convert).

Charts get the tiles' already aggregated frames (tens to hundreds of rows), never mail.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from workbench.dashboard.data import CLASSES
from workbench.dashboard.tiles import Dashboard

WIDTH = 420
HEIGHT = 160
CLASS_COLORS = {"Malware": "#8e1b1b", "Phish": "#d9480f", "Spam": "#f0ad4e", "Good mail": "#5b8def"}
STAGE_COLORS = {"Pre-delivery": "#2f9e44", "Post-delivery": "#f08c00", "Uncaught": "#c92a2a"}
_TIME_FORMAT = {"1h": "%d %b %H:%M", "1d": "%d %b", "1w": "%d %b %Y"}


def _time(d: Dashboard) -> alt.X:
    return alt.X("bucket:T", title=None, axis=alt.Axis(format=_TIME_FORMAT[d.bucket], labelAngle=0))


def _empty(title: str, text: str = "no data in this window") -> alt.Chart:
    return (alt.Chart(pl.DataFrame({"text": [text]})).mark_text(color="#666", size=13)
            .encode(text="text:N").properties(title=title, width=WIDTH, height=HEIGHT))


def protection_status(d: Dashboard) -> alt.Chart:
    frame = d.tile("protection_status").frames["by_technology"]
    if not frame.height:
        return _empty("Phish and malware by detection technology")
    return (alt.Chart(frame).mark_bar()
            .encode(_time(d), alt.Y("messages:Q", title="messages", stack=True),
                    alt.Color("technology:N", title="Detection technology", legend=alt.Legend(orient="bottom", columns=3)),
                    tooltip=["bucket:T", "technology:N", "messages:Q"])
            .properties(title="Phish and malware by detection technology", width=WIDTH, height=HEIGHT))


def delivery_status(d: Dashboard) -> alt.Chart:
    frame = d.tile("protection_status").frames["by_delivery"]
    if not frame.height:
        return _empty("Phish and malware: delivered vs blocked")
    return (alt.Chart(frame).mark_bar()
            .encode(_time(d), alt.Y("messages:Q", title="messages"),
                    alt.Color("status:N", title=None, scale=alt.Scale(domain=["Blocked", "Delivered"],
                                                                    range=["#2f9e44", "#c92a2a"]),
                              legend=alt.Legend(orient="bottom")),
                    tooltip=["bucket:T", "status:N", "messages:Q"])
            .properties(title="Phish and malware: delivered vs blocked", width=WIDTH, height=HEIGHT))


def trends(d: Dashboard) -> alt.Chart:
    frame = d.tile("trends").frames["by_class"]
    if not frame["messages"].sum():  # zero-filled buckets only
        return _empty("Mail by verdict")
    return (alt.Chart(frame).mark_line(point=d.bucket != "1h")
            .encode(_time(d), alt.Y("messages:Q", title="messages", scale=alt.Scale(type="symlog"),
                          axis=alt.Axis(values=[0, 10, 100, 1_000, 10_000, 100_000, 1_000_000], format=",d")),
                    alt.Color("class:N", title=None, scale=alt.Scale(domain=list(CLASSES),
                                                                   range=[CLASS_COLORS[c] for c in CLASSES]),
                              legend=alt.Legend(orient="bottom")),
                    tooltip=["bucket:T", "class:N", "messages:Q"])
            .properties(title="Mail by verdict (log scale)", width=WIDTH, height=HEIGHT))


def malware_trend(d: Dashboard) -> alt.Chart:
    frame = d.tile("malware").frames["trend"]
    if not frame.height:
        return _empty("Malware trend")
    return (alt.Chart(frame).mark_bar(color=CLASS_COLORS["Malware"])
            .encode(_time(d), alt.Y("messages:Q", title="messages"), tooltip=["bucket:T", "messages:Q"])
            .properties(title="Malware trend", width=WIDTH, height=HEIGHT))


def malware_families(d: Dashboard) -> alt.Chart:
    frame = d.tile("malware").frames["families"]
    if not frame.height:
        return _empty("Top malware families")
    return (alt.Chart(frame).mark_bar(color=CLASS_COLORS["Malware"])
            .encode(alt.Y("family:N", title=None, sort="-x", axis=alt.Axis(labelLimit=220)),
                    alt.X("messages:Q", title="messages"), tooltip=["family:N", "messages:Q"])
            .properties(title="Top malware families", width=WIDTH - 120, height=alt.Step(22)))


def efficacy(d: Dashboard) -> alt.Chart:
    frame = d.tile("efficacy").frames["shares"]
    if not int(frame["messages"].sum()):
        return _empty("Efficacy", "no malicious inbound mail in this window")
    stages = list(STAGE_COLORS)
    return (alt.Chart(frame).mark_bar()
            .encode(alt.X("share:Q", title="% of malicious inbound mail", scale=alt.Scale(domain=[0, 100]),
                          stack=True),
                    alt.Color("stage:N", title=None, sort=stages,
                              scale=alt.Scale(domain=stages, range=[STAGE_COLORS[s] for s in stages]),
                              legend=alt.Legend(orient="bottom")),
                    alt.Order("order:Q"), tooltip=["stage:N", "messages:Q", "share:Q"])
            .transform_calculate(order="indexof(['Pre-delivery','Post-delivery','Uncaught'], datum.stage)")
            .properties(title="Efficacy", width=WIDTH, height=40))


CHARTS = {
    "protection_status": (protection_status, delivery_status),
    "trends": (trends,),
    "malware": (malware_trend, malware_families),
    "efficacy": (efficacy,),
}


def vl_version() -> str:
    """The Vega-Lite version of altair's schema, as vl-convert names it ("6.4")."""
    return ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


def svg(chart: alt.TopLevelMixin) -> str:
    """The chart as SVG text, rendered offline (vl-convert may fetch nothing)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_json(), vl_version=vl_version(), allowed_base_urls=[])


__all__ = ["CHARTS", "svg", "vl_version", "protection_status", "delivery_status", "trends", "malware_trend", "malware_families",
           "efficacy"]
