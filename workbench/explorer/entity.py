"""The email entity (mdo-reference §1.11): everything known about one recipient's copy of a
message, and its timeline from delivery through ZAP and remediation to clicks and reports.

Values are returned as data; escaping and defanging happen where they are displayed. The
body preview is sanitised plain text and is only produced when the caller may read content.
The recipient's devices (:func:`workbench.endpoint.correlate.devices_of` at the message time)
come with the endpoint alerts on them from a day before the message to ``ALERTS_AFTER`` after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from workbench.endpoint.correlate import Device, EndpointAlert, devices_of, endpoint_alerts
from workbench.errors import NotFound
from workbench.lake import Lake

PREVIEW_CHARS = 20_000
TIMELINE_SCHEMA = {"Timestamp": pl.Datetime("us", "UTC"), "Source": pl.String, "Event": pl.String,
                   "Result": pl.String, "Threats": pl.String, "Details": pl.String}
_DAY = timedelta(days=1)
ALERTS_AFTER = timedelta(days=3)  # endpoint alerts this long after the message are shown with it


@dataclass(frozen=True)
class EmailEntity:
    network_message_id: str
    recipient: str
    event: dict[str, Any]  # the EmailEvents row
    explanation: str  # the verdict explanation (AdditionalFields.Explanation), "" when none
    authentication: dict[str, str]  # SPF, DKIM, DMARC, CompAuth
    urls: pl.DataFrame  # Url, UrlDomain, UrlLocation, Clicks, LastClickAction
    attachments: pl.DataFrame  # FileName, FileType, FileSize, SHA256, ThreatTypes, ThreatNames, DetectionMethods
    timeline: pl.DataFrame  # Timestamp, Source, Event, Result, Threats, Details (oldest first)
    similar: pl.DataFrame  # other messages of the same content cluster
    headers: str | None  # the raw header block, when the mail store holds the message
    preview: str | None  # sanitised plain-text body; None unless content may be read
    devices: tuple[Device, ...] = ()  # the recipient's devices at the message time
    endpoint_alerts: tuple[EndpointAlert, ...] = ()  # on those devices, around the message time

    def device_table(self) -> pl.DataFrame:
        """The recipient's devices as rows for display."""
        return pl.DataFrame([{"Device": d.label, "DeviceId": d.device_id, "OS": " ".join(x for x in (d.os_platform, d.os_version) if x),
                              "LastSeen": d.last_seen, "LinkedBy": "; ".join(d.how)} for d in self.devices],
                            schema={"Device": pl.String, "DeviceId": pl.String, "OS": pl.String,
                                    "LastSeen": pl.Datetime("us", "UTC"), "LinkedBy": pl.String})

    def alert_table(self) -> pl.DataFrame:
        """The endpoint alerts on the recipient's devices as rows for display."""
        return pl.DataFrame([{"Timestamp": a.time, "AlertId": a.alert_id, "Title": a.title, "Severity": a.severity,
                              "Device": a.device_name or a.device_id, "DetectionSource": a.detection_source,
                              "Files": ", ".join(n or h for n, h in a.files)} for a in self.endpoint_alerts],
                            schema={"Timestamp": pl.Datetime("us", "UTC"), "AlertId": pl.String, "Title": pl.String,
                                    "Severity": pl.String, "Device": pl.String, "DetectionSource": pl.String,
                                    "Files": pl.String})


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _find(lake: Lake, nmid: str, recipient: str, at: datetime | None) -> dict[str, Any]:
    window = (at - _DAY, at + _DAY) if at else (None, None)
    rows = (lake.scan("EmailEvents", *window)
            .filter((pl.col("NetworkMessageId") == nmid) & (pl.col("RecipientEmailAddress").str.to_lowercase()
                                                             == recipient.lower()))
            .head(1).collect())
    if not rows.height:
        raise NotFound(f"no message {nmid} for {recipient} in the lake; check the ids (copy them from the grid)")
    return rows.row(0, named=True)


