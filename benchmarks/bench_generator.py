"""Demo generator benchmark: throughput and peak memory, against writing uniform rows.

Cases (each in a fresh process, so peak RSS is the case's own):

- ``generate``: ``workbench.ingest.demo.generate`` at the given size, raw mail included;
  reports rows per table, EmailEvents rows per second and peak RSS;
- ``uniform_rows`` (baseline): appending the same number of EmailEvents rows of uniform
  random values to a lake, one day at a time: the floor cost of merely writing that many
  rows, without realism, stories, other tables or raw messages.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_generator                       # 300 users, 30 days, 3 repeats
    .venv/bin/python -m benchmarks.bench_generator --users 20000 --repeat 1   # the scale run
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, Case, run, run_in_child

END = date(2026, 11, 27)


def generate_tenant(users: int, days: int, seed: int) -> dict[str, Any]:
    from workbench.ingest.demo import generate

    home = Path(tempfile.mkdtemp(prefix="bench-gen-"))
    try:
        summary = generate("bench", users=users, days=days, seed=seed, end=END, base=home)
        size = sum(p.stat().st_size for p in (home / "tenants" / "bench").rglob("*") if p.is_file())
        return {"rows": summary.rows, "raw_messages": summary.raw_messages, "bytes": size}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def uniform_rows(rows: int, days: int) -> dict[str, Any]:
    from benchmarks.bench_lake import synthetic_day
    import numpy as np

    from workbench.lake import Lake

    home = Path(tempfile.mkdtemp(prefix="bench-uniform-"))
    try:
        lake = Lake(home / "lake")
        rng = np.random.default_rng(0)
        per_day = max(1, rows // days)
        for day in range(days):
            lake.append("EmailEvents", synthetic_day(day, per_day, rng))
        return {"rows": per_day * days}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    state: dict[str, int] = {}

    def generate_case() -> dict[str, Any]:
        child = run_in_child(generate_tenant, args.users, args.days, args.seed)
        rows = child.result["rows"]
        state["email_rows"] = rows["EmailEvents"]
        return {
            "email_events": rows["EmailEvents"],
            "all_rows": sum(rows.values()),
            "raw_messages": child.result["raw_messages"],
            "rows_per_s": rows["EmailEvents"] / child.seconds,
            "peak_rss_mb": child.peak_rss_mb,
            "tenant_mb": child.result["bytes"] / 2**20,
        }

    def baseline_case() -> dict[str, Any]:
        child = run_in_child(uniform_rows, state["email_rows"], args.days)
        return {"email_events": child.result["rows"], "rows_per_s": child.result["rows"] / child.seconds,
                "peak_rss_mb": child.peak_rss_mb}

    suite = "generator" if args.users <= 1000 else f"generator-{args.users}"
    return run(
        suite,
        [
            Case("generate", generate_case, description=f"{args.users} users, {args.days} days, raw mail"),
            Case("uniform_rows", baseline_case, baseline=True, description="same EmailEvents row count, uniform values"),
        ],
        repeat=args.repeat,
        warmup=0,
        params=vars(args),
        results_dir=results_dir,
    )


if __name__ == "__main__":
    main()
