"""Three renderings of a :class:`SourceEvent`: Office 365 Management Activity records
(mdo-reference §8.1), OCSF 1.6.0 events and CEF lines. A format that has no record for an
event returns None (O365 logs only threat mail, blocked or overridden clicks and
automatic investigations; OCSF here covers email, alerts and incidents).

>>> cef_header("a|b\\\\c")
'a\\\\|b\\\\\\\\c'
>>> cef_value("x=1\\n")
'x\\\\=1\\\\n'
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from workbench import __version__
from workbench.siem.events import SourceEvent

VENDOR = "Workbench Project"
PRODUCT = "Workbench"
OCSF_VERSION = "1.6.0"
PORTAL = "https://security.microsoft.com"  # deep links point where the analyst would look
SYSTEM_USER = "ThreatIntelligence"

# ----------------------------------------------------------------------------------- helpers


def _iso(value: Any) -> str | None:
    """O365 times: ISO 8601 UTC without offset, like ``2026-11-18T09:17:00``."""
    if not isinstance(value, datetime):
        return value
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _loads(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _threats(row: Mapping[str, Any]) -> list[str]:
    return [x.strip() for x in (row.get("ThreatTypes") or "").split(",") if x.strip()]


def _methods(row: Mapping[str, Any]) -> dict[str, list[str]]:
    value = _loads(row.get("DetectionMethods"))
    return value if isinstance(value, dict) else {}


def _primary_threat(row: Mapping[str, Any]) -> str:
    threats = _threats(row)
    return next((x for x in ("Malware", "Phish", "Spam") if x in threats), threats[0] if threats else "")


# ----------------------------------------------------------------------------------- O365 (§8.1)

POLICY = {  # EmailActionPolicy -> Policy enum (§8.1)
    "Antispam high-confidence": 1, "Antispam": 2, "Antispam bulk mail": 3, "Antispam phishing": 4,
    "Anti-phishing domain impersonation": 5, "Anti-phishing user impersonation": 6, "Anti-phishing spoof": 7,
    "Anti-phishing graph impersonation": 8, "Antimalware": 9, "Safe Attachments": 10,
    "Enterprise Transport Rules (ETR)": 11,
}
POLICY_ACTION = {  # EmailAction -> PolicyAction enum (§8.1)
    "Move to junk": 0, "Add X-header": 1, "Modify subject": 2, "Redirect": 3, "Delete": 4,
    "Send to quarantine": 5, "No action": 6, "Bcc": 7, "Replace attachment": 8,
}
SOURCE_WORKLOAD = {"SharePoint": 0, "OneDrive": 1, "Teams": 2}
APP_NAME = {"Email": "Mail", "Teams": "Teams", "Office": "Office"}
AIR_STATUS = {  # InvestigationStatus -> the status names AIR logs (§8.1)
    "starting": "Investigation Started", "queuedByThrottling": "Investigation Started", "running": "Running",
    "noThreatsFound": "No threats found", "partiallyInvestigated": "Threats Found",
    "pendingAction": "Pending Action", "partiallyRemediated": "Threats Found", "remediated": "Remediated",
    "failed": "Failed", "terminatedBySystem": "Terminated by System", "terminatedByUser": "Terminated By User",
    "terminatedByThrottling": "Terminated by throttling",
}
AIR_TYPE = {  # playbook -> InvestigationType; manual investigations are not logged (§8.1)
    "user_reported_phish": "User-Reported Messages", "malware_zap": "Zapped Malware",
    "phish_zap": "Zapped Phish", "url_click_verdict_change": "Url Verdict Change",
}
AIR_ACTION_STATUS = {"pending": "Pending", "approved": "Running", "running": "Running",
                     "completed": "Completed", "failed": "Failed"}
ATTACK_SIM_EVENT = {  # EventKind -> AttackSimEvent enum (§8.1)
    "delivered": 1, "failed": 2, "credentialsSupplied": 6, "consentGranted": 7, "clicked": 8,
    "attachmentLinkClicked": 8, "attachmentOpened": 10, "read": 12, "reported": 15,
}
ATTACK_SIM_NAME = {1: "MessageDelivered", 2: "MessageFailed", 6: "CredentialEntered", 7: "PermissionGranted",
                   8: "LinkClicked", 10: "AttachmentOpened", 12: "MessageRead", 15: "MessageReported"}
ATTACK_TECHNIQUE = {
    "credentialHarvest": "CredentialHarvest", "malwareAttachment": "AttachmentMalware",
    "linkInAttachment": "LinkInAttachment", "linkToMalware": "LinkToMalware", "driveByUrl": "DriveByUrl",
    "oAuthConsentGrant": "OAuthConsentGrant", "howToGuide": "HowToGuide",
}


def _common(ev: SourceEvent, record_type: int, operation: str, workload: str, *, user: str = SYSTEM_USER,
            user_type: int = 4, object_id: str = "", client_ip: str = "", result: str = "Succeeded",
            organization_id: str = "") -> dict[str, Any]:
    """The common schema fields (§8.1); UserType 4 is System, 0 Regular."""
    return {
        "Id": ev.id, "RecordType": record_type, "CreationTime": _iso(ev.time), "Operation": operation,
        "OrganizationId": organization_id, "UserType": user_type, "UserKey": user, "Workload": workload,
        "ResultStatus": result, "ObjectId": object_id or "", "UserId": user, "ClientIP": client_ip or "",
    }


def _detection_method(methods: dict[str, list[str]]) -> str:
    return "; ".join(f"{threat}: {', '.join(tech)}" for threat, tech in methods.items())


def _explorer_link(nmid: str, recipient: str, when: datetime) -> str:
    return (f"{PORTAL}/?hash=/threatexplorer?messageParams={nmid},{recipient},"
            f"{when.strftime('%Y-%m-%dT%H:%M:%S')}&view=Phish")


def _o365_email(ev: SourceEvent, org: str) -> dict | None:
    d = ev.data
    threats = _threats(d)
    if not {"Phish", "Malware"} & set(threats):
        return None  # RecordType 28 logs phish and malware mail only
    methods, auth = _methods(d), _loads(d.get("AuthenticationDetails")) or {}
    confidence = _loads(d.get("ConfidenceLevel")) or {}
    record = _common(ev, 28, "TIMailData", "ThreatIntelligence", object_id=d.get("InternetMessageId") or "",
                     organization_id=org)
    overrides = [{"Details": d.get(f"{lvl}LevelPolicy"), "FinalOverride": "Yes", "Result": d.get(f"{lvl}LevelAction"),
                  "Source": {"Org": "Tenant", "User": "User"}[lvl]}
                 for lvl in ("Org", "User") if d.get(f"{lvl}LevelAction")]
    latest = d.get("LatestDeliveryAction")
    record.update({
        "AttachmentData": [{"FileName": a.get("FileName"), "FileType": a.get("FileType"),
                            "FileVerdict": 1 if "Malware" in (a.get("ThreatTypes") or "") else 0,
                            "MalwareFamily": a.get("ThreatNames") or "", "SHA256": a.get("SHA256")}
                           for a in d.get("Attachments", [])],
        "DetectionType": "ZAP" if latest and "ZAP" in latest else "Inline",
        "DetectionMethod": _detection_method(methods),
        "InternetMessageId": d.get("InternetMessageId"), "NetworkMessageId": d.get("NetworkMessageId"),
        "P1Sender": d.get("SenderMailFromAddress"), "P2Sender": d.get("SenderFromAddress"),
        "Policy": POLICY.get(d.get("EmailActionPolicy") or "", 0),
        "PolicyAction": POLICY_ACTION.get(d.get("EmailAction") or "", 6),
        "Recipients": [d.get("RecipientEmailAddress")], "SenderIp": d.get("SenderIPv4") or d.get("SenderIPv6") or "",
        "Subject": d.get("Subject"), "Verdict": _primary_threat(d), "MessageTime": _iso(d.get("Timestamp")),
        "EventDeepLink": _explorer_link(d.get("NetworkMessageId") or "", d.get("RecipientEmailAddress") or "", ev.time),
        "Delivery Action": d.get("DeliveryAction"), "Original Delivery location": d.get("DeliveryLocation"),
        "Latest Delivery location": d.get("LatestDeliveryLocation") or d.get("DeliveryLocation"),
        "Directionality": d.get("EmailDirection"),
        "ThreatsAndDetectionTech": [f"{threat}: [{m}]" for threat, tech in methods.items() for m in tech],
        "AdditionalActionsAndResults": [latest] if latest and latest != d.get("DeliveryAction") else [],
        "Connectors": d.get("Connectors") or "",
        "AuthDetails": [{"Name": k, "Value": v} for k, v in auth.items()] if isinstance(auth, dict) else [],
        "SystemOverrides": overrides,
        "Phish Confidence Level": confidence.get("Phish", "") if isinstance(confidence, dict) else "",
    })
    return record


def _click_action(d: Mapping[str, Any]) -> int | None:
    """URLClickAction: 2 Blockpage, 3 PendingDetonationPage, 4/5 their overrides (click-throughs)."""
    through, action = bool(d.get("IsClickedThrough")), d.get("ActionType") or ""
    if action == "UrlScanInProgress":
        return 5 if through else 3
    if action.startswith("ClickBlocked"):
        return 4 if through else 2
    return 4 if through else None  # an allowed click is not logged


def _o365_click(ev: SourceEvent, org: str) -> dict | None:
    d = ev.data
    action = _click_action(d)
    if action is None:
        return None
    user = d.get("AccountUpn") or ""
    record = _common(ev, 41, "TIUrlClickData", "ThreatIntelligence", user=user, user_type=0,
                     object_id=d.get("Url") or "", client_ip=d.get("IPAddress") or "", organization_id=org)
    record.update({"AppName": APP_NAME.get(d.get("Workload") or "", d.get("Workload") or ""), "URLClickAction": action,
                   "SourceId": d.get("NetworkMessageId") or "", "TimeOfClick": _iso(ev.time), "URL": d.get("Url"),
                   "UserIp": d.get("IPAddress") or ""})
    return record


def _o365_file(ev: SourceEvent, org: str) -> dict:
    d = ev.data
    record = _common(ev, 47, "AtpDetection", "ThreatIntelligence", object_id=d.get("DocumentId") or "",
                     organization_id=org)
    record.update({
        "FileData": {"DocumentId": d.get("DocumentId"), "FileName": d.get("FileName"), "FilePath": d.get("FolderPath"),
                     "FileVerdict": 1, "MalwareFamily": d.get("ThreatNames") or "", "SHA256": d.get("SHA256"),
                     "FileSize": d.get("FileSize")},
        "SourceWorkload": SOURCE_WORKLOAD.get(d.get("Workload") or "", 0),
        "DetectionMethod": _detection_method(_methods(d)),
        "LastModifiedDate": _iso(d.get("LastModifiedTime")), "LastModifiedBy": d.get("LastModifiedBy"),
        "EventDeepLink": f"{PORTAL}/contentmalware?documentId={d.get('DocumentId')}",
    })
    return record


def _air_action(inv: Mapping[str, Any], a: Mapping[str, Any]) -> dict:
    return {"ID": str(a.get("id")), "ActionType": a.get("action"),
            "ActionStatus": AIR_ACTION_STATUS.get(a.get("status") or "", "Pending"), "ApprovedBy": "",
            "TimestampUtc": _iso(a.get("created")), "ActionId": str(a.get("id")), "InvestigationId": str(inv["id"]),
            "RelatedAlertIds": [inv["alert_id"]] if inv.get("alert_id") else [],
            "StartTimeUtc": _iso(a.get("created")), "EndTimeUtc": None,
            "Resource Identifiers": [{"Type": a.get("target_kind"), "Value": a.get("target")}],
            "Entities": [{"Type": a.get("target_kind"), "Value": a.get("target")}]}


def _o365_investigation(ev: SourceEvent, org: str) -> dict | None:
    d = ev.data
    kind = AIR_TYPE.get(d.get("playbook") or "")
    if kind is None:
        return None
    record = _common(ev, 64, "AirInvestigationData", "AirInvestigation", object_id=str(d["id"]), organization_id=org)
    record.update({
        "InvestigationId": str(d["id"]), "InvestigationName": d.get("name"), "InvestigationType": kind,
        "LastUpdateTimeUtc": _iso(ev.time), "StartTimeUtc": _iso(d.get("started") or d.get("created")),
        "Status": AIR_STATUS.get(d.get("status") or "", d.get("status")),
        "DeeplinkURL": f"{PORTAL}/airinvestigation/{d['id']}",
        "Actions": [_air_action(d, a) for a in d.get("actions", [])],
        "Data": json.dumps({"Entities": [{"Type": x.get("kind"), "Value": x.get("value"), "Verdict": x.get("verdict")}
                                         for x in d.get("evidence", [])],
                            "Alerts": [d["alert_id"]] if d.get("alert_id") else []}, sort_keys=True),
    })
    return record


def _o365_simulation(ev: SourceEvent, org: str) -> dict | None:
    d = ev.data
    code = ATTACK_SIM_EVENT.get(d.get("kind") or "")
    if code is None:
        return None
    attrs = d.get("target_attributes") or {}
    user = d.get("email") or ""
    campaign_type = ("training" if d.get("technique") == "howToGuide"
                     else "simulation automation" if d.get("automation_id") else "simulation")
    record = _common(ev, 85, ATTACK_SIM_NAME[code], "SecurityComplianceCenter", user=user, user_type=0,
                     object_id=str(d.get("campaign_id")), client_ip=d.get("ip") or "", organization_id=org)
    record.update({
        "Batch ID": str(d.get("automation_id") or d.get("campaign_id")), "Campaign ID": str(d.get("campaign_id")),
        "UserDisplayName": attrs.get("display_name") or attrs.get("name") or user,
        "AttackTechnique": ATTACK_TECHNIQUE.get(d.get("technique") or "", d.get("technique")),
        "CampaignType": campaign_type, "TimeData": _iso(d.get("launch_at") or ev.time),
        "EndTimeData": _iso(d.get("end_at")), "AttackSimEvent": code,
        "ExtendedProperties": [{"Name": k, "Value": v} for k, v in (
            ("CampaignName", d.get("campaign_name")), ("Source", d.get("source")), ("UserAgent", d.get("user_agent")),
            ("FlaggedReasons", d.get("reasons"))) if v],
    })
    return record


_O365: dict[str, Callable[[SourceEvent, str], dict | None]] = {
    "email": _o365_email, "click": _o365_click, "file": _o365_file,
    "investigation": _o365_investigation, "simulation": _o365_simulation,
}


def to_o365(ev: SourceEvent, *, organization_id: str = "") -> dict | None:
    """The Management Activity record of *ev* (RecordType 28, 41, 47, 64 or 85), or None."""
    render = _O365.get(ev.source)
    return render(ev, organization_id) if render else None


# ----------------------------------------------------------------------------------- OCSF 1.6.0

SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
DIRECTION = {"Inbound": (1, 2), "Outbound": (2, 1), "Intra-org": (3, 2)}  # -> (direction_id, activity_id)
ALERT_STATUS = {"new": 1, "inProgress": 2, "resolved": 4}
INCIDENT_STATUS = {"active": 1, "inProgress": 2, "resolved": 4, "redirected": 5}
INCIDENT_VERDICT = {"truePositive": 2, "falsePositive": 1, "informationalExpectedActivity": 5, "unknown": 0}


def _metadata(ev: SourceEvent) -> dict[str, Any]:
    return {"product": {"name": PRODUCT, "vendor_name": VENDOR, "version": __version__},
            "version": OCSF_VERSION, "uid": ev.id, "log_name": ev.source}


def _base(ev: SourceEvent, category_uid: int, class_uid: int, activity_id: int, severity_id: int) -> dict[str, Any]:
    return {"category_uid": category_uid, "class_uid": class_uid, "activity_id": activity_id,
            "type_uid": class_uid * 100 + activity_id, "severity_id": severity_id,
            "severity": _SEVERITY_NAME.get(severity_id, "Unknown"), "time": _ms(ev.time), "metadata": _metadata(ev)}


def _email_severity(d: Mapping[str, Any]) -> int:
    threats = set(_threats(d))
    return 4 if threats & {"Malware", "Phish"} else 2 if threats else 1


def _ocsf_files(d: Mapping[str, Any]) -> list[dict]:
    return [{"name": a.get("FileName") or "", "type_id": 1, "size": a.get("FileSize"),
             "hashes": [{"algorithm_id": 3, "value": a["SHA256"]}] if a.get("SHA256") else []}
            for a in d.get("Attachments", [])]


def _ocsf_email(ev: SourceEvent) -> dict:
    d = ev.data
    direction_id, activity_id = DIRECTION.get(d.get("EmailDirection") or "", (0, 3))
    auth = _loads(d.get("AuthenticationDetails")) or {}
    record = _base(ev, 4, 4009, activity_id, _email_severity(d))
    record.update({
        "direction_id": direction_id,
        "email": {"uid": d.get("NetworkMessageId"), "message_uid": d.get("InternetMessageId"),
                  "from": d.get("SenderFromAddress"), "smtp_from": d.get("SenderMailFromAddress"),
                  "to": [d["RecipientEmailAddress"]] if d.get("RecipientEmailAddress") else [],
                  "subject": d.get("Subject"), "size": d.get("EmailSize"),
                  "urls": [{"url_string": u} for u in d.get("Urls", [])], "files": _ocsf_files(d)},
        "email_auth": {"spf": auth.get("SPF"), "dkim": auth.get("DKIM"), "dmarc": auth.get("DMARC")}
        if isinstance(auth, dict) else {},
        "src_endpoint": {"ip": d.get("SenderIPv4") or d.get("SenderIPv6")},
        "message": d.get("ThreatTypes") or "No threats found",
        "unmapped": {"DeliveryAction": d.get("DeliveryAction"), "DeliveryLocation": d.get("DeliveryLocation"), "LatestDeliveryAction": d.get("LatestDeliveryAction"),
                     "LatestDeliveryLocation": d.get("LatestDeliveryLocation"), "ThreatTypes": d.get("ThreatTypes"),
                     "DetectionMethods": _methods(d), "EmailAction": d.get("EmailAction"),
                     "EmailActionPolicy": d.get("EmailActionPolicy")},
    })
    return _prune(record)


def _finding_info(d: Mapping[str, Any]) -> dict:
    return {"uid": str(d["id"]), "title": d.get("title") or "", "desc": d.get("description") or "",
            "types": [d.get("category")] if d.get("category") else [], "created_time": _ms(d.get("created")),
            "first_seen_time": _ms(d.get("first_activity")), "last_seen_time": _ms(d.get("last_activity")),
            "modified_time": _ms(d.get("last_update")),
            "analytic": {"uid": d.get("policy_id"), "name": d.get("policy_id"), "type_id": 1}
            if d.get("policy_id") else None,
            "attacks": [{"technique": {"uid": x}} for x in _techniques(d.get("mitre_techniques"))]}


def _techniques(value: Any) -> list[str]:
    """MITRE technique ids from a list or its JSON text."""
    value = _loads(value) if isinstance(value, str) else value
    return [x for x in value or [] if isinstance(x, str)]


def _activity(d: Mapping[str, Any], closed: bool) -> int:
    if closed:
        return 3
    return 1 if d.get("created") == d.get("last_update") else 2


_STATUS_NAME = {1: "New", 2: "In Progress", 4: "Resolved", 5: "Closed"}


def _status(status_id: int, ours: str) -> dict[str, Any]:
    """status_id with its OCSF caption (the models check the pair); 99 Other carries our word."""
    return {"status_id": status_id, "status": _STATUS_NAME.get(status_id, ours)}


def _ocsf_alert(ev: SourceEvent) -> dict:
    d = ev.data
    status = d.get("status") or ""
    record = _base(ev, 2, 2004, _activity(d, status == "resolved"), SEVERITY_ID.get(d.get("severity") or "", 0))
    record.update({"finding_info": _finding_info(d), **_status(ALERT_STATUS.get(status, 99), status),
                   "is_alert": True, "start_time": _ms(d.get("first_activity")), "end_time": _ms(d.get("last_activity")),
                   "observables": _observables(d.get("entities", [])),
                   "unmapped": {"incident_id": d.get("incident_id"), "classification": d.get("classification"),
                                "determination": d.get("determination"), "assigned_to": d.get("assigned_to")}})
    return _prune(record)


_OBSERVABLE_TYPE = {"mailbox": (5, "Email Address"), "user": (4, "User Name"), "ip": (2, "IP Address"),
                    "url": (6, "URL String"), "file": (8, "Hash"), "domain": (1, "Hostname")}


def _observables(entities: list[Mapping[str, Any]]) -> list[dict]:
    out = []
    for e in entities:
        type_id, name = _OBSERVABLE_TYPE.get(e.get("kind") or "", (99, "Other"))
        out.append({"name": e.get("kind"), "type_id": type_id, "type": name, "value": e.get("value")})
    return out


def _ocsf_incident(ev: SourceEvent) -> dict:
    d = ev.data
    status = d.get("status") or ""
    record = _base(ev, 2, 2005, _activity(d, status == "resolved"), SEVERITY_ID.get(d.get("severity") or "", 0))
    record.update({
        **_status(INCIDENT_STATUS.get(status, 99), status), "desc": d.get("description") or d.get("name"),
        "finding_info_list": [_finding_info({**a, "last_update": None}) for a in d.get("alerts", [])]
        or [{"uid": f"incident-{d['id']}", "title": d.get("name")}],
        "verdict_id": INCIDENT_VERDICT.get(d.get("classification") or "", 0),
        "assignee": {"name": d["assigned_to"]} if d.get("assigned_to") else None,
        "start_time": _ms(d.get("first_activity")), "end_time": _ms(d.get("last_activity")),
        "src_url": f"workbench://incidents/{d['id']}",
        "unmapped": {"incident_id": d["id"], "name": d.get("name"), "tags": d.get("tags", []),
                     "determination": d.get("determination")},
    })
    return _prune(record)


def _prune(value: Any) -> Any:
    """Drop None values and empty containers (OCSF omits absent attributes)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value if v is not None]
    return value


