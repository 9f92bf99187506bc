"""Exchange message trace: the admin-center CSV export and Reporting Web Service records.

Each row is one message to one recipient → an EmailEvents row (delivery status mapped to
DeliveryAction / DeliveryLocation; no verdicts: message trace does not carry them).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from workbench.errors import InputError

_MS_DATE = re.compile(r"/Date\((-?\d+)\)/")
# Status → (DeliveryAction, DeliveryLocation)
_STATUS = {
    "delivered": ("Delivered", "Inbox/folder"),
    "filteredasspam": ("Junked", "Junk folder"),
    "quarantined": ("Blocked", "Quarantine"),
    "failed": ("Blocked", "Failed"),
    "expanded": ("Delivered", "Inbox/folder"),
    "resolved": ("Delivered", "Inbox/folder"),
    "pending": (None, "Unknown"),
    "gettingstatus": (None, "Unknown"),
}
_COLUMNS = {  # CSV header (lower, no spaces) → field
    "received": "Received", "date": "Received", "datetime": "Received", "origin_timestamp_utc": "Received",
    "senderaddress": "SenderAddress", "sender_address": "SenderAddress",
    "recipientaddress": "RecipientAddress", "recipient_status": "RecipientAddress",
    "subject": "Subject", "message_subject": "Subject", "status": "Status", "fromip": "FromIP",
    "original_client_ip": "FromIP", "toip": "ToIP", "size": "Size", "total_bytes": "Size",
    "messageid": "MessageId", "message_id": "MessageId", "messagetraceid": "MessageTraceId",
    "network_message_id": "MessageTraceId",
}


def _when(value) -> datetime | str | None:
    if value in (None, ""):
        return None
    match = _MS_DATE.fullmatch(str(value).strip())
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)
    return str(value)


def trace_record(row: dict, source: str):
    fields = {_COLUMNS.get(k.lower().replace(" ", ""), k): v for k, v in row.items() if k}
    action, location = _STATUS.get(str(fields.get("Status") or "").lower().replace(" ", ""), (None, "Unknown"))
    trace_id = fields.get("MessageTraceId") or fields.get("MessageId")
    recipient = fields.get("RecipientAddress")
    sender = fields.get("SenderAddress")
    return source, "EmailEvents", {
        "Timestamp": _when(fields.get("Received")), "NetworkMessageId": trace_id,
        "InternetMessageId": fields.get("MessageId"), "SenderFromAddress": sender, "SenderMailFromAddress": sender,
        "SenderFromDomain": sender.rsplit("@", 1)[-1].lower() if sender and "@" in sender else None,
        "RecipientEmailAddress": recipient, "Subject": fields.get("Subject"), "SenderIPv4": fields.get("FromIP"),
        "EmailSize": fields.get("Size") or None, "DeliveryAction": action, "DeliveryLocation": location,
        "LatestDeliveryLocation": location, "AdditionalFields": json.dumps({"MessageTraceStatus": fields.get("Status")}),
        "ReportId": f"trace:{trace_id}:{recipient or ''}",
    }, None


def records(paths) -> Iterator:
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"no such file: {path}; check the path")
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            head = fh.read(1)
            fh.seek(0)
            if head in ("{", "["):
                text = fh.read()
                items = json.loads(text) if head == "[" else [json.loads(line) for line in text.splitlines() if line.strip()]
                for i, item in enumerate(items):
                    yield trace_record(item, f"{path.name}:{i + 1}")
                continue
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not any(_COLUMNS.get(f.lower().replace(" ", "")) == "RecipientAddress"
                                                for f in reader.fieldnames):
                raise InputError(f"{path.name} is not a message trace export (no RecipientAddress column)")
            for number, row in enumerate(reader, 2):
                yield trace_record(row, f"{path.name}:{number}")
