"""Alert policies: each fires on a case built for it and stays silent on its near miss (tiny
hand-built lakes); every planted story of the small generated tenant raises an alert naming
its ground truth; benign reports stay low; evaluation is incremental and idempotent; admin
settings apply; every alert's Explorer query lists exactly its messages."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workbench import schema
from workbench.detect.policies import (
    DEFINITIONS, EVALUATORS, PolicySettings, evaluate, evaluate_all, get_policy, load_policies,
    manual_investigation_draft, user_compromise_investigation_draft,
)
from workbench.detect.policies.base import shared_domain
from workbench.detect.policies.mail import zap_kind
from workbench.errors import InputError
from workbench.explorer.compile import compile_query
from workbench.explorer.query import Query
from workbench.incidents.model import AlertDraft, EntityKind, Severity
from workbench.lake import Lake

from scenario_keys import emails_of, story_keys

ORG = "contoso.com"
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # a Monday
H, M = timedelta(hours=1), timedelta(minutes=1)
URL_REP = '{"Phish":["URL malicious reputation"]}'
LAKE_POLICIES = [p.id for p in load_policies() if p.trigger == "lake"]


# ============================================================================ helpers


def keys(drafts) -> set[str]:
    return {d.dedup_key for d in drafts}


def entity_keys(draft: AlertDraft) -> set[str]:
    return {e.key for e in draft.entities}


def run(lake: Lake, policy: str, **kw) -> list[AlertDraft]:
    return list(evaluate(lake, policy, since=kw.pop("since", None), **kw).drafts)


def listed(lake: Lake, draft: AlertDraft) -> int:
    """Rows the draft's Explorer query lists (compiled as the Explorer does)."""
    q = Query.from_json(draft.explorer_query)
    column = "SHA256" if q.view == "content_malware" else "ReportId"
    return compile_query(lake, q, columns=[column])[0].collect().height


class Lab:
    """A tiny tenant written row by row: ``contoso.com`` users, mail, clicks, sign-ins..."""

    def __init__(self, root: Path) -> None:
        self.lake = Lake(root / "lake")
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.n = 0

    def rid(self) -> str:
        self.n += 1
        return f"r{self.n:05d}"

    def add(self, table: str, **row) -> dict:
        row.setdefault("ReportId", self.rid())
        self.rows[table].append(row)
        return row

    def user(self, upn: str, given: str, surname: str, *, country: str = "US", tags=(), title: str = "Analyst",
             device: str | None = None) -> str:
        oid = str(uuid.uuid5(uuid.NAMESPACE_DNS, upn))
        self.add("IdentityInfo", Timestamp=T0 - timedelta(days=30), AccountObjectId=oid, AccountUpn=upn,
                 AccountDisplayName=f"{given} {surname}", GivenName=given, Surname=surname, EmailAddress=upn,
                 Country=country, JobTitle=title, Tags=json.dumps(list(tags)))
        if device:
            self.add("DeviceInfo", Timestamp=T0 - timedelta(days=1), DeviceId=device, DeviceName=f"PC-{surname.upper()}",
                     LoggedOnUsers=json.dumps([{"UserName": upn.split("@")[0], "DomainName": "CONTOSO"}]))
        return upn

    def mail(self, ts: datetime, sender: str, rcpts: list[str], subject: str = "Hello", *, direction: str = "Inbound",
             threat: str | None = None, methods: str | None = None, delivery: str = "Delivered", urls=(), files=(),
             display: str | None = None, ip: str = "203.0.113.7", org_policy: str | None = None) -> str:
        nmid = str(uuid.uuid4())
        for i, r in enumerate(rcpts):
            self.add("EmailEvents", Timestamp=ts + i * timedelta(seconds=1), NetworkMessageId=nmid,
                     SenderFromAddress=sender, SenderFromDomain=sender.split("@")[1], SenderDisplayName=display or sender,
                     SenderIPv4=ip, RecipientEmailAddress=r, RecipientDomain=r.split("@")[1], Subject=subject,
                     EmailDirection=direction, DeliveryAction=delivery,
                     DeliveryLocation="Inbox/folder" if delivery == "Delivered" else "Quarantine",
                     ThreatTypes=threat, DetectionMethods=methods, OrgLevelAction="Allow" if org_policy else None,
                     OrgLevelPolicy=org_policy, UrlCount=len(urls), AttachmentCount=len(files))
            for name, sha in files:
                self.add("EmailAttachmentInfo", Timestamp=ts, NetworkMessageId=nmid, SenderFromAddress=sender,
                         RecipientEmailAddress=r, FileName=name, FileType=name.rsplit(".", 1)[-1], SHA256=sha)
        for u in urls:
            self.add("EmailUrlInfo", Timestamp=ts, NetworkMessageId=nmid, Url=u, UrlDomain=u.split("/")[2], UrlLocation="Body")
        return nmid

    def zap(self, ts: datetime, nmid: str, rcpt: str, threat: str = "Phish", methods: str = URL_REP,
            action_type: str | None = None) -> None:
        self.add("EmailPostDeliveryEvents", Timestamp=ts, NetworkMessageId=nmid, Action="MoveToQuarantine",
                 ActionType=action_type or f"{threat} ZAP", ActionTrigger="SpecialAction", ActionResult="Success",
                 RecipientEmailAddress=rcpt, DeliveryLocation="Quarantine", ThreatTypes=threat, DetectionMethods=methods)

    def click(self, ts: datetime, user: str, url: str, nmid: str | None, *, action: str = "ClickAllowed",
              through: bool = False, threat: str | None = None) -> str:
        rid = self.rid()
        self.add("UrlClickEvents", Timestamp=ts, Url=url, ActionType=action, AccountUpn=user, Workload="Email",
                 NetworkMessageId=nmid, ThreatTypes=threat, IPAddress="198.51.100.10", IsClickedThrough=through, ReportId=rid)
        return rid

    def signin(self, ts: datetime, user: str, *, country: str = "US", risk: int = 0, error: int = 0,
               ip: str = "198.51.100.10") -> None:
        self.add("AADSignInEventsBeta", Timestamp=ts, AccountUpn=user, ErrorCode=error, IPAddress=ip, Country=country,
                 RiskLevelAggregated=risk, RiskState=4 if risk >= 100 else 0, Application="OfficeHome")

    def cloud(self, ts: datetime, user: str, action: str, raw: dict, **extra) -> dict:
        return self.add("CloudAppEvents", Timestamp=ts, ActionType=action, AccountObjectId=str(uuid.uuid5(uuid.NAMESPACE_DNS, user)),
                        RawEventData=json.dumps({"Operation": action, "UserId": user, **raw}), **extra)

    def report(self, ts: datetime, user: str, nmid: str, report_type: str = "Phish") -> None:
        self.cloud(ts, user, "UserSubmission", {"ReportType": report_type, "NetworkMessageId": nmid}, ObjectId=nmid)

    def write(self) -> Lake:
        for table, rows in self.rows.items():
            self.lake.append(table, schema.table(table).from_rows(rows))
        self.rows.clear()
        return self.lake


