"""From planted stories to incidents: the alert policies run over the small generated tenant,
their alerts correlate, and every story of ``scenarios.json`` ends up in the right incident.

Stories that are one attack in the ground truth share an incident (the campaign phished the
user who was then compromised and whose laptop raised the endpoint alert; the malware
campaign's attachments are the files found in SharePoint, OneDrive and Teams); unrelated
stories never do; reports of clean or simulated mail stay at most low.
"""

from __future__ import annotations

import json

import pytest

from scenario_keys import emails_of, story_keys
from workbench.incidents import alerting
from workbench.incidents.model import IncidentStatus, Severity
from workbench.incidents.service import IncidentService
from workbench.lake import Lake
from workbench.store import open_store

ATTACKS = ({"credential-phish-campaign", "compromised-user", "endpoint-alert"},
           {"malware-campaign", "content-malware"},
           {"bec-impersonation"})


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict[str, dict]:
    return {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}


@pytest.fixture(scope="module")
def filed(small_tenant, tmp_path_factory):
    store = open_store(url=f"sqlite:///{tmp_path_factory.mktemp('scenarios') / 'wb.sqlite'}")
    first = alerting.run(store, Lake.for_tenant(small_tenant))
    again = alerting.run(store, Lake.for_tenant(small_tenant))
    svc = IncidentService(store, "test")
    yield svc, first, again
    store.dispose()


def about(alert) -> set[str]:
    """What an alert is about: its entity keys, less the people who only received or reported
    the mail (a user who reports a simulation is not part of her own compromise story)."""
    return {e.key for e in alert.entities if e.role not in ("reporter", "recipient")}


def final(svc: IncidentService, incident_id: int) -> int:
    """Follow merges to the incident an alert now lives in."""
    incident = svc.get(incident_id)
    return final(svc, incident.redirect_id) if incident.status == IncidentStatus.REDIRECTED else incident.id


def test_the_ground_truth_links_the_stories_grouped_as_one_attack(stories):
    campaign, user, endpoint = (stories[k] for k in ("credential-phish-campaign", "compromised-user", "endpoint-alert"))
    assert user["user"] in {m["RecipientEmailAddress"].lower() for m in campaign["messages"]}
    assert endpoint["user"] == user["user"]
    files = {f["SHA256"] for f in stories["content-malware"]["files"] if f["detected"]}
    assert files <= {a["SHA256"] for a in stories["malware-campaign"]["attachments"]}


def test_every_story_surfaces_in_one_incident_and_unrelated_ones_apart(stories, filed):
    svc, first, again = filed
    assert first.new_alerts and again.new_alerts == ()  # a second run files nothing twice
    alerts = svc.alerts()
    home: dict[str, int] = {}
    for sid in set().union(*ATTACKS):
        keys = set().union(*story_keys(stories[sid]).values())
        mine = [a for a in alerts if about(a) & keys]
        assert mine, f"{sid}: no alert"
        where = {final(svc, a.incident_id) for a in mine}
        assert len(where) == 1, f"{sid}: alerts spread over incidents {sorted(where)}"
        home[sid] = where.pop()
    for group in ATTACKS:
        assert len({home[s] for s in group}) == 1, f"{sorted(group)} should be one incident: {home}"
    assert len({home[next(iter(g))] for g in ATTACKS}) == len(ATTACKS), f"unrelated attacks merged: {home}"
    for sid in home:
        assert svc.get(home[sid]).severity >= Severity.MEDIUM


def test_reports_join_the_phish_they_report_and_benign_ones_stay_low(stories, filed):
    svc, *_ = filed
    reports = stories["user-reports"]
    alerts = [a for a in svc.alerts() if a.policy_id == "user_reported_message"]
    reported = {a.id: {e.key for e in a.entities} for a in alerts}
    campaign = emails_of(stories["credential-phish-campaign"]["messages"])
    phish = [a for a in alerts if reported[a.id] & emails_of(reports["phish_reports"])]
    assert phish
    campaign_incident = {final(svc, a.incident_id) for a in svc.alerts() if {e.key for e in a.entities} & campaign}
    for a in phish:
        if reported[a.id] & campaign:
            assert {final(svc, a.incident_id)} == campaign_incident
    benign = emails_of(reports["clean_reports"] + reports["simulation_reports"])
    benign_alerts = {a.id for a in alerts if reported[a.id] & benign and not reported[a.id] & campaign}
    assert benign_alerts
    for incident in svc.list():
        ids = {a.id for a in svc.alerts(incident_id=incident.id)}
        if ids and ids <= benign_alerts:
            assert incident.severity <= Severity.LOW, f"benign incident {incident.id} is {incident.severity}"


def test_reported_simulations_are_filed_resolved_and_open_no_incident(stories, filed):
    """A reported authorised simulation is expected activity: its alert is kept for the record,
    resolved on arrival as security testing, and opens no incident."""
    svc, *_ = filed
    sims = emails_of(stories["user-reports"]["simulation_reports"])
    alerts = [a for a in svc.alerts() if a.policy_id == "user_reported_message" and {e.key for e in a.entities} & sims]
    assert alerts
    for a in alerts:
        assert a.incident_id is None and a.status.value == "resolved"
        assert (a.classification.value, a.determination.value) == ("informationalExpectedActivity", "securityTesting")
    others = [a for a in svc.alerts() if a.policy_id == "user_reported_message" and not {e.key for e in a.entities} & sims]
    assert others and all(a.incident_id is not None for a in others)
