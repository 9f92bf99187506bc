"""The processing stages `workbench demo` runs on a tenant after it exists.

Later capabilities (detection, alert policies, automated investigation) register a stage
here; each stage is idempotent, so running the pipeline twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.tenant import Tenant


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Tenant], str]  # returns a one-line summary


def _dashboard_projection(tenant: Tenant) -> str:
    from workbench.dashboard.projection import warm
    from workbench.lake import Lake

    return f"{warm(Lake.for_tenant(tenant)):,} days of mail ready for the dashboard"


def _alerts(tenant: Tenant) -> str:
    from workbench.incidents import alerting
    from workbench.lake import Lake
    from workbench.store import open_store

    store = open_store(tenant)
    try:
        result = alerting.run(store, Lake.for_tenant(tenant))
    finally:
        store.dispose()
    return (f"{len(result.new_alerts)} new alert(s), {len(result.incidents_created)} incident(s) created, "
            f"{len(result.incidents_extended)} extended")


def _investigations(tenant: Tenant) -> str:
    from workbench.air import dispatch
    from workbench.store import open_store

    store = open_store(tenant)
    try:
        with dispatch.PapermillRunner(tenant, None, 600) as runner:  # a kernel per worker, shared by its runs
            outcomes = dispatch.dispatch(store, runner, concurrency=2)
    finally:
        store.dispose()
    done = sum(o.status == "done" for o in outcomes)
    return f"{done} investigation(s) run for new alerts" + (f", {len(outcomes) - done} failed" if len(outcomes) > done else "")


def _actions(tenant: Tenant) -> str:
    from workbench.actions import ActionService, import_all
    from workbench.actions.service import AIR_ACTOR, import_file_alerts
    from workbench.store import open_store

    store = open_store(tenant)
    try:
        found = import_all(store)  # AIR's proposals become pending actions (once each)
        # content-malware alerts' files become pending blocks (once per alert)
        found += import_file_alerts(ActionService.for_tenant(tenant, store, AIR_ACTOR, system=True))
    finally:
        store.dispose()
    return f"{sum(a.status.value == 'pending' for a in found)} action(s) pending approval in the action center"


def _intel(tenant: Tenant) -> str:
    """Import the tenant's feeds (its ``intel/`` folder) and retro-hunt what is new: matches in
    past mail become alerts, which AIR then investigates like the other policies' (post-delivery
    remediation of what the new intelligence reveals)."""
    from workbench.identity import acting_user
    from workbench.intel.imports import import_paths
    from workbench.intel.retrohunt import retro_hunt
    from workbench.lake import Lake
    from workbench.store import open_store

    store = open_store(tenant)
    try:
        folder = tenant.root / "intel"
        imported = import_paths(store, [folder], actor=acting_user()) if folder.is_dir() else []
        hunted = retro_hunt(store, Lake.for_tenant(tenant))
    finally:
        store.dispose()
    return (f"{sum(r.added for r in imported)} indicator(s) imported; retro-hunt: {len(hunted.new_alerts)} "
            f"alert(s), {len(hunted.incidents_created)} incident(s) created")


def _learn(tenant: Tenant) -> str:
    """Indicators the investigations found (malicious URLs, files, sender infrastructure) join the store."""
    from workbench.intel.exports import learn_from_investigations
    from workbench.store import open_store

    store = open_store(tenant)
    try:
        learned = learn_from_investigations(store)
    finally:
        store.dispose()
    return f"{learned.added} indicator(s) learned from investigations"


def _simulation(tenant: Tenant) -> str:
    from workbench.simulator.demo import seed

    return seed(tenant)


STAGES: list[Stage] = [Stage("dashboard", _dashboard_projection), Stage("intel", _intel), Stage("alerts", _alerts),
                       Stage("investigations", _investigations), Stage("actions", _actions),
                       Stage("learn", _learn), Stage("simulation", _simulation)]


def run_pipeline(tenant: Tenant, *, progress: bool = False) -> list[str]:
    """Run every registered stage in order; return their one-line summaries."""
    summaries = []
    for stage in STAGES:
        summary = stage.run(tenant)
        if progress:
            print(f"{stage.name}: {summary}", flush=True)
        summaries.append(summary)
    return summaries
