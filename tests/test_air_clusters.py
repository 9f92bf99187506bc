"""Mail cluster identification on the small generated tenant and on hand-made frames."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

from workbench.air.clusters import IN_MAILBOX, counts_of, identify, seed_of, verdict_of
from workbench.air.model import ClusterCounts, ClusterKind
from workbench.explorer.compile import compile_query
from workbench.explorer.query import Query
from workbench.incidents.model import Verdict
from workbench.lake import Lake


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)


@pytest.fixture(scope="module")
def campaign(small_tenant) -> dict:
    stories = json.loads((small_tenant.root / "scenarios.json").read_text())["stories"]
    return next(s for s in stories if s["id"] == "credential-phish-campaign")


@pytest.fixture(scope="module")
def org(lake) -> list[str]:
    return lake.scan("IdentityInfo", columns=["EmailAddress"]).collect()["EmailAddress"].str.split("@").list.last().unique().to_list()


def test_a_campaign_message_clusters_with_its_siblings(lake, campaign, org):
    wave = [m for m in campaign["messages"] if m.get("wave") == 1]
    url = campaign["urls"][0]
    seed = seed_of(lake, [wave[0]["NetworkMessageId"]], org_domains=org, malicious_urls=[url])
    assert seed.malicious_urls == (url,) and not set(seed.sender_domains) & set(org)
    anchor = datetime.fromisoformat(campaign["waves"][0]["first_seen"])
    clusters = identify(lake, seed, anchor)
    by_kind = {c.kind: c for c in clusters}
    url_cluster = by_kind[ClusterKind.URL]
    carrying = (lake.scan("EmailUrlInfo", columns=["NetworkMessageId", "Url"]).filter(pl.col("Url") == url)
                .select("NetworkMessageId").unique().collect()["NetworkMessageId"])
    copies = lake.scan("EmailEvents", columns=["NetworkMessageId", "RecipientEmailAddress"]).filter(
        pl.col("NetworkMessageId").is_in(carrying.implode())).unique().collect()
    assert url_cluster.counts.total == copies.height > 0  # every copy carrying the URL, nothing else
    assert url_cluster.verdict is Verdict.MALICIOUS  # the indicator's verdict covers the cluster
    assert {m["NetworkMessageId"] for m in wave} <= set(copies["NetworkMessageId"])
    for c in clusters:
        listed = compile_query(lake, Query.from_json(c.query), columns=["NetworkMessageId", "RecipientEmailAddress"])[0]
        assert listed.unique().collect().height == c.counts.total  # the query is the cluster
        k = c.counts
        assert k.delivered + k.junked + k.replaced + k.blocked <= k.total
        assert k.in_mailbox + k.not_in_mailbox + k.on_prem_external <= k.total
        assert len(c.in_mailbox) == k.in_mailbox and set(c.threat_in_mailbox) <= set(c.in_mailbox)


def test_shared_senders_and_short_subjects_make_no_cluster(lake, org):
    rows = lake.scan("EmailEvents", columns=["NetworkMessageId", "SenderFromDomain", "Subject"]).collect()
    own = rows.filter(pl.col("SenderFromDomain").is_in(org)).row(0, named=True)
    seed = seed_of(lake, [own["NetworkMessageId"]], org_domains=org)
    assert seed.sender_domains == ()  # the organisation's own domain is not a cluster
    short = rows.filter(pl.col("Subject").str.len_chars() < 8)
    if short.height:
        assert seed_of(lake, [short["NetworkMessageId"][0]], org_domains=org).subjects == ()


def test_counts_and_verdicts_follow_the_threats():
    copies = pl.DataFrame({
        "ThreatTypes": ["Malware", "Phish", "Phish, Spam", None, None],
        "ConfidenceLevel": ['{"Malware":"High"}', '{"Phish":"Normal"}', '{"Phish":"High","Spam":"Normal"}', None, None],
        "DeliveryAction": ["Blocked", "Delivered", "Junked", "Delivered", "Delivered"],
        "LatestDeliveryLocation": ["Quarantine", "Inbox/folder", "Junk folder", "Inbox/folder", "On-premises/external"],
    })
    k = counts_of(copies)
    assert (k.total, k.malware, k.phish, k.high_confidence_phish, k.spam) == (5, 1, 2, 1, 0)
    assert (k.delivered, k.junked, k.blocked, k.in_mailbox, k.not_in_mailbox, k.on_prem_external) == (3, 1, 1, 3, 1, 1)
    assert verdict_of(ClusterKind.SENDER_IP, k) is Verdict.MALICIOUS
    assert verdict_of(ClusterKind.SUBJECT, ClusterCounts(total=3, phish=1)) is Verdict.SUSPICIOUS
    assert verdict_of(ClusterKind.SENDER_DOMAIN, ClusterCounts(total=3)) is Verdict.NO_THREATS_FOUND
    assert verdict_of(ClusterKind.FILE, ClusterCounts(total=3), indicator_malicious=True) is Verdict.MALICIOUS
    assert verdict_of(ClusterKind.SUBJECT, ClusterCounts(total=3), indicator_malicious=True) is Verdict.NO_THREATS_FOUND
    assert IN_MAILBOX == ("Inbox/folder", "Junk folder")
