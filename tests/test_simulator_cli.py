"""``workbench simulator``: configure, payloads, create --launch, run (real embedded SMTP server),
show, export, cancel; refusals and bad input are one line with the fix."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from click.testing import CliRunner

from workbench import rbac
from workbench.cli import main
from workbench.rbac import Role
from workbench.simulator.mail_server import EmbeddedSmtpServer, tenant_delivery
from workbench.store import open_store
from workbench.tenant import open_tenant


@pytest.fixture
def home(small_tenant, tmp_path, monkeypatch):
    for name in ("WORKBENCH_DB_URL", "JUPYTERHUB_USER", "WORKBENCH_TRUSTED_HEADER", "WORKBENCH_TENANT"):
        monkeypatch.delenv(name, raising=False)
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    store = open_store(open_tenant("small", base=tmp_path))
    rbac.bootstrap(store, "root")
    rbac.grant(store, "root", "simon", Role.ATTACK_SIMULATION_ADMINISTRATOR)
    rbac.grant(store, "root", "bob", Role.SECURITY_READER)
    store.dispose()
    return tmp_path


def cli(home, user: str, *args: str):
    result = CliRunner().invoke(main, ["simulator", *args, "--home", str(home), "--tenant", "small"],
                                env={"WORKBENCH_USER": user})
    return result


def one_line(result, code: int, text: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr


def test_campaign_from_the_command_line(home, tmp_path):
    tenant = open_tenant("small", base=home)
    with EmbeddedSmtpServer(tenant_delivery(tenant)) as smtp:
        done = cli(home, "simon", "configure", "--base-url", "http://127.0.0.1:8899", "--smtp-host", "127.0.0.1",
                   "--smtp-port", str(smtp.port), "--simulation-domain", "c0mpany-helpdesk.example",
                   "--organisation", "Contoso security")
        assert done.exit_code == 0, done.stderr
        assert json.loads(done.stdout)["smtp"]["port"] == smtp.port
        one_line(cli(home, "bob", "configure", "--organisation", "x"), 5, "simulation management")
        one_line(cli(home, "simon", "configure", "--smtp-user", "u"), 2, "password_env")

        listed = cli(home, "bob", "payloads", "--technique", "credentialHarvest", "--json")
        assert listed.exit_code == 0 and {json.loads(x)["technique"] for x in listed.stdout.splitlines()} == {
            "credentialHarvest"}
        one_line(cli(home, "simon", "payloads", "--technique", "teleport"), 2, "unknown technique")

        one_line(cli(home, "bob", "create", "--name", "x", "--payload", "password-expiry-notice", "--all-users"), 5,
                 "lacks the simulation management permission")
        one_line(cli(home, "simon", "create", "--name", "x", "--payload", "password-expiry-notice"), 2,
                 "choose targets")
        one_line(cli(home, "simon", "create", "--name", "x", "--payload", "nope", "--all-users"), 3, "no payload")
        one_line(cli(home, "simon", "create", "--name", "x", "--payload", "password-expiry-notice", "--all-users",
                     "--window", "nine-five"), 2, "--window")
        made = cli(home, "simon", "create", "--name", "CLI <b>test</b>", "--payload", "password-expiry-notice",
                   "--all-users", "--limit", "10", "--window", "0-24", "--no-time-zones", "--launch",
                   "--training", "spot-credential-phishing")
        assert made.exit_code == 0, made.stderr
        assert made.stdout.strip() == "campaign 1 (10 targets) is running; send it with: workbench simulator run"

        tested = cli(home, "simon", "test-send", "--payload", "voicemail-qr", "--to", "ann@contoso.test")
        assert tested.exit_code == 0 and tested.stdout.startswith("sent: accepted"), tested.stderr
        one_line(cli(home, "bob", "test-send", "--payload", "voicemail-qr", "--to", "ann@contoso.test"), 5,
                 "simulation management")
        one_line(cli(home, "simon", "test-send", "--payload", "voicemail-qr", "--to", "not-an-address"), 2,
                 "not an email address")
        ran = cli(home, "simon", "run")
        assert ran.exit_code == 0, ran.stderr
        assert "10 sent, 0 to retry, 0 failed" in ran.stdout
        assert "10 sent" not in cli(home, "simon", "run").stdout  # nothing twice

    shown = cli(home, "bob", "show", "1", "--flagged")  # readers see reports
    assert shown.exit_code == 0, shown.stderr
    assert "delivered 10" in shown.stdout and "compromise rate 0.0%" in shown.stdout
    out = tmp_path / "users.csv"
    exported = cli(home, "simon", "export", "1", "--out", str(out))
    assert exported.exit_code == 0 and len(list(csv.DictReader(out.open()))) == 10
    assert "CLI <b>test</b>" in cli(home, "simon", "list").stdout
    assert cli(home, "simon", "cancel", "1").stdout.strip() == "campaign 1 is cancelled"
    one_line(cli(home, "simon", "launch", "1"), 4, "is cancelled")
    one_line(cli(home, "simon", "show", "99"), 3, "no campaign 99")


def test_recurring_automation(home):
    from datetime import UTC, datetime, timedelta

    from workbench.lake import Lake
    from workbench.simulator import automations
    from workbench.simulator.campaigns import SimulationService

    made = cli(home, "simon", "automate", "--name", "Monthly", "--payload", "voicemail-qr", "--suggested",
               "not_recently_simulated", "--limit", "5", "--every-days", "30")
    assert made.exit_code == 0, made.stderr
    one_line(cli(home, "bob", "automate", "--name", "x", "--payload", "voicemail-qr", "--all-users"), 5,
             "simulation management")
    tenant = open_tenant("small", base=home)
    store = open_store(tenant)
    try:
        lake, now = Lake.for_tenant(tenant), datetime.now(UTC) + timedelta(minutes=1)
        first = automations.run_due(store, lake, now=now)
        assert len(first) == 1 and automations.run_due(store, lake, now=now) == []  # once per period
        second = automations.run_due(store, lake, now=now + timedelta(days=30))
        service = SimulationService(store, "simon")
        one, two = ({t.recipient.email for t in service.targets(c)} for c in (first[0], second[0]))
        assert len(one) == len(two) == 5 and not one & two  # "not simulated recently" rotates
        assert service.get(second[0]).status.value == "running"
        assert "Monthly" in cli(home, "bob", "automations").stdout
    finally:
        store.dispose()


def test_overview_across_campaigns(home):
    from datetime import UTC, datetime, timedelta

    from workbench.lake import Lake
    from workbench.simulator.campaigns import CampaignSettings, SimulationService
    from workbench.simulator.model import EventKind, Hit, Recipient
    from workbench.simulator.recorder import StoreTracker
    from workbench.simulator.targets import TargetFilter, select

    tenant = open_tenant("small", base=home)
    store = open_store(tenant)
    try:
        users = select(Lake.for_tenant(tenant), TargetFilter(all_users=True, limit=3))
        hostile = Recipient(**{**users[2].__dict__, "department": "Evil\x1b[31mRED"})
        service, tracker = SimulationService(store, "simon"), StoreTracker(store)
        for name in ("one", "two"):
            c = service.create(name, "password-expiry-notice", [users[0], users[1], hostile],
                               settings=CampaignSettings(window_start=0, window_end=24, time_zone_aware=False))
            service.launch(c.id)
            now = datetime.now(UTC)
            for x in service.targets(c.id):
                tracker.record(x.token, EventKind.DELIVERED, Hit(at=now, ip="198.51.100.7", user_agent="Mozilla/5.0",
                                                                 source="pixel"))
                if x.recipient.email == users[0].email:
                    tracker.record(x.token, EventKind.CREDENTIALS_SUPPLIED,
                                   Hit(at=now + timedelta(minutes=2), ip="198.51.100.7", user_agent="Mozilla/5.0",
                                       source="form"))
    finally:
        store.dispose()

    shown = cli(home, "bob", "overview")  # readers see reports
    assert shown.exit_code == 0, shown.stderr
    out = shown.stdout
    assert "simulated (last 90 days)  3" in out and "not simulated" in out
    assert "training" in out and "overdue" in out
    offenders = out.split("repeat offender")[1].split("\n\n")[0]
    assert users[0].email in offenders and users[1].email not in offenders
    assert f"{users[0].email}  {users[0].department}" in offenders and offenders.rstrip().endswith("2")
    assert "\x1b" not in out and "Evil\\x1b[31mRED" in out  # the hostile department is made visible, not obeyed
    assert "#1" in out and "#2" in out and "compromised" in out
    one_line(cli(home, "nobody", "overview"), 5, "lacks the simulation management or metadata read permission")
