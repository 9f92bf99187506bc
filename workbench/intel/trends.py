"""Threat trackers in the tenant (mdo-reference §6.1–6.2): noteworthy threats seen here,
trending threat families and campaigns.

- :func:`seen_here` matches a :class:`ThreatNote` against the whole lake: messages carrying its
  indicators (URL, domain, IP, SHA-256, sender, sender domain) or naming its family in
  ``ThreatNames`` (case-insensitive, whole word).
- :func:`family_trends` counts each malware or phish family this week against the week before
  (the legacy "Trending trackers"): ``new`` when the prior week had none, ``rising`` at
  ≥ +50 % and ≥ 5 messages this week, ``declining`` at ≤ −50 %, else ``flat``.
- :func:`campaigns` groups malicious mail into campaigns: clusters of clusters, the connected
  components of messages linked by any shared key — sender IP or domain (infrastructure), URL
  domain, phish-kit URL path or attachment SHA-256 (payload), ``EmailClusterId`` or normalised
  subject (content).

Counts are of *copies* (one per message and recipient), as the Explorer counts mail.

Rules for the campaign keys (each keeps unrelated mail apart):

- malicious mail is Phish or Malware in ``EmailEvents.ThreatTypes`` or in a post-delivery
  verdict (ZAP, ``EmailPostDeliveryEvents.ThreatTypes``): mail delivered clean and zapped later
  belongs to its campaign;
- the organisation's domains, shared hosts (:func:`shared_domain`) and subjects shorter than
  12 characters are never keys;
- a key carried by at least as many clean messages as malicious ones is infrastructure the
  attacker borrowed (a compromised supplier's domain, a cloud provider's IP): not a key;
- a URL path is a key (a phishing kit's fingerprint) only with two or more segments.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from workbench.air.clusters import MIN_SUBJECT
from workbench.detect.policies.base import normalise_subject, shared_domain
from workbench.explorer.query import Cond, Op, Or, Query, Window
from workbench.intel.model import IndicatorType, ThreatNote, normalise
from workbench.lake import Lake

INBOX = "Inbox/folder"
THREATS = ("Phish", "Malware")
RISING, DECLINING, MIN_RISING = 0.5, -0.5, 5  # family trend thresholds (ratio, messages this week)
_THREAT_RE = "Phish|Malware"
_KIT_PATH = re.compile(r"^/[^/]+/.+")  # two or more path segments


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --------------------------------------------------------------------------- seen here


@dataclass(frozen=True)
class Sighting:
    """A noteworthy threat matched against the tenant's mail."""

    note_id: str
    name: str
    messages: int = 0  # copies, one per recipient
    delivered: int = 0  # copies delivered (still in Inbox, or delivered at the time)
    clicked: int = 0  # distinct users who clicked its URLs
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    days_ago: int | None = None  # whole days from the last copy to *now*
    matched_by: tuple[str, ...] = ()  # "url", "domain", ..., "family"
    message_ids: tuple[str, ...] = ()

    @property
    def seen(self) -> bool:
        return self.messages > 0

    def render(self) -> str:
        if not self.seen:
            return "not seen here"
        when = "today" if not self.days_ago else "1 day ago" if self.days_ago == 1 else f"{self.days_ago} days ago"
        clicks = f", {self.clicked:,} clicked" if self.clicked else ""
        return f"seen here: {self.messages:,} messages, {self.delivered:,} delivered{clicks}, last {when}"


def _indicators(note: ThreatNote) -> dict[IndicatorType, list[str]]:
    out: dict[IndicatorType, list[str]] = {}
    for kind, value in note.indicators:
        try:
            t = IndicatorType(kind)
        except ValueError:
            continue
        v = normalise(t, value)
        if v:
            out.setdefault(t, []).append(v.lower() if t is not IndicatorType.URL else v)
    return out


def _host_match(col: pl.Expr, domains: list[str]) -> pl.Expr:
    """*col* (a host, lower-cased) is one of *domains* or a subdomain of one."""
    host = col.str.to_lowercase()
    suffix = "|".join(re.escape("." + d) + "$" for d in domains)
    return host.is_in(domains) | host.str.contains(suffix)


def _family_expr(col: str, family: str) -> pl.Expr:
    return pl.col(col).fill_null("").str.contains(r"(?i)\b" + re.escape(family) + r"\b")


