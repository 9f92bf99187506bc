"""Delivery-time verdicts for the demo tenant, decided by the detection analyzers.

Every generated message is judged the way a real one is: its raw RFC 5322 form (the
header block the mail store keeps, followed by its content's body) is parsed and run
through :func:`workbench.detect.evaluate` with the threat intelligence the tenant knows at
that moment (:class:`IntelFeed`). Messages that share content, sender, authentication and
direction share a verdict, so each such combination is evaluated once per *intel epoch*
(the indicators matching it that were known by then).

When an indicator arrives after delivery, the delivered copies it matches are re-evaluated
with it; if the verdict becomes Phish or Malware and the copy was delivered less than 48
hours earlier, it is removed after delivery (ZAP) a few minutes after the indicator arrived.
Nothing here reads the generator's intent: the verdict is whatever the analyzers decide.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from workbench.detect import Context, Verdict, evaluate
from workbench.detect.reference import registrable
from workbench.enums import (
    DeliveryAction as DA,
    DeliveryLocation as DL,
    DetectionTechnology as DT,
    EmailAction as EA,
    EmailActionPolicy as EP,
    EmailDirection as ED,
    PostDeliveryActionType,
)
from workbench.ingest.demo.content import Attachment, Template
from workbench.ingest.links import host_of
from workbench.ingest.message import ParsedMessage, parse

ZAP_HORIZON = timedelta(hours=48)  # ZAP acts on messages delivered in the last 48 hours
KEY = ["TemplateId", "Subject", "OrgLevelAction", "SenderFromAddress", "SenderDisplayName", "SenderMailFromAddress", "Spf", "Dkim",
       "Dmarc", "CompAuth", "ReplyTo", "EmailDirection"]
VERDICT_COLUMNS = {
    "DeliveryAction": pl.String, "DeliveryLocation": pl.String, "ThreatTypes": pl.String, "ThreatNames": pl.String,
    "DetectionMethods": pl.String, "ThreatClassification": pl.String, "ConfidenceLevel": pl.String,
    "BulkComplaintLevel": pl.Int32, "EmailAction": pl.String, "EmailActionPolicy": pl.String,
    "Explanation": pl.String, "BadFiles": pl.List(pl.String),
}
_THREATENING = {"Phish", "Malware"}


# ---------------------------------------------------------------------------- intelligence

@dataclass(frozen=True)
class TimedIndicator:
    kind: str  # url | domain | sha256
    value: str
    first_seen: datetime
    family: str | None = None
    description: str = ""


@dataclass
class IntelFeed:
    """The tenant's threat-intelligence subscription: indicators and when each became known."""

    indicators: list[TimedIndicator] = field(default_factory=list)

    def add(self, kind: str, value: str, first_seen: datetime, family: str | None = None, description: str = "") -> None:
        self.indicators.append(TimedIndicator(kind, value.lower() if kind != "url" else value, first_seen, family, description))

    def known(self, kind: str, value: str, at: datetime) -> bool:
        value = value if kind == "url" else value.lower()
        return any(i.kind == kind and i.value == value and i.first_seen <= at for i in self.indicators)

    def url_known(self, url: str, at: datetime) -> bool:
        """Would Safe Links block *url* at time *at* (the URL or its domain is a known indicator)?"""
        host = host_of(url) or ""
        return self.known("url", url, at) or self.known("domain", host, at) or self.known("domain", registrable(host) or "", at)

    def write_stix(self, path: Path) -> None:
        """The feed as a STIX 2.1 bundle (``valid_from`` = when the indicator became known)."""
        pattern = {"url": "[url:value = '{}']", "domain": "[domain-name:value = '{}']",
                   "sha256": "[file:hashes.'SHA-256' = '{}']"}
        objects = []
        for i in sorted(self.indicators, key=lambda i: (i.first_seen, i.kind, i.value)):
            stamp = i.first_seen.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            objects.append({
                "type": "indicator", "spec_version": "2.1",
                "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_URL, f'{i.kind}:{i.value}')}",
                "created": stamp, "modified": stamp, "valid_from": stamp,
                "name": f"{i.kind} {i.value}", "description": i.description,
                "indicator_types": ["malicious-activity"], "pattern_type": "stix",
                "pattern": pattern[i.kind].format(i.value.replace("'", "\\'")),
                **({"labels": [i.family]} if i.family else {}),
            })
        bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid5(uuid.NAMESPACE_URL, str(path.name))}", "objects": objects}
        path.write_text(json.dumps(bundle, indent=1) + "\n")


