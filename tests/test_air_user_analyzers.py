"""The user / mailbox analyzers of an automated investigation: on the small generated tenant the
compromised-user story is found (forwarding, phishing burst, attacker sign-ins) and an ordinary
user is left alone; on tiny hand-built lakes each check fires on its case and stays silent on
its near miss."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench import schema
from workbench.air.analyzers_user import (
    compromise_verdict, forwarding_rules, inbox_rules, mailbox_delegation, outbound_anomaly, sign_in_anomalies,
)
from workbench.air.model import ActionType
from workbench.incidents.model import EntityKind, Verdict
from workbench.lake import Lake

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def run_all(lake: Lake, user: str, start: datetime, end: datetime) -> list:
    return [forwarding_rules(lake, user, start, end), inbox_rules(lake, user, start, end),
            mailbox_delegation(lake, user, start, end), outbound_anomaly(lake, user, start, end),
            sign_in_anomalies(lake, user, start, end)]


def actions(proposals) -> set[ActionType]:
    return {p[0] for p in proposals}


# ============================================================================ the generated tenant


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict:
    return {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}


WINDOW = (datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))


def test_the_compromised_user_story_is_found(lake, stories):
    story = stories["compromised-user"]
    user = story["user"]
    fwd, rules, deleg, out, signins = results = run_all(lake, user, *WINDOW)

    assert [r.external for r in fwd.rules] == [(story["forwarding_address"],)]
    assert fwd.rules[0].change.ip == story["attacker_ip"]
    assert {(e.entity.kind, e.entity.value, e.verdict) for e in fwd.evidence} == {
        (EntityKind.MAILBOX, story["forwarding_address"], Verdict.MALICIOUS)}
    assert actions(fwd.proposals) == {ActionType.REMOVE_FORWARDING_RULE}
    assert not rules.rules and not deleg.delegations  # the forwarding rule is left to forwarding_rules

    burst = {(m["NetworkMessageId"], m["RecipientEmailAddress"].lower()) for m in story["burst_messages"]}
    assert out.anomaly and out.phish >= len(burst)
    assert burst <= set(out.threat_copies)
    assert any(e.entity.kind is EntityKind.USER and e.verdict is Verdict.MALICIOUS for e in out.evidence)

    attacker = [s for s in signins.anomalous if s.ip == story["attacker_ip"]]
    assert attacker and attacker[0].new_country and attacker[0].failed_then_success
    assert {e.entity.value: e.verdict for e in signins.evidence} == {story["attacker_ip"]: Verdict.MALICIOUS}

    verdict = compromise_verdict(*results)
    assert verdict.compromised and verdict.verdict is Verdict.MALICIOUS
    assert {"external forwarding", "sent phish or malware", "anomalous sign-ins"} <= set(verdict.signals)
    assert actions(verdict.proposals) == {ActionType.REMOVE_FORWARDING_RULE, ActionType.RESET_PASSWORD,
                                          ActionType.DISABLE_USER}
    assert verdict.evidence[0].entity.key == f"user:{user}" and "compromised" in verdict.summary
    for r in results:
        assert r.summary and "\n" not in r.summary
        assert all(e.analyzer for e in r.evidence)


def test_an_ordinary_user_has_no_findings(lake, stories):
    told = json.dumps(list(stories.values())).lower()  # a user named anywhere in a story is not ordinary
    directory = lake.scan("IdentityInfo", columns=["AccountUpn"]).collect()["AccountUpn"].str.to_lowercase()
    ordinary = sorted(u for u in set(directory) if u not in told)[0]
    results = run_all(lake, ordinary, *WINDOW)
    assert all(not r.proposals and not r.evidence for r in results), [r.summary for r in results]
    verdict = compromise_verdict(*results)
    assert verdict.verdict is Verdict.NO_THREATS_FOUND and not verdict.proposals and not verdict.signals


# ============================================================================ hand-built lakes


class Tiny:
    """A few rows of a ``contoso.com`` tenant written through the lake's append API."""

    def __init__(self, root: Path) -> None:
        self.lake = Lake(root / "lake")
        self.rows: dict[str, list[dict]] = defaultdict(list)
        for upn, country in ((ALICE, "US"), (BOB, "US")):
            self.add("IdentityInfo", Timestamp=T0 - 30 * D, AccountObjectId=self.oid(upn), AccountUpn=upn,
                     EmailAddress=upn, Country=country)

    @staticmethod
    def oid(upn: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, upn))

    def add(self, table: str, **row) -> None:
        row.setdefault("ReportId", f"r{sum(map(len, self.rows.values())):05d}")
        self.rows[table].append(row)

    def cmdlet(self, ts: datetime, actor: str, operation: str, params: dict[str, str], *, ip: str = "198.51.100.10",
               category: str | None = None, object_id: str | None = None) -> None:
        raw = {"Operation": operation, "UserId": actor, "Parameters": [{"Name": k, "Value": v} for k, v in params.items()]}
        self.add("CloudAppEvents", Timestamp=ts, ActionType=operation, AccountObjectId=self.oid(actor), IPAddress=ip,
                 IPCategory=category, ObjectId=object_id, RawEventData=json.dumps(raw))

    def signin(self, ts: datetime, user: str, *, ip: str = "198.51.100.10", country: str = "US", error: int = 0,
               risk: int = 0) -> None:
        self.add("AADSignInEventsBeta", Timestamp=ts, AccountUpn=user, IPAddress=ip, Country=country, ErrorCode=error,
                 RiskLevelAggregated=risk, RiskState=0)

    def sent(self, ts: datetime, sender: str, rcpts: list[str], *, threat: str | None = None) -> str:
        nmid = str(uuid.uuid4())
        for r in rcpts:
            self.add("EmailEvents", Timestamp=ts, NetworkMessageId=nmid, SenderFromAddress=sender,
                     SenderFromDomain=sender.split("@")[1], RecipientEmailAddress=r, EmailDirection="Intra-org",
                     DeliveryAction="Delivered", ThreatTypes=threat)
        return nmid

    def write(self) -> Lake:
        for table, rows in self.rows.items():
            self.lake.append(table, schema.table(table).from_rows(rows))
        self.rows.clear()
        return self.lake