@pytest.fixture
def lab(tmp_path) -> Lab:
    lab = Lab(tmp_path)
    for upn, given, surname in [("alice@contoso.com", "Alice", "Abbott"), ("bob@contoso.com", "Bob", "Brown"),
                                ("carol@contoso.com", "Carol", "Chen"), ("dave@contoso.com", "Dave", "Diaz"),
                                ("erin@contoso.com", "Erin", "Evans"), ("frank@contoso.com", "Frank", "Fox")]:
        lab.user(upn, given, surname, device=f"dev-{given.lower()}")
    return lab


# ============================================================================ definitions


def test_shipped_definitions_load_with_an_evaluator_each():
    policies = load_policies()
    ids = [p.id for p in policies]
    assert len(ids) == len(set(ids)) >= 15
    assert set(LAKE_POLICIES) == set(EVALUATORS)
    for name in ("A potentially malicious URL click was detected", "An email message is reported by a user as malware or phish",
                 "Email messages containing malicious file removed after delivery",
                 "Email messages containing malware are removed after delivery",
                 "Email messages containing malicious URL removed after delivery",
                 "Email messages containing phish URLs are removed after delivery",
                 "Suspicious email sending patterns are detected", "A user is restricted from sending email",
                 "Admin triggered manual investigation of email", "Admin triggered user compromise investigation"):
        assert any(p.name == name for p in policies), name
    defaults = {p.id: p.severity for p in policies}
    assert defaults["malicious_url_click"] is Severity.HIGH and defaults["user_reported_message"] is Severity.LOW
    assert defaults["suspicious_sending"] is Severity.MEDIUM and defaults["user_restricted_sending"] is Severity.HIGH
    assert all(defaults[z] is Severity.INFORMATIONAL for z in ("zap_malicious_file", "zap_malware", "zap_malicious_url", "zap_phish_url"))
    assert get_policy("risky_signin_after_click").lookback >= timedelta(hours=48)
    assert get_policy("user_compromise_investigation").investigation == "User compromised"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.append(dict(d[0])), "appears twice"),
    (lambda d: d[0].update(severity="critical"), "unknown severity"),
    (lambda d: d[0].update(id="no_such_policy"), "no evaluator"),
    (lambda d: d[0].update(thresholds={"x": -1}), "positive"),
    (lambda d: d[0].update(colour="red"), "unknown field"),
])
def test_bad_definitions_are_refused(tmp_path, edit, message):
    import yaml

    data = yaml.safe_load(DEFINITIONS.read_text())
    edit(data)
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=message):
        load_policies(path)


def test_zap_rows_split_into_exactly_one_policy_each():
    assert zap_kind("Malware ZAP", "Malware", '{"Malware":["File reputation"]}') == "zap_malicious_file"
    assert zap_kind("Malware ZAP", "Malware", '{"Malware":["File detonation","URL detonation"]}') == "zap_malicious_file"
    assert zap_kind("Malware ZAP", "Malware", '{"Malware":["URL detonation reputation"]}') == "zap_malicious_url"
    assert zap_kind("Malware ZAP", "Malware", '{"Malware":["Antimalware protection"]}') == "zap_malware"
    assert zap_kind("Malware ZAP", None, None) == "zap_malware"
    assert zap_kind("Phish ZAP", "Phish", URL_REP) == "zap_phish_url"


# ============================================================================ each policy on a built case


