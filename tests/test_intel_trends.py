"""Noteworthy threats seen here, family trends and campaigns on the small generated tenant
(3 days ending 2026-11-20), checked against its planted stories and plain-polars recounts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from workbench.explorer.compile import compile_query
from workbench.explorer.query import Query
from workbench.intel.model import ThreatNote
from workbench.intel.trends import campaign_id, campaigns, family_trends, seen_here, trend_label
from workbench.lake import Lake

NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)  # only read here


@pytest.fixture(scope="module")
def stories(small_tenant) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in json.loads(small_tenant.scenarios_path.read_text())["stories"]}


@pytest.fixture(scope="module")
def found(lake) -> pl.DataFrame:
    return campaigns(lake, now=NOW)


def _message_ids(value: Any) -> set[str]:
    """Every NetworkMessageId anywhere in a story."""
    if isinstance(value, dict):
        own = {value["NetworkMessageId"]} if isinstance(value.get("NetworkMessageId"), str) else set()
        return own.union(*(_message_ids(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return set().union(*(_message_ids(v) for v in value)) if value else set()
    return set()


def _campaign_of(found: pl.DataFrame, ids: set[str]) -> pl.DataFrame:
    return found.filter(pl.col("message_ids").list.eval(pl.element().is_in(list(ids))).list.any())


def _copies(lake: Lake, ids: list[str]) -> pl.DataFrame:
    return (lake.scan("EmailEvents").collect().filter(pl.col("NetworkMessageId").is_in(ids))
            .unique(["NetworkMessageId", "RecipientEmailAddress"]))


# --------------------------------------------------------------------------- campaigns


def test_the_planted_phish_campaign_is_one_campaign_without_other_stories(found, stories):
    phish = {m["NetworkMessageId"] for m in stories["credential-phish-campaign"]["messages"]}
    assert len(phish) >= 3  # three waves: a compromised supplier, then two lookalike domains
    hit = _campaign_of(found, phish)
    assert hit.height == 1, hit.select("campaign_id", "name")
    members = set(hit["message_ids"][0])
    assert phish <= members
    others = set().union(*(_message_ids(s) for sid, s in stories.items()
                           if sid not in ("credential-phish-campaign", "endpoint-alert")))
    assert not members & (others - phish)  # user reports may name the campaign's own messages
    assert hit["type"][0] == "Phish"


def test_the_planted_malware_campaign_is_one_malware_campaign(found, stories):
    malware = {m["NetworkMessageId"] for m in stories["malware-campaign"]["messages"]}
    hit = _campaign_of(found, malware)
    assert hit.height == 1
    assert malware <= set(hit["message_ids"][0])
    assert hit["type"][0] == "Malware" and hit["name"][0] == "Donoff" and hit["click_rate"][0] is None
    phish = {m["NetworkMessageId"] for m in stories["credential-phish-campaign"]["messages"]}
    assert not phish & set(hit["message_ids"][0])


def test_campaign_impact_matches_an_independent_recount(found, lake, stories):
    phish = {m["NetworkMessageId"] for m in stories["credential-phish-campaign"]["messages"]}
    row = _campaign_of(found, phish).row(0, named=True)
    copies = _copies(lake, row["message_ids"])
    urls = lake.scan("EmailUrlInfo").collect().filter(pl.col("NetworkMessageId").is_in(row["message_ids"]))["Url"]
    clickers = (lake.scan("UrlClickEvents").collect().filter(pl.col("Url").is_in(urls.implode()))
                ["AccountUpn"].str.to_lowercase().n_unique())
    inboxed = copies.filter(pl.col("DeliveryLocation") == "Inbox/folder").height
    assert row["messages"] == copies.height
    assert row["recipients"] == copies["RecipientEmailAddress"].str.to_lowercase().n_unique()
    assert row["inboxed"] == inboxed > 0
    assert row["clicked"] == clickers > 0
    assert row["click_rate"] == pytest.approx(clickers / inboxed)
    assert row["first_seen"] == copies["Timestamp"].min() and row["last_seen"] == copies["Timestamp"].max()
    assert set(row["url_domains"]) >= {u.split("/")[2] for u in stories["credential-phish-campaign"]["urls"]}


def test_campaign_ids_are_stable_and_queries_drill_into_the_explorer(found, lake, stories):
    again = campaigns(lake, now=NOW)
    assert again["campaign_id"].to_list() == found["campaign_id"].to_list()
    assert found["campaign_id"].n_unique() == found.height
    assert campaign_id("ud:example.net") == campaign_id("ud:example.net").strip()
    phish = {m["NetworkMessageId"] for m in stories["credential-phish-campaign"]["messages"]}
    row = _campaign_of(found, phish).row(0, named=True)
    query = Query.from_json(row["query"])
    start, end = query.window.resolve()
    assert start <= row["first_seen"] and end > row["last_seen"]
    rows = compile_query(lake, query, columns=["NetworkMessageId"])[0].collect()
    assert phish <= set(rows["NetworkMessageId"])  # the approximation covers the campaign's mail


def test_no_malicious_mail_means_no_campaigns(lake):
    assert campaigns(lake, now=datetime(2026, 1, 1, tzinfo=UTC)).is_empty()


# --------------------------------------------------------------------------- family trends


def test_family_trends_match_an_independent_recount(lake):
    trends = family_trends(lake, now=NOW)
    mail = lake.scan("EmailEvents").collect().filter(
        pl.col("Timestamp") >= NOW - timedelta(days=7), pl.col("Timestamp") < NOW)
    expected: dict[str, int] = {}
    for types, names in mail.select("ThreatTypes", "ThreatNames").iter_rows():
        if not types or not ({"Phish", "Malware"} & {t.strip() for t in types.split(",")}):
            continue
        fams = [n.strip() for n in (names or "").split(",") if n.strip()] or \
            [t.strip() for t in types.split(",") if t.strip() in ("Phish", "Malware")]
        for fam in fams:
            expected[fam] = expected.get(fam, 0) + 1
    assert dict(zip(trends["family"], trends["this_week"])) == expected
    assert "Donoff" in expected
    assert trends["this_week"].to_list() == sorted(trends["this_week"].to_list(), reverse=True)
    for row in trends.iter_rows(named=True):
        assert len(row["daily"]) == 14 and sum(row["daily"]) == row["this_week"] + row["prior_week"]
        assert row["prior_week"] == 0 and row["trend"] == "new"  # the tenant holds 3 days


def test_a_later_week_declines(lake):
    later = family_trends(lake, now=NOW + timedelta(days=7))
    assert set(later["trend"]) == {"declining"} and set(later["this_week"]) == {0}


@pytest.mark.parametrize(("this", "prior", "label"), [
    (10, 0, "new"), (0, 0, "flat"), (15, 10, "rising"), (4, 2, "flat"), (5, 10, "declining"), (11, 10, "flat"),
])
def test_trend_rule(this, prior, label):
    assert trend_label(this, prior) == label


# --------------------------------------------------------------------------- seen here


def test_a_note_with_a_phish_url_is_seen_here(lake, stories):
    url = stories["credential-phish-campaign"]["urls"][0]
    sighting = seen_here(lake, ThreatNote("n1", "Credential phish", "", indicators=(("url", url),)), now=NOW)
    ids = lake.scan("EmailUrlInfo").collect().filter(pl.col("Url") == url)["NetworkMessageId"].unique().to_list()
    copies = _copies(lake, ids)
    assert sighting.messages == copies.height > 0
    assert sighting.delivered == copies.filter((pl.col("DeliveryAction") == "Delivered")
                                               | (pl.col("LatestDeliveryLocation") == "Inbox/folder")).height
    assert sighting.days_ago == (NOW - copies["Timestamp"].max()).days
    assert sighting.render().startswith(f"seen here: {copies.height} messages, {sighting.delivered} delivered")
    assert sighting.matched_by == ("url",)


def test_a_note_with_a_phish_domain_counts_senders_and_urls(lake, stories):
    domain = stories["credential-phish-campaign"]["urls"][-1].split("/")[2]
    sighting = seen_here(lake, ThreatNote("n2", "Lookalike", "", indicators=(("domain", domain.upper()),)), now=NOW)
    by_url = lake.scan("EmailUrlInfo").collect().filter(pl.col("UrlDomain") == domain)["NetworkMessageId"]
    by_sender = lake.scan("EmailEvents").collect().filter(pl.col("SenderFromDomain") == domain)["NetworkMessageId"]
    copies = _copies(lake, pl.concat([by_url, by_sender]).unique().to_list())
    assert sighting.messages == copies.height > 0


def test_a_family_matches_threat_names_case_insensitively(lake):
    sighting = seen_here(lake, ThreatNote("n3", "Donoff downloader", "donoff"), now=NOW)
    mail = lake.scan("EmailEvents").collect().filter(pl.col("ThreatNames").str.contains("Donoff"))["NetworkMessageId"]
    files = (lake.scan("EmailAttachmentInfo").collect()
             .filter(pl.col("ThreatNames").str.contains("Donoff"))["NetworkMessageId"])
    assert sighting.messages == _copies(lake, pl.concat([mail, files]).unique().to_list()).height > 0
    assert sighting.matched_by == ("family",)
    assert not seen_here(lake, ThreatNote("n4", "Don", "Don"), now=NOW).seen  # whole words only


def test_an_unknown_family_is_not_seen_here(lake):
    sighting = seen_here(lake, ThreatNote("n5", "Unheard of", "Zzyzxlocker", indicators=(("ip", "203.0.113.250"),)),
                         now=NOW)
    assert not sighting.seen and sighting.render() == "not seen here"