@pytest.fixture
def tiny(tmp_path) -> Tiny:
    return Tiny(tmp_path)


def test_forwarding_outside_is_flagged_and_internal_forwarding_is_not(tiny):
    tiny.cmdlet(T0, ALICE, "Set-Mailbox", {"Identity": ALICE, "ForwardingSmtpAddress": "smtp:drop@mailbox.example"})
    tiny.cmdlet(T0 + H, ALICE, "New-InboxRule", {"Name": "To Bob", "ForwardTo": BOB})  # near miss: a colleague
    tiny.cmdlet(T0 + H, BOB, "New-InboxRule", {"Name": "out", "ForwardTo": "bob@home.example"})  # another mailbox
    lake = tiny.write()
    result = forwarding_rules(lake, ALICE, T0 - D, T0 + D)
    assert len(result.rules) == 2 and len(result.external) == 1
    assert result.proposals == ((ActionType.REMOVE_FORWARDING_RULE, EntityKind.MAILBOX, f"{ALICE}\\forwarding",
                                 result.proposals[0][3]),)
    assert [(e.entity.value, e.verdict) for e in result.evidence] == [("drop@mailbox.example", Verdict.SUSPICIOUS)]
    assert "drop@mailbox.example" in result.summary
    inside = forwarding_rules(lake, ALICE, T0 + 30 * 60 * timedelta(seconds=1), T0 + D)  # only the internal rule
    assert inside.rules and not inside.evidence and not inside.proposals


