"""The payloads a tenant can use: the shipped library (global, read-only) and the tenant's own,
authored by payload authors (Attack Payload Author, Attack Simulation Administrator, Global /
Security Administrator) and kept in the store. Saving and deleting are audited.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from workbench.errors import InputError, NotFound
from workbench.store import tables as t
from workbench.store.engine import Store

P = t.sim_payloads.c


def _payloads():  # noqa: ANN202 - the module (its import is heavy-ish)
    from workbench.simulator import payloads

    return payloads


def tenant_payloads(store: Store) -> list[Any]:
    """The tenant's own payloads, by id."""
    with store.read() as conn:
        rows = conn.execute(sa.select(P.definition).order_by(P.id)).scalars().all()
    return [_payloads().from_dict(json.loads(d)) for d in rows]


def all_payloads(store: Store | None) -> list[Any]:
    """The shipped library, then the tenant's payloads."""
    return [*_payloads().load_library(), *(tenant_payloads(store) if store is not None else [])]


def get_payload(store: Store | None, payload_id: str) -> Any:
    """The payload *payload_id* (shipped or the tenant's); NotFound names where to look."""
    for p in all_payloads(store):
        if p.id == payload_id:
            return p
    raise NotFound(f"no payload {payload_id!r}; see workbench simulator payloads")


def _require_author(store: Store, actor: str, activity: str, target: str) -> None:
    from workbench import rbac

    rbac.require(store, actor, rbac.Permission.PAYLOAD_AUTHORING, activity=activity, target=target)


def save_payload(store: Store, actor: str, definition: dict[str, Any]) -> Any:
    """Create or replace the tenant payload *definition* (validated); a shipped payload's id is refused."""
    _require_author(store, actor, "simulator.payload.save", str(definition.get("id", "")))
    payload = _payloads().from_dict({**definition, "source": "tenant", "author": actor})
    if any(p.id == payload.id for p in _payloads().load_library()):
        raise InputError(f"payload id {payload.id!r} belongs to the shipped library; choose another id")
    now = datetime.now(UTC)
    body = json.dumps(_payloads().to_dict(payload), sort_keys=True)

    def do(conn: sa.Connection) -> None:
        from workbench import audit

        if conn.execute(t.sim_payloads.update().where(P.id == payload.id).values(
                name=payload.name, technique=payload.technique.value, definition=body, author=actor,
                updated=now)).rowcount == 0:
            conn.execute(t.sim_payloads.insert().values(id=payload.id, name=payload.name,
                                                        technique=payload.technique.value, definition=body,
                                                        author=actor, created=now, updated=now))
        audit.append(conn, actor=actor, activity="simulator.payload.save", target=f"payload {payload.id}",
                     details={"name": payload.name, "technique": payload.technique.value})
    store.run(do)
    return payload


def delete_payload(store: Store, actor: str, payload_id: str) -> None:
    """Remove a tenant payload (campaigns that used it keep their results)."""
    _require_author(store, actor, "simulator.payload.delete", payload_id)

    def do(conn: sa.Connection) -> None:
        from workbench import audit

        if conn.execute(t.sim_payloads.delete().where(P.id == payload_id)).rowcount == 0:
            raise NotFound(f"no tenant payload {payload_id!r}; shipped payloads cannot be deleted")
        audit.append(conn, actor=actor, activity="simulator.payload.delete", target=f"payload {payload_id}")
    store.run(do)


__all__ = ["all_payloads", "get_payload", "save_payload", "delete_payload", "tenant_payloads"]
