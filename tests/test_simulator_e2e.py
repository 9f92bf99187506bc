"""The attack simulator end to end, with real parts only: a campaign for 50 directory users is
sent over SMTP (smtplib) to the embedded aiosmtpd server, which delivers each message into the
tenant's mail store and lake; an HTTP client then follows the links through the real tracking
server as some users (reads, clicks, credential submits, attachment opens, reports) and as
scanners; the report shows exactly the expected counts, flags the scanner events with their
reasons, and the submitted password appears nowhere: not in the store, the lake, the mail
store, the audit log or any log output.

Retries: an SMTP server refusing temporarily leads to retries with back-off and eventual
delivery; refusing permanently marks the target failed."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from workbench import audit, rbac
from workbench.enums import Folder
from workbench.errors import PermissionDenied
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore
from workbench.rbac import Role
from workbench.simulator import config as simconfig
from workbench.simulator.campaigns import CampaignSettings, SimulationService
from workbench.simulator.mail_server import EmbeddedSmtpServer, tenant_delivery
from workbench.simulator.model import CampaignStatus, Technique
from workbench.simulator.payload_store import get_payload
from workbench.simulator.recorder import StoreTracker
from workbench.simulator.reports import campaign_report, export_users_csv, user_rows
from workbench.simulator.sending import notify_due, send_due
from workbench.simulator.smtp import Backoff
from workbench.simulator.targets import TargetFilter, select
from workbench.simulator.tracking import TrackingServer
from workbench.store import open_store
from workbench.tenant import open_tenant

PASSWORD = "Winter-Is-Coming-2026!"  # what the phished users type: it must never be stored
BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/131.0 Safari/537.36",
           "Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en-US,en;q=0.9"}
SCANNER = {"User-Agent": "python-requests/2.32.3", "Accept": "*/*"}
ADMIN, SIM_ADMIN, AUTHOR = "root", "simon", "paula"


@pytest.fixture(scope="module")
def base_tenant(tmp_path_factory):
    from workbench.ingest.demo import generate

    base = tmp_path_factory.mktemp("sim-home")
    generate("sim", users=60, days=1, seed=21, end=date(2026, 11, 20), base=base, progress=False)
    return open_tenant("sim", base=base)


@pytest.fixture
def tenant(base_tenant, tmp_path, monkeypatch):
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(base_tenant.root, tmp_path / "tenants" / "sim", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    t = open_tenant("sim", base=tmp_path)
    store = open_store(t)
    rbac.bootstrap(store, ADMIN)
    rbac.grant(store, ADMIN, SIM_ADMIN, Role.ATTACK_SIMULATION_ADMINISTRATOR)
    rbac.grant(store, ADMIN, AUTHOR, Role.ATTACK_PAYLOAD_AUTHOR)
    store.dispose()
    return t


def configure(tenant, *, smtp_port: int, base_url: str, domains: tuple[str, ...]) -> simconfig.SimulatorConfig:
    cfg = simconfig.SimulatorConfig(base_url=base_url, organisation="Adatum security", simulation_domains=domains,
                                    smtp={"host": "127.0.0.1", "port": smtp_port, "timeout": 10})
    simconfig.save(tenant, cfg)
    return cfg


def test_campaign_end_to_end(tenant, caplog):
    caplog.set_level(logging.DEBUG)
    store = open_store(tenant)
    lake = Lake.for_tenant(tenant)
    recipients = select(lake, TargetFilter(all_users=True, limit=50))
    assert len(recipients) == 50
    payload = get_payload(store, "password-expiry-notice")
    assert payload.technique is Technique.CREDENTIAL_HARVEST
    sender_domain = payload.sender_address.split("@")[1]

    with TrackingServer(StoreTracker(store, organisation="Adatum security"), min_seconds=0) as web, \
            EmbeddedSmtpServer(tenant_delivery(tenant)) as smtp:
        cfg = configure(tenant, smtp_port=smtp.port, base_url=web.base_url, domains=(sender_domain,))
        # only simulation administrators launch; payload authors neither launch nor see reports
        with pytest.raises(PermissionDenied, match="simulation management"):
            SimulationService(store, AUTHOR).create("nope", payload.id, recipients)
        service = SimulationService(store, SIM_ADMIN)
        campaign = service.create("Password expiry, Q4", payload.id, recipients,
                                  settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False,
                                                            training=("spot-credential-phishing",),
                                                            assign_training_to="compromised"))
        assert campaign.status is CampaignStatus.DRAFT and campaign.targets == 50
        campaign = service.launch(campaign.id)
        assert campaign.status is CampaignStatus.RUNNING
        with pytest.raises(PermissionDenied):
            campaign_report(store, campaign.id, actor=AUTHOR)

        summary = send_due(store, cfg)
        assert (summary.sent, summary.retried, summary.failed) == (50, 0, 0), summary.errors

        # the messages landed in the mail store and the lake like any mail, as an authorised simulation
        mail = EmbeddedMailStore.for_tenant(tenant)
        try:
            for r in recipients:
                assert mail.messages_in(r.email, Folder.INBOX), f"{r.email} has no message in the Inbox"
        finally:
            mail.close()
        rows = (lake.scan("EmailEvents").filter(pl.col("SenderFromDomain") == sender_domain).collect())
        assert rows.height == 50 and set(rows["RecipientEmailAddress"].str.to_lowercase()) == {r.email for r in recipients}
        assert set(rows["OrgLevelPolicy"]) == {"Phishing Simulation"}

        targets = {t.recipient.email: t for t in service.targets(campaign.id)}
        users = [targets[r.email] for r in recipients]
        with httpx.Client(base_url=web.base_url, headers=BROWSER, follow_redirects=False, timeout=10) as client:
            for u in users[:12]:  # 12 open the message (the pixel)
                assert client.get(f"/p/{u.token}.png").status_code == 200
            for u in users[:8]:  # 8 click
                page = client.get(f"/c/{u.token}")
                assert page.status_code == 200 and 'name="password"' in page.text
            for u in users[:5]:  # 5 type their password
                done = client.post(f"/login/{u.token}", data={"username": u.recipient.email, "password": PASSWORD})
                assert done.status_code in (200, 303) and PASSWORD not in done.text
            for u in users[40:43]:  # 3 report it
                assert client.post(f"/r/{u.token}").status_code == 200
            client.post(f"/r/{users[40].token}")  # a second report changes nothing
            for u in users[20:26]:  # a scanner follows 6 links and submits one form
                client.get(f"/c/{u.token}", headers=SCANNER)
            client.post(f"/login/{users[20].token}", headers=SCANNER, data={"username": "x", "password": PASSWORD})
            client.head(f"/c/{users[30].token}")  # not a browser
            client.get(f"/c/{users[31].token}", headers={"User-Agent": "Slackbot-LinkExpanding 1.0"})  # a preview
            client.get(f"/c/{users[32].token}+")  # transparency: not an event at all
            assert client.get("/c/not-a-real-token").status_code == 404

        report = campaign_report(store, campaign.id, actor=SIM_ADMIN)
        c = report.counts
        assert (c["targeted"], c["delivered"], c["failed"]) == (50, 50, 0)
        assert (c["read"], c["clicked"], c["credentials_supplied"], c["compromised"], c["reported"]) == (12, 8, 5, 5, 3)
        assert c["flagged_events"] == 6 + 1 + 1 + 1
        assert report.rates == {"compromise_rate": 5 / 50, "click_rate": 8 / 50, "report_rate": 3 / 50}
        assert report.timing["first_click_seconds"] is not None and report.timing["average_report_seconds"] is not None
        reasons = report.flagged.group_by("reasons").len().sort("reasons")
        assert "scanner_agent" in set(",".join(reasons["reasons"]).split(","))
        assert "not_a_browser" in ",".join(reasons["reasons"]) and "link_preview" in ",".join(reasons["reasons"])
        assert set(report.flagged["user"]) == {users[i].recipient.email for i in (20, 21, 22, 23, 24, 25, 30, 31)}
        scanned = {t.recipient.email: t for t in service.targets(campaign.id)}[users[21].recipient.email]
        assert scanned.status.value == "delivered"  # a scanner's click moves nobody forward
        assert report.by_department["received"].sum() == 50

        csv_path = tenant.root / "users.csv"
        assert export_users_csv(store, campaign.id, csv_path, actor=SIM_ADMIN) == 50
        per_user = {r["UserMail"]: r for r in user_rows(store, campaign.id)}
        first = per_user[users[0].recipient.email]
        assert first["Compromised"] == "Yes" and first["CredSupplied_Browser"] == "Chrome"
        assert first["EmailLinkClicked_ClickSource"] == "PhishingURL" and first["CredSupplied_Device"] == "Windows"
        assert per_user[users[20].recipient.email]["Compromised"] == "No"
        assert per_user[users[20].recipient.email]["ExcludedEvents"] == "2"
        assert first["Assigned Trainings"] == "spot-credential-phishing" and first["Training Status"] == "In progress"
        assert sum(1 for r in per_user.values() if r["Assigned Trainings"]) == 5  # the compromised ones

        # notifications: training assigned to the 5 compromised, thanks to the 3 reporters; once each
        notified = notify_due(store, cfg)
        assert (notified.assignments, notified.reminders, notified.reinforcements) == (5, 0, 3), notified.errors
        assert notify_due(store, cfg).render() == notify_due(store, cfg).render() == \
            "0 training assignment(s), 0 reminder(s), 0 thank-you message(s)"
        later = notify_due(store, cfg, now=datetime.now(UTC) + timedelta(days=8))  # weekly reminders of open training
        assert later.reminders == 5
        thanked = (lake.scan("EmailEvents").filter(pl.col("Subject") == "Thank you for reporting a phishing message")
                   .collect())
        assert set(thanked["RecipientEmailAddress"].str.to_lowercase()) == {users[i].recipient.email for i in (40, 41, 42)}

    store.dispose()
    # no password anywhere: store, lake, mail store, config, exports, audit log, logs
    leaks = [p for p in Path(tenant.root).rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert not leaks, f"the password was written to {leaks}"
    assert PASSWORD not in caplog.text
    store = open_store(tenant)
    try:
        assert all(PASSWORD not in str(r.to_json()) for r in audit.query(store, limit=None))
        assert audit.query(store, activity="simulator.launch")[0].actor == SIM_ADMIN
    finally:
        store.dispose()


def test_retries_then_delivery_and_permanent_failure(tenant):
    store = open_store(tenant)
    lake = Lake.for_tenant(tenant)
    recipients = select(lake, TargetFilter(all_users=True, limit=3))
    flaky, gone = recipients[0].email, recipients[1].email
    refusals: dict[str, int] = {}

    def policy(mail_from: str, rcpt: str) -> str | None:
        if rcpt.lower() == gone:
            return "550 5.1.1 no such mailbox here"
        if rcpt.lower() == flaky and refusals.get(rcpt, 0) < 2:
            refusals[rcpt] = refusals.get(rcpt, 0) + 1
            return "451 4.3.0 mailbox busy, try again later"
        return None

    with EmbeddedSmtpServer(tenant_delivery(tenant), policy=policy) as smtp:
        cfg = configure(tenant, smtp_port=smtp.port, base_url="http://127.0.0.1:9", domains=())
        service = SimulationService(store, SIM_ADMIN)
        campaign = service.create("Retries", "password-expiry-notice", recipients,
                                  settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False))
        service.launch(campaign.id)
        backoff = Backoff(base_seconds=60, factor=2, max_seconds=3600, max_attempts=5)
        now = datetime.now(UTC)
        first = send_due(store, cfg, now=now, backoff=backoff)
        assert (first.sent, first.retried, first.failed) == (1, 1, 1)
        assert any("no such mailbox" in e for e in first.errors)
        assert send_due(store, cfg, now=now + timedelta(seconds=30), backoff=backoff).sent == 0  # not due yet
        second = send_due(store, cfg, now=now + timedelta(seconds=61), backoff=backoff)
        assert (second.sent, second.retried) == (0, 1)  # refused again: back off 120 s
        third = send_due(store, cfg, now=now + timedelta(seconds=61 + 121), backoff=backoff)
        assert (third.sent, third.retried, third.failed) == (1, 0, 0)
    by_email = {t.recipient.email: t for t in service.targets(campaign.id)}
    assert by_email[flaky].status.value == "delivered" and by_email[flaky].attempts == 3
    assert by_email[gone].status.value == "failed" and "550" in by_email[gone].last_error
    report = campaign_report(store, campaign.id)
    assert (report.counts["delivered"], report.counts["failed"]) == (2, 1)
    assert report.rates["compromise_rate"] == 0.0
    store.dispose()


def test_an_unreachable_relay_blames_no_target(tenant):
    store = open_store(tenant)
    recipients = select(Lake.for_tenant(tenant), TargetFilter(all_users=True, limit=4))
    cfg = configure(tenant, smtp_port=9, base_url="http://127.0.0.1:9", domains=())  # nothing listens on port 9
    service = SimulationService(store, SIM_ADMIN)
    campaign = service.create("Unreachable", "password-expiry-notice", recipients,
                              settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False))
    service.launch(campaign.id)
    summary = send_due(store, cfg)
    assert (summary.sent, summary.failed, summary.retried) == (0, 0, 4)
    assert "stay queued" in summary.errors[-1]
    assert {t.status.value for t in service.targets(campaign.id)} == {"pending"}
    store.dispose()


def test_reports_through_the_report_mailbox_and_the_report_button(tenant):
    """A reported simulation message marks its target reported, whichever way it was reported."""
    import json
    from email.message import EmailMessage

    from workbench import schema
    from workbench.ingest.batch import ingest
    from workbench.ingest.sources import RawItem
    from workbench.simulator.user_reports import mark_user_reports

    store = open_store(tenant)
    lake = Lake.for_tenant(tenant)
    recipients = select(lake, TargetFilter(all_users=True, limit=3))
    with EmbeddedSmtpServer(tenant_delivery(tenant)) as smtp:
        cfg = configure(tenant, smtp_port=smtp.port, base_url="http://127.0.0.1:9",
                        domains=("c0mpany-helpdesk.example",))
        service = SimulationService(store, SIM_ADMIN)
        campaign = service.create("Reports", "password-expiry-notice", recipients,
                                  settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False))
        service.launch(campaign.id)
        assert send_due(store, cfg).sent == 3
    mail = EmbeddedMailStore.for_tenant(tenant)
    try:
        raws = {r.email: mail.raw(mail.messages_in(r.email, Folder.INBOX)[-1]) for r in recipients}
    finally:
        mail.close()
    mailbox_reporter, button_reporter, silent = (r.email for r in recipients)

    wrapper = EmailMessage()  # the report mailbox: the original forwarded as an attachment
    wrapper["From"], wrapper["To"] = mailbox_reporter, "reportphish@adatum.com"
    wrapper["Subject"], wrapper["Date"] = "Suspicious", "Sun, 06 Dec 2026 10:00:00 +0000"
    wrapper["Message-ID"] = "<report-1@adatum.com>"
    wrapper.set_content("Looks like phish.")
    from email import message_from_bytes, policy

    wrapper.add_attachment(message_from_bytes(raws[mailbox_reporter], policy=policy.default))
    assert ingest(tenant, [RawItem("report.eml", wrapper.as_bytes(), location="Inbox/folder",
                                   mailbox="reportphish@adatum.com")]).messages == 1

    copy = (lake.scan("EmailEvents").filter(pl.col("RecipientEmailAddress").str.to_lowercase() == button_reporter)
            .sort("Timestamp").collect().row(-1, named=True))
    at = datetime.now(UTC).replace(microsecond=0)
    lake.append("CloudAppEvents", schema.table("CloudAppEvents").from_rows([{  # the report button
        "Timestamp": at, "ActionType": "UserSubmission", "ObjectId": copy["NetworkMessageId"], "ReportId": "sub-1",
        "RawEventData": json.dumps({"Operation": "UserSubmission", "UserId": button_reporter, "ReportType": "Phish",
                                    "NetworkMessageId": copy["NetworkMessageId"]})}]))

    assert mark_user_reports(store, lake) == 2
    assert mark_user_reports(store, lake) == 0  # once
    by_email = {t.recipient.email: t for t in service.targets(campaign.id)}
    assert by_email[mailbox_reporter].times["reported"] is not None
    assert by_email[button_reporter].times["reported"] == at
    assert by_email[silent].times["reported"] is None
    report = campaign_report(store, campaign.id)
    assert report.counts["reported"] == 2 and report.rates["report_rate"] == 2 / 3
    store.dispose()


def test_the_demo_campaign_is_seeded_once(tenant):
    """`workbench demo`'s simulation stage: 50 messages over SMTP, seeded behaviour, scanners flagged."""
    from workbench.simulator.demo import seed

    assert "50 message(s) sent" in seed(tenant)
    assert seed(tenant) == "a simulation campaign exists already"
    store = open_store(tenant)
    try:
        report = campaign_report(store, 1)
        c = report.counts
        assert c["delivered"] == 50 and 0 < c["compromised"] <= c["clicked"] <= c["read"] <= 50 and c["reported"] > 0
        assert c["flagged_events"] > 0 and "scanner_network" in ",".join(report.flagged["reasons"])
        sims = Lake.for_tenant(tenant).scan("EmailEvents").filter(pl.col("OrgLevelPolicy") == "Phishing Simulation")
        assert sims.collect().height >= 50
    finally:
        store.dispose()
