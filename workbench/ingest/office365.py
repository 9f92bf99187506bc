"""Office 365 Management Activity records, Entra sign-in logs and OfficeActivity exports.

Every Management Activity record lands in CloudAppEvents (``ActionType`` = Operation, the
whole record in ``RawEventData``), as in Advanced Hunting. The threat records are also
typed into their own tables (mdo-reference §8.1):

- RecordType 28 ``TIMailData`` → EmailEvents (one row per recipient) and EmailAttachmentInfo;
- RecordType 41 ``TIUrlClickData`` → UrlClickEvents;
- RecordType 47 ``AtpDetection`` → FileMaliciousContentInfo.

Entra ``SignInLogs`` records (Log Analytics / diagnostic export) → AADSignInEventsBeta.
An OfficeActivity CSV (TimeGenerated, UserId, ClientIP, Operation, Parameters) →
CloudAppEvents. Ids come from the records, so loading twice adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from workbench.enums import ClickAction, FileWorkload
from workbench.errors import InputError

Record = tuple[str, str | None, dict | None, str | None]  # source, table, values, error

_APPS = {"Exchange": "Microsoft Exchange Online", "SharePoint": "Microsoft SharePoint Online",
         "OneDrive": "Microsoft OneDrive for Business", "MicrosoftTeams": "Microsoft Teams",
         "AzureActiveDirectory": "Microsoft Entra ID"}
_AUTH = {"spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC", "comp auth": "CompAuth", "compauth": "CompAuth"}
_CLICK = {2: ClickAction.BLOCKED, 3: ClickAction.SCAN_IN_PROGRESS, 4: ClickAction.ALLOWED, 5: ClickAction.ALLOWED}
_WORKLOAD = {0: FileWorkload.SHAREPOINT, 1: FileWorkload.ONEDRIVE, 2: FileWorkload.TEAMS}
_RISK = {"none": 0, "low": 10, "medium": 50, "high": 100, "hidden": 0}
_RISK_STATE = {"none": 0, "confirmedSafe": 1, "remediated": 2, "dismissed": 3, "atRisk": 4, "confirmedCompromised": 5}
_CA = {"success": 0, "failure": 1, "notApplied": 2}


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _auth(details: list | None) -> str | None:
    if not isinstance(details, list):
        return None
    found = {}
    for item in details:
        if isinstance(item, dict) and str(item.get("Name", "")).lower() in _AUTH:
            found[_AUTH[str(item["Name"]).lower()]] = str(item.get("Value", "")).lower().replace(" ", "")
    return json.dumps({k: found.get(k, "none") for k in ("SPF", "DKIM", "DMARC", "CompAuth")}, separators=(",", ":")) if found else None


def _threats(record: dict) -> tuple[str | None, str | None]:
    """(ThreatTypes, DetectionMethods JSON) from ThreatsAndDetectionTech / Verdict / DetectionMethod."""
    by_threat: dict[str, list[str]] = {}
    for entry in record.get("ThreatsAndDetectionTech") or []:  # "Phish: [Spoof DMARC]"
        threat, _, techs = str(entry).partition(":")
        by_threat.setdefault(threat.strip(), []).extend(t.strip() for t in techs.strip(" []").split(",") if t.strip())
    verdict = str(record.get("Verdict") or "").strip()
    if not by_threat and verdict and verdict.lower() not in ("none", "notspam", "clean"):
        by_threat[verdict] = [str(record["DetectionMethod"])] if record.get("DetectionMethod") else []
    if not by_threat and any(a.get("FileVerdict") == 1 for a in record.get("AttachmentData") or [] if isinstance(a, dict)):
        by_threat["Malware"] = [str(record.get("DetectionMethod") or "")]
    if not by_threat:
        return None, None
    return ", ".join(by_threat), json.dumps(by_threat, separators=(",", ":"))


def _activity(record: dict, source: str) -> Record:
    rid = str(record.get("Id") or _digest(record))
    workload = str(record.get("Workload") or "")
    return source, "CloudAppEvents", {
        "Timestamp": record.get("CreationTime"), "ActionType": record.get("Operation"),
        "Application": _APPS.get(workload, workload or None), "AccountId": record.get("UserId"),
        "AccountObjectId": record.get("UserKey"), "IPAddress": (record.get("ClientIP") or record.get("ClientIPAddress")
                                                             or record.get("ActorIpAddress")),
        "ObjectId": record.get("ObjectId"), "ObjectName": record.get("ObjectId"), "ReportId": rid,
        "RawEventData": record, "AuditSource": "Office 365 Management Activity API",
        "IsAdminOperation": record.get("UserType") in (2, 3),
    }, None


def management_records(record: dict, source: str) -> Iterator[Record]:
    yield _activity(record, source)
    kind = record.get("RecordType")
    rid = str(record.get("Id") or _digest(record))
    if kind == 28:
        threat_types, methods = _threats(record)
        common = {
            "Timestamp": record.get("MessageTime") or record.get("CreationTime"),
            "NetworkMessageId": record.get("NetworkMessageId"), "InternetMessageId": record.get("InternetMessageId"),
            "SenderMailFromAddress": record.get("P1Sender"), "SenderFromAddress": record.get("P2Sender"),
            "Subject": record.get("Subject"), "SenderIPv4": record.get("SenderIp"),
            "EmailDirection": record.get("Directionality"), "DeliveryAction": record.get("DeliveryAction"),
            "DeliveryLocation": record.get("OriginalDeliveryLocation"),
            "LatestDeliveryLocation": record.get("LatestDeliveryLocation"),
            "ThreatTypes": threat_types, "DetectionMethods": methods, "AuthenticationDetails": _auth(record.get("AuthDetails")),
            "ConfidenceLevel": json.dumps({"Phish": record["PhishConfidenceLevel"]}) if record.get("PhishConfidenceLevel") else None,
            "EmailActionPolicy": record.get("Policy"), "EmailAction": record.get("PolicyAction"),
            "AttachmentCount": len(record.get("AttachmentData") or []), "Connectors": record.get("Connectors"),
        }
        for rcpt in record.get("Recipients") or [None]:
            yield source, "EmailEvents", {**common, "RecipientEmailAddress": rcpt, "ReportId": f"{rid}:{rcpt or ''}"}, None
            for i, att in enumerate(a for a in record.get("AttachmentData") or [] if isinstance(a, dict)):
                bad = att.get("FileVerdict") == 1
                yield source, "EmailAttachmentInfo", {
                    "Timestamp": common["Timestamp"], "NetworkMessageId": common["NetworkMessageId"],
                    "SenderFromAddress": common["SenderFromAddress"], "RecipientEmailAddress": rcpt,
                    "FileName": att.get("FileName"), "FileType": att.get("FileType"), "SHA256": att.get("SHA256"),
                    "ThreatTypes": "Malware" if bad else None, "ThreatNames": att.get("MalwareFamily") if bad else None,
                    "ReportId": f"{rid}:{rcpt or ''}:a{i}",
                }, None
    elif kind == 41:
        action = _CLICK.get(record.get("URLClickAction"), ClickAction.ALLOWED)
        app = str(record.get("AppName") or "Mail")
        yield source, "UrlClickEvents", {
            "Timestamp": record.get("TimeOfClick") or record.get("CreationTime"), "Url": record.get("Url"),
            "ActionType": action.value, "AccountUpn": record.get("UserId"),
            "Workload": "Email" if app.lower() in ("mail", "outlook", "email") else app,
            "NetworkMessageId": record.get("SourceId"), "IPAddress": record.get("UserIp"),
            "IsClickedThrough": record.get("URLClickAction") in (4, 5), "ReportId": rid,
        }, None
    elif kind == 47:
        data = record.get("FileData") or {}
        bad = data.get("FileVerdict") == 1
        yield source, "FileMaliciousContentInfo", {
            "Timestamp": record.get("DetectionDate") or record.get("CreationTime"),
            "Workload": _WORKLOAD.get(record.get("SourceWorkload"), FileWorkload.SHAREPOINT).value,
            "FileName": data.get("FileName"), "FolderPath": data.get("FilePath"), "DocumentId": data.get("DocumentId"),
            "SHA256": data.get("SHA256"), "FileSize": data.get("FileSize"), "ThreatTypes": "Malware" if bad else None,
            "ThreatNames": data.get("MalwareFamily"), "DetectionMethods": record.get("DetectionMethod"),
            "LastModifiedBy": record.get("LastModifiedBy"), "LastModifiedTime": record.get("LastModifiedDate"),
            "ReportId": rid,
        }, None


def signin_record(record: dict, source: str) -> Record:
    """An Entra SignInLogs record (Log Analytics columns, or a diagnostic record's properties)."""
    r = {**record, **(record.get("properties") or {})}
    location = r.get("LocationDetails") or r.get("location") or {}
    if isinstance(location, str):
        try:
            location = json.loads(location)
        except json.JSONDecodeError:
            location = {}
    status = r.get("status") or r.get("Status") or {}
    error = r.get("ResultType", status.get("errorCode") if isinstance(status, dict) else None)
    device = r.get("DeviceDetail") or r.get("deviceDetail") or {}
    device = device if isinstance(device, dict) else {}
    return source, "AADSignInEventsBeta", {
        "Timestamp": r.get("TimeGenerated") or r.get("createdDateTime") or r.get("time"),
        "Application": r.get("AppDisplayName") or r.get("appDisplayName"), "ApplicationId": r.get("AppId") or r.get("appId"),
        "ErrorCode": error, "CorrelationId": r.get("CorrelationId") or r.get("correlationId"),
        "AccountUpn": r.get("UserPrincipalName") or r.get("userPrincipalName"),
        "AccountDisplayName": r.get("UserDisplayName") or r.get("userDisplayName"),
        "AccountObjectId": r.get("UserId") or r.get("userId"), "IPAddress": r.get("IPAddress") or r.get("ipAddress"),
        "Country": location.get("countryOrRegion"), "State": location.get("state"), "City": location.get("city"),
        "RiskLevelAggregated": _RISK.get(str(r.get("RiskLevelAggregated") or r.get("riskLevelAggregated") or "none"), 0),
        "RiskState": _RISK_STATE.get(str(r.get("RiskState") or r.get("riskState") or "none"), 0),
        "UserAgent": r.get("UserAgent") or r.get("userAgent"), "ClientAppUsed": r.get("ClientAppUsed") or r.get("clientAppUsed"),
        "ConditionalAccessStatus": _CA.get(str(r.get("ConditionalAccessStatus") or r.get("conditionalAccessStatus")), None),
        "AuthenticationRequirement": r.get("AuthenticationRequirement") or r.get("authenticationRequirement"),
        "DeviceName": device.get("displayName"), "OSPlatform": device.get("operatingSystem"),
        "Browser": device.get("browser"), "ReportId": str(r.get("Id") or r.get("id") or _digest(record)),
    }, None


def _json_records(path: Path) -> Iterator[tuple[str, dict | None, str | None]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield path.name, None, f"not JSON ({exc.msg})"
            return
        for i, item in enumerate(items):
            yield f"{path.name}:{i}", item if isinstance(item, dict) else None, None if isinstance(item, dict) else "not an object"
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                item = json.loads(line)
                yield f"{path.name}:{number}", item if isinstance(item, dict) else None, None if isinstance(item, dict) else "not an object"
            except json.JSONDecodeError as exc:
                yield f"{path.name}:{number}", None, f"not JSON ({exc.msg})"


def records(paths) -> Iterator[Record]:
    """Records of Management Activity / SignInLogs JSON (lines or arrays) and OfficeActivity CSV files."""
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"no such file: {path}; check the path")
        if path.suffix.lower() == ".csv":
            yield from _office_activity_csv(path)
            continue
        for source, item, error in _json_records(path):
            if error or item is None:
                yield source, None, None, error or "empty record"
            elif "RecordType" in item and "Operation" in item:
                yield from management_records(item, source)
            elif str(item.get("Category") or item.get("category") or "").lower() in ("signinlogs", "noninteractiveusersigninlogs"):
                yield signin_record(item, source)
            else:
                yield source, None, None, "not a Management Activity or SignInLogs record (no RecordType/Operation or Category)"


def _office_activity_csv(path: Path) -> Iterator[Record]:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "Operation" not in reader.fieldnames:
            raise InputError(f"{path.name} has no Operation column; expected an OfficeActivity export "
                             "(TimeGenerated, UserId, ClientIP, Operation, Parameters)")
        for number, row in enumerate(reader, 2):
            params = row.get("Parameters")
            try:
                params = json.loads(params) if params else None
            except json.JSONDecodeError:
                pass
            raw = {**row, "Parameters": params}
            yield f"{path.name}:{number}", "CloudAppEvents", {
                "Timestamp": row.get("TimeGenerated"), "ActionType": row.get("Operation"),
                "Application": "Microsoft Exchange Online", "AccountId": row.get("UserId") or None,
                "IPAddress": row.get("ClientIP") or None, "RawEventData": raw, "ReportId": _digest(raw),
                "AuditSource": "OfficeActivity export",
            }, None
