"""Retro-hunt: new indicators against the whole lake, and the alerts they raise."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench.explorer.compile import compile_query
from workbench.explorer.query import Query
from workbench.incidents import alerting
from workbench.incidents.model import EntityKind, Severity
from workbench.incidents.service import IncidentService
from workbench.intel.model import Indicator
from workbench.intel.retrohunt import POLICY_ID, hunt, retro_hunt
from workbench.intel.store import upsert
from workbench.lake import Lake
from workbench.store import open_store

END = datetime(2026, 11, 21, tzinfo=UTC)  # the end of the small tenant's last day (conftest: 2026-11-20)


@pytest.fixture(scope="module")
def lake(small_tenant) -> Lake:
    return Lake.for_tenant(small_tenant)  # only read here


@pytest.fixture
def store(tmp_path):
    """A store of our own: the retro-hunt writes alerts and its watermark, never the lake."""
    return open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")


def _copies_of(lake: Lake, ids: pl.Series) -> set[tuple[str, str]]:
    """(NetworkMessageId, recipient) of the EmailEvents copies of *ids*: the independent answer."""
    rows = (lake.scan("EmailEvents", columns=["NetworkMessageId", "RecipientEmailAddress"])
            .filter(pl.col("NetworkMessageId").is_in(ids.implode())).collect())
    return {(n, r.lower()) for n, r in rows.iter_rows()}


@pytest.fixture(scope="module")
def old_url(lake) -> tuple[str, set[tuple[str, str]]]:
    """An external URL delivered to an inbox two days before the tenant's end, and its copies."""
    mail = lake.scan("EmailEvents", columns=["Timestamp", "NetworkMessageId", "LatestDeliveryLocation", "EmailDirection"])
    urls = (lake.scan("EmailUrlInfo", columns=["Url", "NetworkMessageId"])
            .join(mail, on="NetworkMessageId")
            .group_by("Url").agg(pl.col("Timestamp").max().alias("last"),
                                 (pl.col("LatestDeliveryLocation") == "Inbox/folder").any().alias("inbox"),
                                 (pl.col("EmailDirection") == "Inbound").all().alias("inbound"),
                                 pl.col("NetworkMessageId").n_unique().alias("messages"))
            .filter((pl.col("last") < END - timedelta(days=2)) & pl.col("inbox") & pl.col("inbound")
                    & (pl.col("messages") >= 2))
            .sort("messages", "Url", descending=[True, False]).collect())
    assert urls.height, "the small tenant has no old inbound URL"
    url = urls["Url"][0]
    ids = lake.scan("EmailUrlInfo", columns=["Url", "NetworkMessageId"]).filter(pl.col("Url") == url).collect()
    return url, _copies_of(lake, ids["NetworkMessageId"].unique())


def _pairs(match) -> set[tuple[str, str]]:
    return {(c.network_message_id, c.recipient) for c in match.copies}


def test_hunt_finds_exactly_the_copies_of_an_old_url(lake, old_url):
    url, expected = old_url
    result = hunt(lake, [Indicator("url", url, "feed")])
    [match] = result.matches
    assert _pairs(match) == expected
    assert match.first_seen < END - timedelta(days=2) and match.in_mailbox >= 1
    assert url in result.render()
    assert result.get("url", url) is match and result.get("url", url + "/other") is None


def test_hunt_matches_domains_with_their_subdomains_ips_senders_and_files(lake):
    mail = lake.scan("EmailEvents", columns=["NetworkMessageId", "SenderIPv4", "SenderFromAddress", "SenderFromDomain",
                                             "EmailDirection"]).filter(pl.col("EmailDirection") == "Inbound").collect()
    ip, sender, domain = mail["SenderIPv4"].drop_nulls()[0], mail["SenderFromAddress"][0], mail["SenderFromDomain"][0]
    files = lake.scan("EmailAttachmentInfo", columns=["NetworkMessageId", "SHA256"]).drop_nulls().collect()
    sha = files["SHA256"][0]
    parent = domain.split(".", 1)[1] if domain.count(".") >= 2 else domain
    result = hunt(lake, [Indicator("ip", ip, "f"), Indicator("sender", sender.upper(), "f"),
                         Indicator("senderDomain", parent, "f"), Indicator("sha256", sha.upper(), "f")])
    by_ip = mail.filter(pl.col("SenderIPv4") == ip)["NetworkMessageId"]
    assert _pairs(result.get("ip", ip)) == _copies_of(lake, by_ip)
    assert _pairs(result.get("sender", sender)) == _copies_of(
        lake, mail.filter(pl.col("SenderFromAddress").str.to_lowercase() == sender.lower())["NetworkMessageId"])
    under = mail.filter((pl.col("SenderFromDomain") == parent) | pl.col("SenderFromDomain").str.ends_with("." + parent))
    assert _pairs(result.get("senderDomain", parent)) >= _copies_of(lake, under["NetworkMessageId"])
    file_match = result.get("sha256", sha)
    assert _pairs(file_match) == _copies_of(lake, files.filter(pl.col("SHA256") == sha)["NetworkMessageId"])
    assert {f.sha256 for f in file_match.files} == {sha.lower()}