def test_malicious_url_click_fires_when_the_verdict_arrives_and_not_on_near_misses(lab):
    bad = "https://login-3f9a.net/o365/auth/login.php?session=1"
    nmid = lab.mail(T0, "it@supplier.example", ["alice@contoso.com", "bob@contoso.com", "erin@contoso.com"],
                    "Shared document", urls=[bad, "https://www.microsoft.com/privacy"])
    lab.click(T0 + 10 * M, "alice@contoso.com", bad, nmid)                     # clicked, verdict 3 h later
    lab.click(T0 + 12 * M, "erin@contoso.com", "https://www.microsoft.com/privacy", nmid)  # a brand's link in it
    lab.click(T0 + 15 * M, "bob@contoso.com", bad, nmid, action="ClickBlocked", threat="Phish")  # blocked: protected
    for r in ("alice@contoso.com", "bob@contoso.com", "erin@contoso.com"):
        lab.zap(T0 + 3 * H, nmid, r)
    clean = lab.mail(T0, "news@partner.example", ["carol@contoso.com"], urls=["https://partner.example/news"])
    lab.click(T0 + 20 * M, "carol@contoso.com", "https://partner.example/news", clean)  # clean click
    # clicked through the warning page: the click's own verdict
    other = "https://docs-77aa.io/view"
    n2 = lab.mail(T0 + H, "x@docs-77aa.io", ["dave@contoso.com"], urls=[other], threat="Phish", delivery="Junked",
                  methods=URL_REP)
    rid = lab.click(T0 + 2 * H, "dave@contoso.com", other, n2, action="ClickBlocked", threat="Phish")
    lab.add("UrlClickEvents", Timestamp=T0 + 2 * H + 9 * timedelta(seconds=1), Url=other, ActionType="ClickAllowed",
            AccountUpn="dave@contoso.com", Workload="Email", NetworkMessageId=n2, ThreatTypes="Phish", IsClickedThrough=True,
            ReportId=rid)
    # a verdict that comes too late (more than 48 h after the click) does not make an alert
    late = "https://late-1b2c.net/x"
    n3 = lab.mail(T0, "y@late-1b2c.net", ["frank@contoso.com"], urls=[late])
    lab.click(T0 + M, "frank@contoso.com", late, n3)
    lab.zap(T0 + 3 * 24 * H, n3, "frank@contoso.com")
    lake = lab.write()

    drafts = run(lake, "malicious_url_click")
    assert {d.title for d in drafts} == {f"Malicious URL click: alice@contoso.com opened {bad}",
                                         f"Malicious URL click: dave@contoso.com opened {other}"}
    alice = next(d for d in drafts if "alice" in d.title)
    assert {"user:alice@contoso.com", f"url:{bad}", "domain:login-3f9a.net", "cluster:domain:login-3f9a.net",
            f"email:{nmid}|alice@contoso.com"} <= entity_keys(alice)
    assert alice.last_activity == T0 + 3 * H and alice.severity is Severity.HIGH and alice.message_count == 1
    assert listed(lake, alice) == 1
    # before the verdict arrives there is nothing; the verdict brings the alert
    assert not run(lake, "malicious_url_click", until=T0 + 2 * H)
    later = evaluate(lake, "malicious_url_click", since=T0 + 2 * H + 30 * M)
    assert [d.dedup_key for d in later.drafts] == [alice.dedup_key]


def test_user_reports_one_alert_per_message_simulations_informational(lab):
    phish = lab.mail(T0, "hr@payroll-update.net", ["alice@contoso.com", "bob@contoso.com"], "Payroll update",
                     urls=["https://payroll-update.net/login"])
    sim = lab.mail(T0, "delivery@sim-parcel.example", ["carol@contoso.com"], "Parcel",
                   org_policy="Phishing Simulation")
    junk = lab.mail(T0, "deals@shop.example", ["dave@contoso.com"], "Deals")
    lab.report(T0 + 20 * M, "alice@contoso.com", phish)
    lab.report(T0 + 40 * M, "bob@contoso.com", phish)
    lab.report(T0 + 30 * M, "carol@contoso.com", sim)
    lab.report(T0 + 30 * M, "dave@contoso.com", junk, "Junk")      # junk is not phish: no alert
    lab.report(T0 + 30 * M, "erin@contoso.com", junk, "Not junk")
    lake = lab.write()

    drafts = {d.dedup_key.rsplit(":", 1)[1]: d for d in run(lake, "user_reported_message")}
    assert set(drafts) == {phish, sim}
    both = drafts[phish]
    assert {"user:alice@contoso.com", "user:bob@contoso.com", f"email:{phish}|alice@contoso.com",
            f"email:{phish}|bob@contoso.com", "domain:payroll-update.net"} <= entity_keys(both)
    assert both.severity is Severity.LOW and both.message_count == 2 == listed(lake, both)
    assert drafts[sim].severity is Severity.INFORMATIONAL
    # a simulation stays informational whatever severity an admin gives the policy
    high = PolicySettings(severity=Severity.HIGH)
    assert {d.severity for d in run(lake, "user_reported_message", settings=high)} == {Severity.HIGH, Severity.INFORMATIONAL}


