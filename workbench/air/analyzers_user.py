"""The user and mailbox analyzers of an automated investigation (mdo-reference §4.2 "user /
compromise checks", §4.5): forwarding to outside the organisation, suspicious inbox rules,
mailbox delegation, outbound mail against the user's own history, anomalous sign-ins, and
the user's compromise verdict combining them.

Pure functions over the lake (no store, no widgets). Each returns a frozen result with a
``summary`` for the analyzer log, the facts found, ``evidence`` (EvidenceItems with the
analyzer's name) and ``proposals``: ``(ActionType, EntityKind, target, reason)`` tuples that
a playbook records as proposed actions; nothing is executed here.

Mailbox configuration targets are written ``<mailbox>\\<what>`` (an inbox rule's name, the
forwarding setting, a delegate), like the ObjectId Exchange gives an inbox rule.

>>> _sensitive_words("Invoice;lunch;Password reset")
('invoice', 'password')
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from workbench.air.analyzers_endpoint import EndpointFindings
from workbench.air.model import ActionType
from workbench.air.records import EvidenceItem
from workbench.detect.policies.base import INTERNAL_DIRECTIONS, MALICIOUS, ZAP_TYPES, Run, has_threat, lower
from workbench.detect.policies.identity import (
    HIDING_FOLDERS, RISK_STATES, RISKY_IP_CATEGORIES, RULE_ACTIONS, forwarding_targets, rule_parameters,
)
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Severity, Verdict
from workbench.lake import Lake

Proposal = tuple[ActionType, EntityKind, str, str]

RULE_OPERATIONS = ("New-InboxRule", "Set-InboxRule", "UpdateInboxRules")
DELEGATION_ACTIONS = ("Add-MailboxPermission", "Add-RecipientPermission", "Set-Mailbox")
DELEGATED_RIGHTS = ("fullaccess", "sendas", "sendonbehalf")
SENSITIVE_WORDS = ("invoice", "payment", "password", "wire", "bank", "transfer", "remittance", "payroll", "w-2",
                   "phish", "hacked", "compromised", "security", "mfa", "verify", "helpdesk", "urgent")
KEYWORD_PARAMETERS = ("subjectcontainswords", "subjectorbodycontainswords", "bodycontainswords")
#: Sign-in risk (RiskLevelAggregated): 10 low, 50 medium, 100 high.
RISK_MEDIUM, RISK_HIGH = 50, 100
#: Outbound copies in the window at least this many, and this many times the usual, are a volume anomaly.
MIN_VOLUME, VOLUME_FACTOR = 10, 3.0
BASELINE_DAYS = 10
CLOUD_COLUMNS = ["Timestamp", "ActionType", "AccountObjectId", "ObjectId", "IPAddress", "IsAnonymousProxy", "CountryCode",
                 "IPCategory", "UncommonForUser", "RawEventData", "ReportId"]
SIGNIN_COLUMNS = ["Timestamp", "AccountUpn", "ErrorCode", "IPAddress", "Country", "RiskLevelAggregated", "RiskState"]


# --------------------------------------------------------------------------- shared reads


def _context(lake: Lake, end: datetime | None) -> Run:
    """The policies' reading context (directory, organisation domains) without a policy."""
    return Run(lake, None, None, end, Severity.UNKNOWN, {})  # type: ignore[arg-type]  # no policy-bound method is used


def _item(kind: EntityKind, value: str, verdict: Verdict, analyzer: str, details: str, role: str = "") -> EvidenceItem:
    pending = RemediationStatus.PENDING if verdict is not Verdict.NO_THREATS_FOUND else RemediationStatus.NONE
    return EvidenceItem(Entity.of(kind, value, role), verdict, pending, analyzer, details)


def _sensitive_words(text: str) -> tuple[str, ...]:
    """The SENSITIVE_WORDS among a rule's ``;``/``,``-separated keywords (lower case)."""
    words = [w.strip().lower() for w in re.split(r"[;,]", text or "") if w.strip()]
    return tuple(s for s in SENSITIVE_WORDS if any(s in w for w in words))


