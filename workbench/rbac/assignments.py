"""Role assignments in the tenant's store: who holds which role, and the check services call.

Only a user holding *role management* may grant or revoke. Bootstrap: while the store holds no
assignment at all, the first acting user who runs ``workbench roles ...`` (or the demo
pipeline, for the tenant's creator) becomes Global Administrator (:func:`bootstrap`).

Until a store holds any assignment, checks fall back to ``WORKBENCH_APPROVERS`` for the
action center (see :mod:`workbench.actions.permissions`) and allow everything else: a new
one-person workbench keeps working; the first grant switches the tenant to roles. Refusals,
grants and revocations are written to the audit log (:mod:`workbench.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from workbench.errors import InputError, NotFound
from workbench.rbac.model import Permission, Role, denied, permissions_of
from workbench.store import tables as t
from workbench.store.engine import Store

BOOTSTRAP = "bootstrap"  # granted_by of the first Global Administrator


@dataclass(frozen=True)
class Assignment:
    user: str
    role: Role
    granted_by: str
    granted: datetime | None


def _norm(user: str) -> str:
    name = (user or "").strip().lower()
    if not name:
        raise InputError("empty user name; pass the user's login name, e.g. ana")
    return name


def assignments(store: Store) -> list[Assignment]:
    """Every role assignment, by user then role."""
    ra = t.role_assignments
    with store.read() as conn:
        rows = conn.execute(sa.select(ra).order_by(ra.c.user_name, ra.c.role)).all()
    return [Assignment(r.user_name, Role(r.role), r.granted_by, r.granted) for r in rows]


def has_assignments(store: Store) -> bool:
    """Whether the store holds any role assignment (the tenant uses roles; a store not yet migrated
    to the roles table has none)."""
    with store.read() as conn:
        if not sa.inspect(conn).has_table(t.role_assignments.name):
            return False
        return conn.execute(sa.select(sa.func.count()).select_from(t.role_assignments)).scalar_one() > 0


def roles_of(store: Store, user: str) -> frozenset[Role]:
    """The roles granted to *user*."""
    ra = t.role_assignments
    with store.read() as conn:
        rows = conn.execute(sa.select(ra.c.role).where(ra.c.user_name == _norm(user))).scalars().all()
    return frozenset(Role(r) for r in rows)


def has(store: Store, user: str, permission: Permission, *alternatives: Permission) -> bool:
    """Whether *user* holds *permission* (or any of *alternatives*) through their roles (True while
    no assignment exists)."""
    if not has_assignments(store):
        return True
    held = permissions_of(roles_of(store, user)) if user else frozenset()
    return any(p in held for p in (permission, *alternatives))


def audit_denied(store: Store, user: str, permission: Permission, *, activity: str = "", target: str = "") -> None:
    """The one hook for a refused attempt: an audit record (``result="denied"``, workbench.audit)."""
    from workbench import audit

    audit.record(store, actor=user or "", activity=activity or f"permission.{permission.name.lower()}",
                 target=target, result="denied", details={"permission": permission.value})


def require(store: Store, user: str, permission: Permission, *alternatives: Permission, activity: str = "",
            target: str = "") -> None:
    """Raise :class:`~workbench.errors.PermissionDenied` naming the roles that grant *permission*
    (or any of *alternatives*); the refusal is audited (:func:`audit_denied`; *activity* and
    *target* name the attempt)."""
    if not has(store, user, permission, *alternatives):
        audit_denied(store, user, permission, activity=activity, target=target)
        raise denied(user, permission, *alternatives)


def _audit(conn: sa.Connection, actor: str, activity: str, user: str, role: Role, **details: str) -> None:
    """The role change's audit record, in the change's own transaction."""
    from workbench import audit

    audit.append(conn, actor=actor, activity=activity, target=f"{user}: {role.value}", details=details)


def bootstrap(store: Store, user: str) -> bool:
    """Make *user* Global Administrator if the store holds no assignment yet; True if it did."""
    name = _norm(user)

    def do(conn: sa.Connection) -> bool:
        if conn.execute(sa.select(sa.func.count()).select_from(t.role_assignments)).scalar_one():
            return False
        conn.execute(t.role_assignments.insert().values(user_name=name, role=Role.GLOBAL_ADMINISTRATOR.value,
                                                        granted_by=BOOTSTRAP, granted=datetime.now(UTC)))
        _audit(conn, BOOTSTRAP, "role.grant", name, Role.GLOBAL_ADMINISTRATOR, reason="first acting user")
        return True

    return store.run(do)


def grant(store: Store, actor: str, user: str, role: Role) -> bool:
    """*actor* grants *role* to *user*; False if *user* already held it. Needs role management."""
    require(store, actor, Permission.ROLE_MANAGEMENT, activity="role.grant", target=f"{user}: {role.value}")
    name, by = _norm(user), _norm(actor)

    def do(conn: sa.Connection) -> bool:
        ra = t.role_assignments
        exists = conn.execute(sa.select(ra.c.role).where(ra.c.user_name == name, ra.c.role == role.value)).first()
        if exists is None:
            conn.execute(ra.insert().values(user_name=name, role=role.value, granted_by=by, granted=datetime.now(UTC)))
            _audit(conn, by, "role.grant", name, role)
        return exists is None

    return store.run(do)


def revoke(store: Store, actor: str, user: str, role: Role) -> None:
    """*actor* revokes *role* from *user*. Needs role management; the last role manager stays."""
    require(store, actor, Permission.ROLE_MANAGEMENT, activity="role.revoke", target=f"{user}: {role.value}")
    name = _norm(user)

    def do(conn: sa.Connection) -> None:
        ra = t.role_assignments
        gone = conn.execute(ra.delete().where(ra.c.user_name == name, ra.c.role == role.value)).rowcount
        if not gone:
            raise NotFound(f"{name} does not hold {role.value}; see workbench roles list")
        left = conn.execute(sa.select(ra.c.user_name, ra.c.role)).all()
        if not any(Permission.ROLE_MANAGEMENT in permissions_of([Role(r.role)]) for r in left):
            raise InputError(f"revoking {role.value} from {name} would leave no role manager; "
                             "grant Global Administrator to someone else first")
        _audit(conn, _norm(actor), "role.revoke", name, role)

    store.run(do)


__all__ = ["Assignment", "BOOTSTRAP", "assignments", "has_assignments", "roles_of", "has", "require",
           "audit_denied", "bootstrap", "grant", "revoke"]
