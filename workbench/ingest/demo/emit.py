"""Turn message specifications into canonical rows, raw header blocks and mailbox copies.

A *message spec* frame has one row per message and recipient with the columns of
:data:`SPEC`: who sent what to whom, with which verdict, using which content template.
Background traffic and attack stories both produce specs; :func:`emit` turns a day's specs
into EmailEvents, EmailUrlInfo and EmailAttachmentInfo rows, one RFC 5322 header block per
message for the mail store, and one folder placement per recipient (and sender) copy.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from email.header import Header

import polars as pl

from workbench import schema
from workbench.enums import EmailActionPolicy, EmailDirection, Folder
from workbench.ingest.demo.content import Template, url_domain

S, DT, I32, BOOL = pl.String, pl.Datetime("us", "UTC"), pl.Int32, pl.Boolean

# Each policy of the demo tenant has a stable id, as a real tenant's policies do.
_POLICY_GUIDS = {p.value: str(uuid.uuid5(uuid.NAMESPACE_URL, f"workbench-demo-policy:{p.value}")) for p in EmailActionPolicy}

SPEC = pl.Schema(
    {
        "Timestamp": DT,
        "NetworkMessageId": S,
        "InternetMessageId": S,
        "SenderFromAddress": S,
        "SenderDisplayName": S,
        "SenderMailFromAddress": S,
        "SenderObjectId": S,
        "SenderIPv4": S,
        "SenderHost": S,
        "RecipientEmailAddress": S,
        "RecipientObjectId": S,
        "EmailDirection": S,
        "TemplateId": pl.Int64,
        "Subject": S,
        "DeliveryAction": S,
        "DeliveryLocation": S,
        "LatestDeliveryAction": S,
        "LatestDeliveryLocation": S,
        "ThreatTypes": S,
        "ThreatNames": S,
        "DetectionMethods": S,
        "ThreatClassification": S,
        "ConfidenceLevel": S,
        "BulkComplaintLevel": I32,
        "EmailAction": S,
        "EmailActionPolicy": S,
        "Spf": S,
        "Dkim": S,
        "Dmarc": S,
        "CompAuth": S,
        "OrgLevelAction": S,
        "OrgLevelPolicy": S,
        "ReplyTo": S,
        "DistributionList": S,
        "IsFirstContact": BOOL,
        "ReportId": S,
        "Explanation": S,  # the verdict's explanation (JSON), filled in by the judge
        "BadFiles": pl.List(S),  # attachments the Malware evidence names
    }
)


# Content sent by mailing systems carries the list headers bulk senders add (RFC 2369, RFC 2919).
BULK_CATEGORIES = frozenset({"newsletter", "saas"})


def spec_frame(rows: list[dict]) -> pl.DataFrame:
    """Spec rows from dicts (missing keys are null)."""
    if not rows:
        return pl.DataFrame(schema=SPEC)
    return pl.DataFrame([{k: r.get(k) for k in SPEC} for r in rows], schema=SPEC)


class Catalog:
    """Every content template of a tenant, as frames ready to join on TemplateId."""

    def __init__(self) -> None:
        self.templates: dict[int, Template] = {}
        self._frames: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = None

    def add(self, template: Template) -> Template:
        self.templates[template.id] = template
        self._frames = None
        return template

    def next_id(self) -> int:
        return max(self.templates, default=0) + 1

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """(meta, urls, attachments) frames keyed by TemplateId."""
        if self._frames is None:
            ts = list(self.templates.values())
            meta = pl.DataFrame(
                {
                    "TemplateId": [t.id for t in ts],
                    "ContentType": [t.content_type for t in ts],
                    "BodyId": [t.body_id for t in ts],
                    "BodySize": [len(t.body) for t in ts],
                    "AttachmentCount": [len(t.attachments) for t in ts],
                    "UrlCount": [len(t.urls) for t in ts],
                    "EmailLanguage": [t.language for t in ts],
                    "EmailClusterId": [t.cluster_id for t in ts],
                    "Bulk": [t.category in BULK_CATEGORIES for t in ts],
                },
                schema_overrides={"TemplateId": pl.Int64, "AttachmentCount": I32, "UrlCount": I32, "BodySize": pl.Int64},
            )
            urls = pl.DataFrame(
                [(t.id, u, url_domain(u), loc) for t in ts for u, loc in t.urls],
                schema={"TemplateId": pl.Int64, "Url": S, "UrlDomain": S, "UrlLocation": S},
                orient="row",
            )
            atts = pl.DataFrame(
                [
                    (t.id, a.file_name, a.file_type, a.sha256, a.size)
                    for t in ts
                    for a in t.attachments
                ],
                schema={
                    "TemplateId": pl.Int64, "FileName": S, "FileType": S, "SHA256": S, "FileSize": pl.Int64,
                },
                orient="row",
            )
            self._frames = (meta, urls, atts)
        return self._frames


@dataclass(frozen=True)
class Emitted:
    tables: dict[str, pl.DataFrame]
    raw_headers: pl.DataFrame  # NetworkMessageId, Received (ISO), Headers (str), BodyId
    placements: pl.DataFrame  # NetworkMessageId, Mailbox, Folder


def _encode_subjects(subjects: pl.Series) -> pl.DataFrame:
    uniq = subjects.unique()
    return pl.DataFrame(
        {
            "Subject": uniq,
            "SubjectHeader": [s if s.isascii() else Header(s, "utf-8").encode() for s in uniq.to_list()],
        }
    )


def _auth_details() -> pl.Expr:
    return pl.concat_str(
        pl.lit('{"SPF":"'), pl.col("Spf"), pl.lit('","DKIM":"'), pl.col("Dkim"), pl.lit('","DMARC":"'),
        pl.col("Dmarc"), pl.lit('","CompAuth":"'), pl.col("CompAuth"), pl.lit('"}'),
    )


def _headers(messages: pl.DataFrame, edge_ip: str, mx_host: str, mbx_host: str) -> pl.Expr:
    date = pl.col("Timestamp").dt.strftime("%a, %d %b %Y %H:%M:%S +0000")
    domain = pl.col("SenderMailFromAddress").str.split("@").list.last()
    from_domain = pl.col("SenderFromAddress").str.split("@").list.last()
    lines = [
        pl.format("Received: from {} ({}) by {} with Microsoft SMTP Server (version=TLS1_2, "
                  "cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.{}; {}",
                  pl.lit(mx_host), pl.lit(edge_ip), pl.lit(mbx_host), pl.col("SmtpId").str.slice(0, 4), date),
        pl.format("Received: from {} ({}) by {} with ESMTPS id {} for <{}>; {}",
                  pl.col("SenderHost"), pl.col("SenderIPv4"), pl.lit(mx_host), pl.col("SmtpId"),
                  pl.col("FirstRecipient"), date),
        pl.format("Authentication-Results: spf={} (sender IP is {}) smtp.mailfrom={}; dkim={} "
                  "header.d={};dmarc={} action=none header.from={};compauth={} reason={}",
                  pl.col("Spf"), pl.col("SenderIPv4"), domain, pl.col("Dkim"), from_domain,
                  pl.col("Dmarc"), from_domain, pl.col("CompAuth"),
                  pl.when(pl.col("CompAuth") == "pass").then(pl.lit("100")).otherwise(pl.lit("000"))),
        pl.format('From: "{}" <{}>', pl.col("SenderDisplayName").str.replace_all('"', "'"), pl.col("SenderFromAddress")),
        pl.format("To: {}", pl.col("To")),
        pl.format("Subject: {}", pl.col("SubjectHeader")),
        pl.format("Date: {}", date),
        pl.format("Message-ID: {}", pl.col("InternetMessageId")),
        pl.when(pl.col("ReplyTo").is_not_null()).then(pl.format("Reply-To: {}", pl.col("ReplyTo"))),
        pl.when(pl.col("Bulk")).then(pl.format("List-Unsubscribe: <mailto:unsubscribe@{}?subject=unsubscribe>, "
                                               "<https://{}/unsubscribe>", from_domain, from_domain)),
        pl.when(pl.col("Bulk")).then(pl.format("List-Id: <updates.{}>", from_domain)),
        pl.when(pl.col("Bulk")).then(pl.lit("Precedence: bulk")),
        pl.lit("MIME-Version: 1.0"),
        pl.format("Content-Type: {}", pl.col("ContentType")),
        pl.format("Return-Path: <{}>", pl.col("SenderMailFromAddress")),
        pl.format("X-MS-Exchange-Organization-Network-Message-Id: {}", pl.col("NetworkMessageId")),
        pl.format("X-MS-Exchange-Organization-SCL: {}", pl.col("Scl")),
    ]
    return pl.concat_str(lines, separator="\r\n", ignore_nulls=True) + pl.lit("\r\n\r\n")


def _messages(specs: pl.DataFrame) -> pl.DataFrame:
    """One row per message (specs already joined with the template metadata)."""
    return (
        specs.group_by("NetworkMessageId", maintain_order=True)
        .agg(
            pl.all().exclude("RecipientEmailAddress", "RecipientObjectId").first(),
            pl.col("RecipientEmailAddress").str.join(", ").alias("To"),
            pl.col("RecipientEmailAddress").first().alias("FirstRecipient"),
        )
        .join(_encode_subjects(specs["Subject"]), on="Subject", how="left")
        .with_columns(
            SmtpId=pl.col("NetworkMessageId").str.replace_all("-", "").str.slice(0, 12).str.to_uppercase(),
            Scl=pl.when(pl.col("ThreatTypes").is_null()).then(pl.lit("1"))
            .when(pl.col("ThreatTypes").str.contains("Spam")).then(pl.lit("5")).otherwise(pl.lit("9")),
        )
    )


def _with_meta(specs: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    specs = specs.join(catalog.frames()[0], on="TemplateId", how="left")
    if specs["BodyId"].null_count():
        missing = specs.filter(pl.col("BodyId").is_null())["TemplateId"].unique().to_list()
        raise ValueError(f"specs reference unknown templates {missing}")
    return specs


def _mailbox_host(org_domains: tuple[str, ...]) -> str:
    return f"{org_domains[0].split('.')[0].upper()}PR01MB{len(org_domains)}001.prod.outlook.com"


def header_blocks(specs: pl.DataFrame, catalog: Catalog, *, org_domains: tuple[str, ...], edge_ip: str,
                  mx_host: str) -> pl.DataFrame:
    """NetworkMessageId, Received (ISO), Headers (the RFC 5322 header block), BodyId per message."""
    messages = _messages(_with_meta(specs, catalog))
    return messages.select(
        "NetworkMessageId",
        pl.col("Timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("Received"),
        _headers(messages, edge_ip, mx_host, _mailbox_host(org_domains)).alias("Headers"),
        "BodyId",
    )


def emit(specs: pl.DataFrame, catalog: Catalog, *, org_domains: tuple[str, ...], edge_ip: str, mx_host: str) -> Emitted:
    """Canonical rows, header blocks and folder placements for one batch of specs."""
    _, urls, atts = catalog.frames()
    raw = header_blocks(specs, catalog, org_domains=org_domains, edge_ip=edge_ip, mx_host=mx_host)
    specs = _with_meta(specs, catalog)
    messages = _messages(specs)
    sizes = raw.select("NetworkMessageId", pl.col("Headers").str.len_bytes().cast(pl.Int64).alias("HeaderSize"))

    events = (
        specs.join(sizes, on="NetworkMessageId", how="left")
        .with_columns(
            SenderFromDomain=pl.col("SenderFromAddress").str.split("@").list.last().str.to_lowercase(),
            SenderMailFromDomain=pl.col("SenderMailFromAddress").str.split("@").list.last().str.to_lowercase(),
            RecipientDomain=pl.col("RecipientEmailAddress").str.split("@").list.last().str.to_lowercase(),
            AuthenticationDetails=_auth_details(),
            EmailSize=pl.col("HeaderSize") + pl.col("BodySize"),
            SenderIPv6=pl.lit(None, S),
            EmailActionPolicyGuid=pl.col("EmailActionPolicy").replace_strict(_POLICY_GUIDS, default=None, return_dtype=S),
            Connectors=pl.lit(None, S),
            ExchangeTransportRule=pl.lit(None, S),
            Context=pl.lit(None, S),
            UserLevelAction=pl.lit(None, S),
            UserLevelPolicy=pl.lit(None, S),
            AdditionalFields=pl.concat_str(
                pl.lit('{"Explanation":'), pl.col("Explanation").fill_null("null"),
                pl.when(pl.col("ReplyTo").is_not_null()).then(pl.concat_str(
                    pl.lit(',"ReplyTo":"'),
                    pl.col("ReplyTo").str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True),
                    pl.lit('"'))).otherwise(pl.lit("")),
                pl.lit("}"),
            ),
        )
    )
    email_events = schema.EmailEvents.conform(events.select(schema.EmailEvents.column_names))

    url_rows = (
        messages.select("Timestamp", "NetworkMessageId", "TemplateId")
        .join(urls, on="TemplateId", how="inner")
        .with_columns(ReportId=pl.col("NetworkMessageId") + pl.lit("-u") + pl.int_range(pl.len()).over("NetworkMessageId").cast(S))
    )
    email_urls = schema.EmailUrlInfo.conform(url_rows.select(schema.EmailUrlInfo.column_names))

    att_rows = (
        specs.select("Timestamp", "NetworkMessageId", "TemplateId", "SenderFromAddress", "SenderDisplayName",
                     "SenderObjectId", "RecipientEmailAddress", "RecipientObjectId", "ReportId", "BadFiles",
                     pl.col("ThreatNames").alias("MessageThreatNames"), pl.col("DetectionMethods").alias("MessageMethods"))
        .join(atts, on="TemplateId", how="inner")
        .with_columns(bad=pl.col("BadFiles").list.contains(pl.col("FileName")).fill_null(False))
        .with_columns(
            ThreatTypes=pl.when("bad").then(pl.lit("Malware")),
            ThreatNames=pl.when("bad").then("MessageThreatNames"),
            DetectionMethods=pl.when("bad").then("MessageMethods"),
            ReportId=pl.col("ReportId") + pl.lit("-a") + pl.int_range(pl.len()).over("ReportId").cast(S),
        )
    )
    email_atts = schema.EmailAttachmentInfo.conform(att_rows.select(schema.EmailAttachmentInfo.column_names))

    # Folder placements: every internal recipient's copy, and the internal sender's Sent Items copy.
    folder_of = {loc: f.value for loc, f in ((loc, Folder.for_location(loc)) for loc in schema.DeliveryLocation) if f}
    received = specs.filter(pl.col("RecipientObjectId").is_not_null()).select(
        "NetworkMessageId",
        pl.col("RecipientEmailAddress").str.to_lowercase().alias("Mailbox"),
        pl.col("LatestDeliveryLocation").replace_strict(folder_of, default=None).alias("Folder"),
    ).filter(pl.col("Folder").is_not_null())
    sent = messages.filter(
        pl.col("EmailDirection").is_in([EmailDirection.OUTBOUND.value, EmailDirection.INTRA_ORG.value])
        & pl.col("SenderObjectId").is_not_null()
    ).select("NetworkMessageId", pl.col("SenderFromAddress").str.to_lowercase().alias("Mailbox"), pl.lit(Folder.SENT_ITEMS.value).alias("Folder"))
    placements = pl.concat([received, sent]).unique(["NetworkMessageId", "Mailbox"], keep="first", maintain_order=True)

    return Emitted(
        tables={"EmailEvents": email_events, "EmailUrlInfo": email_urls, "EmailAttachmentInfo": email_atts},
        raw_headers=raw,
        placements=placements,
    )


def detection_methods(threat: str, *techniques: str) -> str:
    """The DetectionMethods JSON text, e.g. {"Phish":["URL malicious reputation"]}."""
    return json.dumps({threat: list(techniques)}, separators=(",", ":"))
