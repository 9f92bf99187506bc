"""Smoke tests for the benchmark suites: tiny sizes, real runs, JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _project_root_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # `benchmarks` is a folder, not an installed package


def test_lake_suite_writes_medians_and_ratios(tmp_path: Path) -> None:
    from benchmarks import bench_lake

    lines: list[str] = []
    report = bench_lake.main(
        ["--days", "3", "--rows-per-day", "300", "--repeat", "2", "--warmup", "0", "--results-dir", str(tmp_path)],
        echo=lines.append,
    )
    saved = json.loads((tmp_path / "lake.json").read_text())
    assert saved["suite"] == "lake" and saved["baseline"] == "lake_full_read"
    assert saved["params"] == {"days": 3, "rows_per_day": 300, "seed": 7}
    assert saved["setup"]["rows"] == 900
    by_name = {c["name"]: c for c in saved["cases"]}
    assert set(by_name) == {"lake_full_read", "lake_one_day", "polars_glob_one_day", "duckdb_one_day"}
    for case in by_name.values():
        assert case["median"] > 0 and len(case["times"]) == 2
        assert case["min"] <= case["median"] <= case["max"]
        assert "ratio" in case
    assert by_name["lake_full_read"]["ratio"] == 1.0
    assert by_name["lake_full_read"]["extra"]["rows"] == 900
    one_day = {by_name[n]["extra"]["rows"] for n in ("lake_one_day", "polars_glob_one_day", "duckdb_one_day")}
    assert len(one_day) == 1 and 0 < one_day.pop() < 300
    assert saved["cases"] == report["cases"]
    assert any("lake_one_day" in line and "x lake_full_read" not in line for line in lines)


def _allocate(mb: int) -> int:
    return len(b"x" * (mb * 1024 * 1024))  # written, so resident


def test_run_in_child_measures_peak_rss() -> None:
    from benchmarks.harness import run_in_child

    small = run_in_child(_allocate, 1)
    big = run_in_child(_allocate, 200)
    assert big.result == 200 * 1024 * 1024
    assert big.peak_rss_mb - small.peak_rss_mb > 150
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run_in_child(divmod, 1, 0)


def test_interleaved_rounds_pair_each_case_with_the_baseline() -> None:
    from benchmarks.harness import Case, run

    order: list[str] = []
    slow = Case("slow", lambda: order.append("slow") or __import__("time").sleep(0.004), baseline=True)
    fast = Case("fast", lambda: order.append("fast") or __import__("time").sleep(0.001))
    report = run("t", [slow, fast], repeat=3, warmup=1, results_dir=None, echo=lambda s: None, interleave=True)
    assert order == ["slow", "fast"] + ["slow", "fast"] * 3  # warm-ups, then one of each per round
    by_name = {c["name"]: c for c in report["cases"]}
    assert report["interleaved"] and by_name["slow"]["ratio"] == 1.0
    assert 0 < by_name["fast"]["ratio"] < 0.8 and len(by_name["fast"]["times"]) == 3


def test_dashboard_suite_cross_checks_every_tile_then_times(small_tenant, tmp_path: Path) -> None:
    from benchmarks import bench_dashboard

    # the small tenant's last day is 2026-11-20; children (peak RSS, cold build) are left out for speed
    (report,) = bench_dashboard.main(
        ["--tenant", str(small_tenant.root), "--window", "7d", "--repeat", "1", "--now", "2026-11-21T00:00:00Z",
         "--no-children"], results_dir=tmp_path)
    saved = json.loads((tmp_path / "dashboard_7d.json").read_text())
    assert saved["cases"] == report["cases"] and saved["baseline"] == "pandas_naive" and saved["interleaved"]
    by_name = {c["name"]: c for c in saved["cases"]}
    assert set(by_name) == {"pandas_naive", "workbench_build"}
    assert by_name["pandas_naive"]["ratio"] == 1.0 and by_name["workbench_build"]["ratio"] > 0
    rows = saved["setup"]["email_rows"]
    assert rows > 0 and all(c["extra"]["rows"] == rows for c in saved["cases"])
    assert saved["setup"]["metrics_checked"] >= 20 and saved["setup"]["frame_rows_checked"] > 0

    # a number off by one on either side stops the run, naming the metric and both values
    s = bench_dashboard._setup(str(small_tenant.root), "7d", "2026-11-21T00:00:00Z")
    ours = bench_dashboard.workbench_build(s)
    theirs = json.loads(json.dumps(ours))
    theirs["metrics"]["summary.phish_blocked"] += 1
    theirs["frames"]["targeted_users.users"][0][1] += 1
    diff = bench_dashboard.differences(ours, theirs)
    assert len(diff) == 2 and diff[0].startswith("metrics summary.phish_blocked: workbench ")
    assert "frame targeted_users.users" in diff[1]
    with pytest.raises(SystemExit, match="disagree"):
        bench_dashboard._agree({"workbench_build": ours, "pandas_naive": theirs})


def test_dispatch_suite_times_the_dispatcher_and_says_where_the_time_goes(small_tenant, tmp_path: Path) -> None:
    from benchmarks import bench_dispatch

    kept = small_tenant.root / "investigations"
    before = sorted(kept.iterdir()) if kept.exists() else []
    # the naive and the kernel-per-group cases start a kernel per run: left out for speed
    report = bench_dispatch.main(["--tenant", str(small_tenant.root), "--min-alerts", "1", "--repeat", "1",
                                  "--cases", "shared_kernels,in_process"], results_dir=tmp_path, echo=lambda s: None)
    saved = json.loads((tmp_path / "dispatch.json").read_text())
    assert saved["cases"] == report["cases"] and saved["baseline"] == "shared_kernels" and saved["interleaved"]
    by_name = {c["name"]: c for c in saved["cases"]}
    assert set(by_name) == {"shared_kernels", "in_process"} and by_name["shared_kernels"]["ratio"] == 1.0
    groups = saved["setup"]["groups"]
    assert groups > 1 and all(c["extra"]["groups"] == groups and c["extra"]["failed"] == 0 for c in saved["cases"])
    shared = saved["breakdown"]["shared_kernels"]
    assert shared["runs"] == groups and 1 <= shared["kernels"] <= 2
    assert shared["analyzers_s"] > 0 and shared["imports_s"] >= 0 and shared["wall_s"] > 0 and shared["warm_kernel_run_median_s"] > 0
    assert (sorted(kept.iterdir()) if kept.exists() else []) == before  # the tenant itself was not written to
