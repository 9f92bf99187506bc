"""The demo tenant generator: determinism, realism, planted stories and their links, raw mail."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import json
import re
from datetime import date, datetime

import polars as pl
import pytest

from workbench import schema
from workbench.enums import DeliveryAction, EmailDirection, Folder
from workbench.ingest.demo import generate
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore
from workbench.tenant import open_tenant

pytestmark = pytest.mark.slow


def _table(lake: Lake, name: str) -> pl.DataFrame:
    key = list(schema.table(name).key)
    return lake.scan(name).collect().sort(key)


def _all_raw(tenant) -> dict[str, str]:
    store = EmbeddedMailStore.for_tenant(tenant)
    ids = [r[0] for r in store._db.execute("SELECT network_message_id FROM messages ORDER BY 1")]
    digests = {nmid: hashlib.sha256(store.raw(nmid)).hexdigest() for nmid in ids}
    folders = list(store._db.execute("SELECT * FROM mailbox ORDER BY 1, 2"))
    store.close()
    return {"raw": digests, "folders": folders}


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> tuple:
    """Two tenants from the same seed (8 days, so a weekend is included), and one from another seed."""
    out = []
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        base = tmp_path_factory.mktemp(f"twin-{label}")
        generate("twin", users=30, days=8, seed=seed, end=date(2026, 11, 20), base=base)
        out.append(open_tenant("twin", base=base))
    return tuple(out)


def test_same_seed_gives_identical_rows_and_raw_messages(twins):
    a, b, c = twins
    lake_a, lake_b, lake_c = Lake.for_tenant(a), Lake.for_tenant(b), Lake.for_tenant(c)
    for name in schema.TABLES:
        left, right = _table(lake_a, name), _table(lake_b, name)
        assert left.height == right.height, name
        assert left.equals(right), f"{name} differs between two runs with the same seed"
    assert _all_raw(a) == _all_raw(b)
    assert a.scenarios_path.read_text() == b.scenarios_path.read_text()
    # ...and a different seed gives a different tenant.
    assert not _table(lake_a, "EmailEvents").equals(_table(lake_c, "EmailEvents"))


def test_traffic_follows_the_working_week_and_day(twins):
    events = Lake.for_tenant(twins[0]).scan("EmailEvents").collect()
    per_day = events.group_by(pl.col("Timestamp").dt.date().alias("day")).len()
    weekday = per_day.filter(pl.col("day").dt.weekday() <= 5)["len"].mean()
    weekend = per_day.filter(pl.col("day").dt.weekday() > 5)["len"].mean()
    assert weekend < 0.6 * weekday
    directions = events["EmailDirection"].value_counts().to_dict(as_series=False)
    share = dict(zip(directions["EmailDirection"], directions["count"]))
    assert share["Inbound"] > share["Intra-org"] > share["Outbound"] > 0
    # Newsletters carry bulk complaint levels; whatever the analyzers call a threat is junked or quarantined.
    assert events.filter(pl.col("BulkComplaintLevel") >= 4).height > 0
    threats = events.filter(pl.col("ThreatTypes").is_not_null() & (pl.col("OrgLevelAction") != "Allow").fill_null(True))
    assert {"Phish", "Malware"} <= set(threats["ThreatTypes"].str.split(", ").explode())
    assert set(threats["DeliveryAction"].unique()) <= {"Junked", "Blocked"}
    assert events.filter(pl.col("ThreatTypes").is_null())["DeliveryAction"].unique().to_list() == ["Delivered"]
    # Sender IPs repeat per sender domain (infrastructure), not random per message.
    freemail = ["gmail.com", "outlook.com", "yahoo.com", "proton.me"]
    inbound = events.filter((pl.col("EmailDirection") == "Inbound") & ~pl.col("SenderFromDomain").is_in(freemail))
    ips = inbound.group_by("SenderFromDomain").agg(pl.col("SenderIPv4").n_unique())
    assert ips["SenderIPv4"].max() <= 3


@pytest.fixture(scope="module")
def small(small_tenant):
    """The session's small tenant (conftest), its lake and its stories by id."""
    stories = {s["id"]: s for s in json.loads(small_tenant.scenarios_path.read_text())["stories"]}
    return small_tenant, Lake.for_tenant(small_tenant), stories