@dataclass(frozen=True)
class MailboxChange:
    """One audited change (CloudAppEvents) to the investigated user's mailbox."""

    time: datetime
    operation: str
    actor: str
    ip: str
    risky_ip: bool  # anonymous proxy, hosting or Tor, or marked uncommon for the actor
    parameters: tuple[tuple[str, str], ...]  # lower-cased names
    raw: str  # RawEventData, for forwarding_targets

    def param(self, name: str) -> str:
        return dict(self.parameters).get(name, "")

    @property
    def rule_name(self) -> str:
        return self.param("name") or self.param("identity").rsplit("\\", 1)[-1]

    @property
    def where(self) -> str:
        return f"{self.operation} by {self.actor} at {self.time:%Y-%m-%d %H:%M} UTC from {self.ip or 'an unknown IP'}"


def mailbox_changes(lake: Lake, user: str, start: datetime | None, end: datetime | None,
                    actions: Sequence[str]) -> tuple[MailboxChange, ...]:
    """*actions* (CloudAppEvents ActionTypes) in ``[start, end)`` that change *user*'s mailbox:
    its Identity (or the event's ObjectId) names the mailbox, or there is none and the user acted."""
    ctx = _context(lake, end)
    user = user.lower()
    rows = (lake.scan("CloudAppEvents", start, end, columns=CLOUD_COLUMNS)
            .filter(pl.col("ActionType").is_in(list(actions))).sort("Timestamp").collect())
    out = []
    for e in rows.iter_rows(named=True):
        try:
            raw = json.loads(e["RawEventData"] or "{}")
        except ValueError:
            continue
        if not isinstance(raw, dict):
            continue
        params = rule_parameters(raw)
        actor = ctx.user_of(e["AccountObjectId"], raw.get("UserId")) or e["AccountObjectId"] or "unknown"
        target = (params.get("identity") or (e["ObjectId"] or "").split("\\", 1)[0]).strip().lower()
        mailbox = ctx.user_of(upn=target) if target else actor
        if mailbox != user:
            continue
        risky = bool(e["IsAnonymousProxy"] or e["IPCategory"] in RISKY_IP_CATEGORIES
                     or "IPAddress" in (e["UncommonForUser"] or ""))
        out.append(MailboxChange(e["Timestamp"], e["ActionType"], actor, e["IPAddress"] or "", risky,
                                 tuple(sorted(params.items())), e["RawEventData"] or "{}"))
    return tuple(out)


# --------------------------------------------------------------------------- 1. forwarding


@dataclass(frozen=True)
class ForwardingRule:
    change: MailboxChange
    destinations: tuple[str, ...]
    external: tuple[str, ...]  # the destinations outside the organisation
    hides: bool  # the rule also marks read, deletes or files the mail away, or has a blank name
    mailbox: str

    @property
    def target(self) -> str:
        """``<mailbox>\\<rule name>``, or ``<mailbox>\\forwarding`` for the mailbox setting."""
        what = "forwarding" if self.change.operation == "Set-Mailbox" else (self.change.rule_name or "(unnamed rule)")
        return f"{self.mailbox}\\{what}"


@dataclass(frozen=True)
class ForwardingRules:
    user: str
    rules: tuple[ForwardingRule, ...]
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[Proposal, ...]

    @property
    def external(self) -> tuple[ForwardingRule, ...]:
        return tuple(r for r in self.rules if r.external)

    @property
    def summary(self) -> str:
        if not self.rules:
            return f"no forwarding set on {self.user}'s mailbox"
        dest = sorted({d for r in self.external for d in r.external})
        return (f"{len(self.rules)} forwarding change(s) on {self.user}'s mailbox, {len(self.external)} to outside the "
                f"organisation" + (f" ({', '.join(dest)})" if dest else ""))


def _hides(change: MailboxChange) -> bool:
    name = change.rule_name
    return (change.param("markasread").lower() == "true" or change.param("deletemessage").lower() == "true"
            or bool(HIDING_FOLDERS.search(change.param("movetofolder")))
            or (change.operation != "Set-Mailbox" and not name.strip(" .-_")))


