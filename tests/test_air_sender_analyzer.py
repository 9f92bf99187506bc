"""The sender IP and domain reputation analyzer: on tiny hand-built lakes (one rule each) and on
the small generated tenant against its scenarios.json."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench import schema
from workbench.air.analyzers_sender import auth_failed, sender_reputation
from workbench.air.email_investigation import org_domains, tenant_indicators
from workbench.air.model import ActionType
from workbench.incidents.model import EntityKind, Verdict
from workbench.intel.feeds import Indicator
from workbench.lake import Lake

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PASS = '{"SPF":"pass","DKIM":"pass","DMARC":"pass","CompAuth":"pass"}'
FAIL = '{"SPF":"fail","DKIM":"none","DMARC":"fail","CompAuth":"fail"}'
ORG = ("contoso.com",)


class Mail:
    """A tiny lake: inbound copies from chosen senders."""

    def __init__(self, root) -> None:
        self.lake, self.rows, self.zaps = Lake(root / "lake"), [], []

    def send(self, ts: datetime, sender: str, ip: str, *, rcpts: int = 1, threat: str | None = None,
             auth: str = PASS, name: str = "Someone", zap: bool = False) -> str:
        nmid = str(uuid.uuid4())
        for k in range(rcpts):
            self.rows.append(dict(Timestamp=ts, NetworkMessageId=nmid, SenderFromAddress=sender, SenderDisplayName=name,
                                  SenderFromDomain=sender.split("@")[1], SenderMailFromDomain=sender.split("@")[1],
                                  SenderIPv4=ip, RecipientEmailAddress=f"user{k}@contoso.com", EmailDirection="Inbound",
                                  DeliveryAction="Blocked" if threat else "Delivered", ThreatTypes=threat,
                                  AuthenticationDetails=auth, Subject="Hello there friend", ReportId=f"r-{nmid}-{k}"))
            if zap:
                self.zaps.append(dict(Timestamp=ts + timedelta(hours=1), NetworkMessageId=nmid, ThreatTypes="Phish",
                                      ActionType="Phish ZAP", RecipientEmailAddress=f"user{k}@contoso.com",
                                      DeliveryLocation="Quarantine", ReportId=f"z-{nmid}-{k}"))
        return nmid

    def daily(self, sender: str, ip: str, days: int, **kw) -> None:
        for d in range(days, 0, -1):
            self.send(T0 - timedelta(days=d), sender, ip, **kw)

    def judge(self, messages: list[str], **kw):
        self.lake.append("EmailEvents", schema.table("EmailEvents").from_rows(self.rows))
        if self.zaps:
            self.lake.append("EmailPostDeliveryEvents", schema.table("EmailPostDeliveryEvents").from_rows(self.zaps))
        self.rows, self.zaps = [], []
        kw.setdefault("protected", ["Ana Ruiz"])
        return sender_reputation(self.lake, messages, T0 - timedelta(days=30), T0 + timedelta(days=1), org_domains=ORG, **kw)


@pytest.fixture
def mail(tmp_path) -> Mail:
    return Mail(tmp_path)


def facts(result, value):
    return next(s for s in result.senders if s.value == value)


def test_auth_failures_are_read_from_authentication_details():
    assert auth_failed(FAIL) and auth_failed('{"SPF":"softfail"}') and not auth_failed(PASS) and not auth_failed(None)


def test_a_new_lookalike_of_the_organisation_is_malicious_and_blocked(mail):
    nmid = mail.send(T0, "billing@contoso-payments.com", "203.0.113.9", rcpts=3)
    r = mail.judge([nmid])
    domain, ip = facts(r, "contoso-payments.com"), facts(r, "203.0.113.9")
    assert domain.verdict is Verdict.MALICIOUS and "contoso.com" in domain.lookalike
    assert ip.verdict is Verdict.MALICIOUS and "only for the malicious domain" in ip.reason
    assert {(a, t) for a, _, t, _ in r.proposals} == {(ActionType.BLOCK_DOMAIN, "contoso-payments.com"),
                                                      (ActionType.BLOCK_SENDER, "203.0.113.9")}
    assert {e.entity.kind for e in r.evidence} == {EntityKind.DOMAIN, EntityKind.IP}
    assert all(e.analyzer == "sender_reputation" and e.details for e in r.evidence)


def test_a_compromised_correspondent_is_only_suspicious(mail):
    mail.daily("ap@fabrikam.com", "198.51.100.7", 5)  # months of good mail, here five days
    bad = [mail.send(T0 + timedelta(minutes=k), "ap@fabrikam.com", "198.51.100.7", threat="Phish") for k in range(5)]
    r = mail.judge(bad)
    domain = facts(r, "fabrikam.com")
    assert domain.established and domain.threat_copies == 5
    assert domain.verdict is Verdict.SUSPICIOUS and "compromised" in domain.reason
    assert facts(r, "198.51.100.7").verdict is Verdict.SUSPICIOUS
    assert r.proposals == ()


def test_good_mail_before_the_first_threat_keeps_a_new_sender_from_being_blocked(mail):
    good = mail.send(T0 - timedelta(hours=3), "office@smallshop.com", "198.51.100.8")
    bad = [mail.send(T0 + timedelta(minutes=k), "office@smallshop.com", "198.51.100.8", threat="Phish") for k in range(4)]
    r = mail.judge([good, *bad])
    assert facts(r, "smallshop.com").verdict is Verdict.SUSPICIOUS and r.proposals == ()


def test_nothing_but_threats_from_a_new_domain_is_malicious_zap_included(mail):
    ids = [mail.send(T0 + timedelta(minutes=k), "x@invoices-now.top", "192.0.2.44", threat="Malware") for k in range(2)]
    ids.append(mail.send(T0 + timedelta(minutes=5), "x@invoices-now.top", "192.0.2.44", zap=True))  # removed after delivery
    r = mail.judge(ids)
    assert facts(r, "invoices-now.top").threat_copies == 3
    assert facts(r, "invoices-now.top").verdict is Verdict.MALICIOUS
    assert (ActionType.BLOCK_DOMAIN, EntityKind.DOMAIN, "invoices-now.top") in {p[:3] for p in r.proposals}


def test_too_few_threats_are_not_enough(mail):
    ids = [mail.send(T0 + timedelta(minutes=k), "x@once.example", "192.0.2.45", threat="Phish") for k in range(2)]
    r = mail.judge(ids)
    assert facts(r, "once.example").verdict is Verdict.SUSPICIOUS and r.proposals == ()


def test_a_protected_persons_name_from_a_new_domain_is_malicious_but_from_free_mail_only_suspicious(mail):
    a = mail.send(T0, "ana@ruiz-holdings.net", "192.0.2.50", name="Ana Ruiz (CEO)")
    b = mail.send(T0, "ana.ruiz.office@gmail.com", "209.85.220.41", name="Ana Ruiz", threat="Phish")
    r = mail.judge([a, b])
    assert facts(r, "ruiz-holdings.net").verdict is Verdict.MALICIOUS and facts(r, "ruiz-holdings.net").impersonation == 1
    gmail = facts(r, "gmail.com")
    assert gmail.shared and gmail.verdict is Verdict.SUSPICIOUS
    assert facts(r, "209.85.220.41").shared and facts(r, "209.85.220.41").verdict is not Verdict.MALICIOUS
    assert {t for *_, t, _ in r.proposals} == {"ruiz-holdings.net", "192.0.2.50"}


def test_intelligence_blocks_a_new_domain_not_an_established_one(mail):
    mail.daily("news@oldpartner.com", "198.51.100.20", 4)
    a = mail.send(T0, "news@oldpartner.com", "198.51.100.20")
    b = mail.send(T0, "hi@fresh-domain.info", "192.0.2.60")
    intel = [Indicator("domain", "oldpartner.com", "feed.json"), Indicator("domain", "fresh-domain.info", "feed.json"),
             Indicator("ip", "192.0.2.60", "feed.json")]
    r = mail.judge([a, b], indicators=intel)
    assert facts(r, "oldpartner.com").verdict is Verdict.SUSPICIOUS and facts(r, "oldpartner.com").intel == "feed.json"
    assert facts(r, "fresh-domain.info").verdict is Verdict.MALICIOUS and facts(r, "192.0.2.60").verdict is Verdict.MALICIOUS
    assert "oldpartner.com" not in {p[2] for p in r.proposals}


def test_the_organisations_domain_and_clean_history(mail):
    mail.daily("orders@tailwind.com", "198.51.100.30", 3)
    a = mail.send(T0, "orders@tailwind.com", "198.51.100.30")
    b = mail.send(T0, "it@contoso.com", "10.0.0.5", threat="Phish")
    c = mail.send(T0, "hello@brand-new.org", "192.0.2.70")
    r = mail.judge([a, b, c])
    assert facts(r, "tailwind.com").verdict is Verdict.NO_THREATS_FOUND
    assert facts(r, "contoso.com").own and facts(r, "contoso.com").verdict is Verdict.UNKNOWN
    assert facts(r, "10.0.0.5").own and facts(r, "10.0.0.5").verdict is Verdict.UNKNOWN
    assert facts(r, "brand-new.org").verdict is Verdict.UNKNOWN  # never seen before, nothing known
    assert r.proposals == ()


def test_spoofed_mail_makes_the_domain_suspicious_not_blocked(mail):
    ids = [mail.send(T0 + timedelta(minutes=k), "ceo@bigbank.example", "192.0.2.80", auth=FAIL) for k in range(3)]
    r = mail.judge(ids)
    assert facts(r, "bigbank.example").verdict is Verdict.SUSPICIOUS and "authentication" in facts(r, "bigbank.example").reason
    assert r.proposals == ()


def test_an_ip_sending_for_many_domains_is_shared_infrastructure(mail):
    ids = [mail.send(T0 + timedelta(minutes=k), f"x@spam{k}.example", "192.0.2.90", threat="Phish") for k in range(6)]
    r = mail.judge(ids)
    ip = facts(r, "192.0.2.90")
    assert ip.shared and ip.verdict is Verdict.SUSPICIOUS
    assert "192.0.2.90" not in {p[2] for p in r.proposals}


# ----------------------------------------------------------------- the small generated tenant


@pytest.fixture(scope="module")
def tenant(small_tenant):
    lake = Lake.for_tenant(small_tenant)
    stories = {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}
    return lake, stories, org_domains(lake), tenant_indicators(lake)


def judge_story(tenant, records):
    lake, _, org, intel = tenant
    ids = sorted({m["NetworkMessageId"] for m in records})
    return sender_reputation(lake, ids, None, None, org_domains=org, indicators=intel)


def senders_of(lake: Lake, ids: set[str]) -> set[str]:
    rows = lake.scan("EmailEvents", columns=["NetworkMessageId", "SenderFromDomain"]).collect()
    return set(rows.filter(pl.col("NetworkMessageId").is_in(sorted(ids)))["SenderFromDomain"].str.to_lowercase())


def test_campaign_senders_attacker_domains_blocked_the_compromised_supplier_not(tenant):
    lake, stories, _, _ = tenant
    campaign = stories["credential-phish-campaign"]["messages"]
    r = judge_story(tenant, campaign)
    story_ids = {m["NetworkMessageId"] for m in campaign}
    zapped = set(lake.scan("EmailPostDeliveryEvents", columns=["NetworkMessageId"]).collect()["NetworkMessageId"])
    mail = (lake.scan("EmailEvents", columns=["NetworkMessageId", "SenderFromDomain", "ThreatTypes"]).collect()
            .filter(pl.col("ThreatTypes").is_null() & ~pl.col("NetworkMessageId").is_in(sorted(zapped | story_ids))))
    seen = {"supplier": 0, "attacker": 0}
    for domain in senders_of(lake, story_ids):
        if mail.filter(pl.col("SenderFromDomain").str.to_lowercase() == domain).height:
            # it also sends good mail outside the attack: a compromised correspondent
            seen["supplier"] += 1
            assert facts(r, domain).verdict is not Verdict.MALICIOUS, facts(r, domain)
            assert domain not in {p[2] for p in r.proposals}
        else:  # the attacker's own domain
            seen["attacker"] += 1
            assert facts(r, domain).verdict is Verdict.MALICIOUS, facts(r, domain)
    assert seen["supplier"] and seen["attacker"], seen  # the story has both kinds of sender


def test_bec_senders(tenant):
    lake, stories, _, _ = tenant
    bec = stories["bec-impersonation"]
    r = judge_story(tenant, bec["messages"])
    for sender in bec["senders"]:
        domain = sender.split("@")[1]
        f = facts(r, domain)
        assert f.impersonation > 0
        assert f.verdict is (Verdict.SUSPICIOUS if f.shared else Verdict.MALICIOUS), f
    assert all(not f.shared for f in r.senders if f.value in {p[2] for p in r.proposals})


def test_reported_clean_mail_and_simulations_have_no_bad_senders(tenant):
    _, stories, _, _ = tenant
    for key in ("clean_reports", "simulation_reports"):
        r = judge_story(tenant, stories["user-reports"][key])
        assert r.senders and all(f.verdict in (Verdict.NO_THREATS_FOUND, Verdict.UNKNOWN) for f in r.senders), key
        assert r.proposals == ()