def timeline(lake: Lake, nmid: str, recipient: str, event: dict[str, Any]) -> pl.DataFrame:
    """Delivery, post-delivery actions (ZAP, remediation), clicks and user reports, oldest first."""
    start = event["Timestamp"]
    rcpt = recipient.lower()
    parts = [pl.DataFrame([{
        "Timestamp": start, "Source": "System", "Event": "Original delivery",
        "Result": f"{event.get('DeliveryLocation') or 'Unknown'} - {event.get('DeliveryAction') or 'Unknown'}",
        "Threats": event.get("ThreatTypes") or "", "Details": event.get("DetectionMethods") or "",
    }], schema=TIMELINE_SCHEMA)]
    post = (lake.scan("EmailPostDeliveryEvents", start, None)
            .filter((pl.col("NetworkMessageId") == nmid) & (pl.col("RecipientEmailAddress").str.to_lowercase() == rcpt)))
    parts.append(post.select(
        "Timestamp",
        pl.when(pl.col("ActionTrigger") == "AdminAction").then(pl.lit("Admin")).otherwise(pl.lit("System")).alias("Source"),
        pl.col("ActionType").alias("Event"),
        pl.format("{} - {} ({})", pl.col("DeliveryLocation").fill_null("Unknown"), pl.col("Action").fill_null(""),
                  pl.col("ActionResult").fill_null("")).alias("Result"),
        pl.col("ThreatTypes").fill_null("").alias("Threats"),
        pl.col("DetectionMethods").fill_null("").alias("Details"),
    ).collect())
    clicks = (lake.scan("UrlClickEvents", start, None)
              .filter((pl.col("NetworkMessageId") == nmid) & (pl.col("AccountUpn").str.to_lowercase() == rcpt)))
    parts.append(clicks.select(
        "Timestamp", pl.lit("User").alias("Source"),
        pl.when(pl.col("IsClickedThrough")).then(pl.lit("URL click-through")).otherwise(pl.lit("URL click")).alias("Event"),
        pl.col("ActionType").alias("Result"), pl.col("ThreatTypes").fill_null("").alias("Threats"),
        pl.col("Url").alias("Details"),
    ).collect())
    reports = (lake.scan("CloudAppEvents", start, None)
               .filter((pl.col("ActionType") == "UserSubmission") & (pl.col("ObjectId") == nmid)
                       & (pl.col("RawEventData").str.json_path_match("$.UserId").str.to_lowercase() == rcpt)))
    parts.append(reports.select(
        "Timestamp", pl.lit("User").alias("Source"), pl.lit("User reported").alias("Event"),
        pl.col("RawEventData").str.json_path_match("$.ReportType").fill_null("").alias("Result"),
        pl.lit("").alias("Threats"), pl.lit("").alias("Details"),
    ).collect())
    return pl.concat([p.cast(TIMELINE_SCHEMA) for p in parts]).sort("Timestamp", maintain_order=True)


def _urls(lake: Lake, nmid: str, recipient: str, at: datetime) -> pl.DataFrame:
    urls = (lake.scan("EmailUrlInfo", at - _DAY, at + _DAY, columns=["NetworkMessageId", "Url", "UrlDomain", "UrlLocation"])
            .filter(pl.col("NetworkMessageId") == nmid).drop("NetworkMessageId").unique(maintain_order=True))
    clicks = (lake.scan("UrlClickEvents", at, None, columns=["NetworkMessageId", "AccountUpn", "Url", "ActionType", "Timestamp"])
              .filter((pl.col("NetworkMessageId") == nmid) & (pl.col("AccountUpn").str.to_lowercase() == recipient.lower()))
              .group_by("Url").agg(pl.len().alias("Clicks"), pl.col("ActionType").sort_by("Timestamp").last().alias("LastClickAction")))
    return urls.join(clicks, on="Url", how="left").with_columns(pl.col("Clicks").fill_null(0)).collect()


