"""The email investigation on the small generated tenant: the campaign is found malicious and
its reachable copies proposed for deletion; clean mail ends as no threats found; no benign
message is in any proposed action."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.air.email_investigation import investigate_emails
from workbench.air.model import ActionType, InvestigationStatus
from workbench.errors import InputError
from workbench.lake import Lake
from workbench.store import open_store


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict:
    return {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}


@pytest.fixture
def store(tmp_path):
    s = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    yield s
    s.dispose()


def benign_ids(lake: Lake) -> set[str]:
    """Messages no detection ever judged (no threat verdict at delivery, never ZAPped)."""
    e = lake.scan("EmailEvents", columns=["NetworkMessageId", "ThreatTypes"]).collect()
    threat = set(e.filter(pl.col("ThreatTypes").is_not_null())["NetworkMessageId"])
    zapped = set(lake.scan("EmailPostDeliveryEvents", columns=["NetworkMessageId"]).collect()["NetworkMessageId"])
    return set(e["NetworkMessageId"]) - threat - zapped


def test_a_campaign_message_is_investigated_and_only_malicious_mail_is_proposed(store, lake, stories):
    campaign = stories["credential-phish-campaign"]
    nmid = campaign["messages"][0]["NetworkMessageId"]
    result = investigate_emails(store, lake, [nmid], playbook="manual_email", name="Investigate", started_by="ana")
    rec = result.record
    assert nmid in result.malicious_messages
    assert [x.analyzer for x in rec.log] == ["simulation_check", "email_indicators", "email_verdicts", "url_reputation",
                                             "file_reputation", "sender_reputation",
                                             "mail_cluster_identification", "missed_malware"]
    assert all(x.status == "ok" for x in rec.log)
    assert any(a.action is ActionType.BLOCK_URL and a.target in campaign["urls"] for a in rec.actions)
    proposed = {m for a in rec.actions for m, _ in a.messages}
    assert not proposed & benign_ids(lake)  # no benign message in any proposed action
    assert rec.investigation.status in (InvestigationStatus.PENDING_ACTION,)
    assert any(c.kind.indicator and c.verdict.value == "malicious" for c in rec.clusters)


def test_clean_mail_ends_with_no_threats_found(store, lake):
    clean = sorted(benign_ids(lake))[:2]
    rec = investigate_emails(store, lake, clean, playbook="manual_email", name="Clean", started_by="ana").record
    assert rec.investigation.status is InvestigationStatus.NO_THREATS_FOUND and rec.actions == ()


def test_reported_simulations_and_clean_reports_end_with_no_threats(store, lake, stories):
    reports = stories["user-reports"]
    sims = sorted({r["NetworkMessageId"] for r in reports["simulation_reports"]})
    result = investigate_emails(store, lake, sims, playbook="user_reported_phish", name="sim", started_by="ana")
    assert set(result.simulations) == set(sims) and result.record.actions == ()
    assert result.record.investigation.status is InvestigationStatus.NO_THREATS_FOUND
    assert {e.details for e in result.record.evidence} == {"authorised phishing simulation"}
    clean = sorted({r["NetworkMessageId"] for r in reports["clean_reports"]})
    rec = investigate_emails(store, lake, clean, playbook="user_reported_phish", name="clean", started_by="ana").record
    assert rec.investigation.status is InvestigationStatus.NO_THREATS_FOUND and rec.actions == ()


def test_unknown_messages_say_so(store, lake):
    with pytest.raises(InputError, match="none of the 1 message id"):
        investigate_emails(store, lake, ["not-a-message"], playbook="manual_email", name="x", started_by="ana")
    with pytest.raises(InputError, match="at least one NetworkMessageId"):
        investigate_emails(store, lake, [" "], playbook="manual_email", name="x", started_by="ana")


def test_the_window_bounds_what_the_analyzers_read(store, lake, stories):
    from datetime import timedelta

    nmid = stories["credential-phish-campaign"]["messages"][-1]["NetworkMessageId"]
    wide = investigate_emails(store, lake, [nmid], playbook="manual_email", name="Wide", started_by="ana").record
    narrow = investigate_emails(store, lake, [nmid], playbook="manual_email", name="Narrow", started_by="ana",
                                window=timedelta(minutes=1)).record
    from workbench.explorer.query import Query

    copies = {c.name: c.counts.total for c in wide.clusters}
    assert narrow.clusters and all(c.counts.total <= copies.get(c.name, c.counts.total) for c in narrow.clusters)
    starts = {Query.from_json(c.query).window.start for c in narrow.clusters}
    wide_starts = {Query.from_json(c.query).window.start for c in wide.clusters}
    assert len(starts) == 1 and len(wide_starts) == 1 and starts.pop() - wide_starts.pop() > timedelta(days=29)