def _matching_ids(lake: Lake, note: ThreatNote) -> tuple[pl.Series, tuple[str, ...]]:
    """NetworkMessageIds of the mail the note's indicators or family match, and by what."""
    ind, ids, how = _indicators(note), [], []
    lit = lambda vs: pl.lit(pl.Series(vs, dtype=pl.String)).implode()  # noqa: E731
    email: list[tuple[str, pl.Expr]] = []
    if v := ind.get(IndicatorType.IP):
        email.append(("ip", pl.col("SenderIPv4").is_in(lit(v)) | pl.col("SenderIPv6").is_in(lit(v))))
    if v := ind.get(IndicatorType.SENDER):
        email.append(("sender", pl.col("SenderFromAddress").str.to_lowercase().is_in(lit(v))
                      | pl.col("SenderMailFromAddress").str.to_lowercase().is_in(lit(v))))
    if v := ind.get(IndicatorType.SENDER_DOMAIN, []) + ind.get(IndicatorType.DOMAIN, []):
        kind = "senderDomain" if IndicatorType.SENDER_DOMAIN in ind else "domain"
        email.append((kind, _host_match(pl.col("SenderFromDomain").fill_null(""), v)
                      | _host_match(pl.col("SenderMailFromDomain").fill_null(""), v)))
    if note.family.strip():
        email.append(("family", _family_expr("ThreatNames", note.family.strip())))
    for label, expr in email:
        found = lake.scan("EmailEvents").filter(expr).select("NetworkMessageId").collect()["NetworkMessageId"]
        ids.append(found)
        if found.len():
            how.append(label)
    urls, domains = ind.get(IndicatorType.URL, []), ind.get(IndicatorType.DOMAIN, [])
    if urls or domains:
        cond = pl.lit(False)
        if urls:
            cond = cond | pl.col("Url").str.to_lowercase().is_in(lit([u.lower() for u in urls]))
        if domains:
            cond = cond | _host_match(pl.col("UrlDomain").fill_null(""), domains)
        found = lake.scan("EmailUrlInfo").filter(cond).select("NetworkMessageId").collect()["NetworkMessageId"]
        ids.append(found)
        if found.len():
            how.append("url" if urls else "domain")
    files = [*ind.get(IndicatorType.SHA256, [])]
    if files or note.family.strip():
        cond = pl.col("SHA256").str.to_lowercase().is_in(lit(files)) if files else pl.lit(False)
        if note.family.strip():
            cond = cond | _family_expr("ThreatNames", note.family.strip())
        found = lake.scan("EmailAttachmentInfo").filter(cond).select("NetworkMessageId").collect()["NetworkMessageId"]
        ids.append(found)
        if found.len():
            how.append("sha256" if files else "family")
    everything = pl.concat(ids) if ids else pl.Series("NetworkMessageId", [], dtype=pl.String)
    return everything.unique().sort(), tuple(dict.fromkeys(how))


def seen_here(lake: Lake, note: ThreatNote, *, now: datetime) -> Sighting:
    """Where the note's threat reached the tenant, over the whole lake."""
    now = _utc(now)
    ids, how = _matching_ids(lake, note)
    if ids.is_empty():
        return Sighting(note.id, note.name)
    copies = (lake.scan("EmailEvents", columns=["Timestamp", "NetworkMessageId", "RecipientEmailAddress",
                                                 "DeliveryAction", "LatestDeliveryLocation"])
              .filter(pl.col("NetworkMessageId").is_in(ids.implode()))
              .unique(["NetworkMessageId", "RecipientEmailAddress"]).collect())
    if copies.is_empty():
        return Sighting(note.id, note.name)
    delivered = ((pl.col("DeliveryAction") == "Delivered")
                 | (pl.col("LatestDeliveryLocation") == INBOX)).fill_null(False)
    clicked = _clickers(lake, copies["NetworkMessageId"].unique(), _indicators(note))
    last = copies["Timestamp"].max()
    return Sighting(note.id, note.name, copies.height, int(copies.select(delivered.sum()).item()), clicked,
                    copies["Timestamp"].min(), last, max(0, (now - last).days), how,
                    tuple(copies["NetworkMessageId"].unique().sort()))