def _preview(raw: bytes) -> str:
    """Plain text of a raw message: the text part, else the HTML's visible text; never markup."""
    from workbench.ingest.links import html_parts
    from workbench.ingest.message import ParseError, parse

    try:
        m = parse(raw, follow_reported=False, language=False)
    except ParseError as exc:
        return f"(the stored message cannot be parsed: {exc})"
    text = m.text if m.text.strip() else (html_parts(m.html)[1] if m.html else "")
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())  # no control or bidi-override tricks
    return text[:PREVIEW_CHARS]


def email_entity(lake: Lake, network_message_id: str, recipient: str, *, at: datetime | None = None,
                 mail_store: Any = None, read_content: bool = False, roles: Any = None,
                 actor: str = "") -> EmailEntity:
    """Everything about one message copy. *at* (the row's Timestamp) narrows the lake scan;
    *mail_store* gives raw headers and, with *read_content*, the body preview — for which
    *actor* (default: the acting user) needs the content read permission in *roles* (the
    tenant's store) when given; each preview shown is then audited (``mail.preview``)."""
    if read_content and roles is not None:
        from workbench import rbac
        from workbench.identity import acting_user

        actor = actor or acting_user()
        rbac.require(roles, actor, rbac.Permission.CONTENT_READ, activity="mail.preview",
                     target=f"{network_message_id} ({recipient})")
    event = _find(lake, network_message_id, recipient, at)
    at = event["Timestamp"]
    extra = _json(event.get("AdditionalFields"))
    attachments = (lake.scan("EmailAttachmentInfo", at - _DAY, at + _DAY)
                   .filter((pl.col("NetworkMessageId") == network_message_id)
                           & (pl.col("RecipientEmailAddress").str.to_lowercase() == recipient.lower()))
                   .select("FileName", "FileType", "FileSize", "SHA256", "ThreatTypes", "ThreatNames", "DetectionMethods")
                   .collect())
    cluster = event.get("EmailClusterId")
    similar = pl.DataFrame()
    if cluster is not None:
        similar = (lake.scan("EmailEvents", at - timedelta(days=30), at + timedelta(days=30),
                             columns=["Timestamp", "Subject", "RecipientEmailAddress", "SenderFromAddress", "SenderIPv4",
                                      "DeliveryAction", "LatestDeliveryLocation", "NetworkMessageId", "EmailClusterId"])
                   .filter((pl.col("EmailClusterId") == cluster) & ~((pl.col("NetworkMessageId") == network_message_id)
                           & (pl.col("RecipientEmailAddress") == event["RecipientEmailAddress"])))
                   .drop("EmailClusterId").sort("Timestamp").head(500).collect())
    headers = preview = None
    if mail_store is not None:
        try:
            raw = mail_store.raw(network_message_id)
        except NotFound:
            raw = None
        if raw is not None:
            head, _, _ = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
            headers = head.decode("utf-8", "replace")
            if read_content:
                preview = _preview(raw)
                if roles is not None:
                    from workbench import audit

                    audit.record(roles, actor=actor, activity="mail.preview",
                                 target=f"{network_message_id} ({event['RecipientEmailAddress']})",
                                 details={"bytes": len(raw)})
    devices = devices_of(lake, event["RecipientEmailAddress"], at=at)
    alerts = endpoint_alerts(lake, devices, at - _DAY, at + ALERTS_AFTER) if devices else []
    return EmailEntity(
        network_message_id=network_message_id, recipient=event["RecipientEmailAddress"], event=event,
        explanation=str(extra.get("Explanation") or ""),
        authentication={k: str(v) for k, v in _json(event.get("AuthenticationDetails")).items()},
        urls=_urls(lake, network_message_id, recipient, at), attachments=attachments,
        timeline=timeline(lake, network_message_id, recipient, event), similar=similar,
        headers=headers, preview=preview, devices=tuple(devices), endpoint_alerts=tuple(alerts))


__all__ = ["EmailEntity", "email_entity", "timeline"]