def test_zap_waves_become_one_alert_per_policy_and_cluster(lab):
    rcpts = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"]
    sha = "ab" * 32
    m_file = lab.mail(T0, "billing@invoices-x.net", rcpts, "Invoice", files=[("inv.pdf", sha)])
    m_av = lab.mail(T0, "a@b-mal.net", rcpts[:1], "Scan", files=[("scan.zip", "cd" * 32)])
    m_url = lab.mail(T0, "c@d-mal.net", rcpts[:1], "Download", urls=["https://payload-host.net/get.exe"])
    m_ph1 = lab.mail(T0, "e@f-phish.net", rcpts[:2], "Sign in", urls=["https://kit-one.net/a?x=1"])
    m_ph2 = lab.mail(T0 + 5 * M, "e@f-phish.net", rcpts[2:], "Sign in", urls=["https://kit-one.net/a?x=2"])
    m_ph3 = lab.mail(T0, "g@h-phish.net", rcpts[:1], "Other", urls=["https://kit-two.net/"])
    m_spam = lab.mail(T0, "spam@bulk.example", rcpts[:1], "Offer")
    for i, r in enumerate(rcpts):
        lab.zap(T0 + H + i * M, m_file, r, "Malware", '{"Malware":["File reputation"]}')
    lab.zap(T0 + H, m_av, rcpts[0], "Malware", '{"Malware":["Antimalware protection"]}')
    lab.zap(T0 + H, m_url, rcpts[0], "Malware", '{"Malware":["URL detonation"]}')
    for nmid, rs in ((m_ph1, rcpts[:2]), (m_ph2, rcpts[2:]), (m_ph3, rcpts[:1])):
        for r in rs:
            lab.zap(T0 + 2 * H, nmid, r)
    lab.zap(T0 + H, m_spam, rcpts[0], "Spam", '{"Spam":["Bulk"]}')                       # spam ZAP: no policy
    lab.add("EmailPostDeliveryEvents", Timestamp=T0 + H, NetworkMessageId=m_spam, ActionType="Manual Remediation",
            RecipientEmailAddress=rcpts[0], ThreatTypes=None)                              # admin action: no policy
    lake = lab.write()

    (f,) = run(lake, "zap_malicious_file")
    assert f.message_count == 3 == listed(lake, f) and f"file:{sha}" in entity_keys(f) and "inv.pdf" in f.title
    assert f"cluster:file:{sha}" in entity_keys(f) and "domain:invoices-x.net" in entity_keys(f)
    (av,) = run(lake, "zap_malware")
    assert f"email:{m_av}|alice@contoso.com" in entity_keys(av)
    (u,) = run(lake, "zap_malicious_url")
    assert "url:https://payload-host.net/get.exe" in entity_keys(u)
    phish = run(lake, "zap_phish_url")
    assert sorted(d.title for d in phish) == ["Phish removed after delivery: kit-one.net (3 copies)",
                                              "Phish removed after delivery: kit-two.net (1 copies)"]
    wave = next(d for d in phish if "kit-one" in d.title)
    assert wave.message_count == 3 == listed(lake, wave)
    assert {d.severity for d in [f, av, u, *phish]} == {Severity.INFORMATIONAL}


def test_sending_patterns_and_restriction_thresholds(lab):
    burst = lab.mail(T0, "alice@contoso.com", [f"u{i}@contoso.com" for i in range(6)], "Bonus allocation",
                     direction="Intra-org", urls=["https://share-9f.net/x"], ip="91.243.1.2")
    for i in range(6):
        lab.zap(T0 + 2 * H, burst, f"u{i}@contoso.com")                                   # found out later
    lab.mail(T0 + 10 * M, "bob@contoso.com", [f"p{i}@partner.example" for i in range(35)], "Newsletter", direction="Outbound")
    lab.mail(T0 + 10 * M, "carol@contoso.com", [f"p{i}@partner.example" for i in range(20)], "Update", direction="Outbound")
    two = lab.mail(T0, "dave@contoso.com", ["u1@contoso.com", "u2@contoso.com"], "Hi", direction="Intra-org")
    lab.zap(T0 + H, two, "u1@contoso.com")
    lab.zap(T0 + H, two, "u2@contoso.com")
    lab.mail(T0, "mass@sender.example", [f"u{i}@contoso.com" for i in range(50)], "Offer")  # inbound: not ours
    lab.mail(T0 + 30 * M, "erin@contoso.com", [f"p{i}@partner.example" for i in range(120)], "Blast", direction="Outbound")
    lake = lab.write()

    sending = {d.dedup_key.split(":", 1)[1].split("|")[0]: d for d in run(lake, "suspicious_sending")}
    assert set(sending) == {"alice@contoso.com", "bob@contoso.com", "erin@contoso.com"}
    alice = sending["alice@contoso.com"]
    assert "6 with phish" in alice.title and alice.severity is Severity.MEDIUM
    assert {"user:alice@contoso.com", "ip:91.243.1.2", "url:https://share-9f.net/x", f"email:{burst}|u0@contoso.com"} <= entity_keys(alice)
    assert all(d.message_count == listed(lake, d) for d in sending.values())
    assert sending["bob@contoso.com"].message_count == 35
    # thresholds an admin changes
    lower = {d.dedup_key.split(":", 1)[1].split("|")[0] for d in run(
        lake, "suspicious_sending", settings=PolicySettings(thresholds={"messages_per_hour": 10, "threat_copies_per_hour": 7}))}
    assert lower == {"bob@contoso.com", "carol@contoso.com", "erin@contoso.com"}
    restricted = run(lake, "user_restricted_sending")
    assert [d.title for d in restricted] == [("User restricted from sending email: erin@contoso.com (120 copies on 2026-05-04, "
                                              "0 with phish, malware or spam verdicts)")]
    assert restricted[0].severity is Severity.HIGH and restricted[0].message_count == 120 == listed(lake, restricted[0])
    more = run(lake, "user_restricted_sending", settings=PolicySettings(thresholds={"recipients_per_hour": 30,
                                                                                     "threat_copies_per_hour": 5}))
    assert {d.dedup_key.split(":", 1)[1].split("|")[0] for d in more} == {"alice@contoso.com", "bob@contoso.com", "erin@contoso.com"}


