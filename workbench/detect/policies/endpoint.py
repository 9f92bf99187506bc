"""Alerts of other products (endpoint, identity) about a user who has a mailbox.

An AlertInfo row (not one of Defender for Office 365's or the workbench's own) becomes an
alert when its evidence names a user of the directory, directly (a User row's UPN or object
id) or through a device (DeviceInfo's logged-on users). Its severity is the source alert's.
"""

from __future__ import annotations

import json

import polars as pl

from workbench.detect.policies import evaluator
from workbench.detect.policies.base import HOUR, MESSAGE_HORIZON, Run, email_entities, lower
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Severity, Verdict

OWN_SOURCES = ("Microsoft Defender for Office 365", "Workbench")
DETECTION_SOURCES = {"Microsoft Defender for Endpoint": "microsoftDefenderForEndpoint",
                     "Microsoft Entra ID Protection": "microsoftEntraIdProtection"}
EVIDENCE_COLUMNS = ["Timestamp", "AlertId", "EntityType", "EvidenceRole", "FileName", "SHA256", "RemoteIP", "RemoteUrl",
                    "AccountObjectId", "AccountUpn", "AccountName", "DeviceId", "DeviceName", "NetworkMessageId"]


def _severity(text: str | None) -> Severity | None:
    try:
        return Severity((text or "").strip().lower())
    except ValueError:
        return None


def _device_users(run: Run, device_ids: list[str]) -> dict[str, str]:
    """DeviceId → the directory user logged on to it (latest inventory snapshot)."""
    if not device_ids:
        return {}
    rows = (run.scan("DeviceInfo", None, ["Timestamp", "DeviceId", "LoggedOnUsers"])
            .filter(pl.col("DeviceId").is_in(pl.Series(device_ids).implode()))
            .sort("Timestamp").group_by("DeviceId").last().collect())
    d = run.directory()
    by_name = {u.split("@", 1)[0]: u for u in d["upn"].drop_nulls()}
    out = {}
    for device, users in rows.select("DeviceId", "LoggedOnUsers").iter_rows():
        try:
            names = [str(x.get("UserName", "")).lower() for x in json.loads(users or "[]") if isinstance(x, dict)]
        except ValueError:
            names = []
        match = next((by_name[n] for n in names if n in by_name), None)
        if match:
            out[device] = match
    return out


@evaluator("endpoint_alert_mailbox_owner")
def endpoint_alerts(run: Run) -> list[AlertDraft]:
    alerts = run.saw(run.scan("AlertInfo", run.since, ["Timestamp", "AlertId", "Title", "Category", "Severity",
                                                       "ServiceSource", "DetectionSource", "AttackTechniques"])
                     .filter(~pl.col("ServiceSource").fill_null("").is_in(OWN_SOURCES)).collect())
    alerts = alerts.filter(run.is_new())
    if not alerts.height:
        return []
    evidence = (run.scan("AlertEvidence", alerts["Timestamp"].min() - HOUR, EVIDENCE_COLUMNS)
                .filter(pl.col("AlertId").is_in(alerts["AlertId"].implode())).collect())
    devices = _device_users(run, evidence["DeviceId"].drop_nulls().unique().to_list())
    d = run.directory()
    mailboxes = set(d["upn"].drop_nulls()) | set(d["mail"].drop_nulls())
    drafts = []
    for alert in alerts.sort("Timestamp").iter_rows(named=True):
        ev = evidence.filter(pl.col("AlertId") == alert["AlertId"])
        users = [run.user_of(o, u) for u, o in ev.filter(pl.col("EntityType") == "User").select("AccountUpn", "AccountObjectId").iter_rows()]
        users += [devices[x] for x in ev["DeviceId"].drop_nulls() if x in devices]
        users = [u for u in dict.fromkeys(u for u in users if u) if u in mailboxes or _has_mail(run, u, alert["Timestamp"])]
        if not users:
            continue
        machines = ev.filter(pl.col("DeviceId").is_not_null() | pl.col("DeviceName").is_not_null()).select("DeviceId", "DeviceName").unique(maintain_order=True)
        device_label = ", ".join(dict.fromkeys(n or i for i, n in machines.iter_rows())) or "no device"
        entities = [Entity.of(EntityKind.USER, u, "impacted") for u in users]
        entities += [Entity.of(EntityKind.MAILBOX, u, "impacted") for u in users]
        entities += [Entity.of(EntityKind.DEVICE, i or n, "impacted") for i, n in machines.iter_rows()]
        entities += [Entity.of(EntityKind.FILE, s.lower(), (r or "").lower()) for s, r in ev.select("SHA256", "EvidenceRole").iter_rows() if s]
        urls = ev["RemoteUrl"].drop_nulls().unique(maintain_order=True).to_list()
        entities += [Entity.of(EntityKind.URL, u, "related") for u in urls] + run.url_entities(urls, "related")
        entities += [Entity.of(EntityKind.IP, ip, "related") for ip in ev["RemoteIP"].drop_nulls().unique(maintain_order=True)]
        keys = (ev.filter(pl.col("NetworkMessageId").is_not_null()).select("NetworkMessageId").unique()
                .join(pl.DataFrame({"rcpt": users}), how="cross"))
        copies = run.email_rows(keys, alert["Timestamp"] - MESSAGE_HORIZON) if keys.height else None
        if copies is not None:
            entities += email_entities(copies, "related") + run.sender_entities(copies)
        severity = run.severity if run.severity_set else (_severity(alert["Severity"]) or run.severity)
        try:
            techniques = [t.split("(")[-1].rstrip(")") for t in json.loads(alert["AttackTechniques"] or "[]")]
        except (ValueError, AttributeError):
            techniques = []
        detail = (f"{alert['ServiceSource'] or 'Another product'} ({alert['DetectionSource'] or 'unknown detector'}) raised "
                  f"{alert['Severity'] or 'an'} alert {alert['AlertId']!r} ({alert['Category'] or 'no category'}) at "
                  f"{alert['Timestamp']:%Y-%m-%d %H:%M} UTC.")
        drafts.append(run.draft(
            f"alert:{alert['AlertId']}", {"user": ", ".join(users), "device": device_label,
                                          "source_title": alert["Title"] or alert["AlertId"]},
            alert["Timestamp"], alert["Timestamp"], entities, copies=copies, severity=severity, detail=detail,
            verdicts=[(Entity.of(EntityKind.FILE, s.lower()), Verdict.SUSPICIOUS) for s in ev["SHA256"].drop_nulls()],
            detection_source=DETECTION_SOURCES.get(alert["ServiceSource"] or "", "workbench"),
            mitre=[t for t in techniques if t.startswith("T")] or None))
    return drafts


def _has_mail(run: Run, user: str, at) -> bool:
    """Whether *user* received mail in the week before *at* (a mailbox the directory lacks)."""
    return bool(run.scan("EmailEvents", at - MESSAGE_HORIZON, ["RecipientEmailAddress"])
                .filter(lower("RecipientEmailAddress") == user).head(1).collect().height)