_OCSF: dict[str, Callable[[SourceEvent], dict]] = {"email": _ocsf_email, "alert": _ocsf_alert,
                                                   "incident": _ocsf_incident}


def to_ocsf(ev: SourceEvent) -> dict | None:
    """OCSF 1.6.0 Email Activity (4009), Detection Finding (2004) or Incident Finding (2005), or None."""
    render = _OCSF.get(ev.source)
    return render(ev) if render else None


# ----------------------------------------------------------------------------------- CEF

_KEY = re.compile(r"^[A-Za-z0-9]+$")


def cef_header(value: Any) -> str:
    r"""Escape a header field: backslash and pipe; newlines become spaces."""
    text = "" if value is None else str(value)
    return re.sub(r"[\r\n]+", " ", text.replace("\\", "\\\\").replace("|", "\\|"))


def cef_value(value: Any) -> str:
    r"""Escape an extension value: backslash, equals sign, newlines as \n (and \r)."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def cef_line(signature: str, name: str, severity: int, extension: Mapping[str, Any]) -> str:
    """A CEF:0 line; None/empty extension values are left out, keys must be alphanumeric."""
    bad = [k for k in extension if not _KEY.match(k)]
    if bad:
        raise ValueError(f"CEF extension key {bad[0]!r} is not alphanumeric")
    ext = " ".join(f"{k}={cef_value(v)}" for k, v in extension.items() if v not in (None, ""))
    header = [cef_header(x) for x in (VENDOR, PRODUCT, __version__, signature, name)]
    return f"CEF:0|{'|'.join(header)}|{max(0, min(10, severity))}|{ext}"


_CEF_SEVERITY = {0: 0, 1: 1, 2: 3, 3: 5, 4: 8, 5: 10}


def _labelled(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """cs1..cs6 with their labels."""
    out: dict[str, Any] = {}
    for n, (label, value) in enumerate(pairs, start=1):
        out[f"cs{n}"], out[f"cs{n}Label"] = value, label
    return out


def _cef_email(ev: SourceEvent) -> str:
    d = ev.data
    threat = _primary_threat(d) or "Clean"
    return cef_line(f"email:{threat}", f"Email {threat.lower()}: {d.get('Subject') or ''}",
                    _CEF_SEVERITY[_email_severity(d)], {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": "email", "src": d.get("SenderIPv4") or d.get("SenderIPv6"),
        "suser": d.get("SenderFromAddress"), "duser": d.get("RecipientEmailAddress"), "msg": d.get("Subject"),
        "act": d.get("DeliveryAction"), "fname": (d.get("Attachments") or [{}])[0].get("FileName"),
        "fileHash": (d.get("Attachments") or [{}])[0].get("SHA256"), "request": (d.get("Urls") or [None])[0],
        **_labelled(("NetworkMessageId", d.get("NetworkMessageId")), ("InternetMessageId", d.get("InternetMessageId")),
                    ("ThreatTypes", d.get("ThreatTypes")), ("DeliveryLocation", d.get("DeliveryLocation")),
                    ("LatestDeliveryLocation", d.get("LatestDeliveryLocation")), ("Direction", d.get("EmailDirection"))),
    })


def _cef_click(ev: SourceEvent) -> str:
    d = ev.data
    action = d.get("ActionType") or ""
    return cef_line(f"click:{action}", f"Safe Links {action}", 5 if action != "ClickAllowed" else 3, {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": "click", "src": d.get("IPAddress"),
        "suser": d.get("AccountUpn"), "request": d.get("Url"), "act": action,
        **_labelled(("NetworkMessageId", d.get("NetworkMessageId")), ("Workload", d.get("Workload")),
                    ("IsClickedThrough", str(bool(d.get("IsClickedThrough"))).lower()),
                    ("ThreatTypes", d.get("ThreatTypes"))),
    })


def _cef_file(ev: SourceEvent) -> str:
    d = ev.data
    return cef_line("file:Malware", f"Malicious file in {d.get('Workload')}: {d.get('FileName')}", 8, {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": "file", "fname": d.get("FileName"),
        "filePath": d.get("FolderPath"), "fileHash": d.get("SHA256"), "fsize": d.get("FileSize"),
        "suser": d.get("LastModifiedBy"), "request": d.get("SiteUrl"), "act": d.get("LatestFileAction"),
        **_labelled(("Workload", d.get("Workload")), ("ThreatNames", d.get("ThreatNames")),
                    ("DocumentId", d.get("DocumentId"))),
    })


def _cef_investigation(ev: SourceEvent) -> str:
    d = ev.data
    return cef_line(f"investigation:{d.get('playbook')}", f"Investigation {d.get('status')}: {d.get('name')}", 5, {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": "investigation", "act": d.get("status"),
        "suser": d.get("started_by"), "msg": d.get("error"),
        **_labelled(("InvestigationId", d.get("id")), ("Playbook", d.get("playbook")), ("AlertId", d.get("alert_id")),
                    ("IncidentId", d.get("incident_id"))),
    })


def _cef_simulation(ev: SourceEvent) -> str:
    d = ev.data
    return cef_line(f"simulation:{d.get('kind')}", f"Simulation {d.get('kind')}: {d.get('campaign_name')}", 1, {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": "simulation", "duser": d.get("email"), "src": d.get("ip"),
        "act": d.get("kind"), "requestClientApplication": d.get("user_agent"),
        **_labelled(("CampaignId", d.get("campaign_id")), ("Technique", d.get("technique")),
                    ("FlaggedReasons", d.get("reasons"))),
    })


def _first(entities: list[Mapping[str, Any]], *kinds: str) -> str | None:
    return next((e.get("value") for e in entities if e.get("kind") in kinds), None)


def _cef_alert(ev: SourceEvent) -> str:
    d = ev.data
    ents = d.get("entities", [])
    sev = _CEF_SEVERITY[SEVERITY_ID.get(d.get("severity") or "", 0)]
    return cef_line(f"alert:{d.get('policy_id')}", d.get("title") or "", sev, {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": d.get("category"), "msg": d.get("description"),
        "act": d.get("status"), "duser": _first(ents, "mailbox", "user"), "src": _first(ents, "ip"),
        "request": _first(ents, "url"), "fileHash": _first(ents, "file"),
        **_labelled(("AlertId", d.get("id")), ("IncidentId", d.get("incident_id")),
                    ("Classification", d.get("classification")), ("DetectionSource", d.get("detection_source"))),
    })


def _cef_incident(ev: SourceEvent) -> str:
    d = ev.data
    sev = _CEF_SEVERITY[SEVERITY_ID.get(d.get("severity") or "", 0)]
    return cef_line("incident", d.get("name") or "", sev, {
        "rt": _ms(ev.time), "externalId": ev.id, "cat": "incident", "msg": d.get("description"),
        "act": d.get("status"), "suser": d.get("assigned_to"),
        **_labelled(("IncidentId", d.get("id")), ("Classification", d.get("classification")),
                    ("Determination", d.get("determination")),
                    ("AlertIds", ",".join(a.get("id", "") for a in d.get("alerts", [])))),
    })


_CEF: dict[str, Callable[[SourceEvent], str]] = {
    "email": _cef_email, "click": _cef_click, "file": _cef_file, "investigation": _cef_investigation,
    "simulation": _cef_simulation, "alert": _cef_alert, "incident": _cef_incident,
}


def to_cef(ev: SourceEvent) -> str | None:
    """One CEF line for *ev* (every source has one)."""
    render = _CEF.get(ev.source)
    return render(ev) if render else None


FORMATS: dict[str, Callable[[SourceEvent], Any]] = {"o365": to_o365, "ocsf": to_ocsf, "cef": to_cef}

__all__ = ["FORMATS", "to_o365", "to_ocsf", "to_cef", "cef_header", "cef_value", "cef_line"]