def forwarding_rules(lake: Lake, user: str, start: datetime | None, end: datetime | None) -> ForwardingRules:
    """Forwarding and redirects set on *user*'s mailbox in the window (inbox rules, Set-Mailbox
    ForwardingSmtpAddress...). External forwarding is suspicious, malicious when the rule also
    hides the mail or was set from a risky IP; each external one is proposed for removal."""
    ctx = _context(lake, end)
    user = user.lower()
    rules, evidence, proposals = [], [], []
    for change in mailbox_changes(lake, user, start, end, RULE_ACTIONS):
        targets = tuple(forwarding_targets(json.loads(change.raw)))
        if not targets:
            continue
        external = tuple(a for a in targets if not ctx.is_org(a.rsplit("@", 1)[-1]))
        rule = ForwardingRule(change, targets, external, _hides(change), user)
        rules.append(rule)
        if not external:
            continue
        verdict = Verdict.MALICIOUS if rule.hides or change.risky_ip else Verdict.SUSPICIOUS
        detail = f"{change.where} forwards {user}'s mail to {', '.join(external)}" + (
            "; the rule hides the mail" if rule.hides else "") + ("; the IP is risky or new for the user" if change.risky_ip else "")
        evidence += [_item(EntityKind.MAILBOX, a, verdict, "forwarding_rules", detail, "destination") for a in external]
        proposals.append((ActionType.REMOVE_FORWARDING_RULE, EntityKind.MAILBOX, rule.target, detail))
    return ForwardingRules(user, tuple(rules), tuple(evidence), tuple(dict.fromkeys(proposals)))


# --------------------------------------------------------------------------- 2. inbox rules


@dataclass(frozen=True)
class SuspiciousRule:
    change: MailboxChange
    signs: tuple[str, ...]
    verdict: Verdict
    target: str


@dataclass(frozen=True)
class InboxRules:
    user: str
    examined: int  # inbox rule changes on the mailbox in the window
    rules: tuple[SuspiciousRule, ...]
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[Proposal, ...]

    @property
    def summary(self) -> str:
        return f"{len(self.rules)} suspicious of {self.examined} inbox rule change(s) on {self.user}'s mailbox"


def _rule_signs(change: MailboxChange) -> tuple[bool, list[str]]:
    """Whether the rule hides mail (deletes it or files it in an obscure folder), and the signs."""
    folder = change.param("movetofolder")
    hides_mail = change.param("deletemessage").lower() == "true" or bool(HIDING_FOLDERS.search(folder))
    signs = []
    if change.param("deletemessage").lower() == "true":
        signs.append("deletes the mail")
    elif hides_mail:
        signs.append(f"moves the mail to {folder!r}")
    if change.param("markasread").lower() == "true":
        signs.append("marks it read")
    words = sorted({w for p in KEYWORD_PARAMETERS for w in _sensitive_words(change.param(p))})
    if words:
        signs.append(f"filters on {', '.join(words)}")
    if not change.rule_name.strip(" .-_"):
        signs.append(f"its name {change.rule_name!r} hides it in the rule list")
    if change.risky_ip:
        signs.append(f"made from {change.ip}, risky or new for the user")
    return hides_mail, signs


def inbox_rules(lake: Lake, user: str, start: datetime | None, end: datetime | None) -> InboxRules:
    """Inbox rules on *user*'s mailbox that hide mail (delete, or move to RSS, archive, junk...)
    together with another sign (mark read, keywords such as invoice or password, a blank name,
    a risky IP): suspicious, malicious with three signs or more. Rules forwarding outside the
    organisation are left to :func:`forwarding_rules`."""
    ctx = _context(lake, end)
    user = user.lower()
    changes = mailbox_changes(lake, user, start, end, RULE_OPERATIONS)
    found, evidence, proposals = [], [], []
    for change in changes:
        if any(not ctx.is_org(a.rsplit("@", 1)[-1]) for a in forwarding_targets(json.loads(change.raw))):
            continue
        hides_mail, signs = _rule_signs(change)
        if not hides_mail or len(signs) < 2:
            continue
        verdict = Verdict.MALICIOUS if len(signs) >= 3 else Verdict.SUSPICIOUS
        target = f"{user}\\{change.rule_name or '(unnamed rule)'}"
        detail = f"{change.where}: the rule {'; '.join(signs)}"
        found.append(SuspiciousRule(change, tuple(signs), verdict, target))
        evidence.append(_item(EntityKind.MAILBOX, user, verdict, "inbox_rules", detail, "inbox rule"))
        proposals.append((ActionType.REMOVE_INBOX_RULE, EntityKind.MAILBOX, target, detail))
    return InboxRules(user, len(changes), tuple(found), tuple(evidence), tuple(dict.fromkeys(proposals)))


