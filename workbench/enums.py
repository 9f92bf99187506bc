"""Closed value sets shared by every module.

Values are the strings that appear in the Advanced Hunting tables and the Explorer
(see mdo-reference §1.3, §9), so a value read from a real Defender export compares
equal to the enum member: ``DeliveryAction("Delivered") is DeliveryAction.DELIVERED``.

>>> DeliveryLocation.JUNK.value
'Junk folder'
>>> EmailDirection("Intra-org").name
'INTRA_ORG'
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class EmailDirection(StrEnum):
    INBOUND = "Inbound"
    OUTBOUND = "Outbound"
    INTRA_ORG = "Intra-org"


class DeliveryAction(StrEnum):
    DELIVERED = "Delivered"
    JUNKED = "Junked"
    BLOCKED = "Blocked"
    REPLACED = "Replaced"


class DeliveryLocation(StrEnum):
    INBOX = "Inbox/folder"
    JUNK = "Junk folder"
    DELETED_ITEMS = "Deleted items"
    QUARANTINE = "Quarantine"
    FAILED = "Failed"
    DROPPED = "Dropped"
    EXTERNAL = "On-premises/external"
    UNKNOWN = "Unknown"


class LatestDeliveryAction(StrEnum):
    """What last happened to a message after delivery (service or admin, not the user)."""

    DELIVERED = "Delivered"
    JUNKED = "Junked"
    BLOCKED = "Blocked"
    REPLACED = "Replaced"
    MOVED_TO_QUARANTINE = "Moved to quarantine"
    MOVED_TO_JUNK = "Moved to junk folder"
    MOVED_TO_INBOX = "Moved to inbox"
    MOVED_TO_DELETED_ITEMS = "Moved to deleted items"
    SOFT_DELETED = "Soft deleted"
    HARD_DELETED = "Hard deleted"
    QUARANTINE_RELEASE = "Quarantine release"


class ThreatType(StrEnum):
    MALWARE = "Malware"
    PHISH = "Phish"
    SPAM = "Spam"


class DetectionTechnology(StrEnum):
    ADVANCED_FILTER = "Advanced filter"
    ANTIMALWARE = "Antimalware protection"
    BULK = "Bulk"
    CAMPAIGN = "Campaign"
    DOMAIN_REPUTATION = "Domain reputation"
    FILE_DETONATION = "File detonation"
    FILE_DETONATION_REPUTATION = "File detonation reputation"
    FILE_REPUTATION = "File reputation"
    FINGERPRINT_MATCHING = "Fingerprint matching"
    GENERAL_FILTER = "General filter"
    IMPERSONATION_BRAND = "Impersonation brand"
    IMPERSONATION_DOMAIN = "Impersonation domain"
    IMPERSONATION_USER = "Impersonation user"
    IP_REPUTATION = "IP reputation"
    LLM_CONTENT_ANALYSIS = "LLM content analysis"
    MAIL_BOMBING = "Mail bombing"
    MAILBOX_INTELLIGENCE_IMPERSONATION = "Mailbox intelligence impersonation"
    MIXED_ANALYSIS = "Mixed analysis detection"
    SPOOF_DMARC = "Spoof DMARC"
    SPOOF_EXTERNAL_DOMAIN = "Spoof external domain"
    SPOOF_INTRA_ORG = "Spoof intra-org"
    URL_DETONATION = "URL detonation"
    URL_DETONATION_REPUTATION = "URL detonation reputation"
    URL_MALICIOUS_REPUTATION = "URL malicious reputation"


class ThreatClassification(StrEnum):
    BUSINESS_INTELLIGENCE = "Business intelligence"
    CONTACT_ESTABLISHMENT = "Contact establishment"
    GIFT_CARD = "Gift card"
    INVOICE = "Invoice"
    PAYROLL = "Payroll"
    PII_GATHERING = "PII gathering"
    TASK = "Task"


class EmailAction(StrEnum):
    MOVE_TO_JUNK = "Move to junk"
    ADD_X_HEADER = "Add X-header"
    MODIFY_SUBJECT = "Modify subject"
    REDIRECT = "Redirect"
    DELETE = "Delete"
    SEND_TO_QUARANTINE = "Send to quarantine"
    NO_ACTION = "No action"
    BCC = "Bcc"


class EmailActionPolicy(StrEnum):
    ANTISPAM_HIGH_CONFIDENCE = "Antispam high-confidence"
    ANTISPAM = "Antispam"
    ANTISPAM_BULK = "Antispam bulk mail"
    ANTISPAM_PHISHING = "Antispam phishing"
    ANTIPHISH_DOMAIN_IMPERSONATION = "Anti-phishing domain impersonation"
    ANTIPHISH_USER_IMPERSONATION = "Anti-phishing user impersonation"
    ANTIPHISH_SPOOF = "Anti-phishing spoof"
    ANTIPHISH_GRAPH_IMPERSONATION = "Anti-phishing graph impersonation"
    ANTIMALWARE = "Antimalware"
    SAFE_ATTACHMENTS = "Safe Attachments"
    TRANSPORT_RULE = "Enterprise Transport Rules (ETR)"


class SpfResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class DkimResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NONE = "none"
    ERROR = "error"
    IGNORE = "ignore"
    TEST = "test"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


class DmarcResult(StrEnum):
    PASS = "pass"
    BESTGUESSPASS = "bestguesspass"
    FAIL = "fail"
    NONE = "none"
    PERMERROR = "permerror"
    TEMPERROR = "temperror"
    SELECTORPASS = "selectorpass"
    UNKNOWN = "unknown"


class CompAuthResult(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTPASS = "softpass"
    NONE = "none"


class UrlLocation(StrEnum):
    BODY = "Body"
    SUBJECT = "Subject"
    HEADER = "Header"
    ATTACHMENT = "Attachment"
    CLOUD_ATTACHMENT = "CloudAttachment"
    QR_CODE = "QRCode"
    UNKNOWN = "Unknown"


class ClickAction(StrEnum):
    """UrlClickEvents.ActionType."""

    ALLOWED = "ClickAllowed"
    BLOCKED = "ClickBlocked"
    BLOCKED_BY_TENANT_POLICY = "ClickBlockedByTenantPolicy"
    ERROR_PAGE = "UrlErrorPage"
    SCAN_IN_PROGRESS = "UrlScanInProgress"


class ClickWorkload(StrEnum):
    EMAIL = "Email"
    OFFICE = "Office"
    TEAMS = "Teams"


class FileWorkload(StrEnum):
    SHAREPOINT = "SharePoint"
    ONEDRIVE = "OneDrive"
    TEAMS = "Teams"


class FileAction(StrEnum):
    """The latest action taken on a file found malicious (FileMaliciousContentInfo.LatestFileAction):
    blocked (quarantined: it cannot be opened or downloaded) or released; null when none."""

    BLOCKED = "Blocked"
    RELEASED = "Released"


class PostDeliveryActionType(StrEnum):
    MANUAL_REMEDIATION = "Manual Remediation"
    PHISH_ZAP = "Phish ZAP"
    MALWARE_ZAP = "Malware ZAP"
    SPAM_ZAP = "Spam ZAP"
    REDELIVERY = "Redelivery"
    AUTOMATED_REMEDIATION = "Automated Remediation"


class PostDeliveryAction(StrEnum):
    MOVE_TO_JUNK = "MoveToJunk"
    MOVE_TO_QUARANTINE = "MoveToQuarantine"
    MOVE_TO_INBOX = "MoveToInbox"
    MOVE_TO_DELETED_ITEMS = "MoveToDeletedItems"
    SOFT_DELETE = "SoftDelete"
    HARD_DELETE = "HardDelete"


class ActionTrigger(StrEnum):
    SPECIAL_ACTION = "SpecialAction"
    ADMIN_ACTION = "AdminAction"
    AUTOMATION = "Automation"


class ActionResult(StrEnum):
    SUCCESS = "Success"
    ADMIN_POLICY = "AdminPolicy"
    USER_TRIAGE = "UserTriage"
    ERROR = "Error"
    MESSAGE_NOT_FOUND = "MessageNotFound"


class AlertSeverity(StrEnum):
    INFORMATIONAL = "Informational"
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class AlertServiceSource(StrEnum):
    DEFENDER_FOR_OFFICE = "Microsoft Defender for Office 365"
    DEFENDER_FOR_ENDPOINT = "Microsoft Defender for Endpoint"
    ENTRA_ID_PROTECTION = "Microsoft Entra ID Protection"
    WORKBENCH = "Workbench"


class EvidenceEntityType(StrEnum):
    FILE = "File"
    PROCESS = "Process"
    USER = "User"
    MACHINE = "Machine"
    IP = "Ip"
    URL = "Url"
    MAILBOX = "Mailbox"
    EMAIL = "MailMessage"


class CloudAppActionType(StrEnum):
    """CloudAppEvents.ActionType values the workbench produces and reads."""

    NEW_INBOX_RULE = "New-InboxRule"
    SET_INBOX_RULE = "Set-InboxRule"
    SET_MAILBOX = "Set-Mailbox"
    ADD_MAILBOX_PERMISSION = "Add-MailboxPermission"
    MAIL_ITEMS_ACCESSED = "MailItemsAccessed"
    ADMIN_SUBMISSION_SUBMITTED = "AdminSubmissionSubmitted"
    USER_SUBMISSION = "UserSubmission"
    FILE_UPLOADED = "FileUploaded"
    FILE_ACCESSED = "FileAccessed"
    FILE_MODIFIED = "FileModified"
    FILE_DOWNLOADED = "FileDownloaded"
    FILE_MALWARE_DETECTED = "FileMalwareDetected"


class SignInErrorCode(IntEnum):
    """Common Entra sign-in result codes (AADSignInEventsBeta.ErrorCode)."""

    SUCCESS = 0
    INVALID_PASSWORD = 50126
    MFA_REQUIRED = 50074
    MFA_DENIED = 500121
    BLOCKED_BY_CONDITIONAL_ACCESS = 53003


class ReportType(StrEnum):
    """What a user said when reporting a message."""

    PHISH = "Phish"
    JUNK = "Junk"
    NOT_JUNK = "Not junk"


class Folder(StrEnum):
    """Mailbox folders the mail store keeps per recipient copy."""

    INBOX = "Inbox"
    JUNK = "Junk Email"
    DELETED_ITEMS = "Deleted Items"
    RECOVERABLE_DELETIONS = "Recoverable Items/Deletions"
    RECOVERABLE_PURGES = "Recoverable Items/Purges"
    QUARANTINE = "Quarantine"
    SENT_ITEMS = "Sent Items"

    @classmethod
    def for_location(cls, location: DeliveryLocation | str) -> "Folder | None":
        """The folder holding a copy at a delivery location (None: no copy in a mailbox)."""
        return _LOCATION_FOLDER.get(DeliveryLocation(location))


_LOCATION_FOLDER = {
    DeliveryLocation.INBOX: Folder.INBOX,
    DeliveryLocation.JUNK: Folder.JUNK,
    DeliveryLocation.DELETED_ITEMS: Folder.DELETED_ITEMS,
    DeliveryLocation.QUARANTINE: Folder.QUARANTINE,
}

__all__ = [
    "EmailDirection",
    "DeliveryAction",
    "DeliveryLocation",
    "LatestDeliveryAction",
    "ThreatType",
    "DetectionTechnology",
    "ThreatClassification",
    "EmailAction",
    "EmailActionPolicy",
    "SpfResult",
    "DkimResult",
    "DmarcResult",
    "CompAuthResult",
    "UrlLocation",
    "ClickAction",
    "ClickWorkload",
    "FileWorkload",
    "FileAction",
    "PostDeliveryActionType",
    "PostDeliveryAction",
    "ActionTrigger",
    "ActionResult",
    "AlertSeverity",
    "AlertServiceSource",
    "EvidenceEntityType",
    "CloudAppActionType",
    "SignInErrorCode",
    "ReportType",
    "Folder",
]