def test_forwarding_outside_the_organisation_only(lab):
    lab.cloud(T0, "alice@contoso.com", "New-InboxRule",
              {"Parameters": [{"Name": "Name", "Value": "."}, {"Name": "ForwardTo", "Value": "alice.archive@proton.me"},
                              {"Name": "MarkAsRead", "Value": "True"}, {"Name": "MoveToFolder", "Value": "RSS Subscriptions"}]},
              ObjectId="alice@contoso.com\\.", IPAddress="91.243.44.118", IPCategory="Hosting",
              UncommonForUser='["IPAddress"]')
    lab.cloud(T0 + H, "bob@contoso.com", "Set-Mailbox",
              {"Parameters": [{"Name": "Identity", "Value": "bob@contoso.com"},
                              {"Name": "ForwardingSmtpAddress", "Value": "smtp:drop@exfil-box.net"}]}, IPAddress="198.51.100.2")
    lab.cloud(T0, "carol@contoso.com", "New-InboxRule",
              {"Parameters": [{"Name": "Name", "Value": "To my manager"}, {"Name": "ForwardTo", "Value": "dave@contoso.com"}]})
    lab.cloud(T0, "dave@contoso.com", "New-InboxRule",
              {"Parameters": [{"Name": "Name", "Value": "Newsletters"}, {"Name": "MoveToFolder", "Value": "Newsletters"}]})
    lake = lab.write()

    drafts = run(lake, "suspicious_forwarding_rule")
    assert [d.title for d in drafts] == [
        "Forwarding to alice.archive@proton.me set on alice@contoso.com's mailbox (New-InboxRule)",
        "Forwarding to drop@exfil-box.net set on bob@contoso.com's mailbox (Set-Mailbox)"]
    alice, bob = drafts
    assert {"user:alice@contoso.com", "mailbox:alice.archive@proton.me", "ip:91.243.44.118"} <= entity_keys(alice)
    assert not any(e.kind is EntityKind.DOMAIN for e in alice.entities)  # proton.me: free mail, not a correlation key
    assert "domain:exfil-box.net" in entity_keys(bob) and "ip:198.51.100.2" not in entity_keys(bob)
    assert alice.severity is Severity.MEDIUM and alice.category == "Exfiltration"
    assert "hides it in the rule list" in alice.description


def test_risky_signin_within_hours_of_a_malicious_click(lab):
    url = "https://login-5e.net/a"
    nmid = lab.mail(T0, "x@login-5e.net", ["alice@contoso.com", "carol@contoso.com"], urls=[url])
    lab.click(T0 + 10 * M, "alice@contoso.com", url, nmid)
    lab.click(T0 + 10 * M, "carol@contoso.com", url, nmid)
    for r in ("alice@contoso.com", "carol@contoso.com"):
        lab.zap(T0 + 3 * H, nmid, r)
    lab.signin(T0 + 30 * M, "alice@contoso.com")                                         # ordinary
    lab.signin(T0 + 40 * M, "alice@contoso.com", country="RU", risk=50, error=50126, ip="91.243.44.118")
    lab.signin(T0 + 44 * M, "alice@contoso.com", country="RU", risk=100, ip="91.243.44.118")
    lab.signin(T0 + 30 * H, "carol@contoso.com", country="NG", risk=100, ip="102.89.1.1")  # too long after
    clean = lab.mail(T0, "news@partner.example", ["bob@contoso.com"], urls=["https://partner.example/n"])
    lab.click(T0 + 5 * M, "bob@contoso.com", "https://partner.example/n", clean)
    lab.signin(T0 + 20 * M, "bob@contoso.com", country="RU", risk=100, ip="91.243.44.119")  # no malicious click
    lake = lab.write()

    (d,) = run(lake, "risky_signin_after_click")
    assert d.title.startswith("Risky sign-in for alice@contoso.com from RU 91.243.44.118, 0.5 h after")
    assert {"user:alice@contoso.com", "ip:91.243.44.118", f"url:{url}", f"email:{nmid}|alice@contoso.com"} <= entity_keys(d)
    assert "1 succeeded" in d.description and d.severity is Severity.HIGH and d.category == "CredentialAccess"
    wider = run(lake, "risky_signin_after_click", settings=PolicySettings(thresholds={"hours_after_click": 48}))
    assert {x.dedup_key.split(":", 1)[1].split("|")[0] for x in wider} == {"alice@contoso.com", "carol@contoso.com"}


def test_content_malware_one_alert_per_file_per_day(lab):
    sha = "ef" * 32
    for workload, path in (("SharePoint", "https://contoso.sharepoint.com/sites/Finance/Docs"),
                           ("OneDrive", "https://contoso-my.sharepoint.com/personal/bob/Documents")):
        lab.add("FileMaliciousContentInfo", Timestamp=T0 + H, Workload=workload, FileName="Invoice.docm", FolderPath=path,
                SiteUrl=path, SHA256=sha, ThreatTypes="Malware", ThreatNames="Donoff", FileOwner="bob@contoso.com",
                LastModifiedBy="bob@contoso.com")
    lab.cloud(T0, "carol@contoso.com", "FileUploaded", {"SourceFileName": "Report.docx"})  # an upload: nothing found
    lake = lab.write()
    (d,) = run(lake, "content_malware")
    assert d.title == "Malware in SharePoint, OneDrive: Invoice.docm (Donoff)"
    assert {f"file:{sha}", f"cluster:file:{sha}", "user:bob@contoso.com"} <= entity_keys(d)
    assert not any(e.kind is EntityKind.DOMAIN for e in d.entities) and d.threat_family == "Donoff"
    assert listed(lake, d) == 2 and d.message_count == 0 and d.severity is Severity.MEDIUM


