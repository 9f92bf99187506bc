"""Who may do what in the action center: the one place the permission check lives.

Until the RBAC issue lands, the Search and Purge role (mdo-reference §7: move, delete, approve
remediation) is held by the users listed in ``WORKBENCH_APPROVERS`` (comma separated); when
that variable is unset or empty, every user is an approver (a one-person workbench: the
acting user is its admin). Proposing needs no role: anyone may propose, an approver executes
(two-step approval, §4.6). The RBAC issue replaces :func:`has` and keeps :func:`require`.

>>> has("bob", Permission.SEARCH_AND_PURGE, approvers=frozenset({"ana"}))
False
>>> require("ana", Permission.SEARCH_AND_PURGE, approvers=frozenset({"ana"}))
"""

from __future__ import annotations

import os
from enum import StrEnum

from workbench.errors import PermissionDenied

APPROVERS_ENV = "WORKBENCH_APPROVERS"


class Permission(StrEnum):
    PROPOSE = "Propose remediation"
    SEARCH_AND_PURGE = "Search and Purge"  # approve, reject, run and undo remediation


def approvers_from_env() -> frozenset[str] | None:
    """The configured approvers (lower-cased), or None when every user is one."""
    names = {n.strip().lower() for n in os.environ.get(APPROVERS_ENV, "").split(",") if n.strip()}
    return frozenset(names) or None


def has(user: str, permission: Permission, *, approvers: frozenset[str] | None = None) -> bool:
    """Whether *user* holds *permission* (*approvers* None: read ``WORKBENCH_APPROVERS``)."""
    if permission is Permission.PROPOSE:
        return bool(user)
    allowed = approvers if approvers is not None else approvers_from_env()
    return allowed is None or user.strip().lower() in allowed


def require(user: str, permission: Permission, *, approvers: frozenset[str] | None = None) -> None:
    """Raise :class:`PermissionDenied` naming the missing role unless *user* holds *permission*."""
    if not has(user, permission, approvers=approvers):
        raise PermissionDenied(
            f"{user or 'an unknown user'} lacks the {permission.value} role; ask an approver to do this, "
            f"or add {user} to {APPROVERS_ENV}")


__all__ = ["APPROVERS_ENV", "Permission", "approvers_from_env", "has", "require"]