def test_every_story_is_planted(small):
    _, _, stories = small
    assert set(stories) == {
        "credential-phish-campaign", "compromised-user", "endpoint-alert", "malware-campaign",
        "content-malware", "bec-impersonation", "user-reports",
    }


def test_credential_phish_campaign(small):
    tenant, lake, stories = small
    s = stories["credential-phish-campaign"]
    events = lake.scan("EmailEvents").collect()
    ids = pl.DataFrame(s["messages"])
    rows = events.join(ids, on=["NetworkMessageId", "RecipientEmailAddress"])
    assert rows.height == len(s["messages"]) and len(s["waves"]) >= 3
    # A supplier's compromised mailbox gets through; the lookalike waves are stopped at delivery.
    first, *later = s["waves"]
    assert first["delivered"] == first["recipients"] and all(w["delivered"] < w["recipients"] for w in later)
    assert rows["Subject"].n_unique() >= 3
    assert {"Delivered"} <= set(rows["DeliveryAction"].unique())
    assert rows.filter(pl.col("LatestDeliveryLocation") == "Quarantine").height > 0  # ZAP
    post = lake.scan("EmailPostDeliveryEvents").collect().filter(pl.col("ReportId").is_in(s["post_delivery"]))
    assert post.height == len(s["post_delivery"]) > 0 and set(post["ActionType"]) == {"Phish ZAP"}
    clicks = lake.scan("UrlClickEvents").collect().filter(pl.col("ReportId").is_in(s["clicks"]))
    assert clicks["ReportId"].n_unique() == len(s["clicks"])
    assert clicks["Url"].is_in(s["urls"]).all()


def test_compromised_user_chain_is_linked_and_ordered(small):
    tenant, lake, stories = small
    s = stories["compromised-user"]
    steps = {step["step"]: step for step in s["sequence"]}
    assert [step["step"] for step in s["sequence"]] == ["click", "risky_signin", "inbox_rule", "internal_phish_burst"]
    user = s["user"]
    click = lake.scan("UrlClickEvents").filter(pl.col("ReportId") == steps["click"]["ReportId"]).collect()
    signin = lake.scan("AADSignInEventsBeta").filter(pl.col("ReportId") == steps["risky_signin"]["ReportId"]).collect()
    rule = lake.scan("CloudAppEvents").filter(pl.col("ReportId") == steps["inbox_rule"]["ReportId"]).collect()
    burst = lake.scan("EmailEvents").filter(
        pl.col("NetworkMessageId").is_in(steps["internal_phish_burst"]["NetworkMessageIds"])).collect()
    assert click.height == signin.height == rule.height == 1 and burst.height >= 3
    directory = lake.scan("IdentityInfo").filter(pl.col("AccountUpn") == user).collect()
    # Same user throughout.
    assert click["AccountUpn"][0] == signin["AccountUpn"][0] == user
    assert rule["AccountObjectId"][0] == directory["AccountObjectId"][0]
    assert set(burst["SenderFromAddress"]) == {user} and set(burst["EmailDirection"]) == {"Intra-org"}
    # In that order.
    times = [click["Timestamp"][0], signin["Timestamp"][0], rule["Timestamp"][0], burst["Timestamp"].min()]
    assert times == sorted(times) and len(set(times)) == 4
    # The sign-in is risky and foreign; the rule forwards outside the organisation from the attacker's IP.
    assert signin["ErrorCode"][0] == 0 and signin["RiskLevelAggregated"][0] == 100
    assert signin["Country"][0] != directory["Country"][0] or signin["IPAddress"][0] == s["attacker_ip"]
    raw = json.loads(rule["RawEventData"][0])
    forward = next(p["Value"] for p in raw["Parameters"] if p["Name"] == "ForwardTo")
    domains = tenant.manifest()["organisation"]["domains"]
    assert forward.split("@")[1] not in domains and rule["IPAddress"][0] == signin["IPAddress"][0]


