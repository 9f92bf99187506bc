"""Mail cluster identification (mdo-reference §4.3): from the messages under investigation to
the similar mail around them.

- **Similarity clusters**: the same sender IP, sender domain, subject or content fingerprint
  (``EmailClusterId``) as an investigated message.
- **Indicator clusters**: the same malicious URL or attachment hash, whatever the sender.

Each cluster is an Explorer query (open it to see the mail live), its copies counted by
threat and by latest delivery location at investigation time, a verdict from those counts,
and a volume anomaly against the days before. Only copies still in a mailbox (Inbox or Junk)
can be remediated; which of them a playbook proposes to delete is the playbook's decision.

Shared infrastructure never makes a cluster: the organisation's own domains, free mail,
file-sharing and other hosts many senders use (``detect.policies.base.shared_domain``), and
subjects too short or too common to mean anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from workbench.air.model import ClusterCounts, ClusterKind, MailCluster
from workbench.detect.policies.base import normalise_subject, shared_domain
from workbench.explorer.compile import compile_query
from workbench.explorer.query import Cond, Op, Query, Window
from workbench.incidents.model import Verdict
from workbench.lake import Lake

LOOKBACK = timedelta(days=30)  # how far back a cluster query reaches (the Explorer's default view)
VOLUME_DAYS = 10  # the volume anomaly compares the last day with the days before (§4.3: 7-10)
VOLUME_FACTOR = 3.0  # last day at least this many times the daily mean...
VOLUME_MINIMUM = 10  # ...and at least this many copies
MIN_SUBJECT = 12  # characters: shorter subjects ("Invoice", "Hi") cluster unrelated mail
IN_MAILBOX = ("Inbox/folder", "Junk folder")
NOT_IN_MAILBOX = ("Quarantine", "Deleted items", "Failed", "Dropped")
_COLUMNS = ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "ThreatTypes", "ConfidenceLevel",
            "DeliveryAction", "LatestDeliveryLocation"]
_PROPERTY = {ClusterKind.SENDER_IP: "sender_ip", ClusterKind.SENDER_DOMAIN: "sender_domain",
             ClusterKind.SUBJECT: "subject", ClusterKind.FINGERPRINT: "cluster_id", ClusterKind.URL: "url",
             ClusterKind.FILE: "attachment_sha256"}


@dataclass(frozen=True)
class Seed:
    """What the investigated messages offer to cluster on."""

    sender_ips: tuple[str, ...] = ()
    sender_domains: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    malicious_urls: tuple[str, ...] = ()
    malicious_files: tuple[str, ...] = ()


def seed_of(lake: Lake, messages: Sequence[str], *, org_domains: Iterable[str] = (), start: datetime | None = None,
            end: datetime | None = None, malicious_urls: Iterable[str] = (), malicious_files: Iterable[str] = ()) -> Seed:
    """The cluster keys of *messages* (NetworkMessageIds): their senders' IPs and domains (not
    the organisation's, not shared hosts), subjects, fingerprints, and the malicious URLs and
    files the caller has found in them."""
    ids = pl.Series(list(dict.fromkeys(messages)), dtype=pl.String).implode()
    rows = (lake.scan("EmailEvents", start, end, columns=["NetworkMessageId", "SenderIPv4", "SenderFromDomain",
                                                          "Subject", "EmailClusterId"])
            .filter(pl.col("NetworkMessageId").is_in(ids)).unique().collect())
    org = {d.lower() for d in org_domains}
    domains = [d.lower() for d in rows["SenderFromDomain"].drop_nulls().unique().sort()
               if d.lower() not in org and not shared_domain(d.lower())]
    subjects = [s for s in rows["Subject"].drop_nulls().unique().sort() if len(normalise_subject(s)) >= MIN_SUBJECT]
    return Seed(tuple(rows["SenderIPv4"].drop_nulls().unique().sort()), tuple(domains), tuple(subjects),
                tuple(str(f) for f in rows["EmailClusterId"].drop_nulls().unique().sort()),
                tuple(sorted(set(malicious_urls))), tuple(sorted({f.lower() for f in malicious_files})))


def cluster_query(kind: ClusterKind, value: str, start: datetime, end: datetime) -> Query:
    """The Explorer query that defines a cluster (All email view, absolute window)."""
    op = Op.CONTAINS if kind is ClusterKind.SUBJECT else Op.ANY
    return Query("all_email", Window.between(start, end), Cond(_PROPERTY[kind], op, (value,)))


def counts_of(copies: pl.DataFrame) -> ClusterCounts:
    """A cluster's copies by threat and latest delivery location."""
    threat = copies["ThreatTypes"].fill_null("")
    confidence = copies["ConfidenceLevel"].fill_null("")
    action, where = copies["DeliveryAction"].fill_null(""), copies["LatestDeliveryLocation"].fill_null("")
    return ClusterCounts(
        total=copies.height,
        malware=int(threat.str.contains("Malware").sum()),
        phish=int((threat.str.contains("Phish") & ~threat.str.contains("Malware")).sum()),
        high_confidence_phish=int(confidence.str.contains('"Phish":"High"', literal=True).sum()),
        spam=int((threat.str.contains("Spam") & ~threat.str.contains("Phish|Malware")).sum()),
        delivered=int((action == "Delivered").sum()), junked=int((action == "Junked").sum()),
        replaced=int((action == "Replaced").sum()), blocked=int((action == "Blocked").sum()),
        in_mailbox=int(where.is_in(IN_MAILBOX).sum()), not_in_mailbox=int(where.is_in(NOT_IN_MAILBOX).sum()),
        on_prem_external=int((where == "On-premises/external").sum()),
    )


