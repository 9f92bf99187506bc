"""A parsed message as canonical rows: EmailEvents (one per recipient), EmailUrlInfo,
EmailAttachmentInfo. Ids are derived from the message, so re-ingesting adds nothing.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from workbench.enums import DeliveryAction, DeliveryLocation, EmailDirection
from workbench.ingest import headers as hdr
from workbench.ingest.links import host_of
from workbench.ingest.message import ParsedMessage

if TYPE_CHECKING:
    from workbench.detect.verdict import Verdict

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def direction(sender_domain: str | None, recipient_domains: list[str | None], org: tuple[str, ...]) -> str:
    def inside(domain: str | None) -> bool:
        return bool(domain) and any(domain == d or domain.endswith("." + d) for d in org)

    if org and inside(sender_domain):
        internal = [inside(d) for d in recipient_domains if d]
        return EmailDirection.INTRA_ORG.value if internal and all(internal) else EmailDirection.OUTBOUND.value
    return EmailDirection.INBOUND.value


def message_rows(m: ParsedMessage, *, org_domains: tuple[str, ...] = (), location: str | None = None,
                 verdict: "Verdict | None" = None) -> dict[str, list[dict]]:
    """Rows for the three email tables, with the verdict's columns and explanation when given."""
    when = m.date or EPOCH
    ip = m.sender_ip(org_domains)
    v6 = ip is not None and isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address)
    recipients = list(m.recipients) or [None]
    dir_ = direction(m.from_domain, [hdr.domain_of(r) for r in recipients], org_domains)
    extra = {k: v for k, v in {
        "ReplyTo": ",".join(m.reply_to) or None,
        "ReportedBy": m.reported_by,
        "DateMissing": True if m.date is None else None,
        "ParserNotes": list(m.defects) or None,
        "Explanation": verdict.explain() if verdict else None,
    }.items() if v}
    common = dict(
        Timestamp=when, NetworkMessageId=m.network_message_id, InternetMessageId=m.internet_message_id,
        SenderMailFromAddress=m.mail_from, SenderFromAddress=m.from_address, SenderDisplayName=m.from_display or None,
        SenderMailFromDomain=hdr.domain_of(m.mail_from), SenderFromDomain=m.from_domain,
        SenderIPv4=None if v6 else ip, SenderIPv6=ip if v6 else None, Subject=m.subject, EmailDirection=dir_,
        DeliveryAction=DeliveryAction.DELIVERED.value if location and location != DeliveryLocation.UNKNOWN.value else None,
        DeliveryLocation=location or DeliveryLocation.UNKNOWN.value,
        LatestDeliveryLocation=location or DeliveryLocation.UNKNOWN.value,
        AuthenticationDetails=json.dumps(m.auth, separators=(",", ":")),
        AttachmentCount=len(m.attachments), UrlCount=len(m.urls), EmailLanguage=m.language, EmailSize=m.size,
        ThreatTypes=verdict.threat_types_text if verdict else None,
        DetectionMethods=verdict.detection_methods_text if verdict else None,
        ConfidenceLevel=verdict.confidence_text if verdict else None,
        BulkComplaintLevel=verdict.bulk_complaint_level if verdict else None,
        ThreatClassification=verdict.classification if verdict else None,
        AdditionalFields=json.dumps(extra, sort_keys=True) if extra else None,
    )
    bad_files = {
        f.file_name for top in m.attachments for f in top.walk()
        if verdict and any(e.analyzer in ("attachment", "intel", "yara") and f.file_name in e.detail for e in verdict.evidence)
    }
    events, attachments = [], []
    for rcpt in recipients:
        rid = f"{m.network_message_id}:{rcpt or ''}"
        events.append({**common, "RecipientEmailAddress": rcpt, "RecipientDomain": hdr.domain_of(rcpt), "ReportId": rid})
        for i, a in enumerate(m.attachments):
            attachments.append(dict(
                Timestamp=when, NetworkMessageId=m.network_message_id, SenderFromAddress=m.from_address,
                SenderDisplayName=m.from_display or None, RecipientEmailAddress=rcpt, FileName=a.file_name,
                FileType=a.true_type, SHA256=a.sha256 or None, FileSize=a.size, ReportId=f"{rid}:a{i}",
                ThreatTypes="Malware" if any(f.file_name in bad_files for f in a.walk()) else None,
            ))
    urls = [dict(Timestamp=when, NetworkMessageId=m.network_message_id, Url=u.url, UrlDomain=host_of(u.url),
                 UrlLocation=u.location, ReportId=f"{m.network_message_id}:u{i}") for i, u in enumerate(m.urls)]
    return {"EmailEvents": events, "EmailAttachmentInfo": attachments, "EmailUrlInfo": urls}