def test_endpoint_alert_is_on_the_compromised_users_device(small):
    _, lake, stories = small
    alert = stories["endpoint-alert"]
    assert alert["user"] == stories["compromised-user"]["user"]
    info = lake.scan("AlertInfo").filter(pl.col("AlertId") == alert["AlertId"]).collect()
    evidence = lake.scan("AlertEvidence").filter(pl.col("AlertId") == alert["AlertId"]).collect()
    assert info.height == 1 and info["ServiceSource"][0] == "Microsoft Defender for Endpoint"
    assert set(evidence["EntityType"]) >= {"Machine", "User", "Url", "File"}
    assert alert["user"] in evidence["AccountUpn"].to_list()
    device = lake.scan("DeviceInfo").filter(pl.col("DeviceId") == alert["DeviceId"]).collect()
    assert device.height > 0 and alert["user"].split("@")[0] in device["LoggedOnUsers"][0]


def test_malware_and_content_malware(small):
    _, lake, stories = small
    m = stories["malware-campaign"]
    hashes = {a["SHA256"] for a in m["attachments"]}
    assert len(hashes) == 4
    stopped = [a["SHA256"] for a in m["attachments"] if a["delivered"] == 0]
    assert len(stopped) == 3  # macro document, zipped executable, HTML smuggling: caught by attachment analysis
    atts = lake.scan("EmailAttachmentInfo").filter(pl.col("SHA256").is_in(stopped)).collect()
    assert set(atts["ThreatTypes"]) == {"Malware"} and atts["FileName"].n_unique() == 3
    assert any(n.endswith(".docm") for n in atts["FileName"]) and any(n.endswith(".html") for n in atts["FileName"])
    post = lake.scan("EmailPostDeliveryEvents").filter(pl.col("ReportId").is_in(m["post_delivery"])).collect()
    assert set(post["ActionType"]) == {"Malware ZAP"}
    files = lake.scan("FileMaliciousContentInfo").collect()
    c = stories["content-malware"]
    assert set(files["Workload"]) == {"SharePoint", "OneDrive", "Teams"}
    assert set(files["SHA256"]) <= hashes  # files saved from the campaign's attachments
    assert post.height == len(m["post_delivery"]) > 0  # the PDF dropper, removed once its hash became known
    assert {f["ReportId"] for f in c["files"]} == set(files["ReportId"])


def test_bec_has_no_links_and_a_reply_to_mismatch(small):
    tenant, lake, stories = small
    s = stories["bec-impersonation"]
    ids = [m["NetworkMessageId"] for m in s["messages"]]
    rows = lake.scan("EmailEvents").filter(pl.col("NetworkMessageId").is_in(ids)).collect()
    ceo = lake.scan("IdentityInfo").filter(pl.col("AccountUpn") == s["impersonated_user"]).collect()
    name = ceo["AccountDisplayName"][0]
    assert name in set(rows["SenderDisplayName"]) and all(d.split()[0] == name.split()[0] for d in rows["SenderDisplayName"])
    assert not set(rows["SenderFromDomain"]) & set(tenant.manifest()["organisation"]["domains"])
    assert any(m["detected"] for m in s["messages"]) and s["replies"]  # one wave caught, one answered
    assert (rows["UrlCount"] == 0).all() and (rows["AttachmentCount"] == 0).all()
    store = EmbeddedMailStore.for_tenant(tenant)
    msg = email.message_from_bytes(store.raw(ids[0]), policy=email.policy.default)
    assert msg["Reply-To"] == s["reply_to"] != msg["From"].addresses[0].addr_spec


