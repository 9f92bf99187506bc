"""The ``db_url`` fixture gives a fresh, empty, working database on SQLite and on a real
PostgreSQL server (``pg_server`` in conftest.py)."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("writer", sa.String(20), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)


def test_create_insert_from_two_connections_and_read_back(db_url):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []  # fresh and empty
        metadata.create_all(engine)
        with engine.connect() as first, engine.connect() as second:  # both open at once
            first.execute(notes.insert(), [{"writer": "first", "body": f"a{i}"} for i in range(3)])
            first.commit()  # (SQLite has one writer at a time: commit before the other writes)
            second.execute(notes.insert(), [{"writer": "second", "body": "b0 ünïcode ✓"}])
            second.commit()
            assert first.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one() == 4
            first.rollback()
        with engine.connect() as conn:
            rows = conn.execute(sa.select(notes.c.writer, notes.c.body).order_by(notes.c.id)).all()
        assert sorted(rows) == [("first", "a0"), ("first", "a1"), ("first", "a2"), ("second", "b0 ünïcode ✓")]
    finally:
        engine.dispose()


def test_each_test_gets_its_own_database(db_url):
    """Runs after the test above: its table is not here."""
    engine = sa.create_engine(db_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_server_is_real_and_loopback_only(pg_server, db_url):
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql"
            assert conn.execute(sa.text("SELECT version()")).scalar_one().startswith("PostgreSQL ")
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == sa.make_url(db_url).database
            if pg_server.managed:  # the fixture's own server (not WORKBENCH_TEST_PG_URL)
                assert conn.execute(sa.text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
                assert conn.execute(sa.text("SELECT host(inet_server_addr())")).scalar_one() == "127.0.0.1"
                assert conn.execute(sa.text("SHOW fsync")).scalar_one() == "off"
    finally:
        engine.dispose()
    if pg_server.managed:  # nothing answers on the port at other loopback addresses
        port = sa.make_url(db_url).port
        for host, family in (("127.0.0.2", socket.AF_INET), ("::1", socket.AF_INET6)):
            with socket.socket(family) as sock, pytest.raises(OSError):
                sock.settimeout(2)
                sock.connect((host, port))


@pytest.mark.postgres
def test_pg_server_fixture_shape(pg_server):
    url = sa.make_url(pg_server.url)
    assert url.drivername == "postgresql+psycopg"
    assert sa.make_url(pg_server.url_for("other")).database == "other"
    if pg_server.managed:
        assert (url.host, url.username) == ("127.0.0.1", "postgres")