def test_endpoint_alerts_for_mailbox_owners_keep_their_severity(lab):
    def alert(aid: str, source: str, severity: str, evidence: list[dict]) -> None:
        lab.add("AlertInfo", Timestamp=T0, AlertId=aid, Title=f"Alert {aid}", Category="Execution", Severity=severity,
                ServiceSource=source, DetectionSource="EDR", AttackTechniques='["User Execution (T1204.002)"]')
        for e in evidence:
            lab.add("AlertEvidence", Timestamp=T0, AlertId=aid, ServiceSource=source, **e)

    mde = "Microsoft Defender for Endpoint"
    alert("a1", mde, "High", [dict(EntityType="User", AccountUpn="alice@contoso.com"),
                              dict(EntityType="Machine", DeviceId="dev-alice", DeviceName="PC-ABBOTT"),
                              dict(EntityType="File", SHA256="AA" * 32, EvidenceRole="Impacted")])
    alert("a2", mde, "Low", [dict(EntityType="Machine", DeviceId="dev-bob", DeviceName="PC-BROWN")])  # user via the device
    alert("a3", mde, "High", [dict(EntityType="User", AccountUpn="svc-backup@contoso.local")])         # no mailbox
    alert("a4", "Microsoft Defender for Office 365", "High", [dict(EntityType="User", AccountUpn="carol@contoso.com")])
    lake = lab.write()
    drafts = {d.dedup_key: d for d in run(lake, "endpoint_alert_mailbox_owner")}
    assert set(drafts) == {"endpoint_alert_mailbox_owner:alert:a1", "endpoint_alert_mailbox_owner:alert:a2"}
    a1, a2 = drafts["endpoint_alert_mailbox_owner:alert:a1"], drafts["endpoint_alert_mailbox_owner:alert:a2"]
    assert a1.severity is Severity.HIGH and a2.severity is Severity.LOW
    assert {"user:alice@contoso.com", "device:dev-alice", "file:" + "aa" * 32} <= entity_keys(a1)
    assert "user:bob@contoso.com" in entity_keys(a2) and a1.mitre_techniques == ("T1204.002",)
    assert a1.title == "Endpoint alert for alice@contoso.com on PC-ABBOTT: Alert a1"
    overridden = run(lake, "endpoint_alert_mailbox_owner", settings=PolicySettings(severity=Severity.MEDIUM))
    assert {d.severity for d in overridden} == {Severity.MEDIUM}


def test_impersonation_of_a_protected_user_and_the_reply(lab):
    lab.user("nadia.taylor@contoso.com", "Nadia", "Taylor", tags=["Priority account"], title="Chief Executive Officer")
    lab.user("karen.shah@contoso.com", "Karen", "Shah", tags=["Priority account"])
    lab.user("karen.sato@contoso.com", "Karen", "Sato")
    lab.user("paul.ng@contoso.com", "Paul", "Ng")  # not protected
    fake = lab.mail(T0, "nadia@contoso-holdings.org", ["bob@contoso.com", "carol@contoso.com"], "Urgent: vendor payment",
                    display="Nadia T.")
    lab.mail(T0 + 14 * M, "bob@contoso.com", ["nadia@contoso-holdings.org"], "Re: Urgent: vendor payment", direction="Outbound")
    lab.mail(T0, "nadia.taylor@contoso.com", ["bob@contoso.com"], "Lunch", direction="Intra-org", display="Nadia Taylor")
    lab.mail(T0, "n.taylor@free-mail.example", ["dave@contoso.com"], "Gift cards", display="Nadia Taylor", delivery="Blocked",
             threat="Phish")                                                               # stopped: nothing to alert
    lab.mail(T0, "karen@other.example", ["dave@contoso.com"], "Hi", display="Karen S.")   # two Karen S.: ambiguous
    lab.mail(T0, "paul@other.example", ["dave@contoso.com"], "Hi", display="Paul Ng")     # not a protected user
    lake = lab.write()

    (d,) = run(lake, "impersonation_delivered")
    assert d.title == ("Impersonation of nadia.taylor@contoso.com delivered from nadia@contoso-holdings.org "
                       "(2 copies, answered by bob@contoso.com)")
    assert d.severity is Severity.HIGH
    assert {"mailbox:nadia.taylor@contoso.com", "domain:contoso-holdings.org", "user:bob@contoso.com",
            f"email:{fake}|bob@contoso.com"} <= entity_keys(d)
    assert d.message_count == 3 == listed(lake, d)  # two impersonation copies and the reply
    # before the reply: medium
    (early,) = run(lake, "impersonation_delivered", until=T0 + 10 * M)
    assert early.severity is Severity.MEDIUM and early.dedup_key == d.dedup_key


