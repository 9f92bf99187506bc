"""Lake benchmark: a one-day filtered, projected scan against a full read and DuckDB.

Builds a synthetic EmailEvents lake (N days x M rows/day) in a temporary folder with
:meth:`Lake.append`, then times:

- ``lake_full_read`` (baseline): ``lake.scan("EmailEvents").collect()``, every column;
- ``lake_one_day``: one day, six columns, a filter on DeliveryAction;
- ``polars_glob_one_day``: the same query over a ``day=*/part-*.parquet`` glob (no
  partition pruning: every file's footer is opened);
- ``duckdb_one_day``: the same query in DuckDB, ``read_parquet`` over the glob with a
  WHERE on Timestamp, materialised as a polars frame (Arrow C stream).

Run from the project root::

    .venv/bin/python -m benchmarks.bench_lake --days 30 --rows-per-day 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from benchmarks.harness import RESULTS_DIR, Case, run
from workbench.lake import Lake
from workbench.schema import EmailEvents

FIRST_DAY = datetime(2024, 1, 1, tzinfo=UTC)
COLUMNS = ["Timestamp", "SenderFromAddress", "RecipientEmailAddress", "Subject", "DeliveryAction", "ReportId"]
NOT_DELIVERED = pl.col("DeliveryAction") != "Delivered"
DAY_US = 86_400_000_000


def synthetic_day(day: int, rows: int, rng: np.random.Generator) -> pl.DataFrame:
    """One day of plausible EmailEvents (about 20 of the 46 columns filled)."""
    start = FIRST_DAY + timedelta(days=day)
    offsets = np.sort(rng.integers(0, DAY_US, rows))
    sender = rng.integers(0, 5_000, rows)
    recipient = rng.integers(0, 2_000, rows)
    verdict = rng.choice(4, rows, p=[0.86, 0.08, 0.05, 0.01])
    raw = pl.DataFrame(
        {
            "off": offsets,
            "seq": np.arange(rows, dtype=np.int64),
            "sender": sender,
            "sdom": sender % 400,
            "recipient": recipient,
            "subject": rng.integers(0, 20_000, rows),
            "verdict": verdict,
            "size": rng.integers(2_000, 3_000_000, rows),
            "atts": rng.poisson(0.4, rows).astype(np.int32),
            "urls": rng.poisson(2.0, rows).astype(np.int32),
            "ip": rng.integers(0, 2**24, rows),
        }
    )
    actions = dict(enumerate(["Delivered", "Junked", "Blocked", "Replaced"]))
    locations = dict(enumerate(["Inbox/folder", "Junk folder", "Quarantine", "Inbox/folder"]))
    frame = raw.select(
        (pl.lit(start) + pl.duration(microseconds=pl.col("off"))).alias("Timestamp"),
        pl.format("{}-{}@EURPRD.prod.outlook.com", pl.lit(day), pl.col("seq")).alias("NetworkMessageId"),
        pl.format("<{}.{}@mail.example>", pl.lit(day), pl.col("seq")).alias("InternetMessageId"),
        pl.format("sender{}@domain{}.example", pl.col("sender"), pl.col("sdom")).alias("SenderFromAddress"),
        pl.format("sender{}@domain{}.example", pl.col("sender"), pl.col("sdom")).alias("SenderMailFromAddress"),
        pl.format("domain{}.example", pl.col("sdom")).alias("SenderFromDomain"),
        pl.format("domain{}.example", pl.col("sdom")).alias("SenderMailFromDomain"),
        pl.format("10.{}.{}.{}", pl.col("ip") // 65536, pl.col("ip") // 256 % 256, pl.col("ip") % 256).alias("SenderIPv4"),
        pl.format("user{}@contoso.com", pl.col("recipient")).alias("RecipientEmailAddress"),
        pl.lit("contoso.com").alias("RecipientDomain"),
        pl.format("Quarterly report #{} - action needed", pl.col("subject")).alias("Subject"),
        pl.lit("Inbound").alias("EmailDirection"),
        pl.col("verdict").replace_strict(actions, return_dtype=pl.String).alias("DeliveryAction"),
        pl.col("verdict").replace_strict(locations, return_dtype=pl.String).alias("DeliveryLocation"),
        pl.when(pl.col("verdict") == 2).then(pl.lit("Phish")).when(pl.col("verdict") == 1).then(pl.lit("Spam")).alias("ThreatTypes"),
        pl.lit('{"SPF":"pass","DKIM":"pass","DMARC":"pass","CompAuth":"pass"}').alias("AuthenticationDetails"),
        pl.col("atts").alias("AttachmentCount"),
        pl.col("urls").alias("UrlCount"),
        pl.col("size").alias("EmailSize"),
        pl.format("{}-{}", pl.lit(day), pl.col("seq")).alias("ReportId"),
    )
    return EmailEvents.conform(frame)


def build(root: Path, days: int, rows_per_day: int, seed: int) -> dict[str, Any]:
    """Append *days* synthetic days to a lake at *root*; return setup metrics."""
    rng = np.random.default_rng(seed)
    lake = Lake(root)
    generate = append = 0.0
    for day in range(days):
        t0 = time.perf_counter()
        frame = synthetic_day(day, rows_per_day, rng)
        t1 = time.perf_counter()
        lake.append(EmailEvents, frame)
        append += time.perf_counter() - t1
        generate += t1 - t0
    info = lake.info().row(0, named=True)
    return {
        "rows": info["rows"],
        "files": info["files"],
        "lake_mb": round(info["bytes"] / 1e6, 1),
        "generate_s": round(generate, 2),
        "append_s": round(append, 2),
        "append_rows_per_s": round(info["rows"] / append) if append else None,
    }


def cases(root: Path, day: int) -> list[Case]:
    import duckdb

    lake = Lake(root)
    start = FIRST_DAY + timedelta(days=day)
    end = start + timedelta(days=1)
    glob = str(root / "EmailEvents" / "day=*" / "part-*.parquet")
    con = duckdb.connect()
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM read_parquet('{glob}') "
        "WHERE Timestamp >= $1 AND Timestamp < $2 AND DeliveryAction <> 'Delivered'"
    )

    def full_read() -> dict[str, Any]:
        return {"rows": lake.scan("EmailEvents").collect().height}

    def lake_one_day() -> dict[str, Any]:
        lf = lake.scan("EmailEvents", start, end, columns=COLUMNS).filter(NOT_DELIVERED)
        return {"rows": lf.collect().height}

    def polars_glob_one_day() -> dict[str, Any]:
        ts = pl.col("Timestamp")
        lf = pl.scan_parquet(glob, hive_partitioning=False).filter((ts >= start) & (ts < end) & NOT_DELIVERED)
        return {"rows": lf.select(COLUMNS).collect().height}

    def duckdb_one_day() -> dict[str, Any]:
        return {"rows": pl.DataFrame(con.sql(sql, params=[start, end])).height}

    return [
        Case("lake_full_read", full_read, baseline=True, description="lake.scan(table).collect(), all columns"),
        Case("lake_one_day", lake_one_day, description="lake.scan(day, 6 columns) + filter"),
        Case("polars_glob_one_day", polars_glob_one_day, description="pl.scan_parquet(glob) + same filter"),
        Case("duckdb_one_day", duckdb_one_day, description="duckdb read_parquet(glob) WHERE Timestamp"),
    ]


def main(argv: Sequence[str] | None = None, *, echo: Any = print) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_lake", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="day partitions (default 30)")
    parser.add_argument("--rows-per-day", type=int, default=100_000, help="EmailEvents rows per day (default 100000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per case (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per case first (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where lake.json goes")
    args = parser.parse_args(argv)
    if args.days < 1 or args.rows_per_day < 1:
        parser.error("--days and --rows-per-day must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        root = Path(tmp) / "lake"
        echo(f"building {args.days} days x {args.rows_per_day:,} rows of EmailEvents in {root} ...")
        setup = build(root, args.days, args.rows_per_day, args.seed)
        echo("  " + ", ".join(f"{k}={v}" for k, v in setup.items()))
        suite = cases(root, args.days // 2)
        counts = {c.name: c.fn()["rows"] for c in suite[1:]}  # same answer from every engine
        if len(set(counts.values())) != 1:
            raise AssertionError(f"one-day queries disagree on row counts: {counts}")
        params = {"days": args.days, "rows_per_day": args.rows_per_day, "seed": args.seed}
        return run(
            "lake",
            suite,
            repeat=args.repeat,
            warmup=args.warmup,
            params=params,
            setup=setup,
            results_dir=args.results_dir,
            echo=echo,
        )


if __name__ == "__main__":
    main()
