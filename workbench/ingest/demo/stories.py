"""Planted attack stories with ground truth.

Each story writes ordinary-looking rows (message specs and rows of the other tables) and a
ground-truth record listing the ids of everything that belongs to it. Stories are placed at
fractions of the window, so they fit any window length, and the compromised-user chain
(click → risky sign-in → forwarding rule → internal phishing burst) keeps its order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from workbench.enums import (
    ActionResult,
    ActionTrigger,
    AlertServiceSource,
    AlertSeverity,
    ClickAction,
    CloudAppActionType,
    DeliveryAction as DA,
    DeliveryLocation as DL,
    DetectionTechnology as DT,
    EmailDirection as ED,
    EvidenceEntityType as EE,
    FileWorkload,
    LatestDeliveryAction as LA,
    PostDeliveryAction,
    ReportType,
)
from workbench.files.store import FileRef, site_of
from workbench.ingest.demo import lures, vocab
from workbench.ingest.demo.activity import click, cloud_event, signin, user_ip
from workbench.ingest.demo.content import Template, make_template
from workbench.ingest.demo.emit import Catalog, detection_methods, spec_frame
from workbench.ingest.demo.judge import VERDICT_COLUMNS, Judge, zap_type
from workbench.ingest.demo.org import Organisation, User, public_ip, uuid_from

def delivered(row: dict) -> bool:
    return row["DeliveryAction"] == DA.DELIVERED.value


@dataclass
class Planter:
    """Shared state while stories are planted."""

    org: Organisation
    rng: np.random.Generator
    catalog: Catalog
    start: datetime
    end: datetime
    judge: Judge
    specs: list[dict] = field(default_factory=list)
    rows: dict[str, list[dict]] = field(default_factory=dict)
    stories: list[dict] = field(default_factory=list)
    files: list[tuple[FileRef, bytes]] = field(default_factory=list)  # shared files for the tenant's file store
    by_upn: dict[str, User] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_upn = {u.upn: u for u in self.org.users}

    # ------------------------------------------------------------------ ids and time

    def uuid(self) -> str:
        return uuid_from(self.rng)

    def report_id(self) -> str:
        return "st-" + self.rng.bytes(8).hex()

    def moment(self, fraction: float, hour: float) -> datetime:
        """A UTC time on the day at *fraction* of the window, at *hour* (clamped inside the window)."""
        days = max(1, (self.end - self.start).days)
        index = min(days - 1, int(fraction * days))
        # Attackers (and users) work on weekdays: move to the nearest weekday inside the window.
        for candidate in (index, index + 1, index + 2, index - 1, index - 2):
            if 0 <= candidate < days and (self.start + timedelta(days=candidate)).weekday() < 5:
                index = candidate
                break
        day = self.start + timedelta(days=index)
        ts = day + timedelta(hours=hour, minutes=int(self.rng.integers(0, 20)))
        return min(max(ts, self.start), self.end - timedelta(hours=1))

    def clamp(self, ts: datetime) -> datetime:
        return min(ts, self.end - timedelta(seconds=1))

    def add(self, table: str, row: dict) -> dict:
        self.rows.setdefault(table, []).append(row)
        return row

    def template(self, build, *args, **kwargs) -> Template:
        return self.catalog.add(build(self.catalog.next_id(), *args, **kwargs))

    # ------------------------------------------------------------------ messages

    def message(self, ts: datetime, sender: dict, recipients: list[User | str], template: Template,
                *, direction: ED = ED.INBOUND, subject: str | None = None, **extra) -> list[dict]:
        """Spec rows for one message to several recipients, judged by the analyzers.

        Copies that later intelligence removes after delivery carry the ZAP event's id in
        ``row["_zap"]``.
        """
        nmid = self.uuid()
        rows = []
        for rcpt in recipients:
            internal = isinstance(rcpt, User)
            row = dict(
                Timestamp=ts, NetworkMessageId=nmid,
                InternetMessageId=f"<{nmid.replace('-', '')[:20].upper()}@{sender['address'].split('@')[1]}>",
                SenderFromAddress=sender["address"], SenderDisplayName=sender["display"],
                SenderMailFromAddress=sender.get("mail_from", sender["address"]), SenderObjectId=sender.get("object_id"),
                SenderIPv4=sender["ip"], SenderHost=sender.get("host", f"mail.{sender['address'].split('@')[1]}"),
                RecipientEmailAddress=rcpt.upn if internal else rcpt, RecipientObjectId=rcpt.object_id if internal else None,
                EmailDirection=direction.value, TemplateId=template.id, Subject=subject or template.subject,
                BulkComplaintLevel=0, Spf=sender.get("spf", "pass"), Dkim=sender.get("dkim", "none"),
                Dmarc=sender.get("dmarc", "none"), CompAuth=sender.get("compauth", "softpass"),
                IsFirstContact=direction == ED.INBOUND, ReportId=self.report_id(),
            )
            row.update(extra)
            rows.append(row)
        judged, zaps = self.judge.judge(spec_frame(rows))
        for row, verdict in zip(rows, judged.select(list(VERDICT_COLUMNS)).iter_rows(named=True)):
            row.update(verdict)
            row["LatestDeliveryAction"] = row["DeliveryAction"]
            row["LatestDeliveryLocation"] = row["DeliveryLocation"]
        for z in zaps:
            rows[z.row]["_zap_at"] = z.timestamp
            rows[z.row]["_zap"] = self.zap(rows[z.row], z.timestamp, z.threat, z.judgement.columns["DetectionMethods"])
        self.specs.extend(rows)
        return rows

    def zap(self, row: dict, ts: datetime, threat: str, methods: str | None) -> str:
        """Zero-hour auto purge of one delivered copy: move it to quarantine, log the event."""
        action_type = zap_type(threat)
        # EmailEvents keeps the delivery-time verdict; only the latest location changes.
        row["LatestDeliveryLocation"] = DL.QUARANTINE.value
        row["LatestDeliveryAction"] = LA.MOVED_TO_QUARANTINE.value
        rid = self.report_id()
        self.add("EmailPostDeliveryEvents", dict(
            Timestamp=self.clamp(ts), NetworkMessageId=row["NetworkMessageId"], InternetMessageId=row["InternetMessageId"],
            Action=PostDeliveryAction.MOVE_TO_QUARANTINE.value, ActionType=action_type.value,
            ActionTrigger=ActionTrigger.SPECIAL_ACTION.value, ActionResult=ActionResult.SUCCESS.value,
            RecipientEmailAddress=row["RecipientEmailAddress"], SenderFromAddress=row["SenderFromAddress"],
            EmailDirection=row["EmailDirection"], DeliveryLocation=DL.QUARANTINE.value, ThreatTypes=threat,
            DetectionMethods=methods, ReportId=rid))
        return rid

    def sample_users(self, count: int, *, exclude: set[str] = frozenset(), departments: tuple[str, ...] = ()) -> list[User]:
        pool = [u for u in self.org.users if u.upn not in exclude and (not departments or u.department in departments)]
        if not pool:  # a small organisation may lack the department, or have no one else
            pool = [u for u in self.org.users if u.upn not in exclude] or list(self.org.users)
        count = max(1, min(count, len(pool)))
        return [pool[i] for i in sorted(self.rng.choice(len(pool), size=count, replace=False))]

    def report(self, user: User, row: dict, ts: datetime, report_type: ReportType) -> str:
        """The user reports a message with the Report button."""
        rid = self.report_id()
        self.add("CloudAppEvents", cloud_event(
            user, self.clamp(ts), CloudAppActionType.USER_SUBMISSION.value, rid, object_name=row["Subject"],
            object_id=row["NetworkMessageId"], ActivityType="Report",
            raw={"Operation": "UserSubmission", "UserId": user.upn, "ReportType": report_type.value,
                 "NetworkMessageId": row["NetworkMessageId"], "InternetMessageId": row["InternetMessageId"],
                 "Subject": row["Subject"], "P2Sender": row["SenderFromAddress"]}))
        return rid




def _attacker_sender(p: Planter, domain: str, display: str, local: str = "no-reply") -> dict:
    return dict(address=f"{local}@{domain}", display=display, ip=public_ip(p.rng), host=f"vps{int(p.rng.integers(100, 999))}.{domain}",
                spf="pass", dkim="none", dmarc="none", compauth="softpass")


# ---------------------------------------------------------------------------- stories

def _fresh_host(p: Planter) -> str:
    """A freshly registered host for a phishing kit: no brand in it, nothing known about it yet."""
    word = ["docs", "files", "share", "view", "cloud"][int(p.rng.integers(5))]
    return f"{word}-{p.rng.bytes(3).hex()}.{['net', 'app', 'io', 'com'][int(p.rng.integers(4))]}"


def _clicks(p: Planter, row: dict, user: User, url: str, click_ts: datetime) -> str | None:
    """One recipient clicks *url* in *row*; Safe Links blocks it when intelligence knows the URL by then.
    Returns the click's ReportId (None when the copy was already removed)."""
    if not delivered(row) or ("_zap_at" in row and click_ts >= row["_zap_at"]):
        return None
    rid = p.report_id()
    if p.judge.feed.url_known(url, click_ts):
        methods = detection_methods("Phish", DT.URL_MALICIOUS_REPUTATION.value)
        p.add("UrlClickEvents", click(user.upn, p.clamp(click_ts), url, rid, nmid=row["NetworkMessageId"], ip=user_ip(user),
                                      action=ClickAction.BLOCKED, threat="Phish", methods=methods))
        if p.rng.random() < 0.3:  # clicked through the warning page
            p.add("UrlClickEvents", click(user.upn, p.clamp(click_ts + timedelta(seconds=9)), url, rid,
                                          nmid=row["NetworkMessageId"], ip=user_ip(user), through=True,
                                          threat="Phish", methods=methods))
    else:
        p.add("UrlClickEvents", click(user.upn, p.clamp(click_ts), url, rid, nmid=row["NetworkMessageId"], ip=user_ip(user)))
    return rid


