"""Explorer benchmark: one view refresh on a large tenant, against pandas and DuckDB.

The refresh is what the panel does when the analyst presses Refresh on the All email view:

- filters: Directionality = Inbound AND Delivery action any of (Delivered, Junked) AND NOT
  Sender domain = the organisation's domain;
- the pivot histogram: messages per day by Sender domain, top 8 series plus "Other";
- the counts: matching rows, and distinct messages when there are at most
  ``MESSAGES_UP_TO`` rows (as the panel does);
- the first page: 100 rows of the view's columns, newest first.

Cases (same lake files, same window, same answers — the run checks that they agree):

- ``workbench``: :func:`workbench.explorer.aggregate.snapshot` (polars, one ``collect_all``);
- ``pandas`` (baseline): ``pandas.read_parquet`` of the same files and columns with the same
  filters pushed into pyarrow, then groupby / nunique / nlargest;
- ``duckdb``: three SQL queries over ``read_parquet`` of the same files.

Sizes: the tenant's whole window (a 20,000-user month: about 11 million EmailEvents rows)
and its last three days (about 1 million). Peak RSS comes from one extra run of each case in
a fresh process. Make the tenant first (about 25 minutes, 6 GB)::

    .venv/bin/workbench demo generate --home bench-data --tenant big --users 20000 --end 2026-11-27
    .venv/bin/python -m benchmarks.bench_explorer --tenant bench-data/tenants/big
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, Case, run, run_in_child
from workbench.explorer.aggregate import MESSAGES_UP_TO

TOP = 8
PAGE = 100
PIVOT_COLUMN = "SenderFromDomain"


def _setup(tenant_dir: str, days: int | None) -> dict[str, Any]:
    """Window, files and query of one size (plain data, so child processes can rebuild it)."""
    import polars as pl

    from workbench.lake import Lake
    from workbench.tenant import org_domains, open_tenant

    tenant = open_tenant(tenant_dir)
    lake = Lake.for_tenant(tenant)
    files = lake.partition_files("EmailEvents")
    if not files:
        raise SystemExit(f"error: {tenant_dir} has no EmailEvents; generate the tenant first (see --help)")
    last = pl.scan_parquet(files[-1]).select(pl.col("Timestamp").max()).collect().item()
    end = datetime(last.year, last.month, last.day, tzinfo=last.tzinfo) + timedelta(days=1)
    first = pl.scan_parquet(files[0]).select(pl.col("Timestamp").min()).collect().item()
    start = end - timedelta(days=days) if days else datetime(first.year, first.month, first.day, tzinfo=first.tzinfo)
    return {"tenant": tenant_dir, "start": start.isoformat(), "end": end.isoformat(),
            "files": [str(f) for f in lake.partition_files("EmailEvents", start, end)],
            "org": org_domains(tenant)[0].lower()}


def _query(s: dict[str, Any]):  # noqa: ANN202 - workbench.explorer.Query
    from workbench.explorer import And, Cond, Not, Op, Query, Window

    return Query("all_email", Window.between(s["start"], s["end"]), And(
        Cond("directionality", Op.ANY, ("Inbound",)),
        Cond("delivery_action", Op.ANY, ("Delivered", "Junked")),
        Not(Cond("sender_domain", Op.ANY, (s["org"],)))))


def _fold(hist: list[tuple[Any, str, int]]) -> dict[str, Any]:
    """Top-N folding and a summary both baselines and the workbench can be compared on."""
    totals: dict[str, int] = {}
    for _, series, count in hist:
        totals[series] = totals.get(series, 0) + count
    keep = sorted(totals, key=lambda k: (-totals[k], k))[:TOP]
    return {"series": keep, "hist_total": sum(totals.values()), "buckets": len({b for b, _, _ in hist})}


def workbench_refresh(s: dict[str, Any]) -> dict[str, Any]:
    from workbench.explorer import aggregate as agg
    from workbench.lake import Lake
    from workbench.tenant import open_tenant

    snap = agg.snapshot(Lake.for_tenant(open_tenant(s["tenant"])), _query(s), pivot="sender_domain", page_size=PAGE)
    series = [x for x in snap.series if x != agg.OTHER]
    return {"rows": snap.rows, "messages": snap.messages, "page": snap.page.height,
            "series": series, "hist_total": int(snap.histogram["count"].sum()),
            "first": str(snap.page["NetworkMessageId"][0]) if snap.page.height else ""}


def _columns() -> list[str]:
    from workbench.explorer.views import view

    return list(dict.fromkeys([*view("all_email").columns, "Timestamp", "RecipientEmailAddress", "EmailDirection",
                               PIVOT_COLUMN]))


def pandas_refresh(s: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    df = pd.read_parquet(s["files"], columns=_columns(),
                         filters=[("EmailDirection", "==", "Inbound"), ("DeliveryAction", "in", ["Delivered", "Junked"])])
    df = df[df[PIVOT_COLUMN].str.lower() != s["org"]]
    day = df["Timestamp"].dt.floor("D")
    hist = df.groupby([day, df[PIVOT_COLUMN].fillna("(none)")]).size()
    folded = _fold([(b, k, int(c)) for (b, k), c in hist.items()])
    page = df.nlargest(PAGE, "Timestamp")
    messages = int(df["NetworkMessageId"].nunique()) if len(df) <= MESSAGES_UP_TO else None
    return {"rows": len(df), "messages": messages, "page": len(page),
            "series": folded["series"], "hist_total": folded["hist_total"],
            "first": str(page["NetworkMessageId"].iloc[0]) if len(page) else ""}


def duckdb_refresh(s: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f'"{c}"' for c in _columns())
    source = (f"(SELECT {cols} FROM read_parquet($files) WHERE EmailDirection = 'Inbound' "
              "AND DeliveryAction IN ('Delivered', 'Junked') AND coalesce(lower(SenderFromDomain), '') <> $org)")
    params = {"files": s["files"], "org": s["org"]}
    hist = con.execute(f"SELECT date_trunc('day', Timestamp), coalesce({PIVOT_COLUMN}, '(none)'), count(*) "
                       f"FROM {source} GROUP BY ALL", params).fetchall()
    rows, = con.execute(f"SELECT count(*) FROM {source}", params).fetchone()
    messages = None
    if rows <= MESSAGES_UP_TO:
        messages, = con.execute(f"SELECT count(DISTINCT NetworkMessageId) FROM {source}", params).fetchone()
    page = con.execute(f"SELECT * FROM {source} ORDER BY Timestamp DESC LIMIT {PAGE}", params).fetchall()
    folded = _fold(hist)
    nmid = _columns().index("NetworkMessageId")
    return {"rows": rows, "messages": messages, "page": len(page), "series": folded["series"],
            "hist_total": folded["hist_total"], "first": str(page[0][nmid]) if page else ""}


CASES = {"pandas": pandas_refresh, "workbench": workbench_refresh, "duckdb": duckdb_refresh}


def _agree(results: dict[str, dict[str, Any]]) -> None:
    keys = ("rows", "messages", "page", "hist_total", "series")
    base = results["workbench"]
    for name, got in results.items():
        diff = {k: (got[k], base[k]) for k in keys if got[k] != base[k]}
        if diff:
            raise SystemExit(f"error: {name} disagrees with workbench on {diff}")


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", required=True, help="tenant folder (or name) holding the large lake")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="all,3", help="comma-separated: 'all' (the whole window) and/or day counts")
    args = parser.parse_args(argv)
    reports = []
    for size in args.sizes.split(","):
        days = None if size.strip() == "all" else int(size)
        s = _setup(args.tenant, days)
        answers = {name: fn(s) for name, fn in CASES.items()}  # also the warm-up of every case
        _agree(answers)
        peaks = {name: run_in_child(fn, s).peak_rss_mb for name, fn in CASES.items()}
        label = "all" if days is None else f"{days}d"
        report = run(
            f"explorer_{label}",
            [Case(name, (lambda fn=fn: {"rows": fn(s)["rows"]}), baseline=name == "pandas",
                  description=fn.__doc__ or name) for name, fn in CASES.items()],
            repeat=args.repeat, warmup=0, interleave=True,
            params={"tenant": args.tenant, "window": [s["start"], s["end"]], "files": len(s["files"])},
            setup={"matching_rows": answers["workbench"]["rows"]},
            results_dir=None,
        )
        for case in report["cases"]:
            case["extra"] = {"peak_rss_mb": round(peaks[case["name"]], 1), "rows": answers[case["name"]]["rows"]}
        wb = next(c for c in report["cases"] if c["name"] == "workbench")
        dk = next(c for c in report["cases"] if c["name"] == "duckdb")
        pd_ = next(c for c in report["cases"] if c["name"] == "pandas")
        print(f"{label}: workbench {wb['median']:.3f} s median; {pd_['median'] / wb['median']:.1f}x faster than pandas; "
              f"{wb['median'] / dk['median']:.2f}x the DuckDB time; peak RSS {peaks['workbench']:.0f} MB "
              f"(pandas {peaks['pandas']:.0f}, DuckDB {peaks['duckdb']:.0f})")
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            (results_dir / f"explorer_{label}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        reports.append(report)
    return reports


if __name__ == "__main__":
    main()