def _clickers(lake: Lake, ids: pl.Series, ind: dict[IndicatorType, list[str]]) -> int:
    """Distinct users who clicked a URL in *ids* messages or one of the indicator URLs/domains."""
    cond = pl.col("NetworkMessageId").is_in(ids.implode())
    if urls := ind.get(IndicatorType.URL):
        cond = cond | pl.col("Url").is_in(pl.lit(pl.Series(urls, dtype=pl.String)).implode())
    if domains := ind.get(IndicatorType.DOMAIN):
        cond = cond | _host_match(pl.col("Url").str.extract(r"^[A-Za-z]+://([^/?#:]+)", 1).fill_null(""), domains)
    users = lake.scan("UrlClickEvents", columns=["Url", "NetworkMessageId", "AccountUpn"]).filter(cond)
    return int(users.select(pl.col("AccountUpn").str.to_lowercase().drop_nulls().n_unique()).collect().item())


# --------------------------------------------------------------------------- family trends


_FAMILY_SCHEMA = {"family": pl.String, "type": pl.String, "this_week": pl.Int64, "prior_week": pl.Int64,
                  "change": pl.Float64, "trend": pl.String, "daily": pl.List(pl.Int64)}


def family_rows(lake: Lake, start: datetime, end: datetime) -> pl.LazyFrame:
    """One row per copy and family in ``[start, end)``: ``Timestamp``, ``family``, ``type``.

    Families are ``ThreatNames`` split on commas; a copy without names counts under its threat
    types (Phish, Malware). Spam alone is no family."""
    rows = (lake.scan("EmailEvents", start, end, columns=["Timestamp", "ThreatTypes", "ThreatNames"])
            .filter(pl.col("Timestamp").is_between(start, end, closed="left"))
            .filter(pl.col("ThreatTypes").fill_null("").str.contains(_THREAT_RE)))
    typ = pl.when(pl.col("ThreatTypes").str.contains("Malware")).then(pl.lit("Malware")).otherwise(pl.lit("Phish"))
    names = pl.col("ThreatNames").fill_null("").str.split(",").list.eval(pl.element().str.strip_chars()) \
        .list.filter(pl.element() != "")
    types = pl.col("ThreatTypes").str.split(",").list.eval(pl.element().str.strip_chars()) \
        .list.filter(pl.element().is_in(list(THREATS)))
    return (rows.with_columns(type=typ, family=pl.when(names.list.len() > 0).then(names).otherwise(types))
            .explode("family").filter(pl.col("family").is_not_null())
            .select("Timestamp", "family", "type"))


def trend_label(this_week: int, prior_week: int) -> str:
    """``new`` (none the week before), ``rising`` (≥ +50 % and ≥ 5 this week), ``declining``
    (≤ −50 %), else ``flat``."""
    if prior_week == 0:
        return "new" if this_week else "flat"
    change = (this_week - prior_week) / prior_week
    if change >= RISING and this_week >= MIN_RISING:
        return "rising"
    return "declining" if change <= DECLINING else "flat"


