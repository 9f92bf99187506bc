"""Dashboard browser benchmark: how soon the Voila dashboard shows its first number and all its
tiles in Chromium, with a preheated kernel and without.

Target (dashboard issue): first tile visible ≤ 5 s and all tiles ≤ 8 s after navigation on
the default demo tenant, with a preheated kernel (median of 5).

Voila is started as ``workbench serve`` starts it (:func:`workbench.serve.voila_command` on
the notebooks folder, a token, ``preheat=1`` or ``0``), one server per mode, both running for
the whole run. Before timing:

- the dashboard projection cache of the tenant is warmed (:func:`workbench.dashboard.projection.warm`),
  as the pipeline does after appends, so no visit derives a day;
- a browser context logs in once (``/?token=``: the home page, which starts no kernel) and
  every timed visit reuses its cookie in a fresh context (empty browser cache);
- each server gets one untimed visit of the dashboard.

A server is *ready* for a visit when Voila's log says the dashboard's kernel pool is filled
(``Kernel pool of Dashboard.ipynb is filled with 1 kernel(s)``: once at start and once more
after each visit that took the pooled kernel) **and** the Voila process tree has been idle
for 2 s (less than 0.1 s of CPU over the last 2 s, from ``/proc/<pid>/stat`` of Voila and
every descendant). The log line alone is not enough: Voila logs it once the kernel has
started, while the pooled kernel is still running the notebook up to ``wait_for_request()``
(imports and the 30-day build, several seconds). The cold server (``preheat=0``) waits for
idleness only, so the previous visit's kernel has finished.

A timed visit: a fresh browser context, ``page.goto`` of ``/voila/render/Dashboard.ipynb``
(no query string: the default window, last 30 days); the clock starts before ``goto`` and
stops (1) when the first ``.wb-num`` is visible and (2) when all 11 tiles are visible with
their numbers, tables, empty-tile text and loaded chart images. Rounds are interleaved
(preheated visit, then cold visit), so both modes see the same machine load. The page's own
status line gives the window shown; its end minus the visit time is reported as the data's
age (a preheated kernel computed its dashboard when it was preheated).

    .venv/bin/python -m benchmarks.bench_dashboard_browser [--tenant data/tenants/demo] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, machine, render

TARGET_FIRST_S = 5.0
TARGET_ALL_S = 8.0
SUITE = "dashboard_browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
POOL_FILLED = r"Kernel pool of Dashboard\.ipynb is filled with \d+ kernel"
POOL_USED = r"Using pre-heated kernel: \S+ for Dashboard\.ipynb"
TILES = ("summary", "efficacy", "protection_status", "trends", "malware", "weekly", "targeted_users", "clickers",
         "alerts", "incidents", "intel")
CHARTS = {"protection_status": 2, "trends": 1, "malware": 2, "efficacy": 1}
ALL_SHOWN = """([tiles, charts]) => tiles.every(key => {
    const tile = document.querySelector('.wb-tile-' + key);
    if (!tile || !tile.offsetParent) return false;
    const note = tile.querySelector('[data-empty]');
    if (note) return !!(note.offsetParent && note.textContent.trim());
    const nums = [...tile.querySelectorAll('.wb-num')];
    if (key !== 'targeted_users' && !nums.length) return false;
    if (!nums.every(n => n.offsetParent && n.textContent.trim())) return false;
    if (key === 'targeted_users' && !tile.querySelector('table.wb-table')) return false;
    const imgs = [...tile.querySelectorAll('img')];
    return imgs.length === (charts[key] || 0) && imgs.every(i => i.complete && i.naturalWidth > 0);
})"""
STATUS = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d) – (\d{4}-\d\d-\d\d \d\d:\d\d) UTC · computed in ([\d.]+) s")
TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the servers


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of *pid* and every live descendant."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += (int(stats[p][11]) + int(stats[p][12])) / TICKS  # utime, stime
        todo.extend(children.get(p, ()))
    return total


class Server:
    """One Voila on loopback serving the apps folder as ``workbench serve`` does."""

    def __init__(self, tenant: Any, *, preheat: int, folder: Path) -> None:
        from workbench.serve import voila_command, wait_for_port

        self.preheat, self.token = preheat, secrets.token_urlsafe(16)
        self.port = _port()
        self.log_path = folder / f"voila-preheat{preheat}.log"
        cmd = voila_command(tenant, port=self.port, host="127.0.0.1", token=self.token, preheat=preheat,
                            config_dir=folder / f"config-preheat{preheat}")
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port("127.0.0.1", self.port, self.proc, timeout=90)
        self.base = f"http://127.0.0.1:{self.port}/"
        self.url = self.base + "voila/render/Dashboard.ipynb"
        self.fills = 0  # pool fills waited for so far

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def wait_ready(self, timeout: float = 300) -> float:
        """Wait for the pool refill (preheat) and an idle process tree; return seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        if self.preheat:
            wanted = self.count(POOL_USED) + 1  # one fill at start, one after each pooled visit
            while self.count(POOL_FILLED) < wanted:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the kernel pool did not refill within {timeout:.0f} s; see {self.log_path}")
                time.sleep(0.2)
        samples: list[tuple[float, float]] = []  # (time, CPU seconds of the tree)
        while True:
            now, cpu = time.monotonic(), tree_cpu_seconds(self.proc.pid)
            samples = [(t, c) for t, c in samples if now - t <= 5.0] + [(now, cpu)]
            older = [c for t, c in samples if now - t >= 2.0]
            if older and cpu - older[-1] < 0.1:  # the latest sample at least 2 s old
                return time.monotonic() - started
            if now > deadline:
                raise TimeoutError(f"Voila (preheat={self.preheat}) stayed busy for {timeout:.0f} s")
            time.sleep(0.25)

    def stop(self) -> None:
        from workbench.serve import stop_process

        stop_process(self.proc, timeout=30)


