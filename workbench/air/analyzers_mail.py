"""The email analyzers of an automated investigation (mdo-reference §4.2): indicators of the
investigated messages, the reputation of their URLs (and who clicked them) and files, and
malicious copies still sitting in mailboxes. Pure functions over the lake; each returns a
frozen result with a ``summary`` for the analyzer log and the evidence it establishes.

A URL or file is judged by what the tenant's own detections said about the mail carrying
it: a Phish or Malware verdict found by URL or file analysis (at delivery or by ZAP) makes it
malicious; a Phish verdict found otherwise (the sender, the wording) only suspicious, because
a lure's wording says nothing about the links it shares with clean mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from workbench.air.clusters import IN_MAILBOX
from workbench.air.model import ActionType
from workbench.air.records import EvidenceItem
from workbench.detect.policies.mail import SIMULATION_POLICY
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Verdict
from workbench.lake import Lake

URL_METHODS = ("URL malicious reputation", "URL detonation", "URL detonation reputation")
FILE_METHODS = ("File detonation", "File detonation reputation", "File reputation", "Antimalware protection")


def _ids(messages: Sequence[str]) -> pl.Expr:
    return pl.col("NetworkMessageId").is_in(pl.Series(list(dict.fromkeys(messages)), dtype=pl.String).implode())


@dataclass(frozen=True)
class Indicators:
    """What the investigated messages carry."""

    senders: tuple[str, ...]
    sender_domains: tuple[str, ...]
    sender_ips: tuple[str, ...]
    urls: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (SHA256, file name)
    subjects: tuple[str, ...]

    @property
    def summary(self) -> str:
        return (f"{len(self.senders)} sender(s), {len(self.sender_ips)} IP(s), {len(self.urls)} URL(s), "
                f"{len(self.files)} file(s)")


def email_indicators(lake: Lake, messages: Sequence[str], start: datetime | None, end: datetime | None) -> Indicators:
    """Senders, sending IPs, URLs, attachments and subjects of *messages* (NetworkMessageIds)."""
    mail, urls, files = pl.collect_all([
        lake.scan("EmailEvents", start, end, columns=["NetworkMessageId", "SenderFromAddress", "SenderFromDomain",
                                                      "SenderIPv4", "Subject"]).filter(_ids(messages)),
        lake.scan("EmailUrlInfo", start, end, columns=["NetworkMessageId", "Url"]).filter(_ids(messages)),
        lake.scan("EmailAttachmentInfo", start, end, columns=["NetworkMessageId", "SHA256", "FileName"])
        .filter(_ids(messages)),
    ])
    uniq = lambda s: tuple(sorted(s.drop_nulls().unique().to_list()))  # noqa: E731
    return Indicators(uniq(mail["SenderFromAddress"].str.to_lowercase()), uniq(mail["SenderFromDomain"].str.to_lowercase()),
                      uniq(mail["SenderIPv4"]), uniq(urls["Url"]),
                      tuple(sorted(set(files.select(pl.col("SHA256").str.to_lowercase(), "FileName").drop_nulls()
                                       .iter_rows()))), uniq(mail["Subject"]))


def _verdicts_of_mail(lake: Lake, carriers: pl.DataFrame, methods: Sequence[str], start: datetime | None,
                      end: datetime | None) -> dict[str, Verdict]:
    """Per message id in *carriers*: malicious when a threat verdict came from *methods* (at
    delivery or by ZAP), suspicious for any other phish or malware verdict."""
    ids = carriers["NetworkMessageId"].unique().implode()
    judged = pl.concat([
        lake.scan("EmailEvents", start, end, columns=["NetworkMessageId", "ThreatTypes", "DetectionMethods"])
        .filter(pl.col("NetworkMessageId").is_in(ids)).collect(),
        lake.scan("EmailPostDeliveryEvents", start, None, columns=["NetworkMessageId", "ThreatTypes", "DetectionMethods"])
        .filter(pl.col("NetworkMessageId").is_in(ids)).collect(),
    ]).filter(pl.col("ThreatTypes").fill_null("").str.contains("Phish|Malware"))
    pattern = "|".join(methods)
    out: dict[str, Verdict] = {}
    for nmid, found in judged.group_by("NetworkMessageId"):
        by_method = found["DetectionMethods"].fill_null("").str.contains(pattern).any()
        out[nmid[0]] = Verdict.MALICIOUS if by_method else Verdict.SUSPICIOUS
    return out


def _worst(verdicts: Sequence[Verdict], seen: bool) -> Verdict:
    """The worst verdict; no threats when the thing was seen in mail without one, unknown when never seen."""
    for v in (Verdict.MALICIOUS, Verdict.SUSPICIOUS):
        if v in verdicts:
            return v
    return Verdict.NO_THREATS_FOUND if seen else Verdict.UNKNOWN


def simulations(lake: Lake, messages: Sequence[str], start: datetime | None, end: datetime | None) -> frozenset[str]:
    """The messages delivered as an authorised phishing simulation (an advanced delivery
    policy at the organisation level): not threats, never remediated."""
    rows = (lake.scan("EmailEvents", start, end, columns=["NetworkMessageId", "OrgLevelPolicy"])
            .filter(_ids(messages) & pl.col("OrgLevelPolicy").fill_null("").str.contains(f"(?i){SIMULATION_POLICY.pattern}"))
            .select("NetworkMessageId").unique().collect())
    return frozenset(rows["NetworkMessageId"])


def message_verdicts(lake: Lake, messages: Sequence[str], start: datetime | None, end: datetime | None) -> dict[str, Verdict]:
    """Each message's own latest verdict: malware or high-confidence phish (at delivery or by
    ZAP) is malicious, other phish or spam suspicious, none no threats found."""
    mail, zap = pl.collect_all([
        lake.scan("EmailEvents", start, end, columns=["NetworkMessageId", "ThreatTypes", "ConfidenceLevel"])
        .filter(_ids(messages)),
        lake.scan("EmailPostDeliveryEvents", start, None, columns=["NetworkMessageId", "ThreatTypes"]).filter(_ids(messages)),
    ])
    out = {m: Verdict.NO_THREATS_FOUND for m in mail["NetworkMessageId"].unique()}
    threats = mail["ThreatTypes"].fill_null("")
    high = mail["ConfidenceLevel"].fill_null("").str.contains('"Phish":"High"', literal=True)
    for nmid, t, hc in zip(mail["NetworkMessageId"], threats, high):
        v = Verdict.MALICIOUS if "Malware" in t or ("Phish" in t and hc) else Verdict.SUSPICIOUS if t else out[nmid]
        out[nmid] = _worst([out[nmid], v], True)
    for nmid, t in zap.select("NetworkMessageId", pl.col("ThreatTypes").fill_null("")).iter_rows():
        if "Malware" in t or "Phish" in t:
            out[nmid] = Verdict.MALICIOUS  # removed after delivery: the service judged it malicious later
    return out


@dataclass(frozen=True)
class UrlReputation:
    verdicts: tuple[tuple[str, Verdict], ...]  # URL -> verdict
    clicks: tuple[tuple[str, str, datetime, bool], ...]  # (URL, user, time, reached the site)
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[tuple[ActionType, EntityKind, str, str], ...]

    @property
    def summary(self) -> str:
        bad = sum(v is Verdict.MALICIOUS for _, v in self.verdicts)
        reached = sum(1 for *_, through in self.clicks if through)
        return f"{len(self.verdicts)} URL(s), {bad} malicious; {len(self.clicks)} click(s), {reached} reached the site"


def url_reputation(lake: Lake, urls: Sequence[str], start: datetime | None, end: datetime | None) -> UrlReputation:
    """Each URL's verdict from the mail carrying it, and the clicks on it."""
    wanted = pl.Series(list(dict.fromkeys(urls)), dtype=pl.String).implode()
    carriers, clicks = pl.collect_all([
        lake.scan("EmailUrlInfo", start, end, columns=["NetworkMessageId", "Url"]).filter(pl.col("Url").is_in(wanted)),
        lake.scan("UrlClickEvents", start, None, columns=["Timestamp", "Url", "AccountUpn", "ActionType",
                                                          "IsClickedThrough"]).filter(pl.col("Url").is_in(wanted)),
    ])
    by_message = _verdicts_of_mail(lake, carriers, URL_METHODS, start, end) if carriers.height else {}
    verdicts = []
    for url in dict.fromkeys(urls):
        mine = carriers.filter(pl.col("Url") == url)["NetworkMessageId"].to_list()
        verdicts.append((url, _worst([by_message[n] for n in mine if n in by_message], bool(mine))))
    reached = pl.col("ActionType").is_in(["ClickAllowed", "UrlScanInProgress"]) | pl.col("IsClickedThrough").fill_null(False)
    click_rows = tuple((u, (who or "").lower(), ts, bool(r)) for u, who, ts, r in clicks.select(
        "Url", "AccountUpn", "Timestamp", reached.alias("r")).sort("Timestamp").iter_rows())
    evidence, proposals = [], []
    for url, verdict in verdicts:
        bad = verdict is Verdict.MALICIOUS
        evidence.append(EvidenceItem(Entity.of(EntityKind.URL, url), verdict,
                                     RemediationStatus.PENDING if bad else RemediationStatus.NONE, "url_reputation"))
        if bad:
            proposals.append((ActionType.BLOCK_URL, EntityKind.URL, url, "mail carrying it was judged malicious by URL analysis"))
    for url, user, _, through in click_rows:
        if through and dict(verdicts).get(url) is Verdict.MALICIOUS:
            evidence.append(EvidenceItem(Entity.of(EntityKind.USER, user, "clicked"), Verdict.SUSPICIOUS,
                                         RemediationStatus.NONE, "url_clicks", f"reached {url}"))
    return UrlReputation(tuple(verdicts), click_rows, tuple(dict((e.entity.key, e) for e in evidence).values()),
                         tuple(proposals))


