"""Who may do what in the action center: the one place the permission check lives.

With roles (:mod:`workbench.rbac`, docs/rbac.md): once the tenant's store holds any role
assignment, *Search and Purge* here means the RBAC *action approval* permission (approve,
reject, run and undo remediation: Global Administrator or the Search and Purge add-on) and
proposing needs *start investigation* or *remediation* (a role that acts: Security Operator,
Security Administrator, Global Administrator, or the Search and Purge add-on); readers may not.

Fallback while a store holds no role assignment (or when no store is given): the users listed
in ``WORKBENCH_APPROVERS`` (comma separated) are approvers; when that variable is unset or
empty, every user is one (a one-person workbench: the acting user is its admin). The first
``workbench roles ...`` command makes its user Global Administrator and ends the fallback.
An explicit *approvers* set (embedding, tests) overrides both.

>>> has("bob", Permission.SEARCH_AND_PURGE, approvers=frozenset({"ana"}))
False
>>> require("ana", Permission.SEARCH_AND_PURGE, approvers=frozenset({"ana"}))
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING

from workbench.errors import PermissionDenied

if TYPE_CHECKING:
    from workbench.store.engine import Store

APPROVERS_ENV = "WORKBENCH_APPROVERS"


class Permission(StrEnum):
    PROPOSE = "Propose remediation"
    SEARCH_AND_PURGE = "Search and Purge"  # approve, reject, run and undo remediation


def _rbac(permission: Permission) -> tuple:  # -> workbench.rbac.Permission, any of which suffices
    from workbench.rbac import Permission as P

    return (P.START_INVESTIGATION, P.REMEDIATION) if permission is Permission.PROPOSE else (P.ACTION_APPROVAL,)


def _uses_roles(store: Store | None) -> bool:
    if store is None:
        return False
    from workbench.rbac import has_assignments

    return has_assignments(store)


def approvers_from_env() -> frozenset[str] | None:
    """The configured approvers (lower-cased), or None when every user is one."""
    names = {n.strip().lower() for n in os.environ.get(APPROVERS_ENV, "").split(",") if n.strip()}
    return frozenset(names) or None


def has(user: str, permission: Permission, *, approvers: frozenset[str] | None = None,
        store: Store | None = None) -> bool:
    """Whether *user* holds *permission* (see the module docstring for where the answer comes from)."""
    if approvers is None and _uses_roles(store):
        from workbench import rbac

        return rbac.has(store, user, *_rbac(permission))
    if permission is Permission.PROPOSE:
        return bool(user)
    allowed = approvers if approvers is not None else approvers_from_env()
    return allowed is None or user.strip().lower() in allowed


def require(user: str, permission: Permission, *, approvers: frozenset[str] | None = None,
            store: Store | None = None, target: str = "") -> None:
    """Raise :class:`PermissionDenied` naming the missing role unless *user* holds *permission*."""
    if has(user, permission, approvers=approvers, store=store):
        return
    if approvers is None and _uses_roles(store):
        from workbench import rbac

        rbac.audit_denied(store, user, _rbac(permission)[0], activity=f"action.{permission.name.lower()}",
                          target=target)
        raise rbac.denied(user, *_rbac(permission))
    raise PermissionDenied(
        f"{user or 'an unknown user'} lacks the {permission.value} role; ask an approver to do this, "
        f"or add {user} to {APPROVERS_ENV}")


__all__ = ["APPROVERS_ENV", "Permission", "approvers_from_env", "has", "require"]