def _port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- a visit


def login_state(browser: Any, server: Server) -> dict:
    """Cookies of a browser that opened the login link (the home page: no kernel starts)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server.base}?token={server.token}")
    page.wait_for_load_state("networkidle")
    state = context.storage_state()
    context.close()
    return state


def visit(browser: Any, server: Server, state: dict, timeout_ms: int = 180_000) -> dict[str, Any]:
    """One navigation in a fresh context: seconds to the first number and to every tile."""
    context = browser.new_context(storage_state=state, viewport={"width": 1400, "height": 3000})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1",
                                                                                 "data:", "blob:")) else None)
    try:
        used = server.count(POOL_USED)
        at = datetime.now(UTC)
        started = time.perf_counter()
        page.goto(server.url, wait_until="commit", timeout=timeout_ms)
        page.wait_for_selector(".wb-num", state="visible", timeout=timeout_ms)
        first = time.perf_counter() - started
        page.wait_for_function(ALL_SHOWN, arg=[list(TILES), CHARTS], timeout=timeout_ms, polling="raf")
        every = time.perf_counter() - started
        status = page.locator(".wb-note", has_text=" UTC · computed in ").first.inner_text()
        nav = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
            return n ? [n.responseStart, n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd] : null; }""")
        match = STATUS.search(status)
        end = datetime.strptime(match.group(2), "%Y-%m-%d %H:%M").replace(tzinfo=UTC) if match else None
        return {
            "first_tile_s": first, "all_tiles_s": every,
            "pooled": server.count(POOL_USED) > used,
            "window": f"{match.group(1)} – {match.group(2)} UTC" if match else status,
            "data_age_s": round((at - end).total_seconds()) if end else None,  # the status shows minutes only
            "build_s": float(match.group(3)) if match else None,
            # the browser's navigation timing (s from navigation start): first byte, last byte of
            # the page (Voila streams it as the cells run), DOMContentLoaded, load
            "page_s": dict(zip(("first_byte", "last_byte", "dom_ready", "load"),
                               (round(v / 1000, 3) for v in nav))) if nav else None,
            "non_loopback_requests": len(outside),
        }
    finally:
        context.close()


# --------------------------------------------------------------------------- report


