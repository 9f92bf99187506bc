"""Sender IP and sender domain reputation (mdo-reference §4.2, "Sender domain investigation"
and "Sender IP investigation"): what the tenant's own mail history says about the servers and
domains that sent the investigated messages, plus the indicator store.

For each sender domain (header From and envelope MAIL FROM) and sending IP it gathers the
history in the lake (first seen, days seen, copies, the share judged phish or malware at
delivery or by ZAP, SPF / DKIM / DMARC failures), whether the domain imitates the
organisation's or a brand's (``detect.analyzers.lookalike``), whether its mail shows the
display name of someone in the directory, and intelligence matches. The verdict is deliberately
conservative, because a compromised correspondent also sends good mail:

- **malicious** only for senders with no history of good mail that are attacker-owned by
  identity: a lookalike domain, an organisation person's display name from an outside domain,
  an indicator-store match, or nothing but threats (at least ``MIN_THREATS`` copies, at least
  half of them, none clean before the first);
- **suspicious** for threats or failed authentication in the history, and for any of the
  above on an established correspondent, a shared provider (free mail, hosting) or shared
  infrastructure (an IP sending for the organisation or for many domains);
- **no threats found** for a history of mail without threats; **unknown** when the sender was
  never seen outside the investigated messages and nothing else is known.

Only malicious senders get proposals (block the domain, block the sending IP); the
organisation's own domains and shared providers never do.

>>> auth_failed('{"SPF":"softfail","DKIM":"none","DMARC":"fail"}'), auth_failed('{"SPF":"pass","DMARC":"pass"}')
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import polars as pl

from workbench.air.model import ActionType
from workbench.air.records import EvidenceItem
from workbench.detect import reference
from workbench.detect.analyzers.lookalike import resemblance
from workbench.detect.evidence import Context
from workbench.detect.policies.base import shared_domain
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Verdict
from workbench.intel.feeds import Indicator
from workbench.lake import Lake

ESTABLISHED_DAYS = 2  # clean mail on this many days before the investigated mail: an established correspondent
MIN_THREATS = 3  # "nothing but threats" needs at least this many threat copies
THREAT_SHARE = 0.5
AUTH_FAILURE_SHARE = 0.5
INTERNAL = "internal senders are judged by the user investigation"
SHARED_IP_DOMAINS = 5  # an IP sending for this many sender domains is shared infrastructure
_AUTH_FAIL = re.compile(r'"(?:SPF|DKIM|DMARC)"\s*:\s*"(?:fail|softfail|permerror)"', re.IGNORECASE)
# the executives' titles the impersonation alert policy protects (detect/policies/mail.py)
_TITLE = re.compile(r"\b(chief|president|ceo|cfo|coo|cto|founder|owner|managing director)\b", re.IGNORECASE)
_COLUMNS = ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromDomain", "SenderMailFromDomain",
            "SenderIPv4", "SenderIPv6", "SenderDisplayName", "ThreatTypes", "AuthenticationDetails"]


def auth_failed(details: str | None) -> bool:
    """True when an AuthenticationDetails value reports SPF, DKIM or DMARC failing."""
    return bool(details) and bool(_AUTH_FAIL.search(details))


def _norm_name(text: str | None) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", (text or "").lower())).strip()


@dataclass(frozen=True)
class SenderFacts:
    """One sender domain or IP: its history in the tenant and the verdict drawn from it."""

    kind: EntityKind  # DOMAIN or IP
    value: str
    copies: int  # copies (one per recipient) seen in the window, the investigated ones included
    threat_copies: int  # of those, judged phish or malware at delivery or by ZAP
    auth_failures: int  # of those, failing SPF, DKIM or DMARC
    first_seen: datetime | None
    days_seen: int
    established: bool  # clean mail on ESTABLISHED_DAYS days before the investigated mail
    clean_before_threats: int = 0  # copies without threats sent before its first threat copy
    investigated_only: bool = False  # never seen outside the investigated messages
    own: bool = False  # the organisation's domain, or an IP sending for it
    shared: bool = False  # a widely shared provider or shared sending infrastructure
    lookalike: str = ""  # what the domain imitates
    impersonation: int = 0  # copies showing the display name of a protected person of the organisation
    intel: str = ""  # the matching indicator's source
    verdict: Verdict = Verdict.UNKNOWN
    reason: str = ""

    @property
    def threat_share(self) -> float:
        return self.threat_copies / self.copies if self.copies else 0.0


@dataclass(frozen=True)
class SenderReputation:
    senders: tuple[SenderFacts, ...]
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[tuple[ActionType, EntityKind, str, str], ...]

    def verdict(self, kind: EntityKind, value: str) -> Verdict:
        for s in self.senders:
            if s.kind is kind and s.value == value.lower():
                return s.verdict
        return Verdict.UNKNOWN

    def reason(self, value: str) -> str:
        """Why the sender domain or IP *value* got its verdict."""
        return next((s.reason for s in self.senders if s.value == value.lower()), "")

    @property
    def malicious_domains(self) -> tuple[str, ...]:
        return tuple(s.value for s in self.senders if s.kind is EntityKind.DOMAIN and s.verdict is Verdict.MALICIOUS)

    @property
    def malicious_ips(self) -> tuple[str, ...]:
        return tuple(s.value for s in self.senders if s.kind is EntityKind.IP and s.verdict is Verdict.MALICIOUS)

    @property
    def summary(self) -> str:
        count = lambda k, v: sum(s.kind is k and s.verdict is v for s in self.senders)  # noqa: E731
        domains = sum(s.kind is EntityKind.DOMAIN for s in self.senders)
        return (f"{domains} domain(s), {count(EntityKind.DOMAIN, Verdict.MALICIOUS)} malicious, "
                f"{count(EntityKind.DOMAIN, Verdict.SUSPICIOUS)} suspicious; {len(self.senders) - domains} IP(s), "
                f"{count(EntityKind.IP, Verdict.MALICIOUS)} malicious, "
                f"{count(EntityKind.IP, Verdict.SUSPICIOUS)} suspicious")


def protected_display_names(lake: Lake, end: datetime | None) -> frozenset[str]:
    """Display-name spellings of the directory's protected people (priority accounts and
    executives), as the impersonation alert policy matches them: "given surname", "surname
    given", and "given s" when no one else shares it."""
    columns = ["Timestamp", "AccountUpn", "GivenName", "Surname", "Tags", "JobTitle"]
    d = (lake.scan("IdentityInfo", None, end, columns=columns)
         .filter(pl.col("GivenName").is_not_null() & pl.col("Surname").is_not_null())
         .sort("Timestamp").group_by(pl.col("AccountUpn").str.to_lowercase()).last().collect())
    initials: dict[str, int] = {}
    for given, surname in d.select("GivenName", "Surname").iter_rows():
        key = _norm_name(f"{given} {surname[:1]}")
        initials[key] = initials.get(key, 0) + 1
    names = set()
    for given, surname, tags, title in d.select("GivenName", "Surname", "Tags", "JobTitle").iter_rows():
        if "Priority account" not in (tags or "") and not _TITLE.search(title or ""):
            continue
        names |= {_norm_name(f"{given} {surname}"), _norm_name(f"{surname} {given}")}
        if initials.get(short := _norm_name(f"{given} {surname[:1]}")) == 1:
            names.add(short)
    return frozenset(names)