def family_trends(lake: Lake, *, now: datetime, days: int = 7) -> pl.DataFrame:
    """Malware and phish families this week (``[now - days, now)``) against the week before,
    with daily counts over both weeks (oldest first) for a sparkline; busiest first."""
    now = _utc(now)
    start = now - timedelta(days=2 * days)
    rows = family_rows(lake, start, now).with_columns(
        day=(2 * days - 1 - ((pl.lit(now) - pl.col("Timestamp")).dt.total_seconds() // 86_400)).cast(pl.Int64))
    counts = rows.group_by("family", "day").agg(pl.len().cast(pl.Int64).alias("n")).collect()
    if counts.is_empty():
        return pl.DataFrame(schema=_FAMILY_SCHEMA)
    types = (rows.group_by("family", "type").agg(pl.len().alias("k"))
             .sort(["family", "k", "type"], descending=[False, True, False])
             .group_by("family", maintain_order=True).first().select("family", "type").collect())
    grid = pl.DataFrame({"family": counts["family"].unique()}).join(
        pl.DataFrame({"day": list(range(2 * days))}, schema={"day": pl.Int64}), how="cross")
    daily = (grid.join(counts, on=["family", "day"], how="left").with_columns(pl.col("n").fill_null(0))
             .sort("family", "day").group_by("family", maintain_order=True)
             .agg(daily=pl.col("n"), this_week=pl.col("n").filter(pl.col("day") >= days).sum(),
                  prior_week=pl.col("n").filter(pl.col("day") < days).sum()))
    out = daily.join(types, on="family").with_columns(
        change=pl.when(pl.col("prior_week") > 0)
        .then((pl.col("this_week") - pl.col("prior_week")) / pl.col("prior_week")).otherwise(None))
    out = out.with_columns(trend=pl.struct("this_week", "prior_week").map_elements(
        lambda r: trend_label(r["this_week"], r["prior_week"]), return_dtype=pl.String))
    return (out.select(list(_FAMILY_SCHEMA)).cast(_FAMILY_SCHEMA)
            .sort(["this_week", "prior_week", "family"], descending=[True, True, False]))


# --------------------------------------------------------------------------- campaigns


_CAMPAIGN_SCHEMA = {
    "campaign_id": pl.String, "name": pl.String, "type": pl.String, "sample_subject": pl.String,
    "messages": pl.Int64, "senders": pl.List(pl.String), "sender_ips": pl.List(pl.String),
    "url_domains": pl.List(pl.String), "recipients": pl.Int64, "inboxed": pl.Int64, "clicked": pl.Int64,
    "click_rate": pl.Float64, "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
    "query": pl.String, "message_ids": pl.List(pl.String),
}


class _UnionFind:
    """Union-find over string keys (path halving, union by size)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.size: dict[str, int] = {}

    def find(self, key: str) -> str:
        parent = self.parent.setdefault(key, key)
        self.size.setdefault(key, 1)
        while parent != key:
            grand = self.parent[parent]
            self.parent[key] = grand
            key, parent = parent, self.parent[grand]
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]


def _org_domains(lake: Lake, start: datetime, end: datetime) -> list[str]:
    """The organisation's domains: those of inbound mail's recipients."""
    return (lake.scan("EmailEvents", start, end, columns=["EmailDirection", "RecipientDomain"])
            .filter(pl.col("EmailDirection") == "Inbound").select(pl.col("RecipientDomain").str.to_lowercase())
            .unique().collect()["RecipientDomain"].drop_nulls().to_list())


def _message_keys(lake: Lake, start: datetime, end: datetime, org: list[str]) -> pl.DataFrame:
    """(NetworkMessageId, key, threat) for every message in the window, keys prefixed by kind."""
    columns = ["Timestamp", "NetworkMessageId", "SenderIPv4", "SenderFromDomain", "EmailClusterId", "Subject",
               "ThreatTypes"]
    mail = (lake.scan("EmailEvents", start, end, columns=columns)
            .filter(pl.col("Timestamp").is_between(start, end, closed="left")))
    zapped = (lake.scan("EmailPostDeliveryEvents", start, None, columns=["NetworkMessageId", "ThreatTypes"])
              .filter(pl.col("ThreatTypes").fill_null("").str.contains(_THREAT_RE)).select("NetworkMessageId").unique()
              .with_columns(zap=pl.lit(True)))
    msgs = (mail.join(zapped, on="NetworkMessageId", how="left")
            .with_columns(threat=pl.col("ThreatTypes").fill_null("").str.contains(_THREAT_RE)
                          | pl.col("zap").fill_null(False))
            .group_by("NetworkMessageId").agg(pl.col("threat").any(), pl.col("SenderIPv4").first(),
                                              pl.col("SenderFromDomain").first().str.to_lowercase(),
                                              pl.col("EmailClusterId").first(), pl.col("Subject").first()))
    ids = msgs.select("NetworkMessageId", "threat")
    subject = pl.col("Subject").map_elements(normalise_subject, return_dtype=pl.String)
    parts = [
        msgs.select("NetworkMessageId", key=pl.lit("ip:") + pl.col("SenderIPv4")),
        msgs.filter(~pl.col("SenderFromDomain").is_in(org))
        .select("NetworkMessageId", key=pl.lit("sd:") + pl.col("SenderFromDomain")),
        msgs.select("NetworkMessageId", key=pl.lit("cid:") + pl.col("EmailClusterId").cast(pl.String)),
        msgs.select("NetworkMessageId", s=subject).filter(pl.col("s").str.len_chars() >= MIN_SUBJECT)
        .select("NetworkMessageId", key=pl.lit("subj:") + pl.col("s")),
    ]
    urls = (lake.scan("EmailUrlInfo", start, end, columns=["Timestamp", "NetworkMessageId", "Url", "UrlDomain"])
            .filter(pl.col("Timestamp").is_between(start, end, closed="left"))
            .with_columns(host=pl.col("UrlDomain").str.to_lowercase(),
                          path=pl.col("Url").str.extract(r"^[A-Za-z]+://[^/?#]+(/[^?#]*)", 1).str.to_lowercase()
                          .str.strip_chars_end("/")))
    parts.append(urls.filter(~pl.col("host").is_in(org)).select("NetworkMessageId", key=pl.lit("ud:") + pl.col("host")))
    parts.append(urls.filter(pl.col("path").str.contains(_KIT_PATH.pattern))
                 .select("NetworkMessageId", key=pl.lit("kit:") + pl.col("path")))
    files = (lake.scan("EmailAttachmentInfo", start, end, columns=["Timestamp", "NetworkMessageId", "SHA256"])
             .filter(pl.col("Timestamp").is_between(start, end, closed="left")))
    parts.append(files.select("NetworkMessageId", key=pl.lit("sha:") + pl.col("SHA256").str.to_lowercase()))
    keys = pl.concat(parts).drop_nulls().unique().join(ids, on="NetworkMessageId")
    out = keys.collect()
    domains = out.filter(pl.col("key").str.contains("^(sd|ud):"))["key"].unique()
    shared = [k for k in domains if shared_domain(k.split(":", 1)[1])]
    return out.filter(~pl.col("key").is_in(shared))


def _campaign_keys(keys: pl.DataFrame) -> pl.DataFrame:
    """The keys of malicious messages that clean mail does not carry as often."""
    tally = keys.group_by("key").agg(bad=pl.col("threat").sum(), good=(~pl.col("threat")).sum())
    kept = tally.filter(pl.col("bad") > pl.col("good"))["key"]
    return keys.filter(pl.col("threat") & pl.col("key").is_in(kept.implode())).select("NetworkMessageId", "key")


def components(edges: pl.DataFrame, messages: pl.Series) -> pl.DataFrame:
    """(NetworkMessageId, campaign_key): the connected components of *messages* linked by
    shared keys, named by the smallest key in each (a message without keys is its own)."""
    uf = _UnionFind()
    per_message = edges.group_by("NetworkMessageId").agg(pl.col("key").unique().sort())
    for group in per_message["key"].unique().to_list():  # distinct key sets: a few thousand at most
        for other in group[1:]:
            uf.union(group[0], other)
    keys = edges["key"].unique()
    roots = pl.DataFrame({"key": keys, "root": [uf.find(k) for k in keys.to_list()]})
    smallest = roots.group_by("root").agg(campaign_key=pl.col("key").min())
    assigned = (edges.join(roots, on="key").join(smallest, on="root")
                .group_by("NetworkMessageId").agg(pl.col("campaign_key").first()))
    alone = pl.DataFrame({"NetworkMessageId": messages}).join(assigned, on="NetworkMessageId", how="anti") \
        .with_columns(campaign_key=pl.lit("msg:") + pl.col("NetworkMessageId"))
    return pl.concat([assigned, alone])


def campaign_id(smallest_key: str) -> str:
    """A stable id from a campaign's smallest key."""
    return "cmp-" + hashlib.sha256(smallest_key.encode()).hexdigest()[:12]


def _query(row: dict[str, Any]) -> str:
    """The Explorer query for a campaign: its window and any of its senders' domains and IPs, URL
    domains or files (an approximation: it also shows clean mail from those, and misses copies
    linked only by subject, cluster id or kit path)."""
    keys = (("sender_domain", "senders"), ("sender_ip", "sender_ips"), ("url_domain", "url_domains"),
            ("attachment_sha256", "files"))
    conds = [Cond(prop, Op.ANY, tuple(row[col])) for prop, col in keys if row[col]]
    where = conds[0] if len(conds) == 1 else Or(*conds) if conds else None
    window = Window.between(row["first_seen"], row["last_seen"] + timedelta(seconds=1))
    return json.dumps(Query("all_email", window, where).to_json())


def campaigns(lake: Lake, *, now: datetime, days: int = 30, org_domains: Iterable[str] | None = None) -> pl.DataFrame:
    """Campaigns of malicious mail in ``[now - days, now)``, biggest first (see module rules)."""
    now = _utc(now)
    start = now - timedelta(days=days)
    org = sorted({d.lower() for d in org_domains}) if org_domains is not None else _org_domains(lake, start, now)
    keys = _message_keys(lake, start, now, org)
    edges = _campaign_keys(keys)
    bad = keys.filter(pl.col("threat"))["NetworkMessageId"].unique()
    if bad.is_empty():
        return pl.DataFrame(schema=_CAMPAIGN_SCHEMA)
    comp = components(edges, bad)
    return _summarise(lake, comp, start, now)


def _top(frame: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """Each campaign's most common *column* value (ties: the smallest) as *name*."""
    return (frame.drop_nulls(column).group_by("campaign_key", column).len()
            .sort(["campaign_key", "len", column], descending=[False, True, False])
            .group_by("campaign_key", maintain_order=True).agg(pl.col(column).first().alias(name)))


def _distinct(frame: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """Each campaign's distinct lower-cased *column* values, sorted, as *name*."""
    values = pl.col(column).str.to_lowercase().drop_nulls().unique().sort()
    return frame.group_by("campaign_key").agg(values.alias(name))


def _clicked(lake: Lake, urls: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Distinct users who clicked each campaign's URLs (Safe Links clicks, allowed or blocked)."""
    return (lake.scan("UrlClickEvents", start, end, columns=["Url", "AccountUpn"])
            .filter(pl.col("Url").is_in(urls["Url"].unique().implode())).collect()
            .join(urls.select("Url", "campaign_key").unique(), on="Url")
            .group_by("campaign_key").agg(clicked=pl.col("AccountUpn").str.to_lowercase().n_unique().cast(pl.Int64)))


def _summarise(lake: Lake, comp: pl.DataFrame, start: datetime, now: datetime) -> pl.DataFrame:
    """One row per campaign (``campaign_key`` of :func:`components`): who, what, impact, query."""
    ids = comp["NetworkMessageId"].implode()
    read = lambda table, cols: (lake.scan(table, start, now, columns=cols).filter(  # noqa: E731
        pl.col("NetworkMessageId").is_in(ids)).collect().join(comp, on="NetworkMessageId"))
    copies = read("EmailEvents", ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromDomain",
                                  "SenderIPv4", "Subject", "ThreatTypes", "ThreatNames", "DeliveryLocation"]
                  ).unique(["NetworkMessageId", "RecipientEmailAddress"])
    urls = read("EmailUrlInfo", ["NetworkMessageId", "Url", "UrlDomain"])
    files = read("EmailAttachmentInfo", ["NetworkMessageId", "SHA256"])
    names = copies.select("campaign_key", family=pl.col("ThreatNames").str.split(",")).explode("family") \
        .with_columns(pl.col("family").str.strip_chars()).filter(pl.col("family") != "")
    summary = copies.group_by("campaign_key").agg(
        messages=pl.len().cast(pl.Int64), malware=pl.col("ThreatTypes").fill_null("").str.contains("Malware").sum(),
        sender_ips=pl.col("SenderIPv4").drop_nulls().unique().sort(),
        recipients=pl.col("RecipientEmailAddress").str.to_lowercase().n_unique().cast(pl.Int64),
        inboxed=(pl.col("DeliveryLocation") == INBOX).sum().cast(pl.Int64),
        first_seen=pl.col("Timestamp").min(), last_seen=pl.col("Timestamp").max(),
        message_ids=pl.col("NetworkMessageId").unique().sort())
    for part in (_distinct(copies, "SenderFromDomain", "senders"), _distinct(urls, "UrlDomain", "url_domains"),
                 _distinct(files, "SHA256", "files"), _clicked(lake, urls, start, now + timedelta(days=1)),
                 _top(names, "family", "family"), _top(copies, "Subject", "sample_subject")):
        summary = summary.join(part, on="campaign_key", how="left")
    malware = pl.col("malware") * 2 >= pl.col("messages")
    summary = summary.with_columns(
        pl.col("url_domains").fill_null([]), pl.col("files").fill_null([]), pl.col("clicked").fill_null(0),
        type=pl.when(malware).then(pl.lit("Malware")).otherwise(pl.lit("Phish")),
        campaign_id=pl.col("campaign_key").map_elements(campaign_id, return_dtype=pl.String),
        name=pl.coalesce("family", "sample_subject", pl.lit("(no subject)")))
    summary = summary.with_columns(
        click_rate=pl.when((pl.col("type") == "Phish") & (pl.col("inboxed") > 0))
        .then(pl.col("clicked") / pl.col("inboxed")).otherwise(None),
        query=pl.Series([_query(r) for r in summary.iter_rows(named=True)], dtype=pl.String))
    return (summary.select(list(_CAMPAIGN_SCHEMA)).cast(_CAMPAIGN_SCHEMA)
            .sort(["messages", "campaign_id"], descending=[True, False]))


__all__ = ["Sighting", "seen_here", "family_rows", "family_trends", "trend_label", "campaigns", "components",
           "campaign_id", "INBOX", "RISING", "DECLINING", "MIN_RISING"]
