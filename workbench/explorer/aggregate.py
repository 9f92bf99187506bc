"""What the Explorer shows for a query: the pivot histogram, the counts, a page of rows and
the top panels. Everything is aggregated in polars; only small frames leave this module.

A refresh (:func:`snapshot`) runs the histogram, the counts and the first page as one
``collect_all``, so the lake is scanned once for all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from workbench import schema
from workbench.errors import InputError
from workbench.explorer.compile import LINKS, compile_query
from workbench.explorer.properties import Property, prop
from workbench.explorer.query import Query
from workbench.explorer.views import View, view
from workbench.lake import Lake

OTHER = "Other"
NONE_LABEL = "(none)"
TOP_SERIES = 8


def bucket_for(start: datetime, end: datetime | None) -> str:
    """Histogram bucket for a window: hours up to 3 days, days up to 120 days, then weeks."""
    span = (end or datetime.now(start.tzinfo)) - start
    if span <= timedelta(days=3):
        return "1h"
    return "1d" if span <= timedelta(days=120) else "1w"


def _span(bucket: str) -> timedelta:
    return {"1h": timedelta(hours=1), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}[bucket]


def _series(lake: Lake, v: View, p: Property, rows: pl.LazyFrame, start: datetime) -> pl.LazyFrame:
    """(Timestamp, series) per row of *rows* and pivot value; multi-valued pivots give a row per value."""
    if p.table == v.table:
        frame = rows.select("Timestamp", p.value().alias("series"))
    else:
        link = LINKS[(v.table, p.table)]
        on = [name for name, _ in link.keys]
        other = lake.scan(p.table, start if link.windowed else None, None)
        values = other.select([expr.alias(name) for name, expr in link.keys] + [p.value().alias("series")]).unique()
        frame = rows.select("Timestamp", *on).join(values, on=on, how="left").select("Timestamp", "series")
    if p.multi:
        frame = frame.explode("series")
    return frame.with_columns(pl.col("series").cast(pl.String).fill_null(NONE_LABEL))


@dataclass(frozen=True)
class Snapshot:
    """One refresh of the Explorer: what the chart, the counters and the grid show."""

    query: Query
    pivot: str  # property key
    bucket: str
    histogram: pl.DataFrame  # bucket (datetime), series (str), count (u32); top series + Other
    series: tuple[str, ...]  # legend order: by volume, Other last
    rows: int  # matching rows (message × recipient for the email views)
    messages: int | None  # distinct NetworkMessageId; None above MESSAGES_UP_TO rows (not counted)
    page: pl.DataFrame  # the first rows by the chosen sort
    start: datetime
    end: datetime | None


# Distinct messages are counted (64-bit hashes of NetworkMessageId) up to this many rows;
# above it the count would cost more than the rest of a refresh together.
MESSAGES_UP_TO = 2_000_000


def snapshot(lake: Lake, q: Query, *, pivot: str | None = None, columns: Sequence[str] | None = None,
             sort: str = "Timestamp", descending: bool = True, page_size: int = 100, top: int = TOP_SERIES,
             now: datetime | None = None) -> Snapshot:
    """The histogram by *pivot* (default: the view's), the counts and the first page.

    Two passes. The first reads only the filter, pivot and sort columns: the histogram, which
    also gives the rows per time bucket (so the count, and for a sort by time the newest
    buckets that hold the first page); for another sort column, the value the page starts at.
    The second reads the grid's columns of just those rows, which partition pruning and
    parquet statistics find without reading the rest, and counts distinct messages when
    there are few enough rows.
    """
    v = view(q.view)
    pivot_key = prop(pivot or v.pivots[0], v.table).key
    if pivot_key not in v.pivots:
        labels = ", ".join(prop(k, v.table).label for k in v.pivots)
        raise InputError(f"{v.label} cannot pivot on {pivot!r}; choose one of: {labels}")
    p = prop(pivot_key, v.table)
    grid = list(columns or v.columns)
    if sort not in grid:
        raise InputError(f"cannot sort by {sort!r}: it is not a shown column ({', '.join(grid)})")
    extra = p.columns if p.table == v.table else tuple(name for name, _ in LINKS[(v.table, p.table)].keys)
    by_time = sort == "Timestamp"
    rows, plan = compile_query(lake, q, columns=list(dict.fromkeys(["Timestamp", sort, *extra])), now=now)
    bucket = bucket_for(plan.start, plan.end)
    when = pl.col("Timestamp").dt.truncate(bucket).alias("bucket")
    hist = _series(lake, v, p, rows, plan.start).group_by(when, "series").len("count")
    one_per_row = p.table == v.table and not p.multi  # then the histogram also counts rows per bucket
    first = [hist] if one_per_row else [hist, rows.group_by(when).len("count")]
    if not by_time:
        edge = pl.col(sort).top_k(page_size).min() if descending else pl.col(sort).bottom_k(page_size).max()
        first.append(rows.select(pl.col(sort).count().alias("sortable"), edge.alias("edge")))
    done = pl.collect_all(first)
    hist_df = done[0]
    per_bucket = (hist_df if one_per_row else done[1]).group_by("bucket").agg(pl.col("count").sum()).sort("bucket")
    n = int(per_bucket["count"].sum())
    page_filter = None
    if by_time:  # the page lies in the newest (oldest) buckets holding page_size rows
        ordered = per_bucket.reverse() if descending else per_bucket
        reached = ordered.filter(pl.col("count").cum_sum() >= page_size)
        if reached.height:
            edge_bucket = reached["bucket"][0]
            page_filter = (pl.col("Timestamp") >= edge_bucket if descending
                           else pl.col("Timestamp") < edge_bucket + _span(bucket))
    else:
        sortable, edge_value = done[-1].row(0)
        if sortable >= page_size and edge_value is not None:  # else nulls fill the page: sort everything
            page_filter = pl.col(sort) >= edge_value if descending else pl.col(sort) <= edge_value

    grid_rows, _ = compile_query(lake, q, columns=list(dict.fromkeys([*grid, sort])), now=now)
    if page_filter is not None:
        grid_rows = grid_rows.filter(page_filter)
    second = [grid_rows.sort(sort, descending=descending, nulls_last=True).head(page_size).select(grid)]
    key = "NetworkMessageId" if "NetworkMessageId" in schema.table(v.table).schema else None
    if key and n <= MESSAGES_UP_TO:
        ids, _ = compile_query(lake, q, columns=[key], now=now)
        second.append(ids.select(pl.col(key).hash().n_unique().alias("messages")))
    results = pl.collect_all(second)
    messages = int(results[1]["messages"][0]) if len(results) > 1 else (None if key else n)
    hist_df, series = _top_series(hist_df, top)
    return Snapshot(q, pivot_key, bucket, hist_df, series, n, messages, results[0], plan.start, plan.end)


def _top_series(hist: pl.DataFrame, top: int) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Keep the *top* series by volume, fold the rest into "Other"."""
    totals = hist.group_by("series").agg(pl.col("count").sum()).sort(["count", "series"], descending=[True, False])
    keep = totals["series"].head(top).to_list()
    folded = totals.height > top
    hist = (hist.with_columns(pl.when(pl.col("series").is_in(keep)).then(pl.col("series")).otherwise(pl.lit(OTHER))
                              .alias("series"))
            .group_by("bucket", "series").agg(pl.col("count").sum()).sort("bucket", "series"))
    return hist, tuple(keep) + ((OTHER,) if folded else ())


def page(lake: Lake, q: Query, *, columns: Sequence[str] | None = None, sort: str = "Timestamp",
         descending: bool = True, offset: int = 0, limit: int = 100, now: datetime | None = None) -> pl.DataFrame:
    """Rows *offset* … *offset + limit* of the query in the chosen order."""
    if offset < 0 or limit < 1:
        raise InputError(f"bad page (offset {offset}, limit {limit}); offset ≥ 0 and limit ≥ 1")
    grid = list(columns or view(q.view).columns)
    rows, _ = compile_query(lake, q, columns=list(dict.fromkeys([*grid, sort])), now=now)
    return rows.sort(sort, descending=descending, nulls_last=True).slice(offset, limit).select(grid).collect()


# --------------------------------------------------------------------------- top panels


def top_targeted_users(lake: Lake, q: Query, *, n: int = 5, now: datetime | None = None) -> pl.DataFrame:
    """Recipients with the most matching messages (URL clicks view: the clicking accounts)."""
    v = view(q.view)
    user = "AccountUpn" if v.table == "UrlClickEvents" else "RecipientEmailAddress"
    if v.table == "FileMaliciousContentInfo":
        user = "FileOwner"
    rows, _ = compile_query(lake, q, columns=[user], now=now)
    return (rows.group_by(pl.col(user).str.to_lowercase().alias("user")).len("attempts")
            .sort(["attempts", "user"], descending=[True, False]).head(n).collect())


def top_malware_families(lake: Lake, q: Query, *, n: int = 10, now: datetime | None = None) -> pl.DataFrame:
    v = view(q.view)
    family = prop("malware_family", v.table)
    rows, _ = compile_query(lake, q, columns=[family.column], now=now)
    return (rows.select(family.value().alias("family")).explode("family").drop_nulls()
            .group_by("family").len("attempts").sort(["attempts", "family"], descending=[True, False]).head(n).collect())


def top_urls(lake: Lake, q: Query, *, n: int = 10, now: datetime | None = None) -> pl.DataFrame:
    """URLs in the matching mail with how many messages were blocked, junked and delivered."""
    v = view(q.view)
    if v.table != "EmailEvents":
        raise InputError(f"Top URLs lists URLs in mail; the {v.label} view has no messages")
    rows, plan = compile_query(lake, q, columns=["NetworkMessageId", "DeliveryAction"], now=now)
    urls = lake.scan("EmailUrlInfo", plan.start, None, columns=["NetworkMessageId", "Url"]).unique()
    joined = rows.join(urls, on="NetworkMessageId")
    return (joined.group_by("Url").agg(
        (pl.col("DeliveryAction") == "Blocked").sum().alias("blocked"),
        (pl.col("DeliveryAction") == "Junked").sum().alias("junked"),
        (pl.col("DeliveryAction") == "Delivered").sum().alias("delivered"),
        pl.len().alias("messages"))
        .sort(["messages", "Url"], descending=[True, False]).head(n).collect())


def top_clicks(lake: Lake, q: Query, *, n: int = 10, now: datetime | None = None) -> pl.DataFrame:
    """Clicked URLs of the matching mail (or clicks of the URL clicks view) by click verdict."""
    v = view(q.view)
    if v.table == "UrlClickEvents":
        clicks, _ = compile_query(lake, q, columns=["Url", "ActionType"], now=now)
    elif v.table == "EmailEvents":
        rows, plan = compile_query(lake, q, columns=["NetworkMessageId"], now=now)
        clicks = lake.scan("UrlClickEvents", plan.start, None, columns=["NetworkMessageId", "Url", "ActionType"]) \
            .join(rows.unique(), on="NetworkMessageId", how="semi").select("Url", "ActionType")
    else:
        raise InputError(f"Top clicks needs mail or clicks; the {v.label} view has neither")
    counts = clicks.group_by("Url", "ActionType").len().collect()
    if not counts.height:
        return pl.DataFrame(schema={"Url": pl.String, "clicks": pl.UInt32})
    wide = counts.pivot(on="ActionType", index="Url", values="len").fill_null(0)
    actions = [c for c in wide.columns if c != "Url"]
    return (wide.with_columns(pl.sum_horizontal(actions).alias("clicks"))
            .sort(["clicks", "Url"], descending=[True, False]).head(n))


def clicks_of_mail(lake: Lake, q: Query, *, n: int = 200, now: datetime | None = None) -> pl.DataFrame:
    """The URL clicks on the matching mail, newest first (the URL clicks tab of an email view)."""
    v = view(q.view)
    if v.table != "EmailEvents":
        raise InputError(f"the {v.label} view has no messages to list clicks for; open the URL clicks view")
    rows, plan = compile_query(lake, q, columns=["NetworkMessageId"], now=now)
    return (lake.scan("UrlClickEvents", plan.start, None,
                      columns=["Timestamp", "AccountUpn", "ActionType", "Url", "IsClickedThrough", "NetworkMessageId"])
            .join(rows.unique(), on="NetworkMessageId", how="semi")
            .sort("Timestamp", descending=True).head(n).collect())


def email_origin(lake: Lake, q: Query, *, now: datetime | None = None) -> pl.DataFrame:
    """Matching messages by the country of the sender IP (RIR allocation data, offline)."""
    from iptocc import country_code

    rows, _ = compile_query(lake, q, columns=["SenderIPv4", "SenderIPv6"], now=now)
    by_ip = rows.group_by(pl.coalesce("SenderIPv4", "SenderIPv6").alias("ip")).len("messages").collect()
    ips = by_ip["ip"].to_list()
    codes = country_code([ip or "" for ip in ips]) if ips else []
    return (by_ip.with_columns(pl.Series("country", [c or "Unknown" for c in codes], dtype=pl.String))
            .group_by("country").agg(pl.col("messages").sum()).sort(["messages", "country"], descending=[True, False]))


def campaigns(lake: Lake, q: Query, *, n: int = 50, now: datetime | None = None) -> pl.DataFrame:
    """Matching mail grouped by content cluster: the Campaigns view's table."""
    rows, _ = compile_query(lake, q, columns=["EmailClusterId", "Timestamp", "Subject", "SenderFromDomain",
                                              "RecipientEmailAddress", "DeliveryAction", "ThreatTypes",
                                              "NetworkMessageId"], now=now)
    return (rows.group_by("EmailClusterId").agg(
        pl.col("Subject").first().alias("subject"),
        pl.col("ThreatTypes").drop_nulls().first().alias("threat"),
        pl.col("SenderFromDomain").n_unique().alias("sender_domains"),
        pl.col("NetworkMessageId").n_unique().alias("messages"),
        pl.col("RecipientEmailAddress").n_unique().alias("recipients"),
        (pl.col("DeliveryAction") == "Delivered").sum().alias("delivered"),
        pl.col("Timestamp").min().alias("first_seen"),
        pl.col("Timestamp").max().alias("last_seen"))
        .sort(["messages", "EmailClusterId"], descending=[True, False]).head(n).collect())


__all__ = ["Snapshot", "snapshot", "page", "bucket_for", "top_targeted_users", "top_malware_families", "top_urls",
           "top_clicks", "clicks_of_mail", "email_origin", "campaigns", "OTHER"]
