"""Altair charts of the panels. Data arrives aggregated (a few hundred points at most);
charts carry two named selections the panels listen to: ``legend`` (a point selection bound
to the legend) and ``brush`` (an interval on the time axis)."""

from __future__ import annotations

import altair as alt
import polars as pl

_BUCKET_LABEL = {"1h": "hour", "1d": "day", "1w": "week"}


def pivot_chart(histogram: pl.DataFrame, series: tuple[str, ...], *, title: str, bucket: str) -> alt.Chart:
    """Stacked volume over time by pivot value; legend order = *series* (largest first, Other last)."""
    legend = alt.selection_point(name="legend", fields=["series"], bind="legend")
    brush = alt.selection_interval(name="brush", encodings=["x"])
    data = histogram.with_columns(pl.col("count").cast(pl.Int64))
    unit = _BUCKET_LABEL.get(bucket, bucket)
    return (
        alt.Chart(data, title=f"Messages per {unit} by {title}")
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("count:Q", title="messages", stack="zero"),
            color=alt.Color("series:N", title=title, sort=list(series), scale=alt.Scale(domain=list(series))),
            opacity=alt.condition(legend, alt.value(1.0), alt.value(0.25)),
            tooltip=[alt.Tooltip("bucket:T", title=unit), alt.Tooltip("series:N", title=title),
                     alt.Tooltip("count:Q", title="messages")],
        )
        .add_params(legend, brush)
        .properties(width=900, height=220)
    )


__all__ = ["pivot_chart"]
