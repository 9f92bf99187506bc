"""Roles, permissions and the default matrix (``matrix.json``, mdo-reference §7.2/§7.3).

Permissions are separate, as in MDO's unified model: reading metadata is not reading content,
and neither is remediating or approving. A role is a named set of permissions; a user's
permissions are the union over the roles granted to them.

>>> Permission.CONTENT_READ in permissions_of([Role.SECURITY_ADMINISTRATOR])
False
>>> Permission.CONTENT_READ in permissions_of([Role.SECURITY_ADMINISTRATOR, Role.PREVIEW])
True
>>> [r.value for r in granting_roles(Permission.CONTENT_READ)]
['Global Administrator', 'Preview']
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from functools import cache
from importlib import resources

from workbench.errors import InputError, PermissionDenied


class Permission(StrEnum):
    METADATA_READ = "metadata read"  # dashboard, Explorer rows, headers, incidents, action center
    CONTENT_READ = "content read"  # preview/download of bodies and attachments
    REMEDIATION = "remediation"  # move/delete mail, quarantine files
    ACTION_APPROVAL = "action approval"  # approve/reject/run/undo remediation actions
    START_INVESTIGATION = "start investigation"
    INCIDENT_MANAGEMENT = "incident management"  # assign, classify, comment, status
    ALERT_POLICY_CONFIGURATION = "alert policy configuration"
    TRACKER_MANAGEMENT = "tracker management"
    SIMULATION_MANAGEMENT = "simulation management"
    PAYLOAD_AUTHORING = "payload authoring"
    SIEM_CONFIGURATION = "SIEM configuration"
    ROLE_MANAGEMENT = "role management"


class Role(StrEnum):
    GLOBAL_ADMINISTRATOR = "Global Administrator"
    SECURITY_ADMINISTRATOR = "Security Administrator"
    SECURITY_OPERATOR = "Security Operator"
    SECURITY_READER = "Security Reader"
    GLOBAL_READER = "Global Reader"
    SEARCH_AND_PURGE = "Search and Purge"  # add-on
    PREVIEW = "Preview"  # add-on
    ATTACK_SIMULATION_ADMINISTRATOR = "Attack Simulation Administrator"  # add-on
    ATTACK_PAYLOAD_AUTHOR = "Attack Payload Author"  # add-on

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named *text* (case, spaces, hyphens and underscores ignored)."""
        key = "".join(c for c in text.lower() if c.isalnum())
        for role in cls:
            if key in ("".join(c for c in role.value.lower() if c.isalnum()), role.name.lower().replace("_", "")):
                return role
        names = ", ".join(f"'{r.value}'" for r in cls)
        raise InputError(f"unknown role {text!r}; use one of {names}")


@cache
def matrix() -> dict[Role, frozenset[Permission]]:
    """The default role → permissions matrix, read once from the package's ``matrix.json``."""
    data = json.loads(resources.files(__package__).joinpath("matrix.json").read_text(encoding="utf-8"))
    return {Role(name): frozenset(Permission(p) for p in perms) for name, perms in data["roles"].items()}


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    """The union of the permissions the matrix gives *roles*."""
    m = matrix()
    return frozenset().union(*(m.get(r, frozenset()) for r in roles))


def granting_roles(permission: Permission) -> tuple[Role, ...]:
    """The roles that grant *permission*, in :class:`Role` order."""
    return tuple(r for r in Role if permission in matrix().get(r, frozenset()))


def denied(user: str, permission: Permission, *alternatives: Permission) -> PermissionDenied:
    """The one-line error for *user* lacking *permission* (or any of *alternatives*): which roles
    grant it and how to get one."""
    wanted = (permission, *alternatives)
    roles = tuple(r for r in Role if any(p in matrix().get(r, frozenset()) for p in wanted))
    who = user or "an unknown user"
    return PermissionDenied(
        f"{who} lacks the {' or '.join(p.value for p in wanted)} permission "
        f"(granted by {', '.join(r.value for r in roles)}); "
        f"ask a role manager to run: workbench roles grant {user or 'USER'} '{roles[-1].value}'")


__all__ = ["Permission", "Role", "matrix", "permissions_of", "granting_roles", "denied"]