# ---------------------------------------------------------------------------- outcome

def outcome(verdict: Verdict, direction: str, allowed: bool = False) -> dict:
    """What the filtering stack does with a verdict: where the message goes, under which policy."""
    threats = set(verdict.threat_types)
    methods = verdict.detection_methods
    if allowed or not threats:  # org allow (e.g. a phishing simulation) delivers whatever the verdict
        where = (DA.DELIVERED, DL.EXTERNAL if direction == ED.OUTBOUND.value else DL.INBOX, EA.NO_ACTION, None)
    elif "Malware" in threats:
        detonated = any(m.startswith("File detonation") for m in methods["Malware"])
        where = (DA.BLOCKED, DL.QUARANTINE, EA.SEND_TO_QUARANTINE, EP.SAFE_ATTACHMENTS if detonated else EP.ANTIMALWARE)
    elif "Phish" in threats:
        used = set(methods["Phish"])
        policy = (EP.ANTIPHISH_USER_IMPERSONATION if DT.IMPERSONATION_USER.value in used
                  else EP.ANTIPHISH_DOMAIN_IMPERSONATION if DT.IMPERSONATION_DOMAIN.value in used
                  else EP.ANTIPHISH_SPOOF if used & {DT.SPOOF_DMARC.value, DT.SPOOF_INTRA_ORG.value, DT.SPOOF_EXTERNAL_DOMAIN.value}
                  else EP.ANTISPAM_PHISHING)
        high = verdict.confidence.get("Phish") == "High"
        where = (DA.BLOCKED, DL.QUARANTINE, EA.SEND_TO_QUARANTINE, policy) if high else (DA.JUNKED, DL.JUNK, EA.MOVE_TO_JUNK, policy)
    else:  # Spam
        bulk = DT.BULK.value in methods.get("Spam", [])
        if verdict.confidence.get("Spam") == "High" and not bulk:
            where = (DA.BLOCKED, DL.QUARANTINE, EA.SEND_TO_QUARANTINE, EP.ANTISPAM_HIGH_CONFIDENCE)
        else:
            where = (DA.JUNKED, DL.JUNK, EA.MOVE_TO_JUNK, EP.ANTISPAM_BULK if bulk else EP.ANTISPAM)
    action, location, email_action, policy = where
    if direction == ED.OUTBOUND.value and action == DA.DELIVERED:
        location = DL.EXTERNAL
    return {"DeliveryAction": action.value, "DeliveryLocation": location.value, "EmailAction": email_action.value,
            "EmailActionPolicy": policy.value if policy else None}


def _bad_files(verdict: Verdict, message: ParsedMessage) -> list[str]:
    """Attachments (or archive members) the Malware evidence names."""
    if "Malware" not in verdict.threat_types:
        return []
    named = [e.detail for e in verdict.evidence if e.analyzer in ("attachment", "intel", "yara")]
    return [a.file_name for a in message.attachments
            if any(f.file_name and f.file_name in detail for f in a.walk() for detail in named)]


# ---------------------------------------------------------------------------- judge

@dataclass(frozen=True)
class _Facts:
    """What intel can match in one content template (as the intel analyzer would see it)."""

    urls: frozenset[str]
    hosts: frozenset[str]
    hashes: frozenset[str]
    language: str | None


@dataclass(frozen=True)
class Judgement:
    columns: dict  # the verdict columns of every copy judged with it
    threats: frozenset[str]


# Judgements kept for reuse, least recently used dropped first: unbounded, the cache would
# grow with every sender, subject and template of the whole run; keys repeat in recent days.
CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Zap:
    row: int  # index of the spec row (one recipient's copy)
    timestamp: datetime
    threat: str
    judgement: Judgement