# --------------------------------------------------------------------------- 3. delegation


@dataclass(frozen=True)
class Delegation:
    change: MailboxChange
    trustee: str
    rights: tuple[str, ...]  # FullAccess, SendAs, SendOnBehalf
    external: bool
    mailbox: str

    @property
    def target(self) -> str:
        """``<mailbox>\\<delegate>``."""
        return f"{self.mailbox}\\{self.trustee}"


@dataclass(frozen=True)
class MailboxDelegation:
    user: str
    delegations: tuple[Delegation, ...]
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[Proposal, ...]

    @property
    def summary(self) -> str:
        if not self.delegations:
            return f"no delegation granted on {self.user}'s mailbox"
        return f"{len(self.delegations)} delegation(s) granted on {self.user}'s mailbox: " + ", ".join(
            f"{'/'.join(d.rights)} to {d.trustee}" for d in self.delegations)


def _granted(change: MailboxChange) -> tuple[str, tuple[str, ...]]:
    """(trustee, delegated rights) of a permission change; rights empty when none delegates."""
    if change.operation == "Set-Mailbox":
        trustee = change.param("grantsendonbehalfto")
        return trustee, ("SendOnBehalf",) if trustee else ()
    trustee = change.param("user") or change.param("trustee")
    rights = [r.strip() for r in re.split(r"[;,]", change.param("accessrights")) if r.strip()]
    return trustee, tuple(r for r in rights if r.lower() in DELEGATED_RIGHTS)


def mailbox_delegation(lake: Lake, user: str, start: datetime | None, end: datetime | None) -> MailboxDelegation:
    """FullAccess, SendAs or SendOnBehalf granted on *user*'s mailbox in the window
    (Add-MailboxPermission, Add-RecipientPermission, Set-Mailbox GrantSendOnBehalfTo): the
    delegate suspicious (malicious when outside the organisation or granted from a risky IP);
    each proposed for removal."""
    ctx = _context(lake, end)
    user = user.lower()
    found, evidence, proposals = [], [], []
    for change in mailbox_changes(lake, user, start, end, DELEGATION_ACTIONS):
        trustee, rights = _granted(change)
        if not trustee or not rights:
            continue
        trustee = ctx.user_of(upn=trustee.strip()) or trustee.strip().lower()
        external = "@" in trustee and not ctx.is_org(trustee.rsplit("@", 1)[-1])
        d = Delegation(change, trustee, rights, external, user)
        found.append(d)
        verdict = Verdict.MALICIOUS if external or change.risky_ip else Verdict.SUSPICIOUS
        detail = f"{change.where} grants {'/'.join(rights)} on {user}'s mailbox to {trustee}"
        kind = EntityKind.MAILBOX if external else EntityKind.USER
        evidence.append(_item(kind, trustee, verdict, "mailbox_delegation", detail, "delegate"))
        proposals.append((ActionType.REMOVE_DELEGATION, EntityKind.MAILBOX, d.target, detail))
    return MailboxDelegation(user, tuple(found), tuple(evidence), tuple(dict.fromkeys(proposals)))


# --------------------------------------------------------------------------- 4. outbound mail


@dataclass(frozen=True)
class OutboundAnomaly:
    user: str
    copies: int  # sent copies (one per recipient) in the window
    baseline_daily: float  # mean copies a day over the baseline days
    baseline_known: bool  # the lake holds mail in the baseline days (else no volume judgement)
    volume_anomaly: bool
    phish: int
    malware: int
    spam: int
    threat_copies: tuple[tuple[str, str], ...]  # (NetworkMessageId, recipient) with a phish or malware verdict
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[Proposal, ...] = ()  # no action of its own (§4.5)

    @property
    def anomaly(self) -> bool:
        return self.volume_anomaly or bool(self.phish or self.malware or self.spam)

    @property
    def summary(self) -> str:
        usual = f"{self.baseline_daily:.1f} a day usually" if self.baseline_known else "no baseline"
        return (f"{self.user} sent {self.copies} copies ({usual}){'; volume anomaly' if self.volume_anomaly else ''}; "
                f"{self.phish} phish, {self.malware} malware, {self.spam} spam")


