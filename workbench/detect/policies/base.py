"""What every policy evaluator shares: the run (its window, severity and thresholds), reads
of the lake, the organisation's own domains, entities and the Explorer query that lists an
alert's messages.

Entities are chosen for correlation: the organisation's own domains, and domains that many
unrelated parties use (free mail, free hosting, file sharing, link shorteners, the real
domains of well-known brands), never become DOMAIN entities; a URL on such a host is still a
URL entity, and its cluster is the URL itself rather than the host.

>>> normalise_subject("RE: Fwd:  Invoice 4711 overdue")
'invoice # overdue'
>>> shared_domain("mail.gmail.com"), shared_domain("docs-4f1a2b.net")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from workbench import schema
from workbench.detect import reference
from workbench.errors import InputError
from workbench.explorer.query import And, Cond, Node, Op, Or, Query, Window
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Severity, Verdict
from workbench.ingest.links import host_of
from workbench.lake import Lake

if TYPE_CHECKING:
    from workbench.detect.policies import Policy

MALICIOUS = ("Phish", "Malware")
THREATS = ("Phish", "Malware", "Spam")
ZAP_TYPES = ("Phish ZAP", "Malware ZAP")
INTERNAL_DIRECTIONS = ("Intra-org", "Outbound")
#: How old a message can be when a click, a report or another product's alert points at it.
MESSAGE_HORIZON = timedelta(days=7)
#: A ZAP (post-delivery verdict) acts on mail delivered in the last 48 hours.
ZAP_HORIZON = timedelta(hours=48)
#: An alert keeps at most this many email copies as entities (its Explorer query lists them all).
MAX_EMAILS = 500
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

# EmailEvents columns the evaluators read about a message copy.
MESSAGE_COLUMNS = ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromAddress", "SenderFromDomain",
                   "SenderDisplayName", "SenderIPv4", "Subject", "EmailDirection", "DeliveryAction", "ThreatTypes",
                   "ThreatNames", "OrgLevelAction", "OrgLevelPolicy"]


def has_threat(column: str = "ThreatTypes", threats: Sequence[str] = MALICIOUS) -> pl.Expr:
    """True where a comma-list verdict column (``"Phish, Spam"``) names one of *threats*."""
    return pl.col(column).fill_null("").str.contains(r"\b(?:" + "|".join(threats) + r")\b")


def lower(column: str) -> pl.Expr:
    return pl.col(column).str.to_lowercase()


# --------------------------------------------------------------------------- domains


@cache
def _shared() -> frozenset[str]:
    h = reference.hosting()
    return h["freemail"] | h["free_hosting"] | h["file_sharing"] | h["shorteners"] | reference.brand_domains()


def shared_domain(domain: str | None) -> bool:
    """A domain (or a subdomain of one) that many unrelated parties use: never a correlation key."""
    return reference.in_list(domain, _shared())


def registrable(host: str) -> str:
    return reference.registrable(host) or host.lower()


_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|tr)\s*:\s*)+", re.IGNORECASE)


def normalise_subject(subject: str | None) -> str:
    """Lower case, reply and forward prefixes dropped, numbers as ``#``, spaces collapsed."""
    text = _SUBJECT_PREFIX.sub("", subject or "").lower()
    text = re.sub(r"\d+", "#", text)
    return re.sub(r"\s+", " ", text).strip()[:120]