class Judge:
    """Judges message specs; see the module docstring.

    *headers* turns spec rows into their header blocks (the function that writes the mail
    store) and *templates* holds the bodies, so what is judged is byte for byte what the
    mailbox holds.
    """

    def __init__(self, context: Context, feed: IntelFeed, window_end: datetime,
                 headers: Callable[[pl.DataFrame], pl.DataFrame], templates: Mapping[int, Template]) -> None:
        self.context = context
        self.feed = feed
        self.window_end = window_end
        self._headers = headers
        self._templates = templates
        self._facts: dict[int, _Facts] = {}
        self._judged: OrderedDict[tuple, Judgement] = OrderedDict()
        self.evaluations = 0

    def facts(self, template_id: int) -> _Facts:
        if template_id not in self._facts:
            t = self._templates[template_id]
            m = parse(f"MIME-Version: 1.0\r\nContent-Type: {t.content_type}\r\n".encode() + t.body)
            hosts = {h for u in m.urls if (h := host_of(u.url))}
            self._facts[template_id] = _Facts(
                urls=frozenset(u.url for u in m.urls), hosts=frozenset(hosts | {registrable(h) or h for h in hosts}),
                hashes=frozenset(f.sha256 for a in m.attachments for f in a.walk() if f.sha256), language=m.language)
        return self._facts[template_id]

    def relevant(self, template_id: int, sender: str | None) -> list[TimedIndicator]:
        """Indicators that can match this content or sender, oldest first."""
        f = self.facts(template_id)
        sender_domain = (sender or "").rsplit("@", 1)[-1].lower()
        out = [i for i in self.feed.indicators
               if (i.kind == "url" and i.value in f.urls) or (i.kind == "sha256" and i.value in f.hashes)
               or (i.kind == "domain" and (i.value in f.hosts or i.value == sender_domain))]
        return sorted(out, key=lambda i: i.first_seen)

    def _context(self, known: list[TimedIndicator]) -> Context:
        if not known:
            return self.context
        by = {k: frozenset(i.value for i in known if i.kind == k) for k in ("url", "domain", "sha256")}
        return replace(self.context, bad_urls=self.context.bad_urls | by["url"],
                       bad_domains=self.context.bad_domains | by["domain"], bad_hashes=self.context.bad_hashes | by["sha256"])

    def _judge_one(self, key: tuple, raw: bytes, template_id: int, direction: str, allowed: bool,
                   indicators: list[TimedIndicator], epoch: int) -> Judgement:
        known = indicators[:epoch]
        cache_key = (key, tuple((i.kind, i.value) for i in known))
        if cache_key in self._judged:
            self._judged.move_to_end(cache_key)
            return self._judged[cache_key]
        message = replace(parse(raw, language=False), language=self.facts(template_id).language)
        verdict = evaluate(message, self._context(known))
        self.evaluations += 1
        families = sorted({i.family for i in known if i.family and i.kind == "sha256"})
        columns = {
            **outcome(verdict, direction, allowed),
            "ThreatTypes": verdict.threat_types_text,
            "ThreatNames": ", ".join(families) if families and "Malware" in verdict.threat_types else None,
            "DetectionMethods": verdict.detection_methods_text,
            "ThreatClassification": verdict.classification,
            "ConfidenceLevel": verdict.confidence_text,
            "BulkComplaintLevel": verdict.bulk_complaint_level,
            "Explanation": verdict.explanation_json(),
            "BadFiles": _bad_files(verdict, message),
        }
        judgement = Judgement(columns, frozenset(verdict.threat_types))
        self._judged[cache_key] = judgement
        if len(self._judged) > CACHE_SIZE:
            self._judged.popitem(last=False)
        return judgement

    def judge_file(self, attachment: Attachment, at: datetime) -> dict | None:
        """Verdict columns for a stored file (SharePoint, OneDrive, Teams) scanned at *at*, or None
        when the analyzers find nothing: the file is judged as an attachment of an empty message."""
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "file-scan@invalid", "file-scan@invalid", attachment.file_name
        maintype, _, subtype = attachment.mime_type.partition("/")
        msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.file_name)
        message = parse(msg.as_bytes(), language=False)
        known = [i for i in self.feed.indicators if i.kind == "sha256" and i.value == attachment.sha256 and i.first_seen <= at]
        verdict = evaluate(message, self._context(known))
        if "Malware" not in verdict.threat_types:
            return None
        families = sorted({i.family for i in known if i.family})
        return {"ThreatNames": ", ".join(families) or None, "DetectionMethods": verdict.detection_methods_text,
                "Explanation": verdict.explanation_json()}

    def judge(self, specs: pl.DataFrame) -> tuple[pl.DataFrame, list[Zap]]:
        """Specs with their verdict columns, and the ZAP actions later intelligence causes."""
        if specs.is_empty():
            return specs.with_columns([pl.lit(None, d).alias(c) for c, d in VERDICT_COLUMNS.items()]), []
        combos = specs.select(pl.struct(KEY).rank("dense").cast(pl.Int64).alias("c") - 1)["c"].to_numpy()
        first = np.unique(combos, return_index=True)[1]
        reps = specs[first]
        unjudged = specs.with_columns([pl.lit(None, d).alias(c) for c, d in VERDICT_COLUMNS.items()])
        heads = dict(self._headers(unjudged.filter(pl.col("NetworkMessageId").is_in(reps["NetworkMessageId"].implode())))
                     .select("NetworkMessageId", "Headers").iter_rows())
        specs = specs.drop([c for c in VERDICT_COLUMNS if c in specs.columns])
        stamps = specs["Timestamp"].dt.epoch("us").to_numpy()
        order = np.argsort(combos, kind="stable")
        bounds = np.searchsorted(combos[order], np.arange(len(first) + 1))
        picks = np.empty(len(specs), dtype=np.int64)
        judgements: list[Judgement] = []
        slots: dict[int, int] = {}
        zaps: list[Zap] = []
        for c, rep in enumerate(reps.iter_rows(named=True)):
            rows = order[bounds[c]:bounds[c + 1]]
            key = tuple(rep[k] for k in KEY)
            raw = heads[rep["NetworkMessageId"]].encode() + self._templates[rep["TemplateId"]].body
            allowed = rep["OrgLevelAction"] == "Allow"
            indicators = self.relevant(rep["TemplateId"], rep["SenderFromAddress"])
            seen = np.array([int(i.first_seen.timestamp() * 1_000_000) for i in indicators], dtype=np.int64)
            epochs = np.searchsorted(seen, stamps[rows], side="right")

            def judged(epoch: int) -> Judgement:
                return self._judge_one(key, raw, rep["TemplateId"], rep["EmailDirection"], allowed, indicators, epoch)

            for epoch in np.unique(epochs):
                j = judged(int(epoch))
                slot = slots.setdefault(id(j), len(judgements))
                if slot == len(judgements):
                    judgements.append(j)
                picks[rows[epochs == epoch]] = slot
            if allowed or not indicators:
                continue
            for row, epoch in zip(rows, epochs):
                j = judgements[picks[row]]
                if j.columns["DeliveryAction"] != DA.DELIVERED.value or j.threats & _THREATENING:
                    continue
                delivered = datetime.fromtimestamp(stamps[row] / 1e6, tz=self.window_end.tzinfo)
                for later in range(int(epoch) + 1, len(indicators) + 1):
                    arrives = indicators[later - 1].first_seen
                    if arrives - delivered > ZAP_HORIZON or arrives >= self.window_end:
                        break
                    after = judged(later)
                    if (threats := after.threats & _THREATENING) and arrives + timedelta(minutes=14) < self.window_end:
                        zaps.append(Zap(int(row), arrives + timedelta(minutes=3 + int(row) % 11),
                                        "Malware" if "Malware" in threats else "Phish", after))
                        break
        table = pl.DataFrame({c: [j.columns[c] for j in judgements] for c in VERDICT_COLUMNS}, schema=VERDICT_COLUMNS)
        return specs.hstack(table[picks]), zaps


def zap_type(threat: str) -> PostDeliveryActionType:
    return PostDeliveryActionType.MALWARE_ZAP if threat == "Malware" else PostDeliveryActionType.PHISH_ZAP


__all__ = ["IntelFeed", "TimedIndicator", "Judge", "Judgement", "Zap", "outcome", "zap_type", "ZAP_HORIZON", "KEY"]
