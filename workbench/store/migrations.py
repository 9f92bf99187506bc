"""Ordered schema migrations.

Each migration has a version, a description and a function that changes the schema inside
the migrating transaction. ``upgrade`` applies the missing ones in order, records each in
``schema_version``, and holds a lock while it does (a PostgreSQL advisory lock; SQLite's
``BEGIN IMMEDIATE``), so processes that open the store at the same time migrate it once.

To change the schema: edit ``tables.py`` to the new shape, then append a migration that
takes an existing database there with explicit DDL (``ALTER TABLE ...``). Never edit a
released migration: databases in the field have already run it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from workbench.errors import StorageError
from workbench.store import tables as t

_LOCK_ID = 7_202_611  # PostgreSQL advisory lock key for migrations


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _v1(conn: sa.Connection) -> None:
    # The first release's tables, as they were then (later migrations alter them explicitly).
    t.metadata.create_all(conn, tables=[
        t.policy_settings, t.policy_watermarks, t.incidents, t.alerts, t.alert_entities,
        t.incident_tags, t.evidence, t.comments, t.activity, t.saved_filters,
    ])


def _v2(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.investigations, t.investigation_evidence, t.investigation_clusters,
                                        t.proposed_actions, t.analyzer_log])


def _v3(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.dispatch_claims])


def _v4(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.air_settings])


def _v5(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.actions, t.action_targets, t.action_origins, t.action_events,
                                        t.action_requests])


def _v6(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.role_assignments])


def _v7(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.audit_log, t.audit_anchor])


def _v8(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.sim_payloads, t.sim_campaigns, t.sim_targets, t.sim_events,
                                        t.sim_automations])


def _v9(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.intel_indicators, t.intel_imports, t.threat_notes, t.trackers,
                                        t.tracker_counts])


def _v10(conn: sa.Connection) -> None:
    t.metadata.create_all(conn, tables=[t.siem_destinations, t.siem_checkpoints])


def _v11(conn: sa.Connection) -> None:
    # a database created at version 2 or later from the current table shape has it already
    if "updated" not in {c["name"] for c in sa.inspect(conn).get_columns("investigations")}:
        conn.execute(sa.text("ALTER TABLE investigations ADD COLUMN updated TIMESTAMP"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "alerts, incidents, evidence, comments, activity log, policy settings and watermarks", _v1),
    Migration(2, "automated investigations: runs, evidence, clusters, proposed actions, analyzer log", _v2),
    Migration(3, "dispatch claims: which dispatcher started which alert's investigation", _v3),
    Migration(4, "AIR settings: throttling (investigations running at once, queue expiry, entity cap)", _v4),
    Migration(5, "action center: actions, per-copy targets and results, history, adapter requests", _v5),
    Migration(6, "role assignments: who holds which workbench role", _v6),
    Migration(7, "audit log: append-only, hash-chained records and the anchor of the latest one", _v7),
    Migration(8, "attack simulator: payloads, campaigns, targets, events, automations", _v8),
    Migration(9, "threat intelligence: indicators, imports, threat notes, tracked queries and their counts", _v9),
    Migration(10, "SIEM export: destinations and their delivery checkpoints", _v10),
    Migration(11, "investigations: the time of their last change (for SIEM export)", _v11),
)
LATEST = MIGRATIONS[-1].version


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.schema_version.c.version), 0))).scalar_one()


def upgrade(engine: sa.Engine) -> int:
    """Bring the database to the latest version; return the number of migrations applied."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        t.schema_version.create(conn, checkfirst=True)
        have = current_version(conn)
        if have > LATEST:
            raise StorageError(f"the database is at schema version {have}, newer than this workbench "
                               f"({LATEST}): upgrade the workbench package")
        applied = 0
        for migration in MIGRATIONS:
            if migration.version > have:
                migration.apply(conn)
                conn.execute(t.schema_version.insert().values(
                    version=migration.version, description=migration.description, applied_at=datetime.now(UTC)))
                applied += 1
        return applied
