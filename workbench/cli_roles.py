"""``workbench roles list|grant|revoke``: role assignments on the command line (docs/rbac.md).

The acting user comes from :func:`workbench.identity.acting_user`. The first ``roles`` command
run against a store without any assignment makes its user Global Administrator (bootstrap);
granting and revoking need the *role management* permission.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _table, _when, db_option


def _open(home: Path | None, tenant_name: str, db_url: str | None) -> tuple[Any, str]:
    from workbench import rbac
    from workbench import tenant as tenants
    from workbench.identity import acting_user
    from workbench.store import open_store

    store = open_store(tenants.open_tenant(tenant_name, base=home), db_url)
    actor = acting_user()
    if rbac.bootstrap(store, actor):
        click.echo(f"{actor} is the first Global Administrator of this tenant (no role was assigned yet)", err=True)
    return store, actor


@click.group()
def roles() -> None:
    """Role assignments: who may read content, remediate, approve, manage roles..."""


@roles.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def roles_list(as_json: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Every role assignment (user, role, granted by, when)."""
    from workbench import rbac

    store, _ = _open(home, tenant_name, db_url)
    found = rbac.assignments(store)
    if as_json:
        for a in found:
            click.echo(json.dumps({"user": a.user, "role": a.role.value, "grantedBy": a.granted_by,
                                   "granted": a.granted.isoformat() if a.granted else None}))
        return
    click.echo(_table([[a.user, a.role.value, a.granted_by, _when(a.granted)] for a in found],
                      ["user", "role", "granted by", "granted"]))


@roles.command("grant")
@click.argument("user")
@click.argument("role")
@home_option
@tenant_option
@db_option
@friendly_errors
def roles_grant(user: str, role: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Grant ROLE (e.g. 'Security Operator', Preview) to USER."""
    from workbench import rbac

    parsed = rbac.Role.parse(role)
    store, actor = _open(home, tenant_name, db_url)
    new = rbac.grant(store, actor, user, parsed)
    click.echo(f"{user.strip().lower()} {'now holds' if new else 'already held'} {parsed.value}")


@roles.command("revoke")
@click.argument("user")
@click.argument("role")
@home_option
@tenant_option
@db_option
@friendly_errors
def roles_revoke(user: str, role: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Revoke ROLE from USER."""
    from workbench import rbac

    parsed = rbac.Role.parse(role)
    store, actor = _open(home, tenant_name, db_url)
    rbac.revoke(store, actor, user, parsed)
    click.echo(f"{user.strip().lower()} no longer holds {parsed.value}")


__all__ = ["roles"]