def verdict_of(kind: ClusterKind, counts: ClusterCounts, indicator_malicious: bool = False) -> Verdict:
    """§4.3: malware or high-confidence phish in the cluster, or a malicious indicator shared
    by all of it, make it malicious; normal phish or spam suspicious; else no threats."""
    if indicator_malicious and kind.indicator:
        return Verdict.MALICIOUS
    if counts.malware or counts.high_confidence_phish:
        return Verdict.MALICIOUS
    if counts.phish or counts.spam:
        return Verdict.SUSPICIOUS
    return Verdict.NO_THREATS_FOUND


def identify(lake: Lake, seed: Seed, anchor: datetime, *, lookback: timedelta = LOOKBACK) -> list[MailCluster]:
    """Every cluster of *seed* over ``[anchor - lookback, anchor + 1 day)``, biggest first."""
    start, end = anchor - lookback, anchor + timedelta(days=1)
    wanted = [(ClusterKind.SENDER_IP, v) for v in seed.sender_ips]
    wanted += [(ClusterKind.SENDER_DOMAIN, v) for v in seed.sender_domains]
    wanted += [(ClusterKind.SUBJECT, v) for v in seed.subjects]
    wanted += [(ClusterKind.FINGERPRINT, v) for v in seed.fingerprints]
    wanted += [(ClusterKind.URL, v) for v in seed.malicious_urls]
    wanted += [(ClusterKind.FILE, v) for v in seed.malicious_files]
    frames = pl.collect_all([compile_query(lake, cluster_query(k, v, start, end), columns=_COLUMNS)[0]
                             for k, v in wanted]) if wanted else []
    out = []
    for (kind, value), copies in zip(wanted, frames):
        copies = copies.unique(["NetworkMessageId", "RecipientEmailAddress"])
        counts = counts_of(copies)
        last_day = copies.filter(pl.col("Timestamp") >= anchor - timedelta(days=1)).height
        before = copies.filter((pl.col("Timestamp") < anchor - timedelta(days=1))
                               & (pl.col("Timestamp") >= anchor - timedelta(days=1 + VOLUME_DAYS))).height / VOLUME_DAYS
        keys = copies.filter(pl.col("LatestDeliveryLocation").is_in(IN_MAILBOX))
        threat_keys = keys.filter(pl.col("ThreatTypes").fill_null("").str.contains("Phish|Malware"))
        pairs = lambda f: tuple(sorted(zip(f["NetworkMessageId"], f["RecipientEmailAddress"].str.to_lowercase())))  # noqa: E731
        out.append(MailCluster(
            kind, value, cluster_query(kind, value, start, end).to_json(), counts,
            verdict_of(kind, counts, indicator_malicious=kind.indicator),
            volume_anomaly=last_day >= max(VOLUME_MINIMUM, VOLUME_FACTOR * before),
            volume_last_day=last_day, volume_daily_before=round(before, 2),
            in_mailbox=pairs(keys), threat_in_mailbox=pairs(threat_keys)))
    return sorted(out, key=lambda c: (-c.counts.total, c.kind.value, c.value))