def _intel_index(indicators: Iterable[Indicator]) -> dict[str, str]:
    return {i.value.lower(): i.source for i in indicators if i.kind in ("domain", "ip")}


def _is_own(domain: str, org: Collection[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in org)


def _identity(f: SenderFacts) -> list[str]:
    """What says the sender itself is the attacker (not just a sender of bad mail)."""
    return ([f"listed by threat intelligence ({f.intel})"] if f.intel else []) + (
        [f"imitates {f.lookalike}"] if f.lookalike else []) + (
        [f"{f.impersonation} copy(ies) show the display name of a protected person of the organisation"]
        if f.impersonation else [])


def judge(f: SenderFacts) -> tuple[Verdict, str]:
    """The verdict on one sender domain or IP from its facts, with a short reason."""
    what = "domain" if f.kind is EntityKind.DOMAIN else "IP"
    history = (f"{f.copies} copies over {f.days_seen} day(s), {f.threat_copies} with threats, "
               f"{f.auth_failures} failing authentication")
    if f.own:
        return Verdict.UNKNOWN, f"sends for the organisation: {INTERNAL} ({history})"
    identity = _identity(f)
    only_threats = (f.threat_copies >= MIN_THREATS and f.threat_share >= THREAT_SHARE and f.clean_before_threats == 0)
    if not f.shared and not f.established:
        if identity:
            return Verdict.MALICIOUS, "; ".join(identity) + f"; no history of good mail ({history})"
        if only_threats:
            return Verdict.MALICIOUS, f"nothing but threats, no good mail before them ({history})"
    if identity or f.threat_copies:
        who = (f"a shared {what}: its other users are not the attacker" if f.shared else
               "an established correspondent that also sends good mail (compromised?)" if f.established else
               "good mail before the threats (compromised?)" if f.clean_before_threats else "")
        why = "; ".join(identity) or "threats in its mail"
        return Verdict.SUSPICIOUS, f"{why}{'; ' + who if who else ''} ({history})"
    if f.copies and f.auth_failures / f.copies >= AUTH_FAILURE_SHARE:
        return Verdict.SUSPICIOUS, f"most of its mail fails authentication (spoofed?) ({history})"
    if f.investigated_only:
        return Verdict.UNKNOWN, f"never seen outside the investigated mail ({history})"
    return Verdict.NO_THREATS_FOUND, f"history without threats ({history})"


def sender_reputation(lake: Lake, messages: Sequence[str], start: datetime | None, end: datetime | None, *,
                      org_domains: Collection[str] = (), indicators: Iterable[Indicator] = (),
                      protected: Collection[str] | None = None) -> SenderReputation:
    """Reputation of the sender domains and IPs of *messages* (NetworkMessageIds) from their
    history in ``[start, end)``, the indicator store (*indicators*: domains and IPs) and the
    display names of protected people (*protected*; from the directory when None)."""
    ids = pl.Series(list(dict.fromkeys(messages)), dtype=pl.String).implode()
    mine = (lake.scan("EmailEvents", start, end, columns=_COLUMNS).filter(pl.col("NetworkMessageId").is_in(ids))
            .collect())
    lower = lambda c: pl.col(c).str.to_lowercase().str.strip_chars(".")  # noqa: E731
    domains = sorted({d for c in ("SenderFromDomain", "SenderMailFromDomain")
                      for d in mine.select(lower(c))[c].drop_nulls() if d})
    ips = sorted({ip for c in ("SenderIPv4", "SenderIPv6") for ip in mine[c].drop_nulls() if ip})
    if not domains and not ips:
        return SenderReputation((), (), ())
    org = {d.lower() for d in org_domains}
    names = protected_display_names(lake, end) if protected is None else frozenset(_norm_name(p) for p in protected)
    intel = _intel_index(indicators)
    outside = [d for d in domains if not _is_own(d, org)]  # the organisation's own mail is not read here
    history = (lake.scan("EmailEvents", start, end, columns=_COLUMNS)
               .with_columns(lower("SenderFromDomain").alias("from_domain"), lower("SenderMailFromDomain").alias("mailfrom"))
               .filter(pl.col("from_domain").is_in(outside) | pl.col("mailfrom").is_in(outside)
                       | pl.col("SenderIPv4").is_in(ips) | pl.col("SenderIPv6").is_in(ips))
               .unique(["NetworkMessageId", "RecipientEmailAddress"]).collect())
    zapped = (lake.scan("EmailPostDeliveryEvents", start, None, columns=["NetworkMessageId", "ThreatTypes"])
              .filter(pl.col("NetworkMessageId").is_in(history["NetworkMessageId"].unique().implode())
                      & pl.col("ThreatTypes").fill_null("").str.contains("Phish|Malware"))
              .select("NetworkMessageId").unique().collect()["NetworkMessageId"])
    shown = (pl.col("SenderDisplayName").fill_null("").str.to_lowercase().str.replace_all(r"[^\w\s]", " ")
             .str.replace_all(r"\s+", " ").str.strip_chars())
    wanted = pl.Series(sorted(names), dtype=pl.String).implode()
    history = history.with_columns(
        (pl.col("ThreatTypes").fill_null("").str.contains("Phish|Malware")
         | pl.col("NetworkMessageId").is_in(zapped.implode())).alias("threat"),
        pl.col("AuthenticationDetails").fill_null("").str.contains("(?i)" + _AUTH_FAIL.pattern).alias("failed"),
        (shown.is_in(wanted) | shown.str.split(" ").list.slice(0, 2).list.join(" ").is_in(wanted)).alias("named"),
        pl.col("NetworkMessageId").is_in(ids).alias("investigated"),
    )
    first_investigated = mine["Timestamp"].min()
    ctx = Context(org_domains=tuple(sorted(org)))
    out: list[SenderFacts] = []
    for domain in domains:
        if _is_own(domain, org):
            out.append(SenderFacts(EntityKind.DOMAIN, domain, 0, 0, 0, None, 0, False, own=True, verdict=Verdict.UNKNOWN,
                                   reason=f"the organisation's own domain: {INTERNAL}"))
            continue
        rows = history.filter((pl.col("from_domain") == domain) | (pl.col("mailfrom") == domain))
        shared = shared_domain(domain)
        out.append(_facts(EntityKind.DOMAIN, domain, rows, first_investigated, shared=shared,
                          lookalike="" if shared else (resemblance(domain, ctx) or ""),
                          impersonation=int(rows["named"].sum()),
                          intel=intel.get(domain) or intel.get(reference.registrable(domain) or domain, "")))
    bad_domains = {f.value for f in out if f.verdict is Verdict.MALICIOUS}
    for ip in ips:
        rows = history.filter((pl.col("SenderIPv4") == ip) | (pl.col("SenderIPv6") == ip))
        sent_for = set(rows["from_domain"].drop_nulls())
        own = any(_is_own(d, org) for d in sent_for)
        shared = own or any(shared_domain(d) for d in sent_for) or len(sent_for) >= SHARED_IP_DOMAINS
        facts = _facts(EntityKind.IP, ip, rows, first_investigated, own=own, shared=shared, intel=intel.get(ip, ""))
        if not shared and sent_for and sent_for <= bad_domains and facts.verdict is not Verdict.MALICIOUS:
            facts = replace(facts, verdict=Verdict.MALICIOUS,
                            reason=f"sends only for the malicious domain(s) {', '.join(sorted(sent_for))}; {facts.reason}")
        out.append(facts)
    evidence, proposals = [], []
    for f in out:
        bad = f.verdict is Verdict.MALICIOUS
        evidence.append(EvidenceItem(Entity.of(f.kind, f.value, "sender"), f.verdict,
                                     RemediationStatus.PENDING if bad else RemediationStatus.NONE, "sender_reputation",
                                     f.reason))
        if bad and not f.own and not f.shared:
            action = ActionType.BLOCK_DOMAIN if f.kind is EntityKind.DOMAIN else ActionType.BLOCK_SENDER
            proposals.append((action, f.kind, f.value, f.reason))
    return SenderReputation(tuple(out), tuple(evidence), tuple(proposals))


def _facts(kind: EntityKind, value: str, rows: pl.DataFrame, first_investigated: datetime, **kw: object) -> SenderFacts:
    """A sender's facts from its copies *rows* (columns threat, failed, named, investigated), judged."""
    # clean mail counts from before this sender's first investigated copy
    first = rows.filter(pl.col("investigated"))["Timestamp"].min() or first_investigated
    clean_before = rows.filter((pl.col("Timestamp") < first) & ~pl.col("threat"))
    first_threat = rows.filter(pl.col("threat"))["Timestamp"].min()
    facts = SenderFacts(
        kind, value, rows.height, int(rows["threat"].sum()), int(rows["failed"].sum()), rows["Timestamp"].min(),
        rows["Timestamp"].dt.date().n_unique() if rows.height else 0,
        established=(clean_before["Timestamp"].dt.date().n_unique() if clean_before.height else 0) >= ESTABLISHED_DAYS,
        clean_before_threats=rows.filter(~pl.col("threat") & (pl.col("Timestamp") < first_threat)).height
        if first_threat is not None else 0,
        investigated_only=bool(rows.height) and bool(rows["investigated"].all()), **kw)  # type: ignore[arg-type]
    verdict, reason = judge(facts)
    return replace(facts, verdict=verdict, reason=reason)
