"""The attack simulator's domain values: techniques, campaign and target statuses, event kinds,
and the per-recipient links a simulation message carries (mdo-reference §5).

A target's status only moves forward (:class:`TargetStatus` is ordered): delivered → read →
clicked → compromised; *reported* is a separate flag with its own time, and a delivery that
failed is ``failed`` for good. Which event compromises a target depends on the technique
(:data:`COMPROMISED_BY`).

>>> TargetStatus.CLICKED.after(TargetStatus.COMPROMISED).value
'compromised'
>>> TargetStatus.COMPROMISED.after(TargetStatus.READ).value  # never backwards
'compromised'
>>> COMPROMISED_BY[Technique.CREDENTIAL_HARVEST].value
'credentialsSupplied'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Technique(StrEnum):
    CREDENTIAL_HARVEST = "credentialHarvest"
    MALWARE_ATTACHMENT = "malwareAttachment"  # a harmless document that only reports its opening
    LINK_IN_ATTACHMENT = "linkInAttachment"
    LINK_TO_MALWARE = "linkToMalware"  # a harmless download page
    DRIVE_BY_URL = "driveByUrl"
    OAUTH_CONSENT_GRANT = "oAuthConsentGrant"
    HOW_TO_GUIDE = "howToGuide"  # training only: nothing to fall for

    @property
    def label(self) -> str:
        return _TECHNIQUE_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Technique:
        """The technique named *text* (its value or label, any case, spaces/hyphens ignored)."""
        from workbench.errors import InputError

        key = "".join(c for c in text.lower() if c.isalnum())
        for t in cls:
            if key in (t.value.lower(), "".join(c for c in t.label.lower() if c.isalnum())):
                return t
        raise InputError(f"unknown technique {text!r}; use one of {', '.join(t.value for t in cls)}")


_TECHNIQUE_LABELS = {
    Technique.CREDENTIAL_HARVEST: "Credential Harvest", Technique.MALWARE_ATTACHMENT: "Malware Attachment",
    Technique.LINK_IN_ATTACHMENT: "Link in Attachment", Technique.LINK_TO_MALWARE: "Link to Malware",
    Technique.DRIVE_BY_URL: "Drive-by URL", Technique.OAUTH_CONSENT_GRANT: "OAuth Consent Grant",
    Technique.HOW_TO_GUIDE: "How-to Guide",
}


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)


class EventKind(StrEnum):
    """What a target did (or what happened to their message); AttackSim (85) event names in comments."""

    DELIVERED = "delivered"  # 1 MessageDelivered
    FAILED = "failed"  # 2 MessageFailed
    READ = "read"  # 12 MessageRead (the open pixel)
    CLICKED = "clicked"  # 8 LinkClicked (message link or QR code)
    ATTACHMENT_OPENED = "attachmentOpened"  # 10 AttachmentOpened
    ATTACHMENT_LINK_CLICKED = "attachmentLinkClicked"  # a link inside the attachment
    FILE_DOWNLOADED = "fileDownloaded"  # link to malware: the harmless file was downloaded
    CREDENTIALS_SUPPLIED = "credentialsSupplied"  # 6 CredentialEntered (never the password itself)
    CONSENT_GRANTED = "consentGranted"  # 7 PermissionGranted
    REPORTED = "reported"  # 15 MessageReported
    TRAINING_COMPLETED = "trainingCompleted"


class TargetStatus(StrEnum):
    """The furthest a target went, in order; moves only forward (:meth:`after`)."""

    PENDING = "pending"  # queued, not yet sent
    FAILED = "failed"  # could not be delivered (permanent)
    DELIVERED = "delivered"
    READ = "read"
    CLICKED = "clicked"
    COMPROMISED = "compromised"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def after(self, other: TargetStatus) -> TargetStatus:
        """The later of self and *other* (a failed delivery stays failed unless the mail arrived after all)."""
        return other if other.rank > self.rank else self


_RANK = {TargetStatus.PENDING: 0, TargetStatus.FAILED: 1, TargetStatus.DELIVERED: 2, TargetStatus.READ: 3,
         TargetStatus.CLICKED: 4, TargetStatus.COMPROMISED: 5}

#: The event that compromises a target of each technique (None: the technique cannot compromise).
COMPROMISED_BY: dict[Technique, EventKind | None] = {
    Technique.CREDENTIAL_HARVEST: EventKind.CREDENTIALS_SUPPLIED,
    Technique.MALWARE_ATTACHMENT: EventKind.ATTACHMENT_OPENED,
    Technique.LINK_IN_ATTACHMENT: EventKind.CREDENTIALS_SUPPLIED,
    Technique.LINK_TO_MALWARE: EventKind.FILE_DOWNLOADED,
    Technique.DRIVE_BY_URL: EventKind.CLICKED,
    Technique.OAUTH_CONSENT_GRANT: EventKind.CONSENT_GRANTED,
    Technique.HOW_TO_GUIDE: None,
}


def status_for(event: EventKind, technique: Technique) -> TargetStatus | None:
    """The status an event moves a target to (None: the event is a flag, not a step)."""
    if event is COMPROMISED_BY.get(technique):
        return TargetStatus.COMPROMISED
    return {
        EventKind.DELIVERED: TargetStatus.DELIVERED, EventKind.FAILED: TargetStatus.FAILED,
        EventKind.READ: TargetStatus.READ, EventKind.CLICKED: TargetStatus.CLICKED,
        EventKind.ATTACHMENT_OPENED: TargetStatus.READ, EventKind.ATTACHMENT_LINK_CLICKED: TargetStatus.CLICKED,
        EventKind.FILE_DOWNLOADED: TargetStatus.CLICKED, EventKind.CREDENTIALS_SUPPLIED: TargetStatus.CLICKED,
        EventKind.CONSENT_GRANTED: TargetStatus.CLICKED,
    }.get(event)


class ClickSource(StrEnum):
    PHISHING_URL = "PhishingURL"
    QR_CODE = "QRCode"
    ATTACHMENT = "Attachment"


@dataclass(frozen=True)
class Recipient:
    """Who a message is for: the directory attributes a payload may use (at simulation time)."""

    email: str
    display_name: str = ""
    given_name: str = ""
    department: str = ""
    title: str = ""
    manager: str = ""
    company: str = ""
    city: str = ""
    country: str = ""
    time_zone: str = ""  # IANA name, for time-zone-aware delivery


@dataclass(frozen=True)
class Links:
    """The per-recipient addresses on the tracking server (``base`` + path + token)."""

    base: str  # e.g. http://127.0.0.1:8899 (no trailing slash)
    token: str

    def _u(self, path: str) -> str:
        return f"{self.base}/{path}/{self.token}"

    @property
    def click(self) -> str:
        return self._u("c")

    @property
    def qr(self) -> str:
        return self._u("c") + "?s=qr"

    @property
    def pixel(self) -> str:
        return self._u("p") + ".png"

    @property
    def attachment_beacon(self) -> str:
        return self._u("a")

    @property
    def attachment_link(self) -> str:
        return self._u("c") + "?s=attachment"

    @property
    def download(self) -> str:
        return self._u("d")

    @property
    def consent(self) -> str:
        return self._u("consent")

    @property
    def report(self) -> str:
        return self._u("r")

    @property
    def teaching(self) -> str:
        return self._u("teach")

    @property
    def training(self) -> str:
        return self._u("training")


@dataclass(frozen=True)
class TrainingModule:
    """One training module of the catalog (served by the tracking server's training page)."""

    id: str
    title: str
    minutes: int
    summary: str = ""


@dataclass(frozen=True)
class TrackedTarget:
    """What the tracking server needs to know about a token's target to answer a request."""

    token: str
    campaign_id: int
    campaign_name: str
    technique: Technique
    recipient: Recipient
    delivered_at: datetime | None  # None: not (yet) delivered
    active: bool = True  # the campaign is running (events after its end are kept, flagged)
    payload_name: str = ""
    payload_subject: str = ""
    payload_sender: str = ""  # "Name <address>" as the message showed it
    indicators: tuple[str, ...] = ()  # what should have given the payload away (the teaching page)
    login_page: str = "generic"  # login page template id
    landing_url: str = ""  # a custom landing page address instead of the built-in teaching page
    app_name: str = ""  # OAuth consent page: the app asking
    scopes: tuple[str, ...] = ()  # and what it asks for
    training: tuple[TrainingModule, ...] = ()  # modules assigned to this target
    organisation: str = ""  # who runs the simulation (transparency page)


@dataclass(frozen=True)
class Hit:
    """One request to the tracking server, as recorded (never a password or form value)."""

    at: datetime
    ip: str
    user_agent: str
    source: str  # pixel, link, qr, attachment, beacon, form, download, consent, report, training
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)  # Accept, Accept-Language, Sec-Fetch-*, Referer
    reasons: tuple[str, ...] = ()  # why the event is excluded from rates (scanner, preview, too fast...)
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        return not self.reasons


SIMULATION_HEADER = "X-Workbench-Simulation"  # carries the target's token: reports are matched by it

__all__ = ["Technique", "CampaignStatus", "EventKind", "TargetStatus", "COMPROMISED_BY", "status_for",
           "ClickSource", "Recipient", "Links", "TrainingModule", "TrackedTarget", "Hit", "SIMULATION_HEADER"]
