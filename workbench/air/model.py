"""Automated investigation values (mdo-reference §4.3–4.5): investigation statuses, mail
clusters and what counts in them, proposed actions.

>>> InvestigationStatus.PENDING_ACTION.finished
False
>>> ClusterCounts(total=4, malware=1, in_mailbox=2).threats
1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workbench.incidents.model import Verdict


class InvestigationStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    NO_THREATS_FOUND = "noThreatsFound"
    PARTIALLY_INVESTIGATED = "partiallyInvestigated"  # issues found, no remediation to propose
    PENDING_ACTION = "pendingAction"
    PARTIALLY_REMEDIATED = "partiallyRemediated"
    REMEDIATED = "remediated"
    FAILED = "failed"  # an analyzer failed
    TERMINATED_BY_SYSTEM = "terminatedBySystem"  # pending actions expired, or too many entities
    TERMINATED_BY_USER = "terminatedByUser"
    QUEUED_BY_THROTTLING = "queuedByThrottling"
    TERMINATED_BY_THROTTLING = "terminatedByThrottling"

    @property
    def finished(self) -> bool:
        return self not in (InvestigationStatus.STARTING, InvestigationStatus.RUNNING,
                            InvestigationStatus.PENDING_ACTION, InvestigationStatus.QUEUED_BY_THROTTLING)


class ActionType(StrEnum):
    """What a playbook may propose (§4.5); the action center carries them out after approval."""

    SOFT_DELETE_EMAIL = "softDeleteEmail"
    SOFT_DELETE_CLUSTER = "softDeleteCluster"
    BLOCK_URL = "blockUrl"
    BLOCK_SENDER = "blockSender"
    BLOCK_DOMAIN = "blockDomain"
    REMOVE_FORWARDING_RULE = "removeForwardingRule"
    REMOVE_INBOX_RULE = "removeInboxRule"
    REMOVE_DELEGATION = "removeDelegation"
    RESET_PASSWORD = "resetPassword"
    DISABLE_USER = "disableUser"


class ClusterKind(StrEnum):
    """Similarity clusters share a sender value or content; indicator clusters a malicious
    URL or file (§4.3)."""

    SENDER_IP = "senderIp"
    SENDER_DOMAIN = "senderDomain"
    SUBJECT = "subject"
    FINGERPRINT = "fingerprint"  # EmailClusterId
    URL = "url"
    FILE = "file"

    @property
    def indicator(self) -> bool:
        return self in (ClusterKind.URL, ClusterKind.FILE)


@dataclass(frozen=True)
class ClusterCounts:
    """Copies (one per recipient) of a cluster by threat and by delivery location, frozen at
    investigation time (the cluster's Explorer query shows them live)."""

    total: int = 0
    malware: int = 0
    phish: int = 0
    high_confidence_phish: int = 0
    spam: int = 0
    delivered: int = 0
    junked: int = 0
    replaced: int = 0
    blocked: int = 0
    in_mailbox: int = 0  # latest location Inbox or Junk: what a soft delete can still reach
    not_in_mailbox: int = 0  # quarantined, deleted, failed, dropped
    on_prem_external: int = 0

    @property
    def threats(self) -> int:
        """Copies with a malware or phish verdict (spam is not a threat here)."""
        return self.malware + self.phish


@dataclass(frozen=True)
class MailCluster:
    """Similar mail around the investigated messages, with the query that defines it."""

    kind: ClusterKind
    value: str  # the shared sender IP, domain, subject, fingerprint, URL or SHA256
    query: dict[str, Any]  # workbench.explorer Query JSON: open it in the Explorer
    counts: ClusterCounts
    verdict: Verdict
    volume_anomaly: bool = False
    volume_last_day: int = 0
    volume_daily_before: float = 0.0  # mean copies a day over the days before
    in_mailbox: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # (NetworkMessageId, recipient)
    threat_in_mailbox: tuple[tuple[str, str], ...] = field(default=(), compare=False)  # of those, with a threat verdict

    @property
    def name(self) -> str:
        return f"{self.kind.value}: {self.value}"