def summary(name: str, times: list[float], description: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": description, "baseline": False, "times": times, "min": min(times),
            "median": statistics.median(times), "max": max(times), "extra": extra}


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", default="data/tenants/demo", help="tenant folder (or name); default: the demo tenant")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--modes", default="1,0", help="comma-separated preheat pool sizes to compare (default 1,0)")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from workbench.dashboard import projection
    from workbench.errors import NotFound
    from workbench.lake import Lake
    from workbench.tenant import open_tenant

    try:
        tenant = open_tenant(args.tenant)
    except NotFound:
        raise SystemExit(f"no tenant at {args.tenant}; make the demo tenant first: .venv/bin/workbench demo --no-serve")
    lake = Lake.for_tenant(tenant)
    started = time.perf_counter()
    days = projection.warm(lake)
    warm_s = time.perf_counter() - started
    print(f"projection cache warm: {days} days ({warm_s:.1f} s)")
    modes = [int(m) for m in args.modes.split(",") if m.strip()]
    load_before = load_average()
    print(load_before)

    runs: dict[int, list[dict[str, Any]]] = {m: [] for m in modes}
    waits: dict[int, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-browser-") as tmp:
        servers: dict[int, Server] = {}
        try:
            for m in modes:
                servers[m] = Server(tenant, preheat=m, folder=Path(tmp))
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                states = {m: login_state(browser, s) for m, s in servers.items()}
                for m, s in servers.items():  # untimed first visit
                    waited = sum(other.wait_ready() for other in servers.values())
                    print(f"preheat={m}: ready after {waited:.1f} s; untimed visit ...")
                    first = visit(browser, s, states[m])
                    print(f"  untimed: first tile {first['first_tile_s']:.2f} s, all {first['all_tiles_s']:.2f} s, "
                          f"pooled={first['pooled']}")
                for i in range(args.repeat):
                    for m, s in servers.items():
                        # every server ready: the other mode's refill must not run during this visit
                        waits[m].append(sum(other.wait_ready() for other in servers.values()))
                        r = visit(browser, s, states[m])
                        runs[m].append(r)
                        print(f"round {i + 1} preheat={m}: first tile {r['first_tile_s']:.2f} s, all tiles "
                              f"{r['all_tiles_s']:.2f} s, pooled={r['pooled']}, data age {r['data_age_s']} s, "
                              f"build {r['build_s']} s, page {r['page_s']} (waited {waits[m][-1]:.1f} s before)")
                browser.close()
        finally:
            for s in servers.values():
                s.stop()
    load_after = load_average()
    print(load_after)

    cases = []
    for m in modes:
        label = "preheat" if m else "no_preheat"
        extra = {"pooled_visits": sum(r["pooled"] for r in runs[m]),
                 "non_loopback_requests": sum(r["non_loopback_requests"] for r in runs[m]),
                 "median_data_age_s": statistics.median(r["data_age_s"] for r in runs[m] if r["data_age_s"] is not None),
                 "median_wait_before_s": round(statistics.median(waits[m]), 1),
                 **{f"median_{k}_s": round(statistics.median(r["page_s"][k] for r in runs[m]), 2)
                    for k in ("first_byte", "last_byte", "load") if all(r["page_s"] for r in runs[m])}}
        cases.append(summary(f"{label}_first_tile", [r["first_tile_s"] for r in runs[m]],
                             f"goto → first .wb-num visible (preheat pool {m})", extra))
        cases.append(summary(f"{label}_all_tiles", [r["all_tiles_s"] for r in runs[m]],
                             f"goto → all 11 tiles with numbers, tables, empty text, loaded charts (preheat pool {m})",
                             extra))
    baseline = "no_preheat_all_tiles" if 0 in modes else cases[-1]["name"]
    base = next(c for c in cases if c["name"] == baseline)
    for c in cases:
        c["baseline"] = c["name"] == baseline
        c["ratio"] = statistics.median(t / b for t, b in zip(c["times"], base["times"]) if b > 0)
    verdict: dict[str, Any] = {}
    pre = next((m for m in modes if m), None)
    if pre is not None:
        first = next(c for c in cases if c["name"] == "preheat_first_tile")["median"]
        every = next(c for c in cases if c["name"] == "preheat_all_tiles")["median"]
        verdict = {"first_tile_median_s": first, "first_tile_target_s": TARGET_FIRST_S,
                   "all_tiles_median_s": every, "all_tiles_target_s": TARGET_ALL_S,
                   "met": first <= TARGET_FIRST_S and every <= TARGET_ALL_S, "preheat_pool": pre}
    report = {
        "suite": SUITE,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_before": load_before, "load_after": load_after},
        "params": {"tenant": str(tenant.root), "repeat": args.repeat, "modes": modes, "window": "30d (default)",
                   "viewport": "1400x3000", "browser": CHROMIUM},
        "setup": {"projection_days_cached": days, "projection_warm_s": round(warm_s, 2),
                  "email_rows": _email_rows(tenant)},
        "repeat": args.repeat,
        "warmup": 1,
        "interleaved": True,
        "baseline": baseline,
        "cases": cases,
        "runs": {str(m): runs[m] for m in modes},
        "target": verdict,
    }
    print(render(report))
    if verdict:
        print(f"target (preheated): first tile {verdict['first_tile_median_s']:.2f} s ≤ {TARGET_FIRST_S} s, "
              f"all tiles {verdict['all_tiles_median_s']:.2f} s ≤ {TARGET_ALL_S} s: "
              + ("met" if verdict["met"] else "MISSED"))
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{SUITE}.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {path}")
    return report


def _email_rows(tenant: Any) -> int | None:
    try:
        return json.loads((tenant.root / "tenant.json").read_text())["rows"]["EmailEvents"]
    except (OSError, KeyError, ValueError):
        return None


if __name__ == "__main__":
    main()