def _alerts(store) -> list:
    return IncidentService(store, "test").alerts()


def test_new_indicators_raise_one_alert_each_once(store, lake, old_url):
    url, expected = old_url
    upsert(store, [Indicator("url", url, "feed", confidence=90, family="PhishKit")])
    first = retro_hunt(store, lake)
    assert len(first.new_alerts) == 1 and first.watermark is not None
    alert = IncidentService(store, "test").alert(first.new_alerts[0])
    assert alert.policy_id == POLICY_ID and alert.threat_family == "PhishKit" and alert.incident_id is not None
    assert alert.message_count == len(expected) and alert.severity is Severity.HIGH  # confident, still in inboxes
    emails = {tuple(e.value.split("|")) for e in alert.entities if e.kind is EntityKind.EMAIL}
    assert emails == expected
    assert any(e.kind is EntityKind.URL and e.value == url and e.role == "indicator" for e in alert.entities)
    listed = compile_query(lake, Query.from_json(alert.explorer_query), columns=["NetworkMessageId", "RecipientEmailAddress"])[0]
    assert {(n, r.lower()) for n, r in listed.collect().iter_rows()} == expected

    again = retro_hunt(store, lake)  # nothing added since
    assert again.new_alerts == () and again.result.hunted == 0
    assert retro_hunt(store, lake, since=datetime(2000, 1, 1, tzinfo=UTC)).new_alerts == ()  # same dedup key
    alerting.run(store, lake, only=[POLICY_ID])  # a manual policy: the alert run keeps the retro-hunt's watermark
    assert alerting.watermarks(store)[POLICY_ID][0] == first.watermark

    ip = (lake.scan("EmailEvents", columns=["SenderIPv4", "EmailDirection"])
          .filter(pl.col("EmailDirection") == "Inbound").drop_nulls().collect())["SenderIPv4"][0]
    upsert(store, [Indicator("ip", ip, "other-feed", confidence=40)])
    second = retro_hunt(store, lake)
    assert len(second.new_alerts) == 1 and second.result.hunted == 1 and second.watermark > first.watermark
    assert IncidentService(store, "test").alert(second.new_alerts[0]).title.startswith(
        f"Threat intelligence match in past mail: IP {ip}")
    assert len(_alerts(store)) == 2


def test_allow_listed_expired_and_unmatched_indicators_raise_nothing(store, lake, old_url):
    url, _ = old_url
    host = url.split("://", 1)[1].split("/", 1)[0]
    now = datetime.now(UTC)
    upsert(store, [Indicator("url", url, "feed", expires=now - timedelta(days=1)),  # expired
                   Indicator("domain", host, "feed"), Indicator("domain", host, "warninglist", allow=True),
                   Indicator("url", "https://never-seen.example/login", "feed"),
                   Indicator("sha256", "0" * 64, "feed")])
    run = retro_hunt(store, lake, now=now)
    assert run.result.hunted == 2 and run.result.matches == () and run.new_alerts == () and not _alerts(store)
    assert "0 matched" in run.render()


def test_a_disabled_policy_hunts_nothing_and_keeps_its_backlog(store, lake, old_url):
    alerting.configure(store, POLICY_ID, "admin", enabled=False)  # a fresh store has no role assignments
    upsert(store, [Indicator("url", old_url[0], "feed")])
    assert not retro_hunt(store, lake).enabled and not _alerts(store)
    alerting.configure(store, POLICY_ID, "admin", enabled=True, severity="low")
    [alert] = [IncidentService(store, "test").alert(a) for a in retro_hunt(store, lake).new_alerts]
    assert alert.severity is Severity.LOW  # the admin's severity wins


def test_a_thousand_indicators(lake, old_url, capsys):
    """Scale: ~1000 indicators of every type at once (timing reported, not asserted)."""
    urls = lake.scan("EmailUrlInfo", columns=["Url"]).unique().sort("Url").collect()["Url"].head(399).to_list()
    urls = sorted({*urls, old_url[0]})
    mail = lake.scan("EmailEvents", columns=["SenderFromAddress", "SenderIPv4"]).unique().collect()
    senders = sorted(mail["SenderFromAddress"].drop_nulls().unique())[:200]
    ips = sorted(mail["SenderIPv4"].drop_nulls().unique())[:200]
    indicators = ([Indicator("url", u, "f") for u in urls] + [Indicator("sender", s, "f") for s in senders]
                  + [Indicator("ip", i, "f") for i in ips])
    indicators += [Indicator("domain", f"nowhere{i}.example", "f") for i in range(1000 - len(indicators))]
    started = time.perf_counter()
    result = hunt(lake, indicators)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\nretro-hunt of {result.hunted} indicators: {seconds:.2f}s, {len(result.matches)} matched, "
              f"{sum(len(m.copies) for m in result.matches)} copies")
    assert result.hunted == len(indicators) == 1000
    assert {(m.type.value, m.value) for m in result.matches} == (
        {("url", u) for u in urls} | {("sender", s.lower()) for s in senders} | {("ip", i) for i in ips})
    assert _pairs(result.get("url", old_url[0])) == old_url[1]
