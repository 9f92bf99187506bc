"""``workbench trackers ...``: tracked Explorer queries (mdo-reference §6.1), counted per UTC day.

``add`` and ``remove`` need tracker management; ``run`` (a scheduler's job) and ``list`` need none.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from workbench.cli_audit import _time
from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _open, _table, db_option
from workbench.errors import InputError


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@click.group()
def trackers() -> None:
    """Tracked queries: Explorer queries counted per day, with trends and threshold alerts."""


@trackers.command("add")
@click.argument("name")
@click.option("--saved", "saved_name", default=None, help="Track this saved Explorer query.")
@click.option("--query-link", "link", default=None, metavar="URL|JSON", help="Track this Explorer link or query JSON.")
@click.option("--threshold", type=click.IntRange(min=1), default=None,
              help="Raise an alert when a day's message count reaches N.")
@home_option
@tenant_option
@db_option
@friendly_errors
def trackers_add(name: str, saved_name: str | None, link: str | None, threshold: int | None, home: Path | None,
                 tenant_name: str, db_url: str | None) -> None:
    """Track a saved query or an Explorer query as NAME (its window is replaced by each day)."""
    from workbench.explorer import as_query
    from workbench.identity import acting_user
    from workbench.intel import trackers as tr

    if (saved_name is None) == (link is None):
        raise InputError("give exactly one of --saved or --query-link")
    tenant, store = _open(home, tenant_name, db_url)
    if saved_name is not None:
        k = tr.track_saved(store, acting_user(), tenant, saved_name, name=name, threshold=threshold)
    else:
        k = tr.track(store, acting_user(), name, as_query(link), threshold=threshold)
    click.echo(f"tracking {k.name!r} ({k.query.view} view)"
               + (f", alert at {k.threshold:,} messages a day" if k.threshold else ""))


@trackers.command("list")
@home_option
@tenant_option
@db_option
@friendly_errors
def trackers_list(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Tracked queries by name."""
    from workbench.intel import trackers as tr

    _, store = _open(home, tenant_name, db_url)
    click.echo(_table([[k.name, k.query.view, k.threshold or "-", k.created_by, _when(k.created), _when(k.last_run)]
                       for k in tr.list_trackers(store)],
                      ["name", "view", "threshold", "created by", "created (UTC)", "last run (UTC)"]))


@trackers.command("run")
@click.option("--now", "now", default=None, metavar="ISO", help="Count as of this UTC time (default: now).")
@home_option
@tenant_option
@db_option
@friendly_errors
def trackers_run(now: str | None, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Count every tracked query for today and the missing prior days; file threshold alerts."""
    from workbench.intel import trackers as tr
    from workbench.lake import Lake

    tenant, store = _open(home, tenant_name, db_url)
    found = tr.run(store, Lake.for_tenant(tenant), now=_time(now, "now"))
    rows = [[s.name, s.today, s.prior_day, _trend(s), s.threshold or "-"] for s in found]
    click.echo(_table(rows, ["name", "today", "prior day", "trend vs. prior week", "threshold"]))
    filed = sum(1 for s in found if s.alert_id)
    if filed:
        click.echo(f"{filed} threshold alert(s) filed")


def _trend(s) -> str:  # noqa: ANN001 - a TrackerStatus
    ratio = "" if s.trend.ratio is None else f" (x{s.trend.ratio:.2f})"
    return f"{s.trend.label}{ratio}"


@trackers.command("remove")
@click.argument("name")
@home_option
@tenant_option
@db_option
@friendly_errors
def trackers_remove(name: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Stop tracking NAME and drop its counts."""
    from workbench.identity import acting_user
    from workbench.intel import trackers as tr

    _, store = _open(home, tenant_name, db_url)
    tr.untrack(store, acting_user(), name)
    click.echo(f"stopped tracking {name!r}")


__all__ = ["trackers"]
