"""``workbench files ...``: the shared files of SharePoint, OneDrive and Teams (the tenant's file
store): list them, list the blocked ones, propose blocking files by SHA256 (approve and run the
proposal with ``workbench actions``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _table, db_option

WORKLOADS = ["SharePoint", "OneDrive", "Teams"]


def _files(home: Path | None, tenant_name: str) -> Any:
    from workbench import tenant as tenants
    from workbench.errors import NotFound
    from workbench.files import FileStore

    tenant = tenants.open_tenant(tenant_name, base=home)
    if not tenant.files_dir.is_dir():
        raise NotFound(f"tenant {tenant.name!r} has no file store ({tenant.files_dir}); generate the demo tenant again")
    return FileStore.for_tenant(tenant)


@click.group()
def files() -> None:
    """Shared files (SharePoint, OneDrive, Teams): list, blocked, block."""


@files.command("list")
@click.option("--workload", type=click.Choice(WORKLOADS), default=None, help="Only this workload.")
@click.option("--site", default=None, help="Only this site, OneDrive drive or team (its folder name).")
@home_option
@tenant_option
@friendly_errors
def files_list(workload: str | None, site: str | None, home: Path | None, tenant_name: str) -> None:
    """Files in place (blocked files are listed by `workbench files blocked`)."""
    found = _files(home, tenant_name).list(workload, site)
    click.echo(_table([[f.ref.workload.value, f.ref.site, f.ref.path, f"{f.size:,}", f.sha256] for f in found],
                      ["workload", "site", "path", "bytes", "SHA256"]))


@files.command("blocked")
@home_option
@tenant_option
@friendly_errors
def files_blocked(home: Path | None, tenant_name: str) -> None:
    """Blocked (quarantined) files: where each was, its hash and when it was blocked."""
    found = _files(home, tenant_name).blocked()
    click.echo(_table([[f.ref.workload.value, f.ref.site, f.ref.path, f.sha256, f.blocked_at] for f in found],
                      ["workload", "site", "path", "SHA256", "blocked"]))


@files.command("block")
@click.argument("sha256s", nargs=-1, required=True)
@click.option("--reason", default="", help="Why (kept with the action).")
@home_option
@tenant_option
@db_option
@friendly_errors
def files_block(sha256s: tuple[str, ...], reason: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Propose blocking every place holding these files (a pending action for an approver)."""
    from workbench.actions.service import propose_file_blocks
    from workbench.cli_actions import _service

    a = propose_file_blocks(_service(home, tenant_name, db_url), sha256s, reason=reason)
    click.echo(f"action {a.id} ({a.kind.label}, {a.totals.targets} place(s)) is {a.status.value}; "
               f"approve it with: workbench actions approve {a.id}")


__all__ = ["files"]
