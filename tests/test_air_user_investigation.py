"""The user compromise investigation (the compromised-user playbook) on SQLite and PostgreSQL:
on the small generated tenant the compromised-user story's account is found compromised, with
the forwarding rule, the attacker's sign-ins and the outbound phish burst as evidence and the
rule removal, password reset and disabling proposed; an ordinary user ends as no threats found;
the user is resolved from the alert that started the playbook."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from scenario_keys import story_keys
from test_air_user_analyzers import ALICE, BOB, D, H, T0, Tiny

from workbench.air import records
from workbench.air.model import ActionType, InvestigationStatus
from workbench.air.playbook import PLAYBOOK_FOR_POLICY, run_user_playbook, user_of_alert
from workbench.air.user_investigation import investigate_user
from workbench.errors import InputError
from workbench.incidents.model import EntityKind, Verdict
from workbench.lake import Lake
from workbench.store import open_store

END = datetime(2026, 11, 21, tzinfo=UTC)  # the small tenant's data ends on 2026-11-20
ANALYZERS = ["forwarding_rules", "inbox_rules", "mailbox_delegation", "outbound_anomaly", "sign_in_anomalies",
             "endpoint_alerts",
             "compromise_verdict"]
USER_POLICIES = sorted(p for p, playbook in PLAYBOOK_FOR_POLICY.items() if playbook == "compromised_user")


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict:
    return {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}


@pytest.fixture
def store(db_url):
    s = open_store(url=db_url)
    yield s
    s.dispose()


def investigate(store, lake, user: str, **kw):
    return investigate_user(store, lake, user, playbook="compromised_user", name=f"Investigate {user}",
                            started_by="ana", now=END, **kw)


def test_the_compromised_user_is_found_with_the_rule_and_the_burst_as_evidence(store, lake, stories):
    story = stories["compromised-user"]
    user, keys = story["user"], story_keys(story)
    result = investigate(store, lake, user)
    rec = result.record
    assert result.compromised and result.user == user
    assert rec.investigation.status is InvestigationStatus.PENDING_ACTION
    assert [(x.analyzer, x.status) for x in rec.log] == [(a, "ok") for a in ANALYZERS]

    evidence = {e.entity.key: e for e in rec.evidence}
    assert evidence[f"user:{user}"].verdict is Verdict.MALICIOUS  # the user's verdict is the compromise verdict
    assert evidence[f"user:{user}"].analyzer == "compromise_verdict"
    assert keys["burst"] <= set(evidence), "every copy of the outbound phish burst is evidence"
    assert {evidence[k].verdict for k in keys["burst"]} == {Verdict.MALICIOUS}
    assert keys["attacker ip"] <= set(evidence)
    destination = evidence[f"mailbox:{story['forwarding_address']}"]
    assert destination.verdict is Verdict.MALICIOUS and destination.analyzer == "forwarding_rules"
    [rule] = [e for e in rec.evidence if e.entity.value.startswith(f"{user}\\")]  # <mailbox>\<rule name>
    assert rule.entity.kind is EntityKind.MAILBOX and rule.verdict is Verdict.MALICIOUS
    assert story["forwarding_address"] in rule.details and story["attacker_ip"] in rule.details

    proposed = {(a.action, a.target) for a in rec.actions}
    assert {(ActionType.RESET_PASSWORD, user), (ActionType.DISABLE_USER, user),
            (ActionType.REMOVE_FORWARDING_RULE, rule.entity.value)} <= proposed
    assert all(a.target == user or a.target.startswith(f"{user}\\") for a in rec.actions)  # nobody else's account
    assert all(a.status == "pending" for a in rec.actions)  # proposed only
    assert rec.investigation.parameters == {"user": user}


def test_an_ordinary_user_ends_with_no_threats_found(store, lake, stories):
    told = json.dumps(list(stories.values())).lower()  # a user named anywhere in a story is not ordinary
    directory = lake.scan("IdentityInfo", columns=["AccountUpn"]).collect()["AccountUpn"].str.to_lowercase()
    ordinary = sorted(u for u in set(directory) if u not in told)[0]
    result = investigate(store, lake, ordinary.upper())  # a UPN in any case is the directory's account
    rec = result.record
    assert result.user == ordinary and result.verdict is Verdict.NO_THREATS_FOUND
    assert rec.investigation.status is InvestigationStatus.NO_THREATS_FOUND and rec.actions == ()
    assert {e.verdict for e in rec.evidence} == {Verdict.NO_THREATS_FOUND}


def test_only_the_storys_user_is_compromised_in_the_whole_directory(lake, stories, tmp_path):
    store = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    directory = sorted(set(lake.scan("IdentityInfo", columns=["AccountUpn"]).collect()["AccountUpn"].str.to_lowercase()))
    compromised = [u for u in directory if investigate(store, lake, u).compromised]
    store.dispose()
    assert compromised == [stories["compromised-user"]["user"]]


def test_an_unknown_user_is_one_line_and_records_nothing(store, lake):
    with pytest.raises(InputError, match="'nobody@nowhere.example' is not in this tenant's directory") as err:
        investigate(store, lake, "nobody@nowhere.example")
    assert "\n" not in str(err.value) and "-p user" in str(err.value)
    with pytest.raises(InputError, match="needs the account to investigate"):
        investigate(store, lake, " ")
    assert records.recent(store) == []


def test_rules_and_delegation_are_proposed_for_removal_without_touching_the_account(store, tmp_path):
    tiny = Tiny(tmp_path)
    tiny.cmdlet(T0, ALICE, "New-InboxRule", {"Name": "..", "SubjectOrBodyContainsWords": "invoice;payment",
                                             "MoveToFolder": "RSS Feeds", "MarkAsRead": "True"})
    tiny.cmdlet(T0 + H, "admin@contoso.com", "Add-MailboxPermission",
                {"Identity": ALICE, "User": BOB, "AccessRights": "FullAccess"})
    tiny.cmdlet(T0 + H, BOB, "New-InboxRule", {"Name": "", "SubjectContainsWords": "invoice", "DeleteMessage": "True"})
    lake = tiny.write()
    result = investigate_user(store, lake, ALICE, playbook="compromised_user", name="alice", started_by="ana",
                              now=T0 + D, since=T0 - D)
    rec = result.record
    assert result.verdict is Verdict.SUSPICIOUS and not result.compromised  # no sign-in anomaly: not compromised
    assert {(a.action, a.target) for a in rec.actions} == {(ActionType.REMOVE_INBOX_RULE, f"{ALICE}\\.."),
                                                           (ActionType.REMOVE_DELEGATION, f"{ALICE}\\{BOB}")}
    config = {e.entity.value: e for e in rec.evidence if "\\" in e.entity.value}  # <mailbox>\<rule or delegate>
    assert set(config) == {f"{ALICE}\\..", f"{ALICE}\\{BOB}"}
    assert config[f"{ALICE}\\.."].verdict is Verdict.MALICIOUS and "invoice" in config[f"{ALICE}\\.."].details
    assert rec.investigation.status is InvestigationStatus.PENDING_ACTION
    quiet = investigate_user(store, lake, BOB, playbook="compromised_user", name="bob", started_by="ana",
                             now=T0 + D, since=T0 + 2 * H)  # Bob's rule is before the window
    assert quiet.record.actions == () and quiet.record.investigation.status is InvestigationStatus.NO_THREATS_FOUND


# ----------------------------------------------------------------------------- from an alert


@pytest.fixture(scope="module")
def alerted(small_tenant, tmp_path_factory):
    """The small tenant's alerts, filed in a store of their own."""
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService

    db = f"sqlite:///{tmp_path_factory.mktemp('user-alerts') / 'wb.sqlite'}"
    store = open_store(url=db)
    alerting.run(store, Lake.for_tenant(small_tenant))
    alerts = IncidentService(store, "test").alerts()
    store.dispose()
    return db, alerts


