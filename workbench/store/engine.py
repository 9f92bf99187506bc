"""Open the workbench's SQL store: SQLite in the tenant by default, PostgreSQL by URL.

The URL comes from, in order: the ``url`` argument (``--db``), ``WORKBENCH_DB_URL``, else
``sqlite:///<tenant>/workbench.sqlite``. SQLite runs in WAL mode with a busy timeout and
foreign keys on, and every transaction starts with ``BEGIN IMMEDIATE`` so concurrent
writers queue instead of failing half-way. :meth:`Store.run` retries a whole transaction
when the database reports a transient conflict (a lock timeout, a deadlock, a
serialization failure), so callers write each change as one function.

>>> import tempfile, pathlib
>>> store = open_store(url=f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'wb.sqlite'}")
>>> store.version()
3
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from workbench.errors import InputError, StorageError
from workbench.store import migrations

T = TypeVar("T")
ENV_URL = "WORKBENCH_DB_URL"
BUSY_TIMEOUT_MS = 30_000
_TRANSIENT_PG = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_RETRIES = 8


def resolve_url(url: str | None = None, tenant: Any = None) -> str:
    """The database URL to use (argument, environment, or the tenant's SQLite file)."""
    url = url or os.environ.get(ENV_URL) or None
    if url:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]  # the driver we ship
        return url
    if tenant is None:
        raise InputError(f"no database: pass --db URL, set {ENV_URL}, or select a tenant (--tenant)")
    return f"sqlite:///{Path(tenant.root) / 'workbench.sqlite'}"


def _sqlite_setup(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite's own is deferred)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """A migrated database. ``run(fn)`` is a retried write transaction, ``read()`` a read."""

    def __init__(self, engine: sa.Engine, url: str) -> None:
        self.engine = engine
        self.url = url  # password hidden

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def run(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run ``fn(conn)`` in one transaction, retried on transient conflicts."""
        for attempt in range(_RETRIES):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except DBAPIError as exc:
                if attempt == _RETRIES - 1 or not _transient(exc):
                    raise
                time.sleep(min(2.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    def version(self) -> int:
        with self.read() as conn:
            return migrations.current_version(conn)

    def dispose(self) -> None:
        self.engine.dispose()


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], *keys: str) -> int:
    """Insert *rows*, skipping those that conflict on the unique *keys*; returns how many went in
    (counted from RETURNING: rowcount is unreliable for executemany on some drivers)."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys) or None)
    return len(conn.execute(stmt.returning(*table.primary_key.columns), rows).all())


def _transient(exc: DBAPIError) -> bool:
    code = getattr(getattr(exc.orig, "sqlstate", None), "strip", lambda: None)()
    if code in _TRANSIENT_PG:
        return True
    text = str(exc.orig).lower()
    return "database is locked" in text or "database table is locked" in text


def existing_store(tenant: Any) -> Store | None:
    """The tenant's store if it has one (``WORKBENCH_DB_URL`` set, or its SQLite file exists),
    else None: for read-only pages that must not create a database by looking."""
    if os.environ.get(ENV_URL) or (Path(tenant.root) / "workbench.sqlite").exists():
        return open_store(tenant)
    return None


def open_store(tenant: Any = None, url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store of ``tenant`` or at ``url``.

    Raises :class:`StorageError` with one line naming the database and the fix when it
    cannot be reached.
    """
    url = resolve_url(url, tenant)
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise InputError(f"not a database URL: {url!r}; use sqlite:///PATH or postgresql://USER@HOST/DB") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(f"unsupported database {parsed.get_backend_name()!r} in {shown}; use SQLite or PostgreSQL")
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise StorageError(f"cannot open {shown}: folder {folder} does not exist; create the tenant first")
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise InputError(f"no driver for {shown} ({exc}); use sqlite:/// or postgresql+psycopg://") from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    try:
        if migrate:
            migrations.upgrade(engine)
        else:
            with engine.connect():
                pass
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StorageError(f"cannot connect to the database {shown}: {reason}; check --db or {ENV_URL}") from None
    return Store(engine, shown)