def _sent(lake: Lake, user: str, start: datetime | None, end: datetime | None) -> pl.LazyFrame:
    return (lake.scan("EmailEvents", start, end, columns=["Timestamp", "NetworkMessageId", "RecipientEmailAddress",
                                                          "SenderFromAddress", "EmailDirection", "ThreatTypes"])
            .filter((lower("SenderFromAddress") == user) & pl.col("EmailDirection").is_in(INTERNAL_DIRECTIONS)))


def outbound_anomaly(lake: Lake, user: str, start: datetime, end: datetime,
                     baseline_days: int = BASELINE_DAYS) -> OutboundAnomaly:
    """Mail *user* sent in the window against their daily mean over *baseline_days* before it,
    and the copies judged phish, malware or spam at delivery or by ZAP afterwards. Sending
    phish or malware makes the user malicious, spam or a volume anomaly suspicious."""
    user = user.lower()
    before = start - timedelta(days=baseline_days)
    sent, baseline, anywhere = pl.collect_all([
        _sent(lake, user, start, end).with_columns(lower("RecipientEmailAddress").alias("rcpt")),
        _sent(lake, user, before, start).select(pl.len()),
        lake.scan("EmailEvents", before, start, columns=["Timestamp"]).head(1),
    ])
    ids = sent["NetworkMessageId"].unique().implode()
    zapped = (lake.scan("EmailPostDeliveryEvents", start, None, columns=["NetworkMessageId", "RecipientEmailAddress",
                                                                         "ActionType", "ThreatTypes"])
              .filter(pl.col("NetworkMessageId").is_in(ids) & pl.col("ActionType").is_in(ZAP_TYPES))
              .select("NetworkMessageId", lower("RecipientEmailAddress").alias("rcpt"), pl.col("ThreatTypes").alias("zap"))
              .unique(["NetworkMessageId", "rcpt"]).collect())
    judged = (sent.join(zapped, on=["NetworkMessageId", "rcpt"], how="left")
              .with_columns(pl.concat_str(pl.col("ThreatTypes").fill_null(""), pl.col("zap").fill_null(""),
                                          separator=",").alias("threats")))
    count = lambda t: judged.filter(has_threat("threats", (t,))).height  # noqa: E731
    phish, malware, spam = count("Phish"), count("Malware"), count("Spam")
    bad = judged.filter(has_threat("threats", MALICIOUS))
    threat_copies = tuple(sorted(set(bad.select("NetworkMessageId", "rcpt").iter_rows())))
    known = anywhere.height > 0
    daily = baseline.item() / baseline_days
    days = max((end - start) / timedelta(days=1), 1.0)
    volume = known and sent.height >= MIN_VOLUME and sent.height > VOLUME_FACTOR * max(daily, 1.0) * days
    evidence = [_item(EntityKind.EMAIL, f"{n}|{r}", Verdict.MALICIOUS, "outbound_anomaly", f"sent by {user} with a threat verdict")
                for n, r in threat_copies]
    verdict = Verdict.MALICIOUS if phish or malware else Verdict.SUSPICIOUS if spam or volume else None
    if verdict is not None:
        detail = (f"sent {sent.height} copies ({daily:.1f} a day before); {phish} phish, {malware} malware, {spam} spam")
        evidence.insert(0, _item(EntityKind.USER, user, verdict, "outbound_anomaly", detail, "sender"))
    return OutboundAnomaly(user, sent.height, daily, known, volume, phish, malware, spam, threat_copies, tuple(evidence))


# --------------------------------------------------------------------------- 5. sign-ins


