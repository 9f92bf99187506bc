"""The demo tenant's analysts: a few named users in different roles, so the effect of roles is
visible in the apps (``WORKBENCH_USER=bob workbench serve`` shows a read-only action center).

Seeded by ``workbench demo`` once, when the store holds no assignment yet: the tenant's creator
(the acting user) becomes Global Administrator and grants the rest.
"""

from __future__ import annotations

from workbench.rbac.assignments import bootstrap, grant, has_assignments
from workbench.rbac.model import Role
from workbench.store.engine import Store

DEMO_ANALYSTS: tuple[tuple[str, tuple[Role, ...]], ...] = (
    ("ana", (Role.SECURITY_OPERATOR, Role.SEARCH_AND_PURGE)),  # triages and remediates
    ("bob", (Role.SECURITY_READER,)),  # looks, proposes nothing he cannot see
    ("carol", (Role.SECURITY_ADMINISTRATOR, Role.PREVIEW)),  # policies, roles, reads content
    ("dan", (Role.GLOBAL_READER, Role.ATTACK_SIMULATION_ADMINISTRATOR)),  # simulations only
)


def seed_demo(store: Store, creator: str) -> int:
    """Grant the demo analysts their roles (and *creator* Global Administrator) if the store holds
    no assignment yet; the number of grants made (0: the tenant already had roles)."""
    if has_assignments(store) or not bootstrap(store, creator):
        return 0
    return 1 + sum(grant(store, creator, user, role) for user, roles in DEMO_ANALYSTS for role in roles)


__all__ = ["DEMO_ANALYSTS", "seed_demo"]