@dataclass(frozen=True)
class FileReputation:
    verdicts: tuple[tuple[str, Verdict], ...]  # SHA256 -> verdict
    evidence: tuple[EvidenceItem, ...]

    @property
    def summary(self) -> str:
        return f"{len(self.verdicts)} file(s), {sum(v is Verdict.MALICIOUS for _, v in self.verdicts)} malicious"


def file_reputation(lake: Lake, hashes: Sequence[str], start: datetime | None, end: datetime | None) -> FileReputation:
    """Each file's verdict from the mail carrying it and from the content-malware table."""
    wanted = pl.Series([h.lower() for h in dict.fromkeys(hashes)], dtype=pl.String).implode()
    carriers, content = pl.collect_all([
        lake.scan("EmailAttachmentInfo", start, end, columns=["NetworkMessageId", "SHA256"])
        .with_columns(pl.col("SHA256").str.to_lowercase()).filter(pl.col("SHA256").is_in(wanted)),
        lake.scan("FileMaliciousContentInfo", start, None, columns=["SHA256"])
        .with_columns(pl.col("SHA256").str.to_lowercase()).filter(pl.col("SHA256").is_in(wanted)),
    ])
    by_message = _verdicts_of_mail(lake, carriers, FILE_METHODS, start, end) if carriers.height else {}
    flagged = set(content["SHA256"].to_list())
    verdicts = []
    for sha in dict.fromkeys(h.lower() for h in hashes):
        mine = carriers.filter(pl.col("SHA256") == sha)["NetworkMessageId"].to_list()
        v = Verdict.MALICIOUS if sha in flagged else _worst([by_message[n] for n in mine if n in by_message], bool(mine))
        verdicts.append((sha, v))
    evidence = tuple(EvidenceItem(Entity.of(EntityKind.FILE, sha), v, RemediationStatus.NONE, "file_reputation")
                     for sha, v in verdicts)
    return FileReputation(tuple(verdicts), evidence)


