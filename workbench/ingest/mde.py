"""Endpoint exports without a table name: bare Advanced Hunting rows and Defender for Endpoint
alerts (the ``/api/alerts`` JSON).

A bare row (a Sentinel or portal export, one JSON object per line) names no table, so
:func:`table_of` infers it from the columns that carry a value: ``AlertId`` with
``EntityType`` is AlertEvidence, ``AlertId`` with ``Title`` AlertInfo, ``DeviceId`` with
``ActionType`` and ``InitiatingProcess*`` columns DeviceEvents (or another Device* table by
its ActionType), ``DeviceId`` with ``OSPlatform`` DeviceInfo, and so on (:data:`RULES`).
Columns a union export split by type (``ReportId_long``, ``AdditionalFields_string``) are
folded back into one. A row no rule recognises keeps the table ``None`` (counted as skipped).

An MDE alert becomes one AlertInfo row, an AlertEvidence row per evidence (plus the machine
and the related user), and a DeviceInfo snapshot of its machine with the logged-on users.

>>> table_of({"AlertId": "a1", "Title": "x", "Category": "Execution", "Timestamp": "2026-01-01"})
'AlertInfo'
>>> table_of({"DeviceId": "d", "ActionType": "ProcessCreated", "InitiatingProcessFileName": "cmd.exe"})
'DeviceProcessEvents'
>>> fold_typed({"ReportId_long": 7, "ReportId_string": "", "UserAgent_dynamic": None})
{'ReportId': 7}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from workbench.enums import AlertServiceSource

_TYPE_SUFFIXES = ("_string", "_long", "_int", "_real", "_double", "_dynamic", "_bool", "_datetime", "_guid")
#: ActionTypes of the Device* tables DeviceEvents shares its columns with (they are not modelled).
DEVICE_TABLE_ACTIONS = {
    "ProcessCreated": "DeviceProcessEvents",
    "FileCreated": "DeviceFileEvents", "FileModified": "DeviceFileEvents", "FileRenamed": "DeviceFileEvents",
    "FileDeleted": "DeviceFileEvents",
    "RegistryKeyCreated": "DeviceRegistryEvents", "RegistryValueSet": "DeviceRegistryEvents",
    "RegistryKeyDeleted": "DeviceRegistryEvents", "RegistryValueDeleted": "DeviceRegistryEvents",
    "ConnectionSuccess": "DeviceNetworkEvents", "ConnectionFailed": "DeviceNetworkEvents",
    "ConnectionAttempt": "DeviceNetworkEvents", "InboundConnectionAccepted": "DeviceNetworkEvents",
    "ListeningConnectionCreated": "DeviceNetworkEvents",
    "LogonSuccess": "DeviceLogonEvents", "LogonFailed": "DeviceLogonEvents", "LogonAttempted": "DeviceLogonEvents",
    "ImageLoaded": "DeviceImageLoadEvents",
}
#: MDE API detectionSource → Advanced Hunting DetectionSource.
DETECTION_SOURCES = {
    "WindowsDefenderAtp": "EDR", "WindowsDefenderAv": "Antivirus", "WindowsDefenderSmartScreen": "SmartScreen",
    "CustomerTI": "Custom TI", "CustomDetection": "Custom detection", "AutomatedInvestigation": "Automated investigation",
    "MTP": "Microsoft 365 Defender", "ThreatExperts": "Microsoft Threat Experts",
}


def _has(row: dict, *names: str) -> bool:
    return all(row.get(n) not in (None, "", [], {}) for n in names)


def _device_table(row: dict) -> str:
    return DEVICE_TABLE_ACTIONS.get(str(row.get("ActionType")), "DeviceEvents")


#: (test, table or function of the row) in order; the first test that holds names the table.
RULES: tuple[tuple[Callable[[dict], bool], str | Callable[[dict], str]], ...] = (
    (lambda r: _has(r, "AlertId", "EntityType"), "AlertEvidence"),
    (lambda r: _has(r, "AlertId", "Title"), "AlertInfo"),
    (lambda r: _has(r, "DeviceId", "ActionType") and any(k.startswith("InitiatingProcess") and _has(r, k) for k in r),
     _device_table),
    (lambda r: _has(r, "DeviceId", "OSPlatform") and not _has(r, "ActionType"), "DeviceInfo"),
    (lambda r: _has(r, "NetworkMessageId", "DeliveryAction"), "EmailEvents"),
    (lambda r: _has(r, "NetworkMessageId", "ActionTrigger"), "EmailPostDeliveryEvents"),
    (lambda r: _has(r, "NetworkMessageId", "Url", "UrlLocation"), "EmailUrlInfo"),
    (lambda r: _has(r, "NetworkMessageId", "FileName", "SHA256"), "EmailAttachmentInfo"),
    (lambda r: _has(r, "Url", "ActionType", "AccountUpn") and "IsClickedThrough" in r, "UrlClickEvents"),
    (lambda r: _has(r, "ActionType", "Application") and ("ActivityType" in r or "RawEventData" in r)
     and not _has(r, "DeviceId"), "CloudAppEvents"),
    (lambda r: _has(r, "AccountUpn", "LogonType") and "ErrorCode" in r, "AADSignInEventsBeta"),
)


def fold_typed(row: dict) -> dict:
    """Merge ``Name_long``/``Name_string``… columns of a union export into ``Name`` (the first
    with a value); empty ones are dropped."""
    out = {k: v for k, v in row.items() if not k.endswith(_TYPE_SUFFIXES)}
    for key, value in row.items():
        if key.endswith(_TYPE_SUFFIXES) and value not in (None, ""):
            base = key.rsplit("_", 1)[0]
            if out.get(base) in (None, ""):
                out[base] = value
    return out


def table_of(row: dict) -> str | None:
    """The Advanced Hunting table a bare row belongs to (see :data:`RULES`); None when unknown."""
    named = row.get("Type") or row.get("$table")  # Log Analytics names the table in Type
    if isinstance(named, str) and named[:1].isupper() and named.isidentifier():
        return named
    for test, table in RULES:
        if test(row):
            return table if isinstance(table, str) else table(row)
    return None


def is_alert(obj: dict) -> bool:
    """Whether *obj* looks like an MDE API alert."""
    return "id" in obj and "title" in obj and any(k in obj for k in ("machineId", "detectionSource", "computerDnsName"))


def _json(value: Any) -> str | None:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if value not in (None, "", []) else None


def alert_rows(alert: dict) -> Iterator[tuple[str, dict]]:
    """``(table, row)`` for one MDE alert: AlertInfo, AlertEvidence rows, DeviceInfo."""
    alert_id = str(alert["id"])
    when = alert.get("firstEventTime") or alert.get("alertCreationTime") or alert.get("lastUpdateTime")
    source = AlertServiceSource.DEFENDER_FOR_ENDPOINT.value
    detection = DETECTION_SOURCES.get(str(alert.get("detectionSource") or ""), alert.get("detectionSource"))
    techniques = _json(alert.get("mitreTechniques"))
    common = dict(AlertId=alert_id, Title=alert.get("title"), AttackTechniques=techniques, ServiceSource=source,
                  DetectionSource=detection, Severity=alert.get("severity"))
    yield "AlertInfo", dict(common, Timestamp=when, Category=alert.get("category"))
    common |= dict(Categories=_json([alert["category"]] if alert.get("category") else None))
    machine, host = alert.get("machineId"), alert.get("computerDnsName")
    if machine or host:
        yield "AlertEvidence", dict(common, Timestamp=when, EntityType="Machine", EvidenceRole="Impacted",
                                    DeviceId=machine, DeviceName=host)
    related = alert.get("relatedUser") or {}
    if isinstance(related, dict) and related.get("userName"):
        yield "AlertEvidence", dict(common, Timestamp=when, EntityType="User", EvidenceRole="Impacted",
                                    AccountName=related.get("userName"), AccountDomain=related.get("domainName"),
                                    DeviceId=machine, DeviceName=host)
    for ev in alert.get("evidence") or []:
        if not isinstance(ev, dict):
            continue
        yield "AlertEvidence", dict(
            common, Timestamp=ev.get("evidenceCreationTime") or when, EntityType=ev.get("entityType") or "Unknown",
            EvidenceRole="Impacted" if ev.get("entityType") in ("User", "Machine") else "Related",
            FileName=ev.get("fileName"), FolderPath=ev.get("filePath"), SHA256=ev.get("sha256"),
            RemoteIP=ev.get("ipAddress"), RemoteUrl=ev.get("url"), AccountName=ev.get("accountName"),
            AccountDomain=ev.get("domainName"), AccountObjectId=ev.get("aadUserId"),
            AccountUpn=ev.get("userPrincipalName"), ProcessCommandLine=ev.get("processCommandLine"),
            DeviceId=machine, DeviceName=host,
            AdditionalFields=_json({k: v for k, v in ev.items() if k in ("detectionStatus", "sha1", "registryKey",
                                                                         "registryValue", "processId")
                                    and v not in (None, "")}))
    if machine:
        users = [u for u in alert.get("loggedOnUsers") or [] if isinstance(u, dict)]
        if not users and related.get("userName"):
            users = [{"accountName": related["userName"], "domainName": related.get("domainName")}]
        yield "DeviceInfo", dict(
            Timestamp=alert.get("lastEventTime") or when, DeviceId=machine, DeviceName=host,
            MachineGroup=alert.get("rbacGroupName"), ReportId=f"mde-alert-{alert_id}",
            LoggedOnUsers=_json([{"UserName": u.get("accountName"), "DomainName": u.get("domainName")} for u in users]))


def alerts_of(document: Any) -> list[dict] | None:
    """The alerts of an MDE alerts export (``{"value": [...]}``, a list, or one alert); None
    when *document* is not one."""
    items = document.get("value") if isinstance(document, dict) and "value" in document else document
    if isinstance(items, dict):
        items = [items]
    if isinstance(items, list) and items and all(isinstance(a, dict) and is_alert(a) for a in items):
        return items
    return None


__all__ = ["table_of", "fold_typed", "alert_rows", "alerts_of", "is_alert", "RULES", "DETECTION_SOURCES"]