def test_hiding_inbox_rules_are_flagged_and_filing_rules_are_not(tiny):
    tiny.cmdlet(T0, ALICE, "New-InboxRule", {"Name": "..", "SubjectOrBodyContainsWords": "invoice;payment",
                                             "MoveToFolder": "RSS Feeds", "MarkAsRead": "True"}, category="Hosting")
    tiny.cmdlet(T0 + H, ALICE, "New-InboxRule", {"Name": "x", "SubjectContainsWords": "password", "DeleteMessage": "True"})
    # near misses: filing newsletters away; deleting newsletters (one sign only); another user's rule
    tiny.cmdlet(T0 + H, ALICE, "New-InboxRule", {"Name": "Newsletters", "MoveToFolder": "Newsletters",
                                                 "FromAddressContainsWords": "newsletter"})
    tiny.cmdlet(T0 + H, ALICE, "New-InboxRule", {"Name": "Noise", "FromAddressContainsWords": "noreply",
                                                 "DeleteMessage": "True"})
    tiny.cmdlet(T0 + H, BOB, "New-InboxRule", {"Name": "", "SubjectContainsWords": "invoice", "DeleteMessage": "True"})
    lake = tiny.write()
    result = inbox_rules(lake, ALICE, T0 - D, T0 + D)
    assert result.examined == 4
    assert [(r.target, r.verdict) for r in result.rules] == [(f"{ALICE}\\..", Verdict.MALICIOUS),
                                                             (f"{ALICE}\\x", Verdict.SUSPICIOUS)]
    assert actions(result.proposals) == {ActionType.REMOVE_INBOX_RULE} and len(result.proposals) == 2
    assert "filters on invoice, payment" in result.rules[0].signs
    quiet = inbox_rules(lake, "carol@contoso.com", T0 - D, T0 + D)
    assert not quiet.rules and not quiet.proposals


def test_delegation_is_flagged_and_read_permission_is_not(tiny):
    tiny.cmdlet(T0, "admin@contoso.com", "Add-MailboxPermission",
                {"Identity": ALICE, "User": BOB, "AccessRights": "FullAccess", "InheritanceType": "All"})
    tiny.cmdlet(T0 + H, ALICE, "Add-RecipientPermission", {"Identity": ALICE, "Trustee": "eve@evil.example",
                                                           "AccessRights": "SendAs"})
    # near misses: read permission only; a grant on another mailbox
    tiny.cmdlet(T0 + H, "admin@contoso.com", "Add-MailboxPermission",
                {"Identity": ALICE, "User": BOB, "AccessRights": "ReadPermission"})
    tiny.cmdlet(T0 + H, "admin@contoso.com", "Add-MailboxPermission",
                {"Identity": BOB, "User": ALICE, "AccessRights": "FullAccess"})
    lake = tiny.write()
    result = mailbox_delegation(lake, ALICE, T0 - D, T0 + D)
    assert [(d.trustee, d.rights, d.external) for d in result.delegations] == [
        (BOB, ("FullAccess",), False), ("eve@evil.example", ("SendAs",), True)]
    assert [(e.entity.kind, e.entity.value, e.verdict) for e in result.evidence] == [
        (EntityKind.USER, BOB, Verdict.SUSPICIOUS), (EntityKind.MAILBOX, "eve@evil.example", Verdict.MALICIOUS)]
    assert [p[:3] for p in result.proposals] == [
        (ActionType.REMOVE_DELEGATION, EntityKind.MAILBOX, f"{ALICE}\\{BOB}"),
        (ActionType.REMOVE_DELEGATION, EntityKind.MAILBOX, f"{ALICE}\\eve@evil.example")]
    assert not mailbox_delegation(lake, ALICE, T0 + 2 * H, T0 + D).delegations  # outside the window