def test_user_reports(small):
    _, lake, stories = small
    s = stories["user-reports"]
    reports = lake.scan("CloudAppEvents").filter(pl.col("ActionType") == "UserSubmission").collect()
    reported = {json.loads(r)["NetworkMessageId"] for r in reports["RawEventData"]}
    expected = {r["NetworkMessageId"] for kind in ("phish_reports", "simulation_reports", "clean_reports") for r in s[kind]}
    assert expected == reported and s["phish_reports"] and s["simulation_reports"] and s["clean_reports"]
    events = lake.scan("EmailEvents").filter(pl.col("NetworkMessageId").is_in(list(reported))).collect()
    assert "Phishing Simulation" in set(events["OrgLevelPolicy"].drop_nulls())


def test_raw_messages_match_their_rows(small):
    tenant, lake, stories = small
    store = EmbeddedMailStore.for_tenant(tenant)
    events = lake.scan("EmailEvents").collect()
    urls = lake.scan("EmailUrlInfo").collect()
    atts = lake.scan("EmailAttachmentInfo").collect()
    sample = events.filter(pl.col("AttachmentCount") > 0).head(20).vstack(events.filter(pl.col("UrlCount") > 0).head(20))
    sample = sample.vstack(events.filter(~pl.col("Subject").str.contains(r"^[ -~]*$")).head(5))
    assert sample.height >= 40
    for row in sample.iter_rows(named=True):
        msg = email.message_from_bytes(store.raw(row["NetworkMessageId"]), policy=email.policy.default)
        assert msg["X-MS-Exchange-Organization-Network-Message-Id"] == row["NetworkMessageId"]
        assert msg["Message-ID"] == row["InternetMessageId"]
        assert str(msg["Subject"]) == row["Subject"]
        assert msg["From"].addresses[0].addr_spec == row["SenderFromAddress"]
        assert row["RecipientEmailAddress"] in str(msg["To"])
        auth = json.loads(row["AuthenticationDetails"])
        assert f"spf={auth['SPF']}" in msg["Authentication-Results"] and row["SenderIPv4"] in " ".join(msg.get_all("Received"))
        hashes = {hashlib.sha256(p.get_content() if isinstance(p.get_content(), bytes) else p.get_content().encode()).hexdigest()
                  for p in msg.iter_attachments()}
        expected = set(atts.filter((pl.col("NetworkMessageId") == row["NetworkMessageId"])
                                   & (pl.col("RecipientEmailAddress") == row["RecipientEmailAddress"]))["SHA256"])
        assert hashes == expected
        body = msg.get_body(("html", "plain")).get_content()
        for url in urls.filter(pl.col("NetworkMessageId") == row["NetworkMessageId"])["Url"]:
            assert url in body
        folder = store.folder(row["NetworkMessageId"], row["RecipientEmailAddress"])
        expected_folder = Folder.for_location(row["LatestDeliveryLocation"])
        if row["RecipientObjectId"] is not None:
            assert folder == expected_folder, row["LatestDeliveryLocation"]
    # Every delivered inbound copy has a raw message and sits in a folder.
    delivered = events.filter((pl.col("DeliveryAction") == DeliveryAction.DELIVERED.value)
                              & (pl.col("EmailDirection") == EmailDirection.INBOUND.value))
    for nmid, rcpt in delivered.select("NetworkMessageId", "RecipientEmailAddress").head(200).iter_rows():
        assert store.raw(nmid) and store.folder(nmid, rcpt) is not None
    # Identical campaign content is stored once: every message of a wave points at one body.
    wave = [m["NetworkMessageId"] for m in stories["credential-phish-campaign"]["messages"] if m["wave"] == 1]
    marks = ",".join("?" * len(wave))
    bodies = store._db.execute(f"SELECT count(DISTINCT body), count(*) FROM messages WHERE network_message_id IN ({marks})", wave)
    assert bodies.fetchone() == (1, len(set(wave)))