def test_the_alerts_user_is_investigated(alerted, small_tenant, lake, stories):
    db, alerts = alerted
    user = stories["compromised-user"]["user"]
    mine = [a for a in alerts if a.policy_id in USER_POLICIES]
    fired = {a.policy_id for a in mine}
    assert {"suspicious_forwarding_rule", "suspicious_sending", "risky_signin_after_click"} <= fired
    story_alerts = [a for a in mine if any(e.value == user for e in a.entities)]
    assert story_alerts and {user_of_alert(lake, a) for a in story_alerts} == {user}  # never the outside destination
    forwarding = next(a for a in story_alerts if a.policy_id == "suspicious_forwarding_rule")
    result = run_user_playbook("compromised_user", tenant=str(small_tenant.root), alert_id=forwarding.id, db_url=db,
                               started_by="dispatcher")
    inv = result.record.investigation
    assert result.user == user and result.compromised
    assert inv.alert_id == forwarding.id and inv.incident_id == forwarding.incident_id
    assert inv.playbook == "compromised_user" and inv.started_by == "dispatcher"
    assert result.start <= forwarding.first_activity < result.end


def test_without_user_or_alert_the_playbook_says_what_to_pass(small_tenant, tmp_path):
    db = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    with pytest.raises(InputError, match="no user to investigate: pass -p user") as err:
        run_user_playbook("compromised_user", tenant=str(small_tenant.root), db_url=db)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="days must be at least 1"):
        run_user_playbook("compromised_user", tenant=str(small_tenant.root), user=ALICE, days=0, db_url=db)


def test_the_sender_of_the_messages_is_investigated_when_nothing_else_names_a_user(small_tenant, stories, tmp_path):
    story = stories["compromised-user"]
    burst = [m["NetworkMessageId"] for m in story["burst_messages"]]
    result = run_user_playbook("compromised_user", tenant=str(small_tenant.root), messages=burst,
                               db_url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    assert result.user == story["user"] and result.compromised
    assert result.record.investigation.parameters["messages"] == burst
