"""The Simulator panel built headless on a copy of the small tenant: campaigns, the create wizard,
the report (counts, flagged events with hostile user agents escaped), roles, the CSV export."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from workbench import rbac
from workbench.lake import Lake
from workbench.rbac import Role
from workbench.simulator.campaigns import CampaignSettings, SimulationService
from workbench.simulator.model import CampaignStatus, EventKind, Hit
from workbench.simulator.payload_store import save_payload
from workbench.simulator.recorder import StoreTracker
from workbench.simulator.targets import TargetFilter, select
from workbench.store import open_store
from workbench.tenant import open_tenant
from workbench.ui.simulator import SimulatorPanel

ADMIN, SIM, READER, AUTHOR = "root", "simon", "rita", "paula"
XSS = '<img src=x onerror=window.__xss=1>'
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def hostile_payload(store, actor: str = AUTHOR) -> str:
    """A tenant payload whose name, subject, sender name and indicators are script."""
    save_payload(store, actor, {
        "id": "hostile-test", "name": f"Hostile {XSS}", "technique": "credentialHarvest",
        "subject": f"Reset {XSS} now", "sender_name": f"IT {XSS}", "sender_address": "it@phish.example",
        "html": "<p>Hi {{name}}, <a href=\"{{link}}\">reset</a></p><script>window.__xss=3</script>",
        "text": f"Hi {{{{name}}}}, reset at {{{{link}}}} {XSS}", "indicators": [f"look at {XSS}"]})
    return "hostile-test"


@pytest.fixture
def tenant(small_tenant, tmp_path, monkeypatch):
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER", "QUERY_STRING"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small",
                    ignore=shutil.ignore_patterns("workbench.sqlite*"))
    t = open_tenant("small", base=tmp_path)
    store = open_store(t)
    rbac.bootstrap(store, ADMIN)
    for user, role in ((SIM, Role.ATTACK_SIMULATION_ADMINISTRATOR), (READER, Role.SECURITY_READER),
                       (AUTHOR, Role.ATTACK_PAYLOAD_AUTHOR)):
        rbac.grant(store, ADMIN, user, role)
    store.dispose()
    return t


@pytest.fixture
def running(tenant):
    """A running campaign of the hostile payload for 6 users, with events recorded."""
    store = open_store(tenant)
    pid = hostile_payload(store)
    recipients = select(Lake.for_tenant(tenant), TargetFilter(all_users=True, limit=6))
    svc = SimulationService(store, SIM)
    c = svc.create(f"Campaign {XSS}", pid, recipients,
                   settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False))
    svc.launch(c.id)
    tracker = StoreTracker(store)
    toks = [x.token for x in svc.targets(c.id)]
    now = datetime.now(UTC)

    def hit(seconds: int, agent: str = BROWSER, reasons: tuple[str, ...] = ()) -> Hit:
        return Hit(at=now + timedelta(seconds=seconds), ip="198.51.100.7", user_agent=agent, source="link",
                   reasons=reasons)
    for tok in toks:
        tracker.record(tok, EventKind.DELIVERED, hit(0))
    for tok in toks[:3]:
        tracker.record(tok, EventKind.CLICKED, hit(60))
    tracker.record(toks[0], EventKind.CREDENTIALS_SUPPLIED, hit(90))
    tracker.record(toks[5], EventKind.REPORTED, hit(120))
    tracker.record(toks[4], EventKind.CLICKED, hit(1, agent=XSS, reasons=("scanner_agent",)))
    yield store, svc, c, tracker, toks
    store.dispose()


def panel_for(tenant, user: str, store) -> SimulatorPanel:
    return SimulatorPanel(SimulationService(store, user), lake=Lake.for_tenant(tenant), tenant=tenant,
                          export_dir=tenant.root / "reports")


def test_report_shows_counts_and_escapes_hostile_values(tenant, running):
    store, svc, c, tracker, toks = running
    panel = panel_for(tenant, SIM, store)
    assert f'data-campaign="{c.id}"' in panel.campaign_table.value
    assert XSS not in panel.campaign_table.value and "Campaign &lt;img" in panel.campaign_table.value
    assert panel.open_report(c.id)
    counts = panel.report_counts.value
    for key, n in (("targeted", 6), ("delivered", 6), ("clicked", 3), ("compromised", 1), ("reported", 1),
                   ("flagged_events", 1)):
        assert f'data-count="{key}">{n}<' in counts, key
    assert 'data-rate="compromise_rate">16.7%<' in panel.report_counts.value
    assert "&lt;img src=x onerror=window.__xss=1&gt;" in panel.flagged_table.value
    assert XSS not in panel.flagged_table.value and "scanner_agent" in panel.flagged_table.value
    assert len(panel.charts.children) == 2 and all(ch.format == "svg+xml" for ch in panel.charts.children)
    assert panel.users_table.value.count("data-user=") == 6
    for html in (panel.report_head.value, panel.users_table.value, panel.campaign_table.value):
        assert "<img" not in html and "<script" not in html

    # an event after the report was drawn shows on reload (what Live does)
    tracker.record(toks[1], EventKind.CREDENTIALS_SUPPLIED, Hit(at=datetime.now(UTC) + timedelta(minutes=3),
                                                                 ip="198.51.100.8", user_agent=BROWSER, source="form"))
    assert panel.reload()
    assert 'data-count="compromised">2<' in panel.report_counts.value


def test_live_toggle_starts_and_stops_a_thread(tenant, running):
    store, svc, c, tracker, toks = running
    panel = panel_for(tenant, SIM, store)
    panel.live_seconds = 0.1
    panel.open_report(c.id)
    panel.live.value = True
    thread = panel._live_thread
    assert thread is not None and thread.is_alive()
    tracker.record(toks[2], EventKind.CREDENTIALS_SUPPLIED, Hit(at=datetime.now(UTC) + timedelta(minutes=3),
                                                                 ip="198.51.100.9", user_agent=BROWSER, source="form"))
    deadline = datetime.now() + timedelta(seconds=10)
    while 'data-count="compromised">2<' not in panel.report_counts.value and datetime.now() < deadline:
        thread.join(0.1)
    assert 'data-count="compromised">2<' in panel.report_counts.value
    panel.live.value = False
    assert not thread.is_alive() and panel._live_thread is None


def test_payload_preview_is_text_only(tenant, running):
    store, *_ = running
    panel = panel_for(tenant, SIM, store)
    panel.technique.value = "credentialHarvest"
    panel.payload.value = "hostile-test"
    html = panel.payload_preview.value
    assert "Reset &lt;img src=x onerror=window.__xss=1&gt; now" in html
    assert "look at &lt;img" in html and "IT &lt;img" in html or "IT &lt;img" in html.replace("&quot;", "")
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html  # HTML only as source
    assert "Alex" in html  # the sample recipient filled the text part


def test_reader_sees_reports_but_cannot_act(tenant, running):
    store, svc, c, *_ = running
    panel = panel_for(tenant, READER, store)
    for b in (panel.launch_button, panel.cancel_button, panel.save_button, panel.wizard_launch_button,
              panel.test_button):
        assert b.disabled and "simulation management" in b.tooltip
    assert panel.open_report(c.id) and 'data-count="targeted">6<' in panel.report_counts.value
    assert panel.cancel() is None and "simulation management" in panel.error.value  # the service refuses too
    assert svc.get(c.id).status is CampaignStatus.RUNNING


def test_payload_author_is_refused_reports(tenant, running):
    store, svc, c, *_ = running
    panel = panel_for(tenant, AUTHOR, store)
    assert "lacks the simulation management or metadata read permission" in panel.error.value
    assert not panel.open_report(c.id)
    assert "wb-refusal" in panel.report_head.value and "metadata read" in panel.report_head.value
    assert panel.report_counts.value == "" and panel.users_table.value == ""
    assert "Traceback" not in panel.error.value


def test_wizard_saves_a_draft_with_the_chosen_settings(tenant):
    store = open_store(tenant)
    try:
        panel = panel_for(tenant, SIM, store)
        assert 'data-count="0"' in panel.count.value
        panel.name.value = "Payroll Q4"
        panel.technique.value = "credentialHarvest"
        panel.payload.value = "password-expiry-notice"
        dept = panel.departments.options[0]
        panel.departments.value = (dept,)
        expected = select(Lake.for_tenant(tenant), TargetFilter(departments=(dept,)))
        excluded = expected[0].email
        panel.exclude.value = excluded
        assert f'data-count="{len(expected) - 1}"' in panel.count.value
        panel.training.value = ("spot-credential-phishing",)
        panel.assign.value = "clicked"
        panel.due.value = 30
        panel.landing.value = "custom"
        panel.landing_url.value = "https://training.example.org/phish"
        panel.reinforcement.value = "after_end"
        panel.reminder.value = "twice_weekly"
        panel.window.value = (8, 18)
        panel.spread.value = 30
        panel.end_days.value = 7
        assert "Payroll Q4" in panel.summary.value and "twice_weekly" in panel.summary.value
        made = panel.save_draft()
        assert made is not None, panel.error.value
        assert made.status is CampaignStatus.DRAFT and made.targets == len(expected) - 1
        s = made.settings
        assert (s.training, s.assign_training_to, s.training_due_days) == (("spot-credential-phishing",), "clicked", 30)
        assert (s.landing_url, s.positive_reinforcement, s.training_reminder) == (
            "https://training.example.org/phish", "after_end", "twice_weekly")
        assert (s.window_start, s.window_end, s.spread_minutes, s.end_after_days) == (8, 18, 30, 7)
        emails = {t.recipient.email for t in SimulationService(store, SIM).targets(made.id)}
        assert excluded not in emails
        assert f'data-campaign="{made.id}"' in panel.campaign_table.value

        # scheduled launch from the wizard; a bad setting is one escaped line
        panel.when.value = "later"
        panel.launch_date.value = (datetime.now(UTC) + timedelta(days=3)).date()
        panel.launch_time.value = "10:30"
        panel.launch_zone.value = "Europe/Paris"
        done = panel.create_and_launch()
        assert done is not None and done.status is CampaignStatus.SCHEDULED and done.launch_at is not None
        panel.launch_zone.value = "Mars/Olympus"
        assert panel.create_and_launch() is None and "unknown time zone" in panel.error.value
    finally:
        store.dispose()


def test_wizard_csv_upload_and_errors(tenant):
    store = open_store(tenant)
    try:
        panel = panel_for(tenant, SIM, store)
        users = select(Lake.for_tenant(tenant), TargetFilter(all_users=True, limit=2))
        text = "email,name\n" + "".join(f"{u.email},X\n" for u in users)
        panel.upload.value = ({"name": "t.csv", "type": "text/csv", "size": len(text), "content": text.encode(),
                               "last_modified": datetime.now(UTC)},)
        assert 'data-count="2"' in panel.count.value
        panel.name.value = ""
        assert panel.save_draft() is None and "needs a name" in panel.error.value
    finally:
        store.dispose()


def test_launch_cancel_and_export(tenant, running):
    store, svc, c, *_ = running
    panel = panel_for(tenant, SIM, store)
    panel.selector.value = c.id
    assert panel.launch() is None and "running" in panel.error.value  # already running: one line
    assert panel.open_report(c.id)
    path = panel.export()
    assert path is not None and path.parent == tenant.root / "reports" and path.is_file()
    assert path.read_text().count("\n") == 7  # header + 6 users
    assert "data:text/csv;base64," in panel.download.value
    panel.selector.value = c.id
    assert panel.cancel().status is CampaignStatus.CANCELLED
    assert 'data-status="cancelled"' in panel.campaign_table.value


def test_query_string_opens_a_report(tenant, running, monkeypatch):
    store, svc, c, *_ = running
    monkeypatch.setenv("WORKBENCH_USER", SIM)
    monkeypatch.setenv("QUERY_STRING", f"campaign={c.id}")
    panel = SimulatorPanel.for_tenant(tenant)
    try:
        assert panel.report_id == c.id and panel.tabs.selected_index == 3
        assert f'data-report="{c.id}"' in panel.report_head.value
    finally:
        panel.service.store.dispose()
    monkeypatch.setenv("QUERY_STRING", "campaign=abc")
    panel = SimulatorPanel.for_tenant(tenant)
    assert "not a campaign number" in panel.error.value
    panel.service.store.dispose()


def test_send_a_test_through_the_real_smtp_server(tenant):
    from email import message_from_bytes

    from workbench.simulator import config as simconfig
    from workbench.simulator.mail_server import EmbeddedSmtpServer

    got: list[tuple[bytes, str, list[str]]] = []
    store = open_store(tenant)
    try:
        panel = panel_for(tenant, SIM, store)
        panel.payload.value = "password-expiry-notice"
        panel.test_address.value = "tester@example.org"
        assert panel.send_test() is None and "no SMTP relay configured" in panel.error.value
        with EmbeddedSmtpServer(lambda data, sender, rcpts: got.append((data, sender, rcpts))) as smtp:
            simconfig.save(tenant, simconfig.SimulatorConfig(smtp={"host": "127.0.0.1", "port": smtp.port,
                                                                   "timeout": 10}))
            result = panel.send_test()
        assert result is not None and result.sent, panel.error.value
        assert 'data-outcome="sent"' in panel.test_result.value and "tester@example.org" in panel.test_result.value
        assert len(got) == 1 and got[0][2] == ["tester@example.org"]
        msg = message_from_bytes(got[0][0])
        assert "tester@example.org" in msg["To"] and msg["X-Workbench-Simulation"] == "preview"
        panel.test_address.value = "not an address"
        assert panel.send_test() is None and "is not an email address" in panel.error.value
    finally:
        store.dispose()


def test_live_stops_when_the_report_is_refused(tenant, running):
    store, svc, c, *_ = running
    panel = panel_for(tenant, AUTHOR, store)
    panel.live_seconds = 0.05
    panel.report_id = c.id
    panel.live.value = True
    thread = panel._live_thread
    thread.join(5)
    assert not thread.is_alive() and panel.live.value is False
    assert "metadata read" in panel.error.value


def _campaign(store, recipients, *, compromised=(), name="Overview", training=()):
    """A launched campaign delivered to every recipient; *compromised* (addresses) supply credentials."""
    svc = SimulationService(store, SIM)
    c = svc.create(name, "password-expiry-notice", recipients,
                   settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False, training=training,
                                             assign_training_to="compromised" if training else "none"))
    svc.launch(c.id)
    tracker = StoreTracker(store)
    now = datetime.now(UTC)
    tokens = {x.recipient.email: x.token for x in svc.targets(c.id)}
    for tok in tokens.values():
        tracker.record(tok, EventKind.DELIVERED, Hit(at=now, ip="198.51.100.7", user_agent=BROWSER, source="pixel"))
    for email in compromised:
        tracker.record(tokens[email], EventKind.CREDENTIALS_SUPPLIED,
                       Hit(at=now + timedelta(seconds=90), ip="198.51.100.7", user_agent=BROWSER, source="form"))
    return c, tokens, tracker


def test_overview_across_campaigns(tenant):
    from workbench.simulator.model import Recipient as R
    from workbench.store import tables as t

    store = open_store(tenant)
    try:
        lake = Lake.for_tenant(tenant)
        users = select(lake, TargetFilter(all_users=True))
        a, b, c3, d = users[:4]
        hostile = R(**{**d.__dict__, "department": f"Dept {XSS}"})
        panel = panel_for(tenant, SIM, store)
        assert panel.tabs.get_title(0) == "Overview" and panel.tabs.selected_index == 0
        assert 'data-coverage="simulated">0 (0.0%)<' in panel.overview_kpis.value
        assert 'data-training="assigned">0<' in panel.overview_kpis.value

        _campaign(store, [a, b, hostile], compromised=[a.email, hostile.email], name="First")
        second, tokens, tracker = _campaign(store, [a, b, c3, users[4]], compromised=[a.email, b.email, c3.email],
                                            name="Second", training=("spot-credential-phishing",))
        # a completes the training; b's is overdue; c3's is in progress
        tracker.record(tokens[a.email], EventKind.TRAINING_COMPLETED,
                       Hit(at=datetime.now(UTC), ip="198.51.100.7", user_agent=BROWSER, source="training",
                           details={"module": "spot-credential-phishing"}))
        past = datetime.now(UTC) - timedelta(days=1)
        store.run(lambda conn: conn.execute(t.sim_targets.update().where(
            t.sim_targets.c.token == tokens[b.email]).values(training_due=past)))

        panel.refresh_button.click()  # the Campaigns tab's Refresh redraws the Overview
        kpis = panel.overview_kpis.value
        # coverage, computed here independently: directory users targeted by a campaign (both are recent)
        directory = {u.email for u in users}
        targeted = {x.recipient.email for cid in (1, 2) for x in SimulationService(store, SIM).targets(cid)}
        simulated = len(directory & targeted)
        assert simulated == 5
        assert f'data-coverage="users">{len(directory):,}<' in kpis
        assert f'data-coverage="simulated">{simulated:,} (' in kpis
        assert f'data-coverage="not_simulated">{len(directory) - simulated:,} (' in kpis
        for key, n in (("assigned", 3), ("completed", 1), ("in_progress", 1), ("incomplete", 1)):
            assert f'data-training="{key}">{n}<' in kpis, key

        offenders = panel.offenders_table.value
        assert offenders.count("data-offender=") == 1 and f'data-offender="{a.email}"' in offenders
        assert f"<td>{a.department}</td><td>2</td>" in offenders  # the directory's department, the run's length

        trends = panel.trends_table.value
        assert trends.count("data-trend-user=") == 5
        assert "Campaign #1" in trends and "Campaign #2" in trends
        assert "Dept &lt;img src=x onerror=window.__xss=1&gt;" in trends
        assert len(panel.overview_chart.children) == 1 and panel.overview_chart.children[0].format == "svg+xml"
        for html in (panel.overview_head.value, kpis, offenders, trends):
            assert "<img" not in html and "<script" not in html

        # hostile is now a repeat offender too (department from the directory, escaped either way)
        third, tokens3, _ = _campaign(store, [hostile], compromised=[hostile.email], name="Third")
        panel.overview_button.click()  # the Overview's own Refresh
        assert f'data-offender="{hostile.email}"' in panel.offenders_table.value
        assert "Campaign #3" in panel.trends_table.value and "Campaign #1" in panel.trends_table.value
        assert XSS not in panel.offenders_table.value and XSS not in panel.trends_table.value
    finally:
        store.dispose()


def test_overview_refused_to_a_payload_author(tenant, running):
    store, *_ = running
    panel = panel_for(tenant, AUTHOR, store)
    head = panel.overview_head.value
    assert "wb-refusal" in head and "metadata read" in head and head.count("<span") == 1
    assert panel.overview_kpis.value == "" and panel.offenders_table.value == "" and panel.trends_table.value == ""
    assert panel.overview_chart.children == ()
    assert not panel.refresh_overview(clear=True) and "metadata read" in panel.error.value
    reader = panel_for(tenant, READER, store)
    assert 'data-coverage="simulated">6 (' in reader.overview_kpis.value  # a security reader sees it