def test_admin_triggered_investigations(lab):
    nmid = lab.mail(T0, "x@evil-9.net", ["alice@contoso.com", "bob@contoso.com"])
    lake = lab.write()
    now = T0 + 2 * H
    d = manual_investigation_draft([(nmid, "Alice@contoso.com"), (nmid, "bob@contoso.com")], "soc@contoso.com", now)
    assert d.policy_id == "manual_investigation" and d.severity is Severity.INFORMATIONAL
    assert d.title == "Manual investigation of 2 email copies by soc@contoso.com"
    assert d.message_count == 2 == listed(lake, d) and f"email:{nmid}|alice@contoso.com" in entity_keys(d)
    again = manual_investigation_draft([(nmid, "bob@contoso.com"), (nmid, "alice@contoso.com")], "soc@contoso.com", now)
    assert again.dedup_key == d.dedup_key
    u = user_compromise_investigation_draft("Alice@contoso.com", "soc@contoso.com", now)
    assert u.severity is Severity.MEDIUM and "user:alice@contoso.com" in entity_keys(u) and listed(lake, u) == 1
    with pytest.raises(InputError):
        manual_investigation_draft([], "soc@contoso.com", now)
    assert not evaluate(lake, "manual_investigation", since=None).drafts  # never evaluated over the lake


def test_settings_disable_and_are_checked(lab):
    nmid = lab.mail(T0, "hr@payroll-update.net", ["alice@contoso.com"], "Payroll")
    lab.report(T0 + M, "alice@contoso.com", nmid)
    lake = lab.write()
    assert run(lake, "user_reported_message")
    off = evaluate(lake, "user_reported_message", since=T0 - H, settings=PolicySettings(enabled=False))
    assert off.drafts == () and off.watermark == T0 - H
    with pytest.raises(InputError, match="no threshold 'per_minute'"):
        evaluate(lake, "suspicious_sending", since=None, settings=PolicySettings(thresholds={"per_minute": 3}))
    with pytest.raises(InputError, match="positive"):
        evaluate(lake, "suspicious_sending", since=None, settings=PolicySettings(thresholds={"messages_per_hour": 0}))
    with pytest.raises(InputError, match="unknown severity"):
        PolicySettings(severity="critical")
    with pytest.raises(InputError, match="not before"):
        evaluate(lake, "content_malware", since=T0, until=T0)
    assert evaluate(Lake(lab.lake.root.parent / "empty"), "malicious_url_click", since=None).drafts == ()


# ============================================================================ the small generated tenant


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict[str, dict]:
    data = json.loads((small_tenant.root / "scenarios.json").read_text())
    return {s["id"]: s for s in data["stories"]}


@pytest.fixture(scope="module")
def results(lake):
    return evaluate_all(lake)


@pytest.fixture(scope="module")
def drafts(results) -> list[AlertDraft]:
    return [d for r in results.values() for d in r.drafts]


# The policies that must fire on each story (with every named set of its keys matched by some alert of them).
EXPECTED = {
    "credential-phish-campaign": {"malicious_url_click", "zap_phish_url", "user_reported_message"},
    "compromised-user": {"malicious_url_click", "risky_signin_after_click", "suspicious_forwarding_rule",
                         "suspicious_sending", "zap_phish_url"},
    "endpoint-alert": {"endpoint_alert_mailbox_owner"},
    "malware-campaign": {"zap_malicious_file"},
    "content-malware": {"content_malware"},
    "bec-impersonation": {"impersonation_delivered"},
    "user-reports": {"user_reported_message"},
}


def test_every_planted_story_raises_alerts_naming_its_ground_truth(stories, drafts):
    table = {}
    for sid, story in stories.items():
        wanted = story_keys(story)
        firing = sorted({d.policy_id for d in drafts if any(entity_keys(d) & ks for ks in wanted.values())})
        table[sid] = firing
        assert EXPECTED[sid] <= set(firing), f"{sid}: fired {firing}"
        for name, ks in wanted.items():
            assert any(entity_keys(d) & ks for d in drafts), f"{sid}: no alert names its {name}"
    print("\npolicies firing per story:\n" + "\n".join(f"  {sid:28s} {', '.join(p)}" for sid, p in table.items()))
    # specific links an analyst relies on
    cu = stories["compromised-user"]
    signin = next(d for d in drafts if d.policy_id == "risky_signin_after_click")
    assert {f"user:{cu['user']}", f"ip:{cu['attacker_ip']}"} <= entity_keys(signin)
    rule = next(d for d in drafts if d.policy_id == "suspicious_forwarding_rule")
    assert f"mailbox:{cu['forwarding_address']}" in entity_keys(rule) and f"ip:{cu['attacker_ip']}" in entity_keys(rule)
    phish = stories["credential-phish-campaign"]
    victim_click = next(d for d in drafts if d.dedup_key == f"malicious_url_click:click:{phish['victim_click']}")
    assert f"user:{cu['user']}" in entity_keys(victim_click)
    malware = stories["malware-campaign"]
    zapped = {a["SHA256"] for a in malware["attachments"] if a["delivered"]}
    assert {f"file:{s}" for s in zapped} <= {k for d in drafts if d.policy_id == "zap_malicious_file" for k in entity_keys(d)}
    content = {f"cluster:file:{f['SHA256']}" for f in stories["content-malware"]["files"]}
    assert all(any(c in entity_keys(d) for d in drafts if d.policy_id == "content_malware") for c in content)


def test_benign_reports_stay_low_and_simulations_informational(stories, drafts):
    reports = stories["user-reports"]
    by_message = {d.dedup_key.rsplit(":", 1)[1]: d for d in drafts if d.policy_id == "user_reported_message"}
    sims = {r["NetworkMessageId"] for r in reports["simulation_reports"]}
    cleans = {r["NetworkMessageId"] for r in reports["clean_reports"]}
    assert sims | cleans <= set(by_message)  # the reports exist as alerts...
    assert all(by_message[n].severity is Severity.INFORMATIONAL for n in sims)
    assert all(by_message[n].severity <= Severity.LOW for n in cleans)  # ...and are not above Low
    # no alert at all about the simulation other than its reports
    sim_emails = emails_of(reports["simulation_messages"])
    assert {d.policy_id for d in drafts if entity_keys(d) & sim_emails} == {"user_reported_message"}


