"""Role-based access: roles, permissions, the default matrix and role assignments (docs/rbac.md).

>>> from workbench.rbac import Role, Permission, permissions_of
>>> Permission.REMEDIATION in permissions_of([Role.SEARCH_AND_PURGE])
True
"""

from workbench.rbac.assignments import (BOOTSTRAP, Assignment, assignments, audit_denied, bootstrap, grant, has,
                                        has_assignments, require, revoke, roles_of)
from workbench.rbac.model import Permission, Role, denied, granting_roles, matrix, permissions_of

__all__ = ["Permission", "Role", "matrix", "permissions_of", "granting_roles", "denied", "Assignment",
           "BOOTSTRAP", "assignments", "has_assignments", "roles_of", "has", "require", "audit_denied", "bootstrap",
           "grant", "revoke"]
