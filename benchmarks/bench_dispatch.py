"""Dispatch benchmark: every alert of a tenant investigated by ``workbench air dispatch`` at
concurrency 2, end to end (claims, records, papermill, the analyzers), on a fresh copy of the
tenant's alerts each run.

Cases (interleaved rounds; each run starts from the same alerts, none claimed):

- ``kernel_per_group`` (baseline): the dispatcher before kernel sharing: alerts grouped by
  incident and playbook, a fresh kernel for each group's notebook;
- ``shared_kernels``: the dispatcher as shipped: the same groups, one kernel per worker
  running the groups' notebooks one after another (each still its own executed notebook);
- ``in_process``: the same groups' investigations called in this process (no kernel, no
  notebook): what the analyzers and record writes cost;
- ``kernel_per_alert``: the naive design, one kernel per alert, on the first ``--subset``
  alerts only; its time is extrapolated to every alert (``extrapolated_s``).

Where the time goes (kernel starts, imports, analyzers, the rest of each notebook, the
dispatcher's own work) comes from the runner's timings, the executed notebooks' cell
durations and the analyzer log. The alerts are what the tenant's alert policies raise, topped
up to ``--min-alerts`` with manual investigations an analyst starts from the Explorer (one
junked phish copy each, one sender domain after another: "Admin triggered manual
investigation of email", filed as the Explorer files it); without ``--tenant`` a demo tenant
of ``--users`` users is generated in a temporary folder. The
given tenant is never written to: the benchmark works on a folder linking to its lake and
mail store, with a database of its own. Run from the project root::

    .venv/bin/python -m benchmarks.bench_dispatch [--tenant PATH] [--users 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, Case, run


def _scratch_tenant(source: Path, scratch: Path) -> Path:
    """A tenant folder whose lake, mail store and intelligence are links to *source*'s: the
    runs write executed notebooks here, never into *source*."""
    root = scratch / "tenant"
    root.mkdir()
    for item in source.iterdir():
        if item.name in ("investigations", "cache") or item.name.startswith("workbench.sqlite"):
            continue
        (root / item.name).symlink_to(item.resolve()) if item.is_dir() else shutil.copy2(item, root / item.name)
    return root


def explorer_picks(lake: Any, n: int) -> list[tuple[str, str, Any]]:
    """*n* junked phish copies an analyst would pick in the Explorer, one per sender domain
    first: (NetworkMessageId, recipient, time)."""
    import polars as pl

    rows = (lake.scan("EmailEvents", columns=["NetworkMessageId", "RecipientEmailAddress", "SenderFromDomain",
                                              "DeliveryAction", "ThreatTypes", "Timestamp"])
            .filter((pl.col("DeliveryAction") == "Junked") & pl.col("ThreatTypes").str.contains("Phish"))
            .sort("SenderFromDomain", "Timestamp", "NetworkMessageId", "RecipientEmailAddress").collect())
    rows = rows.with_columns(pl.int_range(pl.len()).over("SenderFromDomain").alias("nth")).sort("nth", "SenderFromDomain")
    return [(r["NetworkMessageId"], r["RecipientEmailAddress"], r["Timestamp"]) for r in rows.head(n).iter_rows(named=True)]


def _alerts_db(tenant: Any, path: Path, min_alerts: int) -> dict[str, int]:
    """File the tenant's alerts in a new SQLite store at *path*, then, if they are fewer than
    *min_alerts*, the manual investigations an analyst starts from the Explorer (one junked
    phish copy each, as the Explorer's "Start investigation" files them); counts."""
    from datetime import timedelta

    from workbench.air import dispatch
    from workbench.air.playbook import PLAYBOOK_FOR_POLICY
    from workbench.detect.policies import manual_investigation_draft
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService
    from workbench.lake import Lake
    from workbench.store import open_store

    store = open_store(url=f"sqlite:///{path}")
    try:
        lake = Lake.for_tenant(tenant)
        alerting.run(store, lake)
        service = IncidentService(store, "analyst@bench")
        policy = sum(a.policy_id in PLAYBOOK_FOR_POLICY for a in service.alerts())
        picks = explorer_picks(lake, max(0, min_alerts - policy))
        for nmid, recipient, when in picks:
            service.add_alerts([manual_investigation_draft([(nmid, recipient)], "analyst@bench", when + timedelta(hours=1))])
        alerts = service.alerts()
        groups = dispatch.pending(store)
        counts = {"alerts": len(alerts), "alerts_with_playbook": sum(a.policy_id in PLAYBOOK_FOR_POLICY for a in alerts),
                  "policy_alerts_with_playbook": policy, "explorer_investigations": len(picks),
                  "groups": len(groups), "incidents": len({a.incident_id for a in alerts})}
    finally:
        store.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


def _fresh(base: Path, scratch: Path, n: list[int]) -> str:
    n[0] += 1
    target = scratch / f"run-{n[0]}.sqlite"
    shutil.copy2(base, target)
    return f"sqlite:///{target}"


def breakdown(runner: Any, store: Any, wall: float, concurrency: int) -> dict[str, Any]:
    """Where one papermill dispatch's time went (seconds, summed over its runs unless a median)."""
    import sqlalchemy as sa

    from workbench.store import tables as t

    runs = list(runner.timings)
    with store.read() as conn:
        analyzers = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(t.analyzer_log.c.seconds), 0.0))).scalar_one()
    fresh = [r for r in runs if r.kernel_start > 0 or not runner.share_kernels]  # the first notebook in its kernel
    warm = [r for r in runs if r not in fresh]
    main_cell = lambda r: max(r.cells, default=0.0)  # noqa: E731  (the playbook's one working cell)
    # a fresh kernel's first notebook also imports the workbench; a warm kernel has it loaded
    imports = sum(main_cell(r) for r in fresh) - len(fresh) * statistics.median(map(main_cell, warm)) if warm else 0.0
    cells = sum(main_cell(r) for r in runs)
    worker = sum(r.kernel_start + r.reset + r.execute for r in runs)
    med = lambda xs: round(statistics.median(xs), 3) if xs else 0.0  # noqa: E731
    return {
        "runs": len(runs), "kernels": len(fresh),
        "fresh_kernel_run_median_s": med([r.kernel_start + r.execute for r in fresh]),
        "warm_kernel_run_median_s": med([r.reset + r.execute for r in warm]),
        "kernel_and_papermill_s": round(sum(r.kernel_start + r.execute - sum(r.cells) for r in runs), 2),
        "namespace_reset_s": round(sum(r.reset for r in runs), 2),
        "imports_s": round(max(imports, 0.0), 2),
        "analyzers_s": round(analyzers, 2),
        "notebook_rest_s": round(max(cells - max(imports, 0.0) - analyzers, 0.0), 2),
        "worker_s": round(worker, 2),
        "dispatcher_idle_s": round(max(wall * concurrency - worker, 0.0), 2),
        "wall_s": round(wall, 2),
    }


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR,
         echo: Callable[[str], None] = print) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", default=None, help="a tenant folder or name (default: generate one)")
    parser.add_argument("--users", type=int, default=1000, help="users of the generated tenant")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--min-alerts", type=int, default=100,
                        help="alerts with a playbook; the policies' alerts are topped up with Explorer investigations")
    parser.add_argument("--subset", type=int, default=8, help="alerts the naive kernel-per-alert case runs")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", default="kernel_per_group,shared_kernels,in_process,kernel_per_alert",
                        help="comma-separated subset of the cases")
    args = parser.parse_args(argv)

    import sqlalchemy as sa

    from workbench.air import dispatch
    from workbench.store import open_store
    from workbench.store import tables as t
    from workbench.tenant import open_tenant

    scratch = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    try:
        if args.tenant:
            source = open_tenant(args.tenant).root
        else:
            from workbench.ingest.demo import generate

            echo(f"  generating a {args.users}-user, {args.days}-day tenant ...")
            source = generate("bench", users=args.users, days=args.days, seed=args.seed, end=date(2026, 11, 27),
                              base=scratch / "home").root
        tenant = open_tenant(str(_scratch_tenant(Path(source), scratch)))
        base = scratch / "alerts.sqlite"
        setup = _alerts_db(tenant, base, args.min_alerts)
        if setup["alerts_with_playbook"] < args.min_alerts:
            raise SystemExit(f"the tenant has {setup['alerts_with_playbook']} alerts with a playbook, fewer than "
                             f"--min-alerts {args.min_alerts}; generate a bigger one (--users) or lower --min-alerts")
        runs = [0]
        last: dict[str, dict[str, Any]] = {}

        def dispatched(make: Callable[[str], Any], name: str) -> dict[str, Any]:
            import time

            db = _fresh(base, scratch, runs)
            store = open_store(url=db)
            runner = make(db)
            try:
                clock = time.perf_counter()
                outcomes = dispatch.dispatch(store, runner, concurrency=args.concurrency, retries=0,
                                             settings=dispatch.Throttle(max_running=10_000, max_messages=100_000))
                wall = time.perf_counter() - clock
            finally:
                if hasattr(runner, "close"):
                    runner.close()
            with store.read() as conn:
                investigations = conn.execute(sa.select(sa.func.count()).select_from(t.investigations)).scalar_one()
            metrics: dict[str, Any] = {"groups": len(outcomes), "investigations": investigations,
                                       "alerts": sum(len(o.group.alert_ids) for o in outcomes),
                                       "failed": sum(o.status != "done" for o in outcomes)}
            if hasattr(runner, "timings"):
                metrics.update(breakdown(runner, store, wall, args.concurrency))
            else:
                with store.read() as conn:
                    metrics["analyzers_s"] = round(conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(t.analyzer_log.c.seconds), 0.0))).scalar_one(), 2)
                metrics["wall_s"] = round(wall, 2)
            store.dispose()
            last[name] = metrics
            return metrics

        def naive() -> dict[str, Any]:
            """One kernel per alert: every alert its own group (the first --subset alerts)."""
            import time

            db = _fresh(base, scratch, runs)
            store = open_store(url=db)
            groups = [dispatch.Group(g.playbook, g.incident_id, (a,), g.messages)
                      for g in dispatch.pending(store) for a in g.alert_ids][:args.subset]
            runner = dispatch.PapermillRunner(tenant, db, 600, share_kernels=False)
            clock = time.perf_counter()
            from concurrent.futures import ThreadPoolExecutor

            def one(group: dispatch.Group) -> Any:
                return dispatch.start(store, runner, group.playbook, group.parameters, started_by="bench")
            with ThreadPoolExecutor(args.concurrency) as pool:
                outcomes = list(pool.map(one, groups))
            wall = time.perf_counter() - clock
            runner.close()
            total = setup["alerts_with_playbook"]
            metrics = {"alerts": len(groups), "groups": len(groups), "failed": sum(o.status != "done" for o in outcomes),
                       "extrapolated_s": round(wall * total / max(len(groups), 1), 1),
                       **breakdown(runner, store, wall, args.concurrency)}
            store.dispose()
            last["kernel_per_alert"] = metrics
            return metrics

        available = {
            "kernel_per_group": Case("kernel_per_group", lambda: dispatched(
                lambda db: dispatch.PapermillRunner(tenant, db, 600, share_kernels=False), "kernel_per_group"),
                baseline=True, description="a fresh kernel per group (before kernel sharing)"),
            "shared_kernels": Case("shared_kernels", lambda: dispatched(
                lambda db: dispatch.PapermillRunner(tenant, db, 600, share_kernels=True), "shared_kernels"),
                description="one kernel per worker, a notebook per group"),
            "in_process": Case("in_process", lambda: dispatched(
                lambda db: dispatch.InProcessRunner(tenant, db), "in_process"),
                description="the same investigations, no kernel, no notebook"),
            "kernel_per_alert": Case("kernel_per_alert", naive,
                                     description=f"naive: a kernel per alert, first {args.subset} alerts"),
        }
        wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
        unknown = set(wanted) - set(available)
        if unknown:
            raise SystemExit(f"unknown case(s) {sorted(unknown)}; cases: {', '.join(available)}")
        cases = [available[c] for c in wanted]
        if not any(c.baseline for c in cases):
            cases = [Case(cases[0].name, cases[0].fn, True, cases[0].description), *cases[1:]]
        report = run("dispatch", cases, repeat=args.repeat, warmup=0, interleave=True, echo=echo,
                     params={k: v for k, v in vars(args).items() if k != "cases"} | {"cases": wanted},
                     setup=setup, results_dir=None)
        report["breakdown"] = last
        for name, metrics in last.items():
            echo(f"{name}: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            path = results_dir / "dispatch.json"
            path.write_text(json.dumps(report, indent=2, default=str) + "\n")
            echo(f"wrote {path}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