def test_outbound_volume_against_the_baseline(tiny):
    colleagues = [f"u{i}@contoso.com" for i in range(40)]
    for day in range(1, 11):  # about 4 copies a day before
        tiny.sent(T0 - day * D, ALICE, colleagues[:4])
        tiny.sent(T0 - day * D, BOB, colleagues[:4])
    tiny.sent(T0, ALICE, colleagues)                 # 40 copies in a day: a spike
    tiny.sent(T0, BOB, colleagues[:6])               # near miss: a little more than usual
    spam = tiny.sent(T0 + H, BOB, colleagues[:2], threat="Spam")
    lake = tiny.write()
    alice = outbound_anomaly(lake, ALICE, T0, T0 + D)
    assert alice.volume_anomaly and alice.copies == 40 and alice.baseline_daily == pytest.approx(4.0)
    assert [(e.entity.kind, e.verdict) for e in alice.evidence] == [(EntityKind.USER, Verdict.SUSPICIOUS)]
    bob = outbound_anomaly(lake, BOB, T0, T0 + D)
    assert not bob.volume_anomaly and bob.spam == 2 and not bob.threat_copies
    assert bob.anomaly and spam  # spam is suspicious, not malicious
    assert bob.evidence[0].verdict is Verdict.SUSPICIOUS
    no_history = outbound_anomaly(lake, ALICE, T0 - 10 * D - H, T0 - 9 * D)  # nothing before: no volume judgement
    assert not no_history.baseline_known and not no_history.volume_anomaly


def test_outbound_phish_found_by_zap_makes_the_user_malicious(tiny):
    nmid = tiny.sent(T0, ALICE, [BOB, "carol@contoso.com"])
    tiny.add("EmailPostDeliveryEvents", Timestamp=T0 + 2 * H, NetworkMessageId=nmid, ActionType="Phish ZAP",
             RecipientEmailAddress=BOB, ThreatTypes="Phish", Action="MoveToQuarantine")
    lake = tiny.write()
    result = outbound_anomaly(lake, ALICE, T0, T0 + D)
    assert result.phish == 1 and result.threat_copies == ((nmid, BOB),)
    assert result.evidence[0].entity.key == f"user:{ALICE}" and result.evidence[0].verdict is Verdict.MALICIOUS


def test_sign_in_anomalies_and_the_combined_verdict(tiny):
    for day in range(1, 6):
        tiny.signin(T0 - day * D, ALICE, ip="198.51.100.10")
    tiny.signin(T0, ALICE, ip="203.0.113.9")                                  # home IP, home country: noted only
    tiny.signin(T0, ALICE, ip="203.0.113.9", error=50126)
    tiny.signin(T0 + H, ALICE, ip="203.0.113.9")                              # ordinary failure then success
    tiny.signin(T0 + 2 * H, ALICE, ip="45.9.20.1", country="NG", error=50126)
    tiny.signin(T0 + 2 * H + 60 * timedelta(seconds=1), ALICE, ip="45.9.20.1", country="NG")
    tiny.signin(T0 + 3 * H, ALICE, ip="192.0.2.77", country="US", risk=50)    # risky, known country: suspicious
    tiny.cmdlet(T0 + 4 * H, ALICE, "New-InboxRule", {"Name": "x", "ForwardTo": "out@drop.example"})
    lake = tiny.write()
    signins = sign_in_anomalies(lake, ALICE, T0, T0 + D)
    assert {s.ip: s.verdict for s in signins.sources} == {
        "203.0.113.9": Verdict.NO_THREATS_FOUND, "45.9.20.1": Verdict.MALICIOUS, "192.0.2.77": Verdict.SUSPICIOUS}
    assert not signins.proposals
    alone = compromise_verdict(signins)
    assert alone.verdict is Verdict.SUSPICIOUS and not alone.proposals  # sign-ins alone: not compromised
    verdict = compromise_verdict(signins, forwarding_rules(lake, ALICE, T0, T0 + D), outbound_anomaly(lake, ALICE, T0, T0 + D))
    assert verdict.compromised and verdict.signals == ("anomalous sign-ins", "external forwarding")
    assert actions(verdict.proposals) == {ActionType.REMOVE_FORWARDING_RULE, ActionType.RESET_PASSWORD,
                                          ActionType.DISABLE_USER}
    with pytest.raises(ValueError, match="one user"):
        compromise_verdict(signins, sign_in_anomalies(lake, BOB, T0, T0 + D))
