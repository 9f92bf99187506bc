"""The email analyzers of an investigation, on the small generated tenant's planted stories."""

from __future__ import annotations

import json

import polars as pl
import pytest

from workbench.air.analyzers_mail import email_indicators, file_reputation, missed_malware, url_reputation
from workbench.air.model import ActionType
from workbench.incidents.model import EntityKind, Verdict
from workbench.lake import Lake


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict:
    return {s["id"]: s for s in json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]}


def test_indicators_of_a_campaign_message(lake, stories):
    campaign = stories["credential-phish-campaign"]
    nmid = campaign["messages"][0]["NetworkMessageId"]
    found = email_indicators(lake, [nmid], None, None)
    mail = lake.scan("EmailEvents", columns=["NetworkMessageId", "SenderFromAddress", "SenderIPv4"]).filter(
        pl.col("NetworkMessageId") == nmid).collect()
    assert found.senders == (mail["SenderFromAddress"][0].lower(),) and found.sender_ips == (mail["SenderIPv4"][0],)
    assert set(found.urls) & set(campaign["urls"]) and "URL(s)" in found.summary


def test_campaign_url_is_malicious_with_its_clicks_and_a_clean_url_is_not(lake, stories):
    campaign = stories["credential-phish-campaign"]
    carried = set(lake.scan("EmailUrlInfo", columns=["Url"]).collect()["Url"])
    bad = next(u for u in campaign["urls"] if u in carried)
    clean_mail = lake.scan("EmailEvents", columns=["NetworkMessageId", "ThreatTypes"]).filter(
        pl.col("ThreatTypes").is_null()).collect()["NetworkMessageId"]
    zapped = set(lake.scan("EmailPostDeliveryEvents", columns=["NetworkMessageId"]).collect()["NetworkMessageId"])
    clean_urls = lake.scan("EmailUrlInfo", columns=["NetworkMessageId", "Url"]).collect().filter(
        pl.col("NetworkMessageId").is_in(clean_mail.implode()) & ~pl.col("NetworkMessageId").is_in(list(zapped)))
    threat_urls = set(lake.scan("EmailUrlInfo", columns=["NetworkMessageId", "Url"]).collect().filter(
        ~pl.col("NetworkMessageId").is_in(clean_mail.implode()))["Url"])
    clean = next(u for u in clean_urls["Url"].unique().sort() if u not in threat_urls)
    rep = url_reputation(lake, [bad, clean, "https://never.example/seen"], None, None)
    assert dict(rep.verdicts) == {bad: Verdict.MALICIOUS, clean: Verdict.NO_THREATS_FOUND,
                                  "https://never.example/seen": Verdict.UNKNOWN}
    assert rep.proposals == ((ActionType.BLOCK_URL, EntityKind.URL, bad, rep.proposals[0][3]),)
    clickers = {who for url, who, _, through in rep.clicks if url == bad and through}
    assert clickers and {e.entity.value for e in rep.evidence if e.entity.kind == EntityKind.USER} == clickers


def test_malware_campaign_files_are_malicious_and_missed_copies_are_found(lake, stories):
    hashes = [a["SHA256"] for a in stories["malware-campaign"]["attachments"]]
    rep = file_reputation(lake, hashes, None, None)
    assert {v for _, v in rep.verdicts} == {Verdict.MALICIOUS} and len(rep.evidence) == len(hashes)
    delivered_threats = lake.scan("EmailEvents", columns=["NetworkMessageId", "ThreatTypes", "LatestDeliveryLocation"]).filter(
        pl.col("ThreatTypes").fill_null("").str.contains("Phish|Malware")).collect()
    ids = delivered_threats["NetworkMessageId"].unique().to_list()
    missed = missed_malware(lake, ids, ids, None, None)
    in_box = delivered_threats.filter(pl.col("LatestDeliveryLocation").is_in(["Inbox/folder", "Junk folder"]))
    assert len(missed.copies) == in_box.height and missed.prevented == delivered_threats.height - in_box.height
    assert missed_malware(lake, ids, [], None, None).copies == ()  # nothing judged malicious: nothing to delete