def test_drafts_are_specific_and_their_entities_precise(lake, results, drafts):
    policies = {p.id: p for p in load_policies()}
    run_ = evaluate(lake, "content_malware", since=None)  # any run: the org domains come from the directory
    assert run_.drafts
    org = {"proseware.com", "proseware.co.uk", "proseware-group.net"}
    for d in drafts:
        p = policies[d.policy_id]
        assert d.title != p.name and "{" not in d.title and d.dedup_key.startswith(p.id + ":")
        assert d.category == p.category and d.first_activity <= d.last_activity
        for e in d.entities:
            if e.kind is EntityKind.DOMAIN:
                assert e.value not in org and not shared_domain(e.value), (d.title, e)
            if e.kind is EntityKind.EMAIL:
                assert e.value == e.value.split("|")[0] + "|" + e.value.split("|")[1].lower()
        if d.message_count:
            assert any(e.kind is EntityKind.EMAIL for e in d.evidence)
    assert len({d.dedup_key for d in drafts}) == len(drafts)


def test_every_alert_query_lists_exactly_its_messages(lake, drafts):
    checked = 0
    for d in drafts:
        if d.explorer_query is None:
            assert d.policy_id == "suspicious_forwarding_rule" and d.message_count == 0
            continue
        q = Query.from_json(d.explorer_query)
        if q.view == "all_email":
            assert listed(lake, d) == d.message_count > 0, d.title
            checked += 1
        elif q.view == "content_malware":
            assert listed(lake, d) >= 1
    assert checked >= 10


def test_whole_and_two_halves_give_the_same_alerts(lake, stories, results):
    cu = stories["compromised-user"]
    click, signin = (datetime.fromisoformat(step["Timestamp"]) for step in cu["sequence"][:2])
    for pid in LAKE_POLICIES:
        whole = results[pid]
        assert not evaluate(lake, pid, since=whole.watermark).drafts, pid  # nothing new after the watermark
        for cut in (click + M, signin + M, datetime(2026, 11, 19, 12, tzinfo=UTC)):  # before the ZAP, the verdict...
            first = evaluate(lake, pid, since=None, until=cut)
            second = evaluate(lake, pid, since=first.watermark)
            assert keys(first.drafts) | keys(second.drafts) == keys(whole.drafts), (pid, cut)
            assert first.watermark is None or first.watermark < cut
    # the click alerts really were split: some only the second half finds
    first = evaluate(lake, "malicious_url_click", since=None, until=click + M)
    assert not first.drafts and evaluate(lake, "malicious_url_click", since=first.watermark).drafts


@pytest.mark.slow
def test_whole_and_many_pieces_give_the_same_alerts(lake, stories, results):
    cu = stories["compromised-user"]
    moments = [datetime.fromisoformat(step["Timestamp"]) for step in cu["sequence"]]
    cuts = [m + delta for m in moments for delta in (-M, M, 30 * M)]  # around the click, sign-in, rule and burst
    cuts += [datetime(2026, 11, 18, tzinfo=UTC) + k * 6 * H for k in range(12)]
    for pid in LAKE_POLICIES:
        expected = keys(results[pid].drafts)
        for cut in cuts:
            first = evaluate(lake, pid, since=None, until=cut)
            second = evaluate(lake, pid, since=first.watermark)
            assert keys(first.drafts) | keys(second.drafts) == expected, (pid, cut)
        # and hour by hour, each run from the last one's watermark
        found, mark = set(), None
        for k in range(1, 24 * 3 + 2):
            r = evaluate(lake, pid, since=mark, until=datetime(2026, 11, 17, 12, tzinfo=UTC) + k * H)
            found |= keys(r.drafts)
            mark = r.watermark
        found |= keys(evaluate(lake, pid, since=mark).drafts)
        assert found == expected, pid


def test_settings_on_the_generated_tenant(lake, results, stories):
    victim = stories["compromised-user"]["user"]
    assert results["suspicious_sending"].drafts and not results["user_restricted_sending"].drafts
    assert evaluate(lake, "suspicious_sending", since=None, settings=PolicySettings(enabled=False)).drafts == ()
    strict = evaluate(lake, "suspicious_sending", since=None,
                      settings=PolicySettings(thresholds={"threat_copies_per_hour": 100}))
    assert not strict.drafts  # the burst is small in a 40-user tenant: only its verdicts give it away
    restricted = evaluate(lake, "user_restricted_sending", since=None,
                          settings=PolicySettings(thresholds={"threat_copies_per_hour": 5}))
    assert [d.dedup_key.split(":", 1)[1].split("|")[0] for d in restricted.drafts] == [victim]
    low = evaluate(lake, "malicious_url_click", since=None, settings=PolicySettings(severity=Severity.LOW))
    assert {d.severity for d in low.drafts} == {Severity.LOW}
    assert keys(low.drafts) == keys(results["malicious_url_click"].drafts)


@pytest.mark.parametrize("module", ["workbench.detect.policies", "workbench.detect.policies.base",
                                    "workbench.detect.policies.manual"])
def test_doctests(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