def day_key(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d")


def hour_key(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H")


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    """One evaluation of one policy: the window ``(since, until)``, the effective severity and
    thresholds, and the newest event time read from the policy's trigger tables."""

    lake: Lake
    policy: Policy
    since: datetime | None
    until: datetime | None
    severity: Severity
    thresholds: Mapping[str, float]
    severity_set: bool = False  # an admin's severity override (policies that take severity from data yield to it)
    newest: datetime | None = None
    _directory: pl.DataFrame | None = field(default=None, repr=False)
    _org: frozenset[str] | None = field(default=None, repr=False)

    # ----------------------------------------------------------------- time

    def back(self, delta: timedelta | None = None) -> datetime | None:
        """``since - delta`` (the policy's lookback by default); None when reading everything."""
        if self.since is None:
            return None
        return self.since - (self.policy.lookback if delta is None else delta)

    def is_new(self, column: str = "Timestamp") -> pl.Expr:
        """True for rows after the watermark."""
        return pl.lit(True) if self.since is None else pl.col(column) > self.since

    def new(self, ts: datetime | None) -> bool:
        return ts is not None and (self.since is None or ts > self.since)

    def saw(self, frame: pl.DataFrame, column: str = "Timestamp") -> pl.DataFrame:
        """Record that the trigger rows in *frame* were read (the watermark moves to the newest)."""
        if frame.height:
            newest = frame[column].max()
            if newest is not None and (self.newest is None or newest > self.newest):
                self.newest = newest
        return frame

    def saw_all(self, frame: pl.LazyFrame, column: str = "Timestamp") -> None:
        """Record that every row of *frame* was examined (its newest time, without collecting it)."""
        self.saw(frame.select(pl.col(column).max()).collect(), column)

    def scan(self, table: str, start: datetime | None, columns: Sequence[str]) -> pl.LazyFrame:
        """*table*'s rows in ``[start, until)`` (``start`` None: from the beginning)."""
        return self.lake.scan(table, start, self.until, columns=list(columns))

    def threshold(self, name: str) -> float:
        try:
            return self.thresholds[name]
        except KeyError:
            raise InputError(f"policy {self.policy.id} has no threshold {name!r}; "
                             f"it has: {', '.join(self.thresholds) or 'none'}") from None

    # ----------------------------------------------------------------- the organisation

    def directory(self) -> pl.DataFrame:
        """The latest directory row per account (IdentityInfo is a small snapshot table):
        upn and mail lower-cased, names, country, tags and title."""
        if self._directory is None:
            cols = ["Timestamp", "AccountObjectId", "AccountUpn", "AccountDisplayName", "GivenName", "Surname",
                    "EmailAddress", "Country", "JobTitle", "Tags"]
            self._directory = (
                self.lake.scan("IdentityInfo", None, self.until, columns=cols)
                .sort("Timestamp")
                .group_by(pl.coalesce("AccountObjectId", lower("AccountUpn")).alias("key"))
                .last()
                .select(lower("AccountUpn").alias("upn"), pl.coalesce(lower("EmailAddress"), lower("AccountUpn")).alias("mail"),
                        "AccountObjectId", "AccountDisplayName", "GivenName", "Surname", "Country", "JobTitle", "Tags")
                .collect()
            )
        return self._directory

    @property
    def org_domains(self) -> frozenset[str]:
        """The organisation's mail domains: those of the directory's addresses, else (a lake
        without a directory) the recipient domains of inbound mail and sender domains of
        intra-org mail in the policy's window."""
        if self._org is None:
            d = self.directory()
            domains = {a.rsplit("@", 1)[-1] for a in [*d["upn"].drop_nulls(), *d["mail"].drop_nulls()] if "@" in a}
            if not domains:
                rows = (self.scan("EmailEvents", self.back(), ["EmailDirection", "RecipientDomain", "SenderFromDomain"])
                        .select(pl.when(pl.col("EmailDirection") == "Inbound").then("RecipientDomain")
                                .when(pl.col("EmailDirection") == "Intra-org").then("SenderFromDomain").alias("d"))
                        .drop_nulls().unique().collect())
                domains = set(rows["d"].str.to_lowercase())
            self._org = frozenset(domains)
        return self._org

    def is_org(self, domain: str | None) -> bool:
        if not domain:
            return False
        domain = domain.lower().strip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.org_domains)

    def org_expr(self, column: str) -> pl.Expr:
        """True where the domain *column* (stored lower-cased) is the organisation's or under it."""
        col = pl.col(column).fill_null("")
        expr = col.is_in(sorted(self.org_domains))
        for d in sorted(self.org_domains):
            expr = expr | col.str.ends_with("." + d)
        return expr

    def attacker_domain(self, domain: str | None) -> bool:
        """Worth a DOMAIN entity: outside the organisation and not a widely shared domain."""
        return bool(domain) and not self.is_org(domain) and not shared_domain(domain)

    def user_of(self, object_id: str | None = None, upn: str | None = None) -> str | None:
        """A directory user's UPN (lower case) by object id or UPN/mail."""
        d = self.directory()
        if upn:
            upn = upn.lower()
            hit = d.filter((pl.col("upn") == upn) | (pl.col("mail") == upn))
            if hit.height:
                return hit["upn"][0]
        if object_id:
            hit = d.filter(pl.col("AccountObjectId") == object_id)
            if hit.height:
                return hit["upn"][0]
        return upn or None

    # ----------------------------------------------------------------- reads

    def email_rows(self, keys: pl.DataFrame, start: datetime | None) -> pl.DataFrame:
        """EmailEvents rows (MESSAGE_COLUMNS plus ``rcpt``, the lower-cased recipient) of the
        copies in *keys* (``NetworkMessageId``, ``rcpt``) delivered in ``[start, until)``."""
        if not keys.height:
            return pl.DataFrame(schema={**{c: schema.EmailEvents.schema[c] for c in MESSAGE_COLUMNS}, "rcpt": pl.String})
        ids = keys["NetworkMessageId"].unique().implode()
        return (self.scan("EmailEvents", start, MESSAGE_COLUMNS)
                .filter(pl.col("NetworkMessageId").is_in(ids))
                .with_columns(lower("RecipientEmailAddress").alias("rcpt"))
                .join(keys.lazy().select("NetworkMessageId", "rcpt").unique(), on=["NetworkMessageId", "rcpt"], how="semi")
                .collect())

    def message_urls(self, ids: Iterable[str], start: datetime | None) -> dict[str, list[str]]:
        """The URLs of each message, in a stable order."""
        ids = list(set(ids))
        if not ids:
            return {}
        rows = (self.scan("EmailUrlInfo", start, ["NetworkMessageId", "Url"])
                .filter(pl.col("NetworkMessageId").is_in(pl.Series(ids).implode()))
                .unique().sort("NetworkMessageId", "Url").collect())
        out: dict[str, list[str]] = {}
        for nmid, url in rows.iter_rows():
            out.setdefault(nmid, []).append(url)
        return out

    def message_files(self, keys: pl.DataFrame, start: datetime | None) -> pl.DataFrame:
        """Attachments (``NetworkMessageId``, ``rcpt``, FileName, SHA256, ThreatTypes, ThreatNames)
        of the copies in *keys*."""
        if not keys.height:
            return pl.DataFrame(schema={"NetworkMessageId": pl.String, "rcpt": pl.String, "FileName": pl.String,
                                        "SHA256": pl.String, "ThreatTypes": pl.String, "ThreatNames": pl.String})
        ids = keys["NetworkMessageId"].unique().implode()
        return (self.scan("EmailAttachmentInfo", start, ["NetworkMessageId", "RecipientEmailAddress", "FileName", "SHA256",
                                                         "ThreatTypes", "ThreatNames"])
                .filter(pl.col("NetworkMessageId").is_in(ids) & pl.col("SHA256").is_not_null())
                .with_columns(lower("RecipientEmailAddress").alias("rcpt"), lower("SHA256").alias("SHA256"))
                .join(keys.lazy().select("NetworkMessageId", "rcpt").unique(), on=["NetworkMessageId", "rcpt"], how="semi")
                .select("NetworkMessageId", "rcpt", "FileName", "SHA256", "ThreatTypes", "ThreatNames")
                .unique().sort("NetworkMessageId", "rcpt", "SHA256").collect())

    # ----------------------------------------------------------------- entities

    def url_cluster(self, url: str) -> str | None:
        """The cluster of mail linking to *url*: its registrable domain, or (on a shared host)
        the URL without its query; None for the organisation's own links."""
        host = host_of(url)
        if not host or self.is_org(host):
            return None
        if shared_domain(host):
            return "url:" + url.split("?", 1)[0].split("#", 1)[0]
        return "domain:" + registrable(host)

    def indicator_urls(self, urls: Iterable[str]) -> list[str]:
        """The URLs worth alerting on: not the organisation's own; attackers' hosts first."""
        urls = [u for u in dict.fromkeys(urls) if not self.is_org(host_of(u))]
        return sorted(urls, key=lambda u: (not self.attacker_domain(host_of(u)), u))

    def url_entities(self, urls: Iterable[str], role: str = "") -> list[Entity]:
        out = []
        for url in self.indicator_urls(urls):
            out.append(Entity.of(EntityKind.URL, url, role))
            host = host_of(url)
            if self.attacker_domain(host):
                out.append(Entity.of(EntityKind.DOMAIN, registrable(host), "url"))
            cluster = self.url_cluster(url)
            if cluster:
                out.append(Entity.of(EntityKind.CLUSTER, cluster))
        return out

    def sender_entities(self, rows: pl.DataFrame) -> list[Entity]:
        """The external senders of *rows* (EmailEvents columns): address, domain (when it is
        the attacker's own), sending IP. Internal senders are users, added by the policies."""
        out = []
        for address, domain, ip in rows.select("SenderFromAddress", "SenderFromDomain", "SenderIPv4").unique(
                maintain_order=True).iter_rows():
            domain = domain or (address or "").rsplit("@", 1)[-1]
            if self.is_org(domain):
                continue
            if address:
                out.append(Entity.of(EntityKind.MAILBOX, address, "sender"))
            if self.attacker_domain(domain):
                out.append(Entity.of(EntityKind.DOMAIN, registrable(domain), "sender"))
            if ip:
                out.append(Entity.of(EntityKind.IP, ip, "sender"))
        return out

    def message_cluster(self, urls: Sequence[str], files: Sequence[str], sender_domain: str | None,
                        subject: str | None) -> str:
        """One cluster key for a message: its file, else its first indicator URL's cluster,
        else its sender domain and normalised subject."""
        if files:
            return "file:" + min(files)
        for url in self.indicator_urls(urls):
            cluster = self.url_cluster(url)
            if cluster:
                return cluster
        return f"sender:{(sender_domain or '').lower()}|{normalise_subject(subject)}"

    # ----------------------------------------------------------------- drafts

    def draft(self, key: str, fields: Mapping[str, Any], first: datetime, last: datetime, entities: Iterable[Entity],
              *, copies: pl.DataFrame | None = None, query: Query | None = None, message_count: int | None = None,
              severity: Severity | None = None, verdicts: Iterable[tuple[Entity, Verdict]] = (), detail: str = "",
              threat_family: str = "", detection_source: str = "workbench",
              mitre: Sequence[str] | None = None, expected_activity: str = "") -> AlertDraft:
        """An :class:`AlertDraft` of this run's policy. *copies* (EmailEvents rows) are the
        alert's messages: their count and the Explorer query listing exactly them."""
        p = self.policy
        try:
            title = p.title.format_map(dict(fields))
        except (KeyError, IndexError) as exc:
            raise InputError(f"the title of policy {p.id} names {exc} which its evaluator does not fill; "
                             f"fields: {', '.join(fields)}") from None
        if copies is not None and copies.height:
            query = copies_query(copies)
            message_count = copies.height
        kept = _unique(entities)
        return AlertDraft(
            policy_id=p.id, title=title, severity=severity or self.severity, category=p.category,
            first_activity=first, last_activity=last, dedup_key=f"{p.id}:{key}",
            description=p.description + (f"\n\n{detail}" if detail else ""),
            entities=kept, evidence=tuple(e for e in kept if e.kind is not EntityKind.DOMAIN),
            verdicts=tuple(dict.fromkeys((e.key, v) for e, v in verdicts)),
            explorer_query=query.to_json() if query is not None else None,
            mitre_techniques=tuple(p.mitre if mitre is None else mitre), threat_family=threat_family,
            detection_source=detection_source, message_count=message_count or 0,
            expected_activity=expected_activity,
        )


def _unique(entities: Iterable[Entity]) -> tuple[Entity, ...]:
    """First occurrence of each (kind, value); at most MAX_EMAILS email copies."""
    seen: set[str] = set()
    out = []
    emails = 0
    for e in entities:
        if not e.value or e.key in seen:
            continue
        if e.kind is EntityKind.EMAIL:
            emails += 1
            if emails > MAX_EMAILS:
                continue
        seen.add(e.key)
        out.append(e)
    return tuple(out)


def email_entities(copies: pl.DataFrame, role: str = "") -> list[Entity]:
    """An EMAIL entity per copy (``<NetworkMessageId>|<recipient>``) and a MAILBOX per recipient."""
    pairs = copies.select("NetworkMessageId", lower("RecipientEmailAddress")).unique(maintain_order=True)
    out = [Entity.of(EntityKind.EMAIL, f"{n}|{r}", role) for n, r in pairs.iter_rows()]
    out += [Entity.of(EntityKind.MAILBOX, r, "recipient") for r in dict.fromkeys(pairs["RecipientEmailAddress"])]
    return out


def copies_query(copies: pl.DataFrame) -> Query:
    """The all-email query listing exactly *copies* (EmailEvents rows): their message ids and
    recipients (messages with the same recipients share one condition) in a window from the
    first copy to one second after the last."""
    groups = (copies.select("NetworkMessageId", lower("RecipientEmailAddress").alias("r"))
              .unique().group_by("NetworkMessageId").agg(pl.col("r").sort())
              .with_columns(pl.col("r").list.join(",").alias("set"))
              .group_by("set").agg(pl.col("NetworkMessageId").sort(), pl.col("r").first()).sort("set"))
    nodes: list[Node] = [And(Cond("network_message_id", Op.ANY, tuple(ids)), Cond("recipients", Op.ANY, tuple(rcpts)))
                         for _, ids, rcpts in groups.iter_rows()]
    where = nodes[0] if len(nodes) == 1 else Or(*nodes)
    return Query("all_email", Window.between(copies["Timestamp"].min(), copies["Timestamp"].max() + SECOND), where)


__all__ = ["Run", "MALICIOUS", "THREATS", "ZAP_TYPES", "INTERNAL_DIRECTIONS", "MESSAGE_HORIZON", "ZAP_HORIZON",
           "MESSAGE_COLUMNS", "has_threat", "lower", "shared_domain", "registrable", "normalise_subject", "day_key",
           "hour_key", "email_entities", "copies_query", "SECOND", "HOUR", "DAY"]
