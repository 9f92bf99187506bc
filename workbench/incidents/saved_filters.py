"""Named incident-queue filters, per analyst, in the store (MDO's "saved filter queries").

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> store = open_store(url=f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'wb.sqlite'}")
>>> save(store, "ana", "High, mine", IncidentFilter(severity=("high",), assigned_to=("ana",)))
>>> names(store, "ana"), load(store, "ana", "High, mine").severity
(['High, mine'], (<Severity.HIGH: 'high'>,))
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from workbench.errors import InputError, NotFound
from workbench.incidents.repo import IncidentFilter
from workbench.store import Store
from workbench.store import tables as t


def save(store: Store, owner: str, name: str, f: IncidentFilter) -> None:
    """Save (or replace) the filter under *name* for *owner*."""
    name = name.strip()
    if not name:
        raise InputError("name the filter before saving it")
    text = json.dumps(f.to_json(), sort_keys=True)

    def do(conn: sa.Connection) -> None:
        where = (t.saved_filters.c.owner == owner, t.saved_filters.c.name == name[:200])
        if not conn.execute(t.saved_filters.update().where(*where).values(filters=text)).rowcount:
            conn.execute(t.saved_filters.insert().values(owner=owner, name=name[:200], filters=text,
                                                         created=datetime.now(UTC)))
    store.run(do)


def names(store: Store, owner: str) -> list[str]:
    with store.read() as conn:
        return list(conn.execute(sa.select(t.saved_filters.c.name).where(t.saved_filters.c.owner == owner)
                                 .order_by(t.saved_filters.c.name)).scalars())


def load(store: Store, owner: str, name: str) -> IncidentFilter:
    with store.read() as conn:
        text = conn.execute(sa.select(t.saved_filters.c.filters).where(
            t.saved_filters.c.owner == owner, t.saved_filters.c.name == name)).scalar()
    if text is None:
        raise NotFound(f"no saved filter {name!r}; saved: {', '.join(names(store, owner)) or 'none'}")
    return IncidentFilter.from_json(json.loads(text))


def delete(store: Store, owner: str, name: str) -> None:
    def do(conn: sa.Connection) -> int:
        return conn.execute(t.saved_filters.delete().where(t.saved_filters.c.owner == owner,
                                                           t.saved_filters.c.name == name)).rowcount
    if not store.run(do):
        raise NotFound(f"no saved filter {name!r}")