@dataclass(frozen=True)
class SignInSource:
    """The user's sign-ins in the window from one IP."""

    ip: str
    country: str
    first: datetime
    attempts: int
    failures: int
    successes: int
    max_risk: int
    at_risk: bool  # RiskState at risk or confirmed compromised
    new_ip: bool
    new_country: bool
    failed_then_success: bool
    verdict: Verdict

    @property
    def signs(self) -> tuple[str, ...]:
        out = []
        if self.new_country:
            out.append(f"country {self.country or '?'} not seen for the user")
        if self.max_risk >= RISK_MEDIUM or self.at_risk:
            out.append(f"risk {self.max_risk}" + (" (at risk)" if self.at_risk else ""))
        if self.failed_then_success:
            out.append(f"{self.failures} failure(s) then success")
        return tuple(out)


@dataclass(frozen=True)
class SignInAnomalies:
    user: str
    signins: int
    sources: tuple[SignInSource, ...]  # every IP of the window; anomalous ones have a verdict other than no threats
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple[Proposal, ...] = ()  # RESET_PASSWORD / DISABLE_USER come from compromise_verdict

    @property
    def anomalous(self) -> tuple[SignInSource, ...]:
        return tuple(s for s in self.sources if s.verdict is not Verdict.NO_THREATS_FOUND)

    @property
    def summary(self) -> str:
        bad = ", ".join(f"{s.ip} ({'; '.join(s.signs)})" for s in self.anomalous)
        return f"{self.signins} sign-in(s) of {self.user} from {len(self.sources)} IP(s)" + (
            f"; anomalous: {bad}" if bad else "; none anomalous")


def _source_verdict(new_country: bool, risk: int, at_risk: bool, failed_then_success: bool, successes: int) -> Verdict:
    if successes and (risk >= RISK_HIGH or at_risk or (new_country and (failed_then_success or risk >= RISK_MEDIUM))):
        return Verdict.MALICIOUS
    if new_country or risk >= RISK_MEDIUM or at_risk:
        return Verdict.SUSPICIOUS
    return Verdict.NO_THREATS_FOUND


def sign_in_anomalies(lake: Lake, user: str, start: datetime, end: datetime,
                      baseline_days: int = BASELINE_DAYS) -> SignInAnomalies:
    """*user*'s sign-ins (AADSignInEventsBeta) in the window, per IP: a country not seen in the
    baseline's successful sign-ins nor the directory's, medium or high risk, failures then a
    success. A successful sign-in at high risk, or from a new country after failures or at
    medium risk, makes the IP malicious; a new country or risk alone suspicious. A new IP in a
    known country is only noted (people sign in from home)."""
    user = user.lower()
    ctx = _context(lake, end)
    home = ctx.directory().filter((pl.col("upn") == user) | (pl.col("mail") == user))["Country"].drop_nulls().to_list()
    scan = lambda a, b: (lake.scan("AADSignInEventsBeta", a, b, columns=SIGNIN_COLUMNS)  # noqa: E731
                         .filter(lower("AccountUpn") == user))
    window, baseline = pl.collect_all([scan(start, end).sort("Timestamp"),
                                       scan(start - timedelta(days=baseline_days), start).filter(pl.col("ErrorCode") == 0)])
    known_countries = set(home) | set(baseline["Country"].drop_nulls())
    known_ips = set(baseline["IPAddress"].drop_nulls())
    sources, evidence = [], []
    for (ip,), rows in window.with_columns(pl.col("IPAddress").fill_null("")).group_by("IPAddress", maintain_order=True):
        ok = rows["ErrorCode"] == 0
        failures, successes = int((~ok).sum()), int(ok.sum())
        first_ok = rows.filter(ok)["Timestamp"].min()
        failed_then_success = bool(successes and failures and rows.filter(~ok)["Timestamp"].min() < first_ok)
        country = next(iter(rows["Country"].drop_nulls()), "")
        new_country = bool(country) and country not in known_countries
        risk = int(rows["RiskLevelAggregated"].fill_null(0).max() or 0)
        at_risk = bool(rows["RiskState"].is_in(RISK_STATES).any())
        verdict = _source_verdict(new_country, risk, at_risk, failed_then_success, successes)
        src = SignInSource(ip, country, rows["Timestamp"].min(), rows.height, failures, successes, risk, at_risk,
                           ip not in known_ips, new_country, failed_then_success, verdict)
        sources.append(src)
        if verdict is not Verdict.NO_THREATS_FOUND and ip:
            detail = f"{rows.height} sign-in(s) of {user} from {ip} first at {src.first:%Y-%m-%d %H:%M} UTC: {'; '.join(src.signs)}"
            evidence.append(_item(EntityKind.IP, ip, verdict, "sign_in_anomalies", detail, "attacker"))
    return SignInAnomalies(user, window.height, tuple(sources), tuple(evidence))


