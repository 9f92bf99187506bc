"""Alerts, incidents and evidence as values (mdo-reference §3.1, §3.3, §4.4).

Enum values are those of Microsoft Graph ``security/incidents`` and ``security/alerts_v2``,
so exports and habits carry over. Nothing here touches a database: the store persists these
values (``workbench.store``), the incident service changes them (``workbench.incidents.service``).

>>> Severity.HIGH > Severity.LOW
True
>>> Entity.of("url", "https://example.test/login").key
'url:https://example.test/login'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """Alert and incident severity, ordered (``max()`` of alerts gives the incident's)."""

    UNKNOWN = "unknown"
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        return self == other or self < other  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        return self == other or self > other  # type: ignore[operator]


class IncidentStatus(StrEnum):
    ACTIVE = "active"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"
    REDIRECTED = "redirected"  # merged into another incident (redirect_id)


class AlertStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"


class Classification(StrEnum):
    UNKNOWN = "unknown"
    TRUE_POSITIVE = "truePositive"
    INFORMATIONAL_EXPECTED_ACTIVITY = "informationalExpectedActivity"
    FALSE_POSITIVE = "falsePositive"


class Determination(StrEnum):
    UNKNOWN = "unknown"
    APT = "apt"
    MALWARE = "malware"
    SECURITY_PERSONNEL = "securityPersonnel"
    SECURITY_TESTING = "securityTesting"
    UNWANTED_SOFTWARE = "unwantedSoftware"
    OTHER = "other"
    MULTI_STAGED_ATTACK = "multiStagedAttack"
    COMPROMISED_USER = "compromisedUser"
    PHISHING = "phishing"
    MALICIOUS_USER_ACTIVITY = "maliciousUserActivity"
    CLEAN = "clean"
    INSUFFICIENT_DATA = "insufficientData"
    CONFIRMED_USER_ACTIVITY = "confirmedUserActivity"
    LINE_OF_BUSINESS_APPLICATION = "lineOfBusinessApplication"


class EntityKind(StrEnum):
    """What an alert points at and what an incident keeps as evidence."""

    EMAIL = "email"  # one message copy: "<NetworkMessageId>|<recipient>"
    CLUSTER = "cluster"  # similar mail: a cluster key (campaign, sender+subject...)
    URL = "url"
    DOMAIN = "domain"  # a sender or URL domain
    FILE = "file"  # SHA256
    MAILBOX = "mailbox"  # a mailbox address
    USER = "user"  # an account UPN
    IP = "ip"
    DEVICE = "device"  # DeviceId or device name


class Verdict(StrEnum):
    MALICIOUS = "malicious"
    SUSPICIOUS = "suspicious"
    NO_THREATS_FOUND = "noThreatsFound"
    UNKNOWN = "unknown"


class RemediationStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"  # an action is proposed or awaiting approval
    REMEDIATED = "remediated"
    PREVENTED = "prevented"  # blocked before delivery
    NOT_FOUND = "notFound"
    FAILED = "failed"


@dataclass(frozen=True)
class Entity:
    """A thing an alert is about. ``key`` is how correlation compares entities."""

    kind: EntityKind
    value: str
    role: str = ""  # e.g. "recipient", "sender", "attacker", "clicked"

    @classmethod
    def of(cls, kind: str | EntityKind, value: str, role: str = "") -> Entity:
        kind = EntityKind(kind)
        value = value.strip()
        if kind in (EntityKind.USER, EntityKind.MAILBOX, EntityKind.DOMAIN):
            value = value.lower()
        return cls(kind, value, role)

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.value}"


@dataclass(frozen=True)
class AlertDraft:
    """What an alert policy produces before the store gives it an id.

    ``dedup_key`` makes evaluation idempotent: the same policy finding the same thing again
    (a re-run, an overlapping watermark) updates nothing and adds nothing.
    """

    policy_id: str
    title: str
    severity: Severity
    category: str  # ATT&CK tactic where it fits (InitialAccess, Exfiltration...), else a product category
    first_activity: datetime
    last_activity: datetime
    dedup_key: str
    description: str = ""
    entities: tuple[Entity, ...] = ()
    evidence: tuple[Entity, ...] = ()  # what the incident should keep (emails, URLs, files...)
    verdicts: tuple[tuple[str, Verdict], ...] = ()  # entity key -> verdict, where the policy knows one
    explorer_query: dict[str, Any] | None = None  # Query.to_dict() listing the alert's messages
    mitre_techniques: tuple[str, ...] = ()
    threat_family: str = ""
    detection_source: str = "workbench"
    message_count: int = 0
    expected_activity: str = ""  # why this is expected (e.g. a reported phishing simulation): filed resolved, no incident


@dataclass(frozen=True)
class Alert:
    """A stored alert."""

    id: str
    policy_id: str
    title: str
    severity: Severity
    category: str
    status: AlertStatus
    created: datetime
    first_activity: datetime
    last_activity: datetime
    incident_id: int | None
    description: str = ""
    classification: Classification = Classification.UNKNOWN
    determination: Determination = Determination.UNKNOWN
    assigned_to: str = ""
    entities: tuple[Entity, ...] = ()
    explorer_query: dict[str, Any] | None = None
    mitre_techniques: tuple[str, ...] = ()
    threat_family: str = ""
    detection_source: str = "workbench"
    message_count: int = 0
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Evidence:
    """An entity kept by an incident, with what is known about it."""

    id: int
    incident_id: int
    entity: Entity
    verdict: Verdict
    remediation: RemediationStatus
    source: str  # the alert id, "explorer", or the analyst who added it
    added: datetime
    added_by: str
    display: str = ""


@dataclass(frozen=True)
class Comment:
    id: int
    incident_id: int
    author: str
    text: str
    created: datetime


@dataclass(frozen=True)
class Activity:
    """One change to an incident: who, when, what, old → new."""

    id: int
    incident_id: int
    at: datetime
    actor: str
    action: str  # created, status, severity, assigned_to, classification, comment, alert_linked, ...
    old: str = ""
    new: str = ""


@dataclass(frozen=True)
class Incident:
    id: int
    name: str
    status: IncidentStatus
    severity: Severity
    created: datetime
    last_update: datetime
    description: str = ""
    assigned_to: str = ""
    classification: Classification = Classification.UNKNOWN
    determination: Determination = Determination.UNKNOWN
    severity_set_by_analyst: bool = False
    name_set_by_analyst: bool = False
    redirect_id: int | None = None
    resolution_note: str = ""
    resolved_at: datetime | None = None
    tags: tuple[str, ...] = ()
    system_tags: tuple[str, ...] = ()
    alert_count: int = 0
    first_activity: datetime | None = None
    last_activity: datetime | None = None
    entities: tuple[Entity, ...] = field(default=(), compare=False)  # of its alerts, for search


__all__ = [
    "Severity", "IncidentStatus", "AlertStatus", "Classification", "Determination", "EntityKind",
    "Verdict", "RemediationStatus", "Entity", "AlertDraft", "Alert", "Evidence", "Comment",
    "Activity", "Incident",
]