def credential_phish(p: Planter, victim: User) -> dict:
    """Three waves. The first comes from a supplier's compromised mailbox (authentication passes,
    the link goes to a freshly registered host): the filters let it through, the victim clicks,
    and intelligence about the host arrives three hours later (ZAP). The next two come from
    brand lookalike domains."""
    org, rng = p.org, p.rng
    supplier = org.partners[int(rng.integers(len(org.partners)))]
    brand_lookalikes = [lures.lookalikes("microsoft", rng, 1)[0], lures.lookalikes("docusign", rng, 1)[0]]
    kit_host = _fresh_host(p)
    supplier_sender = dict(address=supplier.address, display=supplier.display_name, ip=supplier.ips[0],
                           host=f"mail-{supplier.domain.replace('.', '-')}.outbound.protection.outlook.com",
                           spf="pass", dkim="pass", dmarc="pass", compauth="pass")
    # (fraction, sender, link host, subject, lure, intelligence arrives after the first message)
    waves = [
        (0.30, supplier_sender, kit_host, f"{supplier.display_name} shared \"Project schedule\" with you", "share",
         timedelta(hours=3)),
        (0.55, _attacker_sender(p, brand_lookalikes[0], "Microsoft 365 Security"), brand_lookalikes[0],
         "Unusual sign-in activity on your account", "Microsoft 365", timedelta(minutes=20)),
        (0.80, _attacker_sender(p, brand_lookalikes[1], "DocuSign"), brand_lookalikes[1],
         "DocuSign: Payroll update - please review and sign", "DocuSign", timedelta(days=-2)),
    ]
    truth: dict = {"id": "credential-phish-campaign", "kind": "credential_phish",
                   "title": "Credential phishing campaign: a supplier's compromised mailbox, then lookalike domains",
                   "sender_domains": [], "urls": [], "messages": [], "clicks": [], "post_delivery": [], "waves": []}
    n_targets = max(4, min(150, len(org.users) // 8))
    for wave, (fraction, sender, host, subject, lure, intel_after) in enumerate(waves, 1):
        url = lures.phish_url(host, rng)
        if lure == "share":
            template = p.template(lures.shared_document_lure, subject, supplier.display_name, url,
                                  document="Project schedule - revised.xlsx")
        else:
            template = p.template(lures.credential_lure, subject, lure, url, org.name)
        targets = p.sample_users(n_targets, exclude={victim.upn})
        if wave == 1:
            targets = [victim] + targets[:-1]
        ts = p.moment(fraction, 9.0)
        p.judge.feed.add("url" if wave == 1 else "domain", url if wave == 1 else host, ts + intel_after,
                         description=f"credential phishing kit (wave {wave})")
        rows: list[dict] = []
        for b in range(0, len(targets), 5):  # sent in small batches over about an hour, as kits do
            rows += p.message(ts + timedelta(minutes=3 * b), sender, targets[b:b + 5], template)
        for row in rows:
            user = p.by_upn[row["RecipientEmailAddress"]]
            if user is victim or rng.random() < 0.3:
                after = timedelta(minutes=12) if user is victim else timedelta(seconds=int(rng.exponential(45 * 60)) + 60)
                rid = _clicks(p, row, user, url, row["Timestamp"] + after)
                if rid:
                    truth["clicks"].append(rid)
                    if user is victim:
                        truth["victim_click"] = rid
        truth["post_delivery"] += [r["_zap"] for r in rows if "_zap" in r]
        truth["sender_domains"].append(sender["address"].split("@")[1])
        truth["urls"].append(url)
        truth["waves"].append({"wave": wave, "subject": subject, "domain": host, "url": url,
                               "first_seen": rows[0]["Timestamp"].isoformat(), "recipients": len(rows),
                               "delivered": sum(delivered(r) for r in rows)})
        truth["messages"] += [{"NetworkMessageId": r["NetworkMessageId"], "RecipientEmailAddress": r["RecipientEmailAddress"],
                               "wave": wave} for r in rows]
        if wave == 1:
            truth["_wave1"] = rows
            truth["_kit"] = (subject, url)
    if "victim_click" not in truth:
        raise RuntimeError("the demo's first phishing wave was stopped at delivery, so the compromised-user story cannot "
                           "unfold; the detection rules changed: make the wave-1 lure evade them again (stories.py). "
                           f"Verdict: {truth['_wave1'][0]['Explanation']}")
    return truth


def compromised_user(p: Planter, victim: User, phish: dict) -> dict:
    """click → risky sign-in → forwarding rule → internal phishing burst, in that order."""
    rng, org = p.rng, p.org
    victim_row = next(r for r in phish["_wave1"] if r["RecipientEmailAddress"] == victim.upn)
    click_ts = victim_row["Timestamp"] + timedelta(minutes=12)
    country, city, prefix, asn = vocab.ATTACKER_ORIGINS[int(rng.integers(len(vocab.ATTACKER_ORIGINS)))]
    attacker_ip = public_ip(rng, prefix)
    location = json.dumps([{"networkType": "hosting", "networkNames": [asn]}])
    signin_ids = []
    t = click_ts + timedelta(minutes=31)
    for attempt in range(3):
        rid = p.report_id()
        corr = p.uuid()
        ok = attempt == 2
        p.add("AADSignInEventsBeta", signin(
            victim, t + timedelta(minutes=2 * attempt), rid, corr, Application="OfficeHome", ApplicationId="4765445b-32c6-49b0-83e6-1d93765276ca",
            ErrorCode=0 if ok else 50126, IPAddress=attacker_ip, Country=country, City=city, Latitude=None, Longitude=None,
            DeviceName=None, AadDeviceId=None, DeviceTrustType=None, IsManaged=0, IsCompliant=0,
            AuthenticationRequirement="singleFactorAuthentication", RiskLevelAggregated=100 if ok else 50,
            RiskState=4 if ok else 0, RiskDetails=0, NetworkLocationDetails=location,
            UserAgent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            Browser="Chrome 120.0.0"))
        signin_ids.append(rid)
    signin_ts = t + timedelta(minutes=4)
    forward_to = f"{victim.given_name.lower()}.archive{int(rng.integers(10, 99))}@proton.me"
    rule_name = "."  # attackers favour names that hide in the rule list
    rule_ts = signin_ts + timedelta(minutes=22)
    rule_rid = p.report_id()
    params = [{"Name": "Name", "Value": rule_name}, {"Name": "ForwardTo", "Value": forward_to},
              {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;wire;bank"},
              {"Name": "MarkAsRead", "Value": "True"}, {"Name": "MoveToFolder", "Value": "RSS Subscriptions"},
              {"Name": "StopProcessingRules", "Value": "True"}]
    p.add("CloudAppEvents", cloud_event(
        victim, rule_ts, CloudAppActionType.NEW_INBOX_RULE.value, rule_rid, object_name=rule_name,
        object_id=f"{victim.upn}\\{rule_name}", ActivityType="Create", IPAddress=attacker_ip, CountryCode=country,
        City=city, Isp=asn, IPCategory="Hosting", UncommonForUser='["IPAddress","Country","ISP"]',
        raw={"Operation": "New-InboxRule", "UserId": victim.upn, "ClientIP": attacker_ip, "Parameters": params}))
    accessed = []
    for k in range(2):
        rid = p.report_id()
        p.add("CloudAppEvents", cloud_event(
            victim, rule_ts + timedelta(minutes=5 + 7 * k), CloudAppActionType.MAIL_ITEMS_ACCESSED.value, rid,
            ActivityType="Read", IPAddress=attacker_ip, CountryCode=country, City=city, Isp=asn, IPCategory="Hosting",
            raw={"Operation": "MailItemsAccessed", "UserId": victim.upn, "ClientIP": attacker_ip, "MailAccessType": "Bind"}))
        accessed.append(rid)

    # Internal phishing burst from the victim's own mailbox to colleagues.
    burst_ts = rule_ts + timedelta(minutes=70)
    domain = _fresh_host(p)
    url = lures.phish_url(domain, rng, kit="share")
    p.judge.feed.add("url", url, burst_ts + timedelta(hours=2), description="credential phishing page sent from a compromised mailbox")
    subject = f"{victim.display_name} shared \"Q4 bonus allocation\" with you"
    template = p.template(lures.shared_document_lure, subject, victim.display_name, url)
    sender = dict(address=victim.upn, display=victim.display_name, ip=attacker_ip, object_id=victim.object_id,
                  host=f"{org.primary_domain.split('.')[0]}-mbx", spf="pass", dkim="pass", dmarc="pass", compauth="pass")
    colleagues = p.sample_users(max(3, min(40, len(org.users) // 6)), exclude={victim.upn})
    burst_rows: list[dict] = []
    for b in range(0, len(colleagues), 6):
        batch = colleagues[b:b + 6]
        burst_rows += p.message(burst_ts + timedelta(minutes=b // 2), sender, batch, template,
                                direction=ED.INTRA_ORG, IsFirstContact=False)
    post = [r["_zap"] for r in burst_rows if "_zap" in r]
    second = p.by_upn[burst_rows[0]["RecipientEmailAddress"]]
    second_click = _clicks(p, burst_rows[0], second, url, burst_rows[0]["Timestamp"] + timedelta(minutes=9))
    if second_click is None:
        raise RuntimeError("the compromised mailbox's internal phish was stopped at delivery; the detection rules changed: "
                           "make the burst lure evade them again (stories.py)")
    sequence = [
        {"step": "click", "table": "UrlClickEvents", "ReportId": phish["victim_click"], "Timestamp": click_ts.isoformat()},
        {"step": "risky_signin", "table": "AADSignInEventsBeta", "ReportId": signin_ids[-1], "Timestamp": signin_ts.isoformat()},
        {"step": "inbox_rule", "table": "CloudAppEvents", "ReportId": rule_rid, "Timestamp": rule_ts.isoformat()},
        {"step": "internal_phish_burst", "table": "EmailEvents",
         "NetworkMessageIds": sorted({r["NetworkMessageId"] for r in burst_rows}), "Timestamp": burst_ts.isoformat()},
    ]
    return {"id": "compromised-user", "kind": "compromised_user", "title": f"Compromised account: {victim.display_name}",
            "user": victim.upn, "attacker_ip": attacker_ip, "attacker_country": country, "attacker_asn": asn,
            "forwarding_address": forward_to, "sequence": sequence, "failed_signins": signin_ids[:-1],
            "mail_items_accessed": accessed, "burst_url": url, "burst_domain": domain,
            "burst_messages": [{"NetworkMessageId": r["NetworkMessageId"], "RecipientEmailAddress": r["RecipientEmailAddress"]}
                               for r in burst_rows],
            "post_delivery": post, "secondary_click": second_click}


def endpoint_alert(p: Planter, victim: User, phish: dict) -> dict:
    victim_row = next(r for r in phish["_wave1"] if r["RecipientEmailAddress"] == victim.upn)
    ts = victim_row["Timestamp"] + timedelta(minutes=18)
    alert_id = "da" + p.rng.bytes(9).hex()
    url = phish["_kit"][1]
    file_content = f"inert stand-in for a downloaded credential-theft page, {victim.upn}".encode()
    sha = hashlib.sha256(file_content).hexdigest()
    title = "Suspicious file downloaded from a phishing site and opened"
    techniques = '["Phishing: Spearphishing Link (T1566.002)","User Execution: Malicious File (T1204.002)"]'
    p.add("AlertInfo", dict(Timestamp=ts, AlertId=alert_id, Title=title, Category="InitialAccess",
                            Severity=AlertSeverity.MEDIUM.value, ServiceSource=AlertServiceSource.DEFENDER_FOR_ENDPOINT.value,
                            DetectionSource="EDR", AttackTechniques=techniques))
    base = dict(Timestamp=ts, AlertId=alert_id, Title=title, Categories='["InitialAccess"]', AttackTechniques=techniques,
                ServiceSource=AlertServiceSource.DEFENDER_FOR_ENDPOINT.value, DetectionSource="EDR",
                Severity=AlertSeverity.MEDIUM.value)
    evidence = [
        dict(EntityType=EE.MACHINE.value, EvidenceRole="Impacted", DeviceId=victim.device_id, DeviceName=victim.device_name,
             LocalIP=f"10.{victim.index % 250}.{victim.index % 200}.{20 + victim.index % 200}"),
        dict(EntityType=EE.USER.value, EvidenceRole="Impacted", AccountUpn=victim.upn, AccountObjectId=victim.object_id,
             AccountName=victim.upn.split("@")[0], AccountDomain=victim.upn.split("@")[1]),
        dict(EntityType=EE.URL.value, EvidenceRole="Related", RemoteUrl=url, NetworkMessageId=victim_row["NetworkMessageId"],
             EmailSubject=victim_row["Subject"]),
        dict(EntityType=EE.FILE.value, EvidenceRole="Related", FileName="SecureDocument_Viewer.html",
             FolderPath=f"C:\\Users\\{victim.upn.split('@')[0]}\\Downloads", SHA256=sha, DeviceId=victim.device_id,
             DeviceName=victim.device_name),
    ]
    ids = []
    for e in evidence:
        rid = p.report_id()
        p.add("AlertEvidence", {**base, **e, "ReportId": rid})
        ids.append(rid)
    return {"id": "endpoint-alert", "kind": "endpoint_alert", "title": title, "user": victim.upn,
            "device": victim.device_name, "DeviceId": victim.device_id, "AlertId": alert_id, "evidence": ids,
            "Timestamp": ts.isoformat(), "url": url}


def malware_campaign(p: Planter) -> dict:
    """Four waves from a supplier lookalike: a macro document, a zipped executable and an HTML
    smuggling page (stopped by attachment analysis), then a plain-looking PDF that only
    intelligence about its hash catches, an hour after it was delivered."""
    org, rng = p.org, p.rng
    partner = vocab.PARTNERS[int(rng.integers(len(vocab.PARTNERS)))]
    domain = partner[1].split(".")[0] + "-billing.com"
    sender = _attacker_sender(p, domain, f"{partner[0]} Accounts", local="accounts")
    waves = [
        (0.20, lures.macro_document(f"Invoice_{int(rng.integers(1000, 9999))}.docm", "1"), "Overdue invoice - immediate attention",
         "Donoff", timedelta(days=-1)),
        (0.45, lures.zipped_executable(f"Payment_Scan_{int(rng.integers(100, 999))}.zip", "Payment_Scan.pdf.exe", "2"),
         "Remittance advice", "Qakbot", timedelta(minutes=40)),
        (0.70, lures.html_smuggling("Statement_of_account.html", "3"), "Your statement of account", None, None),
        (0.85, lures.pdf_invoice(f"Payment_confirmation_{int(rng.integers(100, 999))}.pdf", "4"), "Payment confirmation",
         "Remcos", timedelta(hours=1)),
    ]
    truth = {"id": "malware-campaign", "kind": "malware",
             "title": "Malware campaign: macro document, zipped executable, HTML smuggling, PDF dropper",
             "sender_domains": [domain], "attachments": [], "messages": [], "post_delivery": []}
    for wave, (fraction, attachment, subject, family, intel_after) in enumerate(waves, 1):
        template = p.template(lures.malware_lure, subject, attachment, partner[0])
        targets = p.sample_users(max(3, len(org.users) // 12), departments=("Finance", "Procurement", "Operations", "Sales"))
        ts = p.moment(fraction, 13.0)
        if intel_after is not None:
            p.judge.feed.add("sha256", attachment.sha256, ts + intel_after, family=family,
                             description=f"{family} dropper ({attachment.file_name.rsplit('.', 1)[-1]})")
        rows = []
        for b in range(0, len(targets), 4):
            rows += p.message(ts + timedelta(minutes=2 * b), sender, targets[b:b + 4], template)
        truth["post_delivery"] += [r["_zap"] for r in rows if "_zap" in r]
        truth["attachments"].append({"wave": wave, "FileName": attachment.file_name, "SHA256": attachment.sha256,
                                     "delivered": sum(delivered(r) for r in rows)})
        truth["messages"] += [{"NetworkMessageId": r["NetworkMessageId"], "RecipientEmailAddress": r["RecipientEmailAddress"],
                               "wave": wave} for r in rows]
        truth.setdefault("_attachments", []).append(attachment)
    return truth


def content_malware(p: Planter, malware: dict) -> dict:
    """Malware files in SharePoint, OneDrive and Teams (one reuses a campaign attachment's hash);
    each file is judged by the same analyzers as mail attachments."""
    org, rng = p.org, p.rng
    stem = org.primary_domain.split(".")[0]
    macro, zipped, smuggle = malware["_attachments"][:3]
    finance = p.sample_users(1, departments=("Finance",))[0]
    owner = p.sample_users(1, departments=("Engineering", "Sales"))[0]
    sales = p.sample_users(1, departments=("Sales", "Marketing"))[0]
    files = [
        (FileWorkload.SHAREPOINT, finance, f"https://{stem}.sharepoint.com/sites/Finance", "Shared Documents/AP/" + macro.file_name, macro, 0.25),
        (FileWorkload.ONEDRIVE, owner, f"https://{stem}-my.sharepoint.com/personal/{owner.upn.replace('@', '_').replace('.', '_')}",
         "Documents/Downloads/" + zipped.file_name, zipped, 0.5),
        (FileWorkload.TEAMS, sales, f"https://{stem}.sharepoint.com/sites/SalesTeam", "Shared Documents/General/" + smuggle.file_name,
         smuggle, 0.75),
    ]
    truth = {"id": "content-malware", "kind": "content_malware", "title": "Malicious files in SharePoint, OneDrive and Teams",
             "files": []}
    app = {FileWorkload.SHAREPOINT: "Microsoft SharePoint Online", FileWorkload.ONEDRIVE: "Microsoft OneDrive for Business",
           FileWorkload.TEAMS: "Microsoft Teams"}
    for workload, user, site, path, att, fraction in files:
        uploaded = p.moment(fraction, 15.0)
        detected = uploaded + timedelta(minutes=int(rng.integers(3, 25)))
        judged = p.judge.judge_file(att, detected)
        doc_id = p.uuid()
        up = p.report_id()
        p.add("CloudAppEvents", cloud_event(user, uploaded, CloudAppActionType.FILE_UPLOADED.value, up, application=app[workload],
                                            object_name=f"{site}/{path}", object_id=f"{site}/{path}",
                                            raw={"Operation": "FileUploaded", "UserId": user.upn, "SiteUrl": site, "SourceFileName": att.file_name}))
        place = FileRef.of(workload, site_of(site), path)
        p.files.append((place, att.content))
        record = {"Workload": workload.value, "FileName": att.file_name, "SHA256": att.sha256, "DocumentId": doc_id,
                  "upload": up, "owner": user.upn, "detected": judged is not None, "place": place.key}
        if judged is not None:
            rid = p.report_id()
            p.add("FileMaliciousContentInfo", dict(
                Timestamp=detected, Workload=workload.value, FileName=att.file_name, FolderPath=f"{site}/{path.rsplit('/', 1)[0]}",
                SiteUrl=site, DocumentId=doc_id, SHA256=att.sha256, FileSize=att.size, ThreatTypes="Malware",
                ThreatNames=judged["ThreatNames"], DetectionMethods=judged["DetectionMethods"], FileOwner=user.upn,
                LastModifiedBy=user.upn, LastModifiedTime=uploaded, ReportId=rid))
            det = p.report_id()
            p.add("CloudAppEvents", cloud_event(user, detected, CloudAppActionType.FILE_MALWARE_DETECTED.value, det,
                                                application=app[workload], object_name=f"{site}/{path}", object_id=doc_id,
                                                IsAdminOperation=False, ActivityType="Detect",
                                                raw={"Operation": "FileMalwareDetected", "SiteUrl": site, "SHA256": att.sha256}))
            record.update(ReportId=rid, detection_event=det)
        truth["files"].append(record)
    return truth


def bec(p: Planter) -> dict:
    """The chief executive impersonated twice: first by full name from a free-mail address with
    replies going elsewhere (caught), then by first name and initial from a new domain (the kind
    of message that gets through, and someone answers)."""
    org, rng = p.org, p.rng
    ceo = org.users[0]
    free = vocab.FREEMAIL[int(rng.integers(len(vocab.FREEMAIL) - 1))]
    address = f"{ceo.given_name.lower()}.{ceo.surname.lower()}.office@{free[0]}"
    reply_to = f"{ceo.given_name.lower()}{ceo.surname.lower()}.exec@proton.me"
    first = dict(address=address, display=ceo.display_name, ip=public_ip(rng, free[1]), host=f"mail-{free[0].split('.')[0]}.{free[0]}",
                 spf="pass", dkim="pass", dmarc="pass", compauth="pass")
    new_domain = f"{org.primary_domain.split('.')[0][:4]}{['-group', '-holdings', 'hq'][int(rng.integers(3))]}.{['co', 'net', 'org'][int(rng.integers(3))]}"
    second = dict(address=f"{ceo.given_name.lower()}@{new_domain}", display=f"{ceo.given_name} {ceo.surname[0]}.",
                  ip=public_ip(rng), host=f"mail.{new_domain}", spf="pass", dkim="pass", dmarc="pass", compauth="pass")
    truth = {"id": "bec-impersonation", "kind": "bec", "title": f"Business email compromise: {ceo.display_name} impersonated",
             "impersonated_user": ceo.upn, "senders": [address, second["address"]], "reply_to": reply_to, "messages": [],
             "replies": []}
    targets_pool = [u for u in org.users if u.department == "Finance" or u.title == "Executive Assistant"] or list(org.users[1:])
    for fraction, subject, ask, sender, reply in ((0.4, "Quick favour", "gift card", first, reply_to),
                                                  (0.85, "Urgent: vendor payment today", "invoice", second, None)):
        template = p.template(lures.bec_lure, subject, ceo.given_name, ask)
        count = min(len(targets_pool), 3 + int(rng.integers(3)))
        targets = [targets_pool[i] for i in sorted(rng.choice(len(targets_pool), size=count, replace=False))]
        ts = p.moment(fraction, 7.5)
        for k, target in enumerate(targets):
            row = p.message(ts + timedelta(minutes=11 * k), sender, [target], template, **({"ReplyTo": reply} if reply else {}))[0]
            truth["messages"].append({"NetworkMessageId": row["NetworkMessageId"], "RecipientEmailAddress": target.upn,
                                      "detected": not delivered(row)})
            if delivered(row) and not truth["replies"]:
                answer_to = reply or sender["address"]
                reply_tpl = p.template(make_template, "outbound", f"Re: {subject}",
                                       ["Sure, I can help. Which store and how many?" if ask == "gift card"
                                        else "Understood, send me the new bank details and I will process it today.",
                                        target.display_name])
                me = dict(address=target.upn, display=target.display_name, ip=user_ip(target), object_id=target.object_id,
                          host=f"{org.primary_domain.split('.')[0]}-mbx", spf="pass", dkim="pass", dmarc="pass", compauth="pass")
                answer = p.message(ts + timedelta(minutes=11 * k + 14), me, [answer_to], reply_tpl, direction=ED.OUTBOUND,
                                   IsFirstContact=True)
                truth["replies"].append({"NetworkMessageId": answer[0]["NetworkMessageId"], "from": target.upn, "to": answer_to})
    return truth


def user_reports(p: Planter, phish: dict) -> dict:
    """Users report real phish, an awareness simulation, and some clean mail."""
    org, rng = p.org, p.rng
    by_upn = p.by_upn
    truth = {"id": "user-reports", "kind": "user_reports", "title": "Messages reported by users",
             "phish_reports": [], "simulation_reports": [], "clean_reports": [], "simulation_messages": []}
    got_through = [r for r in p.specs if r["TemplateId"] in {t.id for t in p.catalog.templates.values() if t.category == "phish"}
                   and delivered(r) and r["EmailDirection"] == ED.INBOUND.value]
    for row in [got_through[i] for i in sorted(rng.choice(len(got_through), size=min(4, len(got_through)), replace=False))]:
        rid = p.report(by_upn[row["RecipientEmailAddress"]], row, row["Timestamp"] + timedelta(minutes=int(rng.integers(15, 90))), ReportType.PHISH)
        truth["phish_reports"].append({"ReportId": rid, "NetworkMessageId": row["NetworkMessageId"],
                                       "RecipientEmailAddress": row["RecipientEmailAddress"]})

    # An authorised phishing simulation (allowed by policy) that some people report and some click.
    sim_domain = "payrolltooling.com"
    url = f"https://{sim_domain}/track/{p.rng.bytes(5).hex()}"
    template = p.template(lures.simulation_lure, "Delivery failed: reschedule your parcel", url)
    sender = dict(address=f"delivery@{sim_domain}", display="Parcel Delivery", ip=public_ip(rng, "40.107"),
                  host=f"sim.{sim_domain}", spf="pass", dkim="pass", dmarc="pass", compauth="pass")
    targets = p.sample_users(max(5, len(org.users) // 10))
    ts = p.moment(0.62, 10.0)
    rows = p.message(ts, sender, targets, template, OrgLevelAction="Allow", OrgLevelPolicy="Phishing Simulation")
    truth["simulation_messages"] = [{"NetworkMessageId": r["NetworkMessageId"], "RecipientEmailAddress": r["RecipientEmailAddress"]} for r in rows]
    for k, row in enumerate(rows):
        user = by_upn[row["RecipientEmailAddress"]]
        if k % 4 == 0:
            truth["simulation_reports"].append({"ReportId": p.report(user, row, ts + timedelta(minutes=5 + 3 * k), ReportType.PHISH),
                                                "NetworkMessageId": row["NetworkMessageId"], "RecipientEmailAddress": user.upn})
        elif k % 5 == 1:
            p.add("UrlClickEvents", click(user.upn, p.clamp(ts + timedelta(minutes=7 + k)), url, p.report_id(),
                                          nmid=row["NetworkMessageId"], ip=user_ip(user)))

    # Clean mail reported as phish (false positives the SOC must close quickly).
    partner = org.partners[int(rng.integers(len(org.partners)))]
    clean_tpl = p.template(make_template, "partner", "Action needed: confirm remittance details",
                           ["Please verify the updated remittance details in our supplier portal.", partner.display_name],
                           [("Supplier portal", f"https://portal.{partner.domain}/remittance")])
    reporters = p.sample_users(3)
    psender = dict(address=partner.address, display=partner.display_name, ip=partner.ips[0],
                   host=f"mail-{partner.domain.replace('.', '-')}.outbound.protection.outlook.com",
                   spf="pass", dkim="pass", dmarc="pass", compauth="pass")
    for k, user in enumerate(reporters):
        row = p.message(p.moment(0.35 + 0.15 * k, 11.0), psender, [user], clean_tpl, IsFirstContact=False)[0]
        truth["clean_reports"].append({"ReportId": p.report(user, row, row["Timestamp"] + timedelta(minutes=20), ReportType.PHISH),
                                       "NetworkMessageId": row["NetworkMessageId"], "RecipientEmailAddress": user.upn})
    return truth


def plant(p: Planter) -> list[dict]:
    """Plant every story; return the ground truth records (JSON-serialisable)."""
    candidates = [u for u in p.org.users if not u.is_executive and "Priority account" not in u.tags
                  and u.department in ("Sales", "Marketing", "Operations", "Customer Support")] or list(p.org.users[1:])
    victim = candidates[int(p.rng.integers(len(candidates)))]
    phish = credential_phish(p, victim)
    stories = [phish, compromised_user(p, victim, phish), endpoint_alert(p, victim, phish)]
    malware = malware_campaign(p)
    stories += [malware, content_malware(p, malware), bec(p), user_reports(p, phish)]
    return [{k: v for k, v in s.items() if not k.startswith("_")} for s in stories]