# --------------------------------------------------------------------------- 6. the verdict


UserResult = ForwardingRules | InboxRules | MailboxDelegation | OutboundAnomaly | SignInAnomalies | EndpointFindings


@dataclass(frozen=True)
class CompromiseVerdict:
    user: str
    verdict: Verdict
    signals: tuple[str, ...]  # which checks fired
    explanation: str
    evidence: tuple[EvidenceItem, ...]  # the USER entity's verdict
    proposals: tuple[Proposal, ...]  # the analyzers' proposals, plus password reset and disabling when compromised

    @property
    def compromised(self) -> bool:
        return self.verdict is Verdict.MALICIOUS

    @property
    def summary(self) -> str:
        return self.explanation


def _signals(result: UserResult) -> list[str]:
    if isinstance(result, ForwardingRules):
        return ["external forwarding"] if result.external else []
    if isinstance(result, InboxRules):
        return ["suspicious inbox rules"] if result.rules else []
    if isinstance(result, MailboxDelegation):
        return ["mailbox delegation"] if result.delegations else []
    if isinstance(result, OutboundAnomaly):
        return (["sent phish or malware"] if result.phish or result.malware else []) + (
            ["sent spam"] if result.spam else []) + (["outbound volume anomaly"] if result.volume_anomaly else [])
    if isinstance(result, SignInAnomalies):
        return ["anomalous sign-ins"] if result.anomalous else []
    if isinstance(result, EndpointFindings):
        return ["endpoint alert"] if result.alerts else []
    raise TypeError(f"compromise_verdict takes the user analyzers' results, not {type(result).__name__}")


def compromise_verdict(*results: UserResult) -> CompromiseVerdict:
    """The user's verdict from the user analyzers' results: compromised (malicious) when an
    anomalous sign-in comes with a mailbox, sending or endpoint alert signal, or external forwarding with
    sent phish or malware; suspicious on any single signal; else no threats found. A
    compromised user gets RESET_PASSWORD and DISABLE_USER proposed (requests, not actions)."""
    users = {r.user for r in results}
    if len(users) != 1:
        raise ValueError(f"compromise_verdict needs results about one user, got {sorted(users) or 'none'}")
    user = users.pop()
    signals = list(dict.fromkeys(s for r in results for s in _signals(r)))
    mailbox_or_sending = [s for s in signals if s != "anomalous sign-ins"]
    compromised = ("anomalous sign-ins" in signals and mailbox_or_sending) or (
        "external forwarding" in signals and "sent phish or malware" in signals)
    verdict = Verdict.MALICIOUS if compromised else Verdict.SUSPICIOUS if signals else Verdict.NO_THREATS_FOUND
    explanation = (f"{user} is compromised: {', '.join(signals)}" if compromised else
                   f"{user} is suspicious: {', '.join(signals)}" if signals else f"no compromise signals for {user}")
    proposals = [p for r in results for p in r.proposals]
    if compromised:
        reason = f"compromised user ({', '.join(signals)})"
        proposals += [(ActionType.RESET_PASSWORD, EntityKind.USER, user, reason),
                      (ActionType.DISABLE_USER, EntityKind.USER, user, reason)]
    evidence = (_item(EntityKind.USER, user, verdict, "compromise_verdict", explanation, "investigated"),)
    return CompromiseVerdict(user, verdict, tuple(signals), explanation, evidence, tuple(dict.fromkeys(proposals)))


__all__ = ["MailboxChange", "mailbox_changes", "ForwardingRule", "ForwardingRules", "forwarding_rules",
           "SuspiciousRule", "InboxRules", "inbox_rules", "Delegation", "MailboxDelegation", "mailbox_delegation",
           "OutboundAnomaly", "outbound_anomaly", "SignInSource", "SignInAnomalies", "sign_in_anomalies",
           "CompromiseVerdict", "compromise_verdict", "Proposal", "UserResult"]