@dataclass(frozen=True)
class MissedMalware:
    """Copies judged malicious that are still in a mailbox (Inbox or Junk): what soft delete can reach."""

    copies: tuple[tuple[str, str], ...]  # (NetworkMessageId, recipient)
    prevented: int  # malicious copies no longer in a mailbox (quarantined, deleted, never delivered)

    @property
    def summary(self) -> str:
        return f"{len(self.copies)} malicious copy(ies) still in mailboxes; {self.prevented} already out of reach"


def missed_malware(lake: Lake, messages: Sequence[str], malicious: Sequence[str], start: datetime | None,
                   end: datetime | None) -> MissedMalware:
    """Of *messages*, the copies whose message is in *malicious* (ids judged malicious by the
    analyzers above) and that are still in a mailbox."""
    bad = set(malicious) & set(messages)
    if not bad:
        return MissedMalware((), 0)
    copies = (lake.scan("EmailEvents", start, end, columns=["NetworkMessageId", "RecipientEmailAddress",
                                                           "LatestDeliveryLocation"])
              .filter(_ids(sorted(bad))).collect())
    reachable = copies.filter(pl.col("LatestDeliveryLocation").is_in(IN_MAILBOX))
    pairs = tuple(sorted(zip(reachable["NetworkMessageId"], reachable["RecipientEmailAddress"].str.to_lowercase())))
    return MissedMalware(pairs, copies.height - reachable.height)
