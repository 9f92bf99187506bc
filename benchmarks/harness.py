"""A small benchmark runner: named cases, repeated timings, ratios to a baseline, JSON out.

A case is a function taking no argument; it may return a dict of extra metrics (rows,
peak RSS MB...) that are reported beside its timings (the last repeat's values win).

>>> import time
>>> cases = [Case("sleep", lambda: time.sleep(0.001), baseline=True), Case("noop", lambda: {"rows": 1})]
>>> report = run("demo", cases, repeat=2, warmup=0, results_dir=None, echo=lambda s: None)
>>> [c["name"] for c in report["cases"]], report["cases"][1]["extra"]
(['sleep', 'noop'], {'rows': 1})
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import re
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Metrics = Mapping[str, float | int | str]


@dataclass(frozen=True)
class Case:
    """One timed case; exactly one case of a run should be the baseline."""

    name: str
    fn: Callable[[], Metrics | None]
    baseline: bool = False
    description: str = ""


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    for name in ("polars", "duckdb", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
    return info


def time_case(case: Case, *, repeat: int, warmup: int) -> dict[str, Any]:
    """Run *case* ``warmup`` times untimed, then ``repeat`` times timed."""
    for _ in range(warmup):
        case.fn()
    times: list[float] = []
    extra: dict[str, Any] = {}
    for _ in range(repeat):
        seconds, metrics = _timed(case)
        times.append(seconds)
        extra = metrics
    return _summary(case, times, extra)


def _timed(case: Case) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    metrics = case.fn()
    return time.perf_counter() - start, dict(metrics or {})


def _summary(case: Case, times: list[float], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": case.name,
        "description": case.description,
        "baseline": case.baseline,
        "times": times,
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "extra": extra,
    }


def time_interleaved(cases: Sequence[Case], *, repeat: int, warmup: int) -> list[dict[str, Any]]:
    """Warm every case up, then time them in rounds (each case once per round), so a machine
    that slows down or speeds up during the run affects every case alike."""
    for case in cases:
        for _ in range(warmup):
            case.fn()
    times: dict[str, list[float]] = {c.name: [] for c in cases}
    extra: dict[str, dict[str, Any]] = {c.name: {} for c in cases}
    for _ in range(repeat):
        for case in cases:
            seconds, extra[case.name] = _timed(case)
            times[case.name].append(seconds)
    return [_summary(c, times[c.name], extra[c.name]) for c in cases]


def render(report: Mapping[str, Any]) -> str:
    """The report as a fixed-width table."""
    extra_keys = sorted({k for c in report["cases"] for k in c["extra"]})
    header = ["case", "min s", "median s", "max s", f"x {report['baseline']}", *extra_keys]
    rows = [header]
    for c in report["cases"]:
        rows.append(
            [
                c["name"] + (" *" if c["baseline"] else ""),
                f"{c['min']:.4f}",
                f"{c['median']:.4f}",
                f"{c['max']:.4f}",
                f"{c['ratio']:.3f}",
                *(_fmt(c["extra"].get(k, "")) for k in extra_keys),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def run(
    suite: str,
    cases: Sequence[Case],
    *,
    repeat: int = 5,
    warmup: int = 1,
    params: Mapping[str, Any] | None = None,
    setup: Mapping[str, Any] | None = None,
    results_dir: Path | None = RESULTS_DIR,
    echo: Callable[[str], None] = print,
    interleave: bool = False,
) -> dict[str, Any]:
    """Time every case, print the table, write ``<results_dir>/<suite>.json``; return the report.

    The ratio of each case is its median over the baseline's median (same run); with
    *interleave*, cases run in rounds and the ratio is the median of the per-round ratios.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    baselines = [c for c in cases if c.baseline] or list(cases[:1])
    baseline = baselines[0]
    if interleave:
        echo(f"  timing {len(cases)} cases in {repeat} interleaved rounds ...")
        results = time_interleaved(cases, repeat=repeat, warmup=warmup)
    else:
        results = []
        for case in cases:
            echo(f"  timing {case.name} ...")
            results.append(time_case(case, repeat=repeat, warmup=warmup))
    base = next(r for r in results if r["name"] == baseline.name)
    for r in results:
        if interleave:
            r["ratio"] = statistics.median(t / b for t, b in zip(r["times"], base["times"]) if b > 0)
        else:
            r["ratio"] = r["median"] / base["median"] if base["median"] > 0 else float("nan")
        r["baseline"] = r["name"] == baseline.name
    report = {
        "suite": suite,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": dict(params or {}),
        "setup": dict(setup or {}),
        "repeat": repeat,
        "warmup": warmup,
        "interleaved": interleave,
        "baseline": baseline.name,
        "cases": results,
    }
    echo(render(report))
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{suite}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        echo(f"wrote {path}")
    return report


# --------------------------------------------------------------------------- peak memory


@dataclass(frozen=True)
class ChildRun:
    """What a function did in a fresh process: its JSON result, wall time and peak RSS."""

    result: Any
    seconds: float
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's ``VmHWM`` belongs to the current program image; ``ru_maxrss`` survives
    ``exec`` and so would report the parent's size for a freshly spawned child.
    """
    try:
        status = Path("/proc/self/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    try:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        payload = {"ok": True, "result": result, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}
    except BaseException:
        payload = {"ok": False, "error": traceback.format_exc()}
    conn.send_bytes(json.dumps(payload, default=str).encode())
    conn.close()


def run_in_child(fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> ChildRun:
    """Run ``fn(*args, **kwargs)`` in a fresh spawned process and measure its peak RSS.

    *fn* must be importable (a module-level function) and return JSON-serialisable data.
    The peak includes the interpreter and imports, so compare runs of the same harness.

    >>> run_in_child(sum, [1, 2, 3]).result
    6
    """
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, kwargs))
    proc.start()
    send.close()
    try:
        if not receive.poll(timeout):
            proc.kill()
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} did not finish within {timeout} s")
        payload = json.loads(receive.recv_bytes())
    except EOFError:
        payload = {"ok": False, "error": "child process died without reporting"}
    finally:
        proc.join()
        receive.close()
    if not payload["ok"]:
        raise RuntimeError(f"benchmark child failed (exit code {proc.exitcode}):\n{payload['error']}")
    return ChildRun(payload["result"], payload["seconds"], payload["peak_rss_mb"])


__all__ = ["Case", "ChildRun", "RESULTS_DIR", "machine", "peak_rss_mb", "render", "run", "run_in_child", "time_case"]