def test_generation_summary_counts_match_the_lake(small):
    tenant, lake, _ = small
    manifest = tenant.manifest()
    info = {r["table"]: r["rows"] for r in lake.info().iter_rows(named=True)}
    for table, rows in manifest["rows"].items():
        assert info.get(table, 0) == rows, table
    assert manifest["rows"]["EmailEvents"] > 40 * 3 * 10  # about 20 rows per user per weekday
    assert re.match(r"\d{4}-\d\d-\d\d", manifest["window"]["start"]) and manifest["parameters"]["seed"] == 11
    assert datetime.fromisoformat(manifest["window"]["end"]).date() == date(2026, 11, 21)


def _intel_known_at(tenant, at) -> list:
    """Indicators of the tenant's feed that were known at *at* (STIX valid_from)."""
    from workbench.intel import feeds

    bundle = json.loads((tenant.root / "intel" / "demo-feed.stix.json").read_text())
    known = [o for o in bundle["objects"] if datetime.fromisoformat(o["valid_from"].replace("Z", "+00:00")) <= at]
    return [feeds.Indicator(*i[:2], "demo") for o in known for i in _pattern(o["pattern"])]


def _pattern(pattern: str) -> list[tuple[str, str]]:
    from workbench.intel.feeds import _STIX, _STIX_KIND

    return [(_STIX_KIND.get(f.lower(), "sha256"), v.lower() if "url" not in f.lower() else v) for f, v in _STIX.findall(pattern)]


def test_demo_verdicts_come_from_the_analyzers_over_the_stored_messages(small):
    """Re-running detection on the raw message in the mailbox, with the intelligence known at
    delivery, gives the verdict the lake holds; ZAP events are re-evaluations with later intel."""
    from workbench.detect import evaluate
    from workbench.ingest.batch import tenant_context
    from workbench.ingest.message import parse
    from workbench.intel.feeds import with_indicators

    tenant, lake, _ = small
    store = EmbeddedMailStore.for_tenant(tenant)
    base = tenant_context(tenant, tuple(tenant.manifest()["organisation"]["domains"]))
    events = lake.scan("EmailEvents").collect()
    sample = pl.concat([g.head(6) for _, g in events.group_by("ThreatTypes", "DeliveryAction", "EmailDirection",
                                                              maintain_order=True)])
    assert sample.height >= 12 and sample["ThreatTypes"].null_count() < sample.height
    for row in sample.iter_rows(named=True):
        ctx = with_indicators(base, _intel_known_at(tenant, row["Timestamp"]))
        verdict = evaluate(parse(store.raw(row["NetworkMessageId"])), ctx)
        stored = json.loads(row["AdditionalFields"])["Explanation"]
        assert verdict.threat_types_text == row["ThreatTypes"], (row["Subject"], stored["rules"])
        assert [r["rule"] for r in verdict.explain()["rules"]] == [r["rule"] for r in stored["rules"]]
    post = lake.scan("EmailPostDeliveryEvents").collect()
    assert post.height > 0
    for z in post.head(10).iter_rows(named=True):
        row = events.filter((pl.col("NetworkMessageId") == z["NetworkMessageId"])
                            & (pl.col("RecipientEmailAddress") == z["RecipientEmailAddress"])).row(0, named=True)
        assert row["DeliveryAction"] == "Delivered" and row["LatestDeliveryLocation"] == "Quarantine"
        raw = parse(store.raw(z["NetworkMessageId"]))
        before = evaluate(raw, with_indicators(base, _intel_known_at(tenant, row["Timestamp"])))
        after = evaluate(raw, with_indicators(base, _intel_known_at(tenant, z["Timestamp"])))
        assert not {"Phish", "Malware"} & set(before.threat_types) and z["ThreatTypes"] in after.threat_types


def test_the_generator_copies_no_verdict_labels():
    """Content carries no verdict: attachments have bytes and names only."""
    from workbench.ingest.demo.content import Attachment

    assert {f.name for f in dataclasses.fields(Attachment)} == {"file_name", "file_type", "mime_type", "content"}
