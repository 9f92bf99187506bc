"""The SQL tables of the workbench's state, as SQLAlchemy Core metadata (the current shape).

The shape changes only through ``migrations.py``; this module is what code queries.
Times are stored as naive UTC and read back timezone-aware (:class:`UTCDateTime`), so
SQLite and PostgreSQL give the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator):
    """A timezone-aware UTC datetime in Python, naive UTC in the database."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC time")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _now_column(name: str, **kw: Any) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=False, **kw)


schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    _now_column("applied_at"),
)

policy_settings = sa.Table(
    "policy_settings", metadata,
    sa.Column("policy_id", sa.String(80), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("severity", sa.String(20)),  # null: the policy's default
    sa.Column("thresholds", sa.Text, nullable=False, default="{}"),  # JSON object of overrides
    _now_column("updated_at"),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

policy_watermarks = sa.Table(
    "policy_watermarks", metadata,
    sa.Column("policy_id", sa.String(80), primary_key=True),
    sa.Column("watermark", UTCDateTime()),  # newest event time the policy has read
    _now_column("last_run"),
    sa.Column("alerts", sa.Integer, nullable=False, default=0),  # alerts raised by the last run
)

incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("name_set_by_analyst", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("severity_set_by_analyst", sa.Boolean, nullable=False, default=False),
    sa.Column("assigned_to", sa.String(200), nullable=False, default=""),
    sa.Column("classification", sa.String(40), nullable=False),
    sa.Column("determination", sa.String(40), nullable=False),
    sa.Column("redirect_id", sa.Integer, sa.ForeignKey("incidents.id")),
    sa.Column("resolution_note", sa.Text, nullable=False, default=""),
    _now_column("created"),
    _now_column("last_update"),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("first_activity", UTCDateTime()),
    sa.Column("last_activity", UTCDateTime()),
    sa.Index("ix_incidents_status", "status"),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("dedup_key", sa.String(400), nullable=False, unique=True),
    sa.Column("policy_id", sa.String(80), nullable=False),
    sa.Column("title", sa.String(1000), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("category", sa.String(80), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("classification", sa.String(40), nullable=False),
    sa.Column("determination", sa.String(40), nullable=False),
    sa.Column("assigned_to", sa.String(200), nullable=False, default=""),
    sa.Column("detection_source", sa.String(80), nullable=False),
    sa.Column("threat_family", sa.String(200), nullable=False, default=""),
    sa.Column("mitre_techniques", sa.Text, nullable=False, default="[]"),  # JSON list
    sa.Column("explorer_query", sa.Text),  # JSON of a workbench.explorer Query
    sa.Column("message_count", sa.Integer, nullable=False, default=0),
    _now_column("created"),
    _now_column("first_activity"),
    _now_column("last_activity"),
    _now_column("last_update"),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id")),
    sa.Index("ix_alerts_incident", "incident_id"),
    sa.Index("ix_alerts_created", "created"),
)

alert_entities = sa.Table(
    "alert_entities", metadata,
    sa.Column("alert_id", sa.String(40), sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("value", sa.String(1000), primary_key=True),
    sa.Column("role", sa.String(40), primary_key=True, default=""),
    sa.Index("ix_alert_entities_value", "kind", "value"),
)

incident_tags = sa.Table(
    "incident_tags", metadata,
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(100), primary_key=True),
    sa.Column("system", sa.Boolean, nullable=False, default=False),
)

evidence = sa.Table(
    "evidence", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("value", sa.String(1000), nullable=False),
    sa.Column("display", sa.String(1000), nullable=False, default=""),
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("remediation", sa.String(20), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    _now_column("added"),
    sa.Column("added_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("incident_id", "kind", "value", name="uq_evidence_entity"),
)

comments = sa.Table(
    "comments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _now_column("created"),
    sa.Index("ix_comments_incident", "incident_id"),
)

activity = sa.Table(
    "activity", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    _now_column("at"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("old", sa.Text, nullable=False, default=""),
    sa.Column("new", sa.Text, nullable=False, default=""),
    sa.Index("ix_activity_incident", "incident_id"),
)

saved_filters = sa.Table(
    "saved_filters", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("filters", sa.Text, nullable=False),  # JSON of an IncidentFilter
    _now_column("created"),
    sa.UniqueConstraint("owner", "name", name="uq_saved_filter_name"),
)


# ---------------------------------------------------------------- automated investigations (migration 2)

investigations = sa.Table(
    "investigations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("playbook", sa.String(80), nullable=False),
    sa.Column("playbook_version", sa.String(64), nullable=False, default=""),  # hash of the notebook
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("alert_id", sa.String(40), sa.ForeignKey("alerts.id")),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id")),
    sa.Column("started_by", sa.String(200), nullable=False),
    sa.Column("parameters", sa.Text, nullable=False, default="{}"),  # JSON
    sa.Column("notebook", sa.String(1000), nullable=False, default=""),  # the executed notebook, kept as the record
    sa.Column("retry_of", sa.Integer, sa.ForeignKey("investigations.id")),
    sa.Column("error", sa.Text, nullable=False, default=""),
    _now_column("created"),
    sa.Column("started", UTCDateTime()),
    sa.Column("ended", UTCDateTime()),
    # the last change of any kind (set on every insert and update): SIEM export orders by it
    sa.Column("updated", UTCDateTime(), default=lambda: datetime.now(UTC), onupdate=lambda: datetime.now(UTC)),
    sa.Index("ix_investigations_alert", "alert_id"),
)

investigation_evidence = sa.Table(
    "investigation_evidence", metadata,
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("value", sa.String(1000), primary_key=True),
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("remediation", sa.String(20), nullable=False),
    sa.Column("analyzer", sa.String(80), nullable=False),
    sa.Column("details", sa.Text, nullable=False, default=""),
)

investigation_clusters = sa.Table(
    "investigation_clusters", metadata,
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("value", sa.String(1000), primary_key=True),
    sa.Column("query", sa.Text, nullable=False),  # JSON of the Explorer query that defines the cluster
    sa.Column("counts", sa.Text, nullable=False),  # JSON of ClusterCounts, frozen at investigation time
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("volume_anomaly", sa.Boolean, nullable=False, default=False),
)

proposed_actions = sa.Table(
    "proposed_actions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id", ondelete="CASCADE"), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target_kind", sa.String(20), nullable=False),
    sa.Column("target", sa.String(1000), nullable=False),
    sa.Column("messages", sa.Text, nullable=False, default="[]"),  # JSON [(NetworkMessageId, recipient)] for email actions
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(20), nullable=False),
    _now_column("created"),
    sa.UniqueConstraint("investigation_id", "action", "target_kind", "target", name="uq_proposed_action"),
)

analyzer_log = sa.Table(
    "analyzer_log", metadata,
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("analyzer", sa.String(80), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # ok, failed, skipped
    _now_column("started"),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("error", sa.Text, nullable=False, default=""),
)


# ---------------------------------------------------------------- dispatching (migration 3)

dispatch_claims = sa.Table(
    "dispatch_claims", metadata,
    sa.Column("alert_id", sa.String(40), sa.ForeignKey("alerts.id"), primary_key=True),  # one claim per alert, ever
    sa.Column("playbook", sa.String(80), nullable=False),
    sa.Column("dispatcher", sa.String(200), nullable=False),  # host:pid that claimed it
    _now_column("claimed_at"),
    sa.Column("status", sa.String(20), nullable=False),  # claimed, done, failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id")),
    sa.Column("error", sa.Text, nullable=False, default=""),
)


# ---------------------------------------------------------------- AIR settings (migration 4)

air_settings = sa.Table(
    "air_settings", metadata,
    sa.Column("name", sa.String(80), primary_key=True),  # max_running, queue_expiry_hours, max_messages
    sa.Column("value", sa.String(200), nullable=False),
    _now_column("updated"),
)


# ---------------------------------------------------------------- action center (migration 5)

actions = sa.Table(
    "actions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # air, explorer, incident, cli
    sa.Column("source_ref", sa.String(300), nullable=False, default=""),
    sa.Column("open_key", sa.String(64), unique=True),  # dedup hash while the action is open, else null
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("target_kind", sa.String(20), nullable=False),
    sa.Column("target", sa.String(1000), nullable=False, default=""),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id")),
    sa.Column("undo_of", sa.Integer, sa.ForeignKey("actions.id")),
    sa.Column("proposed_by", sa.String(200), nullable=False),
    _now_column("created"),
    _now_column("expires"),
    sa.Column("decided_by", sa.String(200), nullable=False, default=""),
    sa.Column("decided", UTCDateTime()),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("started", UTCDateTime()),
    sa.Column("finished", UTCDateTime()),
    sa.Column("runner", sa.String(200), nullable=False, default=""),  # host:pid of the executor holding it
    sa.Column("heartbeat", UTCDateTime()),  # the executor's last sign of life (its lease)
    sa.Column("n_targets", sa.Integer, nullable=False, default=0),
    sa.Column("n_success", sa.Integer, nullable=False, default=0),
    sa.Column("n_failure", sa.Integer, nullable=False, default=0),
    sa.Column("n_already", sa.Integer, nullable=False, default=0),
    sa.Column("n_not_found", sa.Integer, nullable=False, default=0),
    sa.Index("ix_actions_status", "status"),
)

action_targets = sa.Table(
    "action_targets", metadata,
    sa.Column("action_id", sa.Integer, sa.ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("network_message_id", sa.String(300), nullable=False),
    sa.Column("mailbox", sa.String(320), nullable=False),
    sa.Column("destination", sa.String(60), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # pending, moving (intent written), done
    sa.Column("outcome", sa.String(24)),  # Success, Failure, AlreadyInDestination, NotFound
    sa.Column("source_folder", sa.String(60)),  # where the copy was before the move (what undo restores)
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("attempted", UTCDateTime()),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.UniqueConstraint("action_id", "network_message_id", "mailbox", name="uq_action_target"),
    sa.Index("ix_action_targets_state", "action_id", "state"),
)

action_origins = sa.Table(  # where an action came from: imported once, ever (an identical proposal joins it)
    "action_origins", metadata,
    sa.Column("origin_key", sa.String(200), primary_key=True),  # e.g. "air-proposal:40", "undo:12"
    sa.Column("action_id", sa.Integer, sa.ForeignKey("actions.id", ondelete="CASCADE"), nullable=False),
    sa.Column("investigation_id", sa.Integer, sa.ForeignKey("investigations.id")),
    sa.Index("ix_action_origins_investigation", "investigation_id"),
)

action_events = sa.Table(
    "action_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action_id", sa.Integer, sa.ForeignKey("actions.id", ondelete="CASCADE"), nullable=False),
    _now_column("at"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Index("ix_action_events_action", "action_id"),
)

action_requests = sa.Table(  # what non-mail actions handed to an adapter (blocklist, directory)
    "action_requests", metadata,
    sa.Column("action_id", sa.Integer, sa.ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("adapter", sa.String(80), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("target_kind", sa.String(20), nullable=False),
    sa.Column("target", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # requested (the adapter records; nothing enforced yet)
    sa.Column("requested_by", sa.String(200), nullable=False),
    _now_column("requested"),
)


# ---------------------------------------------------------------- audit log (migration 7)

audit_log = sa.Table(  # append-only, hash-chained: see workbench/audit/log.py
    "audit_log", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),  # 1, 2, 3... assigned under a lock
    _now_column("at"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("activity", sa.String(80), nullable=False),  # e.g. mail.preview, action.approve, role.grant
    sa.Column("target", sa.String(1000), nullable=False, default=""),
    sa.Column("result", sa.String(10), nullable=False),  # allowed, denied, ok, failed
    sa.Column("request_id", sa.String(64), nullable=False, default=""),
    sa.Column("details", sa.Text, nullable=False, default="{}"),  # canonical JSON object
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_actor", "actor"),
)

audit_anchor = sa.Table(  # the latest (seq, hash), rewritten by every append: catches a truncated tail
    "audit_anchor", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

role_assignments = sa.Table(  # who holds which role (workbench.rbac; the matrix itself is package data)
    "role_assignments", metadata,
    sa.Column("user_name", sa.String(200), primary_key=True),  # lower-cased acting-user name
    sa.Column("role", sa.String(60), primary_key=True),  # a workbench.rbac.Role value
    sa.Column("granted_by", sa.String(200), nullable=False),
    _now_column("granted"),
)

# ------------------------------------------------------------------ attack simulator (workbench.simulator)

sim_payloads = sa.Table(  # tenant-authored payloads (the shipped library is package data)
    "sim_payloads", metadata,
    sa.Column("id", sa.String(80), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("technique", sa.String(40), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),  # JSON (workbench.simulator.payloads.to_dict)
    sa.Column("author", sa.String(200), nullable=False),
    _now_column("created"),
    _now_column("updated"),
)

sim_campaigns = sa.Table(
    "sim_campaigns", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("technique", sa.String(40), nullable=False),
    sa.Column("payload_id", sa.String(80), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # workbench.simulator.model.CampaignStatus
    sa.Column("settings", sa.Text, nullable=False, default="{}"),  # JSON: landing, training, notifications, window
    sa.Column("created_by", sa.String(200), nullable=False),
    _now_column("created"),
    sa.Column("launch_at", UTCDateTime(), nullable=True),  # when sending starts (scheduled / launched)
    sa.Column("end_at", UTCDateTime(), nullable=True),  # launch + end after N days
    sa.Column("started", UTCDateTime(), nullable=True),
    sa.Column("ended", UTCDateTime(), nullable=True),
    sa.Column("ended_by", sa.String(200), nullable=True),
    sa.Column("automation_id", sa.Integer, nullable=True),  # the recurring automation that created it
)

sim_targets = sa.Table(
    "sim_targets", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("sim_campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("attributes", sa.Text, nullable=False, default="{}"),  # JSON: the Recipient at simulation time
    sa.Column("status", sa.String(20), nullable=False),  # TargetStatus (counted events only; monotonic)
    sa.Column("send_at", UTCDateTime(), nullable=True),  # due time (time-zone-aware delivery)
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.String(1000), nullable=False, default=""),
    sa.Column("message_id", sa.String(300), nullable=True),
    sa.Column("delivered", UTCDateTime(), nullable=True),
    sa.Column("failed", UTCDateTime(), nullable=True),
    sa.Column("read", UTCDateTime(), nullable=True),
    sa.Column("clicked", UTCDateTime(), nullable=True),
    sa.Column("compromised", UTCDateTime(), nullable=True),
    sa.Column("reported", UTCDateTime(), nullable=True),
    sa.Column("training_due", UTCDateTime(), nullable=True),
    sa.Column("training_assigned", sa.Text, nullable=False, default="[]"),  # JSON list of module ids
    sa.Column("training_completed", sa.Text, nullable=False, default="{}"),  # JSON module id -> ISO time
    sa.Column("training_notified", UTCDateTime(), nullable=True),  # the assignment notification went out
    sa.Column("reminded", UTCDateTime(), nullable=True),  # the last training reminder
    sa.Column("reinforced", UTCDateTime(), nullable=True),  # the positive reinforcement went out
    sa.UniqueConstraint("campaign_id", "email", name="uq_sim_targets_campaign_email"),
    sa.Index("ix_sim_targets_due", "status", "next_attempt"),
)

sim_events = sa.Table(  # every request and delivery outcome, counted or flagged (kept, excluded from rates)
    "sim_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("target_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # EventKind
    _now_column("at"),
    sa.Column("ip", sa.String(64), nullable=False, default=""),
    sa.Column("user_agent", sa.String(1000), nullable=False, default=""),
    sa.Column("source", sa.String(40), nullable=False, default=""),
    sa.Column("reasons", sa.String(300), nullable=False, default=""),  # comma-separated; empty = counted
    sa.Column("details", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_sim_events_campaign", "campaign_id", "at"),
    sa.Index("ix_sim_events_target", "target_id"),
)

sim_automations = sa.Table(  # recurring simulations: a campaign template launched on a schedule
    "sim_automations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("template", sa.Text, nullable=False),  # JSON: the campaign definition
    sa.Column("every_days", sa.Integer, nullable=False),
    sa.Column("next_run", UTCDateTime(), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    _now_column("created"),
)

# ------------------------------------------------------------------ threat intelligence (workbench.intel)

intel_indicators = sa.Table(
    "intel_indicators", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(20), nullable=False),  # workbench.intel.model.IndicatorType
    sa.Column("value", sa.String(2000), nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("confidence", sa.Integer, nullable=False, default=50),
    sa.Column("tlp", sa.String(20), nullable=False, default="clear"),
    sa.Column("first_seen", UTCDateTime(), nullable=True),
    sa.Column("last_seen", UTCDateTime(), nullable=True),
    sa.Column("expires", UTCDateTime(), nullable=True),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),
    sa.Column("family", sa.String(200), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("allow", sa.Boolean, nullable=False, default=False),
    _now_column("added"),  # when this workbench first stored it (retro-hunts start from here)
    _now_column("updated"),
    sa.UniqueConstraint("type", "value", "source", name="uq_intel_indicator"),
    sa.Index("ix_intel_value", "type", "value"),
    sa.Index("ix_intel_added", "added"),
)

intel_imports = sa.Table(  # every import: what, when, by whom, and what it changed
    "intel_imports", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("format", sa.String(40), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the imported content
    _now_column("at"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("added", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
)

threat_notes = sa.Table(  # curated threat descriptions (noteworthy threats)
    "threat_notes", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("family", sa.String(200), nullable=False, default=""),
    sa.Column("definition", sa.Text, nullable=False),  # JSON of workbench.intel.model.ThreatNote
    sa.Column("source", sa.String(300), nullable=False, default=""),
    _now_column("updated"),
)

trackers = sa.Table(  # tracked queries: an Explorer query run on a schedule
    "trackers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(300), nullable=False, unique=True),
    sa.Column("query", sa.Text, nullable=False),  # Query.to_json()
    sa.Column("threshold", sa.Integer, nullable=True),  # alert when today's count reaches it
    sa.Column("created_by", sa.String(200), nullable=False),
    _now_column("created"),
    sa.Column("last_run", UTCDateTime(), nullable=True),
)

tracker_counts = sa.Table(  # one count per tracker and day
    "tracker_counts", metadata,
    sa.Column("tracker_id", sa.Integer, sa.ForeignKey("trackers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    _now_column("computed"),
)

# ------------------------------------------------------------------ SIEM export (workbench.siem)

siem_destinations = sa.Table(  # where events go: a format, a transport and its settings (no secrets)
    "siem_destinations", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("format", sa.String(20), nullable=False),  # o365 | ocsf | cef
    sa.Column("transport", sa.String(20), nullable=False),  # file | syslog-udp | syslog-tcp | hec | webhook
    sa.Column("settings", sa.Text, nullable=False, default="{}"),  # JSON; secrets are named environment variables
    sa.Column("created_by", sa.String(200), nullable=False),
    _now_column("created"),
)

siem_checkpoints = sa.Table(  # how far each destination has been delivered (at-least-once)
    "siem_checkpoints", metadata,
    sa.Column("destination", sa.String(100), primary_key=True),
    sa.Column("position", sa.Text, nullable=False),  # JSON: per source, the last delivered (time, event id)
    _now_column("updated"),
)
