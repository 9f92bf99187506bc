"""Indicator import (STIX 2.0/2.1, MISP events and warning lists, text/CSV blocklists) and export
(STIX 2.1 made with stix2 and checked by stix2-validator, CSV): every external sample imports and a
re-import changes nothing; warning lists become allow entries; TLP:RED and AMBER+STRICT never leave;
indicators learned from investigations are exported; importing needs alert policy configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2
from click.testing import CliRunner
from stix2validator import ValidationOptions, validate_file, validate_string

from workbench import audit, rbac
from workbench.air import records
from workbench.air.model import ClusterCounts, ClusterKind, InvestigationStatus, MailCluster
from workbench.cli_intel import intel
from workbench.errors import InputError, PermissionDenied
from workbench.incidents.model import Entity, RemediationStatus, Verdict
from workbench.intel import exports, imports
from workbench.intel.model import Indicator, IndicatorType, Tlp
from workbench.intel.store import allowed, search, upsert
from workbench.store import open_store
from workbench.store import tables as t

INTEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "threat_intel"
needs_samples = pytest.mark.skipif(not INTEL.is_dir(), reason="external threat intel samples not present "
                                                              "(../shared/data/external)")
HASH = "ab" * 32


def new_store(path: Path):
    return open_store(url=f"sqlite:///{path / 'workbench.sqlite'}")


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path)
    yield s
    s.dispose()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A store with every sample imported twice: (store, first results, second results)."""
    if not INTEL.is_dir():
        pytest.skip("external threat intel samples not present (../shared/data/external)")
    s = new_store(tmp_path_factory.mktemp("intel"))
    first = {r.source: r for r in imports.import_paths(s, [INTEL], actor="ana")}
    second = {r.source: r for r in imports.import_paths(s, [INTEL], actor="ana")}
    yield s, first, second
    s.dispose()


def kinds(result) -> dict[str, int]:
    return dict(result.by_type)


@needs_samples
def test_every_sample_imports_and_a_reimport_changes_nothing(imported):
    s, first, second = imported
    samples = sorted(p.name for p in INTEL.rglob("*") if p.suffix in (".json", ".txt", ".csv"))
    assert sorted(first) == samples
    assert not [r for r in first.values() if r.failed]
    for name, r in second.items():
        assert (r.added, r.updated, r.notes) == (0, 0, 0), r.render()
        assert r.unchanged == first[name].added + first[name].updated + first[name].unchanged
    with s.read() as conn:
        rows = conn.execute(t.intel_imports.select()).all()
    assert len(rows) == 2 * len(samples) and all(len(r.sha256) == 64 and r.actor == "ana" for r in rows)
    assert sum(r.added for r in rows) == sum(r.added for r in first.values())


@needs_samples
def test_counts_per_sample_kind_are_sensible(imported):
    _, first, _ = imported
    formats = {r.source: r.format for r in first.values()}
    assert formats["agent-tesla.json"] == formats["2024-02-08-Pikabot.json"] == "stix-2.0"
    assert formats["long_event.json"] == "misp-event" and formats["tranco10k.json"] == "misp-warninglist"
    assert formats["urlhaus-filter-online.txt"] == "text" and formats["urlhaus-filter-splunk-online.csv"] == "csv"
    tesla, loki, icedid, pika = (kinds(first[f"{n}.json"]) for n in ("agent-tesla", "lokibot", "icedid",
                                                                      "2024-02-08-Pikabot"))
    assert tesla["sender"] == 2 and tesla["sha256"] >= 5 and loki["sha256"] == 3
    assert icedid["ip"] > 5 and icedid["domain"] > 5 and pika == {"sha256": 3, "url": 7}
    assert "file:name" in " ".join(first["agent-tesla.json"].reasons)  # skipped, with why
    misp = kinds(first["long_event.json"])
    assert misp["sha256"] > 40 and misp["url"] > 5 and misp["ip"] > 3 and misp["domain"] > 0
    assert kinds(first["57c4445b-c548-4654-af0b-4be3950d210f.json"]) == {"sha256": 1}
    text, csv_ = kinds(first["urlhaus-filter-online.txt"]), kinds(first["urlhaus-filter-splunk-online.csv"])
    assert text["url"] > 3000 and text["ip"] > 2000 and text["domain"] > 500
    assert abs(sum(text.values()) - sum(csv_.values())) < 10  # the same snapshot in two formats
    assert kinds(first["urlhaus-filter-domains-online.txt"]).get("url", 0) == 0


@needs_samples
def test_warning_lists_become_allow_entries(imported):
    s, first, _ = imported
    assert kinds(first["tranco10k.json"]) == {"allow domain": 10000}
    assert kinds(first["microsoft-office365-ip.json"]) == {"allow ip": 82}
    assert kinds(first["disposable-email.json"]) == {"allow senderDomain": 8201}
    sim = kinds(first["microsoft-attack-simulator.json"])
    assert sim["allow domain"] > 100 and sim["allow ip"] >= 1
    assert first["common-contact-emails.json"].skipped == 1  # a regex list has no exact values
    ok = allowed(s)
    assert "104.47.0.0/17" in ok[IndicatorType.IP] and "0-mail.com" in ok[IndicatorType.SENDER_DOMAIN]
    entry = search(s, text="0-mail.com", allow=True)[0]
    assert entry.source == "disposable-email.json" and "warning list" in entry.description


@needs_samples
def test_threat_notes_come_from_stix_reports_intrusion_sets_and_campaigns(imported):
    s, first, _ = imported
    found = {n.id: n for n in imports.notes(s)}
    tesla = imports.note(s, "intrusion-set--0598e66e-8c1e-4706-b6f3-2dbe2dbcdd7f")
    assert tesla.family == "Agent Tesla Malware" and tesla.source == "agent-tesla.json"
    assert any(x.startswith("T1") for x in tesla.techniques) and tesla.protections
    assert any(k == "sender" for k, _ in tesla.indicators)
    assert {n.id.split("--")[0] for n in found.values()} == {"report", "intrusion-set", "campaign"}
    hashes = search(s, types=["sha256"], source="agent-tesla.json")
    assert hashes and all(i.family == "Agent Tesla Malware" for i in hashes)
    with pytest.raises(Exception, match="no threat note"):
        imports.note(s, "report--nope")


def bundle_21(tlp_ids: dict[str, str]) -> str:
    """A STIX 2.1 bundle: OR'ed patterns, confidence, valid_until, labels, markings, a malware family."""
    ind = [stix2.v21.Indicator(pattern=pattern, pattern_type="stix", valid_from="2026-01-01T00:00:00Z",
                               valid_until="2099-01-01T00:00:00Z", confidence=90, labels=["phish"],
                               object_marking_refs=[marking], description="from a partner")
           for pattern, marking in (
               ("[url:value = 'http://green.example/a'] OR [domain-name:value = 'green.example']", tlp_ids["green"]),
               (f"[file:hashes.'SHA-256' = '{HASH}']", tlp_ids["red"]),
               ("[email-addr:value = 'boss@strict.example']", tlp_ids["amber+strict"]),
               ("[ipv4-addr:value = '198.51.100.7']", stix2.TLP_AMBER.id))]
    mal = stix2.v21.Malware(name="Qakbot", is_family=True)
    rels = [stix2.v21.Relationship(i, "indicates", mal) for i in ind]
    return stix2.v21.Bundle(*ind, mal, *rels, allow_custom=True).serialize()


def test_stix21_import_reads_patterns_markings_and_family(store, tmp_path):
    path = tmp_path / "partner.json"
    path.write_text(bundle_21({"green": exports.TLP2_IDS[Tlp.GREEN], "red": exports.TLP2_IDS[Tlp.RED],
                               "amber+strict": exports.TLP2_IDS[Tlp.AMBER_STRICT]}))
    r = imports.import_file(store, path, actor="ana")
    assert r.format == "stix-2.1" and r.added == 5 and kinds(r) == {"domain": 1, "ip": 1, "sender": 1, "sha256": 1,
                                                                      "url": 1}
    got = {i.value: i for i in search(store, limit=None)}
    assert got["green.example"].tlp is Tlp.GREEN and got[HASH].tlp is Tlp.RED
    assert got["boss@strict.example"].tlp is Tlp.AMBER_STRICT and got["198.51.100.7"].tlp is Tlp.AMBER
    url = got["http://green.example/a"]
    assert (url.confidence, url.tags, url.family, url.description) == (90, ("phish",), "Qakbot", "from a partner")
    assert url.first_seen.year == 2026 and url.expires.year == 2099
    assert imports.notes(store)[0].name == "Qakbot"
    assert imports.import_file(store, path, actor="ana").added == 0


def test_misp_event_with_tlp_tags_objects_and_compound_types(store, tmp_path):
    event = {"Event": {"info": "Invoice phish", "date": "2026-03-01", "threat_level_id": "1",
                       "Tag": [{"name": "tlp:amber"}, {"name": "phishing"}],
                       "Attribute": [
                           {"type": "ip-dst|port", "value": "192.0.2.5|443", "to_ids": True, "timestamp": "1772323200"},
                           {"type": "domain|ip", "value": "bad.example|192.0.2.6", "to_ids": True},
                           {"type": "email-src", "value": "Billing@Bad.Example", "to_ids": True},
                           {"type": "url", "value": "http://bad.example/x", "to_ids": False},
                           {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "to_ids": True}],
                       "Object": [{"Attribute": [{"type": "sha256", "value": HASH.upper(), "to_ids": "1",
                                                  "Tag": [{"name": "tlp:red"}]}]}]}}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    r = imports.import_file(store, path, actor="ana")
    assert r.format == "misp-event" and r.added == 5 and r.skipped == 2
    got = {i.value: i for i in search(store, limit=None)}
    assert set(got) == {"192.0.2.5", "bad.example", "192.0.2.6", "billing@bad.example", HASH}
    assert got[HASH].tlp is Tlp.RED and got["bad.example"].tlp is Tlp.AMBER and got["bad.example"].confidence == 85
    assert got["billing@bad.example"].type is IndicatorType.SENDER and got["192.0.2.5"].tags == ("phishing",)
    assert got["192.0.2.5"].first_seen.day == 1 and got["192.0.2.5"].family == "Invoice phish"


def test_text_and_csv_blocklists(store, tmp_path):
    (tmp_path / "feed").mkdir()
    (tmp_path / "feed" / "adblock.txt").write_text("! Updated: 2026-05-01T00:00:00Z\n# comment\n||evil.example^$all\n"
                                                   "0.0.0.0 hosts.example\nevil.example/path/x.exe\n2001:db8::1\n"
                                                   "not a value at all\n")
    (tmp_path / "feed" / "urlhaus.csv").write_text("# id,dateadded,url,url_status,threat,tags\n"
                                                   '"1","2026-05-01 10:00:00","http://dl.example/a.bin","online",'
                                                   '"malware_download","elf,mozi"\n')
    seen = []
    results = imports.import_paths(store, [tmp_path / "feed"], actor="ana", progress=lambda d, n: seen.append((d, n)))
    assert seen == [(1, 2), (2, 2)]
    text, csv_ = (r for r in results)
    assert kinds(text) == {"domain": 2, "ip": 1, "url": 1} and text.skipped == 1
    assert kinds(csv_) == {"url": 1}
    dl = search(store, text="dl.example")[0]
    assert dl.tags == ("elf", "mozi") and dl.description == "malware_download" and dl.first_seen.month == 5
    assert search(store, text="hosts.example")[0].last_seen.month == 5


@pytest.mark.parametrize("content, name, message", [
    ('{"type": "bundle", "objects": [', "broken.json", "not valid JSON"),
    ('{"hello": 1}', "other.json", "not a STIX bundle, MISP event or MISP warning list"),
    ("a,b\n1,2\n", "nothing.csv", "no url, host, domain, ip, sha256 or sender column"),
])
def test_a_malformed_file_gives_one_line(store, tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        imports.import_file(store, path, actor="ana")
    assert "\n" not in str(err.value) and name in str(err.value)


def test_a_bad_file_in_a_folder_is_reported_and_the_others_imported(store, tmp_path):
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "ok.txt").write_text("evil.example\n")
    results = imports.import_paths(store, [tmp_path], actor="ana")
    assert [(r.source, r.failed) for r in results] == [("broken.json", True), ("ok.txt", False)]
    with pytest.raises(InputError):
        imports.import_paths(store, [tmp_path / "broken.json"], actor="ana")


def test_a_security_reader_may_not_import_and_is_audited(store, tmp_path):
    rbac.bootstrap(store, "admin")
    rbac.grant(store, "admin", "rita", rbac.Role.SECURITY_READER)
    path = tmp_path / "block.txt"
    path.write_text("evil.example\n")
    with pytest.raises(PermissionDenied):
        imports.import_file(store, path, actor="rita")
    [denied] = audit.query(store, activity="intel.import", result="denied")
    assert denied.actor == "rita" and denied.target == "block.txt"
    assert search(store) == []
    imports.import_file(store, path, actor="admin")
    [ok] = audit.query(store, activity="intel.import", result="ok")
    assert ok.details["added"] == 1 and len(ok.details["sha256"]) == 64


def mixed_store(store) -> None:
    upsert(store, [Indicator("domain", "clear.example", "feed", 70, Tlp.CLEAR, tags=("a", "b"), family="Emotet"),
                   Indicator("url", "http://green.example/x", "feed", 60, Tlp.GREEN, description="it's bad"),
                   Indicator("senderDomain", "amber.example", "feed", 80, Tlp.AMBER),
                   Indicator("sender", "ceo@amber.example", "feed", 80, Tlp.AMBER),
                   Indicator("ip", "2001:db8::7", "feed", 55, Tlp.CLEAR),
                   Indicator("sha256", HASH, "feed", 90, Tlp.CLEAR, family="Emotet"),
                   Indicator("domain", "red.example", "feed", 90, Tlp.RED),
                   Indicator("url", "http://strict.example/", "feed", 90, Tlp.AMBER_STRICT),
                   Indicator("domain", "good.example", "list", 90, allow=True)])


def key(i: Indicator) -> tuple:
    return i.type, i.value, i.confidence, i.tlp, tuple(sorted(i.tags)), i.family


def test_stix_export_validates_and_round_trips(store, tmp_path):
    mixed_store(store)
    out = tmp_path / "out" / "share.json"
    assert exports.export_stix(store, out, actor="ana") == 6
    result = validate_file(str(out), ValidationOptions(version="2.1"))
    assert result.is_valid
    assert validate_string(out.read_text(), ValidationOptions(version="2.1")).is_valid
    text = out.read_text()
    assert "red.example" not in text and "strict.example" not in text and "good.example" not in text
    bundle = stix2.parse(text, allow_custom=True, version="2.1")
    types = {o.type for o in bundle.objects}
    assert types == {"identity", "marking-definition", "indicator", "malware", "relationship"}
    assert [o.name for o in bundle.objects if o.type == "identity"] == ["Workbench"]
    values = {v for o in bundle.objects if o.type == "indicator" for _, v in imports.pattern_values(o.pattern)}
    assert values == {i.value for i in exports.shareable(store)}
    again = new_store(tmp_path / "out")
    r = imports.import_file(again, out, actor="ana")
    assert r.added == 6 and {key(i) for i in search(again, limit=None)} == {key(i) for i in exports.shareable(store)}
    assert exports.export_stix(store, out, actor="ana") == 6 and imports.import_file(again, out, actor="ana").added == 0
    assert [x.target for x in audit.query(store, activity="intel.export")] == [str(out), str(out)]


def test_csv_export_leaves_red_and_strict_inside_and_reimports(store, tmp_path):
    mixed_store(store)
    out = tmp_path / "share.csv"
    assert exports.export_csv(store, out, actor="ana") == 6
    text = out.read_text()
    assert text.splitlines()[0] == ",".join(exports.CSV_COLUMNS)
    assert "red.example" not in text and "strict.example" not in text and "good.example" not in text
    (tmp_path / "again").mkdir()
    again = new_store(tmp_path / "again")
    assert imports.import_file(again, out, actor="ana").format == "csv"
    assert {key(i) for i in search(again, limit=None)} == {key(i) for i in exports.shareable(store)}


def investigated(store) -> int:
    run = records.start(store, "user_reported_phish", "Reported phish", started_by="dispatcher", parameters={})
    records.add_evidence(store, run, [
        records.EvidenceItem(Entity.of("url", "https://learned.example/login"), Verdict.MALICIOUS,
                             RemediationStatus.PENDING, "url_reputation"),
        records.EvidenceItem(Entity.of("file", "cd" * 32), Verdict.MALICIOUS, RemediationStatus.NONE, "detonation"),
        records.EvidenceItem(Entity.of("url", "https://fine.example/"), Verdict.NO_THREATS_FOUND,
                             RemediationStatus.NONE, "url_reputation")])
    records.add_clusters(store, run, [
        MailCluster(ClusterKind.SENDER_IP, "203.0.113.77", {"view": "all_email"}, ClusterCounts(total=4),
                    Verdict.MALICIOUS),
        MailCluster(ClusterKind.SENDER_DOMAIN, "sender.example", {"view": "all_email"}, ClusterCounts(total=4),
                    Verdict.MALICIOUS),
        MailCluster(ClusterKind.SUBJECT, "Invoice", {"view": "all_email"}, ClusterCounts(total=4), Verdict.MALICIOUS)])
    records.finish(store, run, InvestigationStatus.PENDING_ACTION)
    return run


def test_learned_indicators_are_stored_and_exported(store, tmp_path):
    run = investigated(store)
    r = exports.learn_from_investigations(store)
    assert r.added == 4 and exports.learn_from_investigations(store).added == 0
    got = {(i.type.value, i.value): i for i in search(store, source="workbench")}
    assert set(got) == {("url", "https://learned.example/login"), ("sha256", "cd" * 32), ("ip", "203.0.113.77"),
                        ("senderDomain", "sender.example")}
    one = got[("ip", "203.0.113.77")]
    assert one.tlp is Tlp.AMBER and one.confidence == 85 and f"investigation {run}" in one.description
    out = tmp_path / "share.json"
    assert exports.export_stix(store, out, actor="ana") == 4
    assert "learned.example" in out.read_text() and "203.0.113.77" in out.read_text()
    assert exports.export_stix(store, out, actor="ana", include_learned=False) == 0


def test_cli_import_search_export_learn_and_notes(tmp_path):
    from workbench.tenant import ensure

    home = tmp_path / "home"
    ensure("t1", base=home)
    feed = tmp_path / "feed.txt"
    feed.write_text("||evil.example^\nhttp://evil.example/\x1b[31mx\n")

    def cli(*args: str, user: str = "ana"):
        return CliRunner().invoke(intel, [*args, "--home", str(home), "--tenant", "t1"],
                                  env={"WORKBENCH_USER": user, "WORKBENCH_DB_URL": None}, catch_exceptions=False)

    r = cli("import", str(feed), "--tlp", "green")
    assert r.exit_code == 0, r.output
    assert "feed.txt (text): 2 added" in r.stdout
    r = cli("search", "evil", "--json")
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["tlp"] for x in rows} == {"green"} and len(rows) == 2
    table = cli("search", "evil").stdout
    assert "\x1b" not in table and "hxxp" in table
    out = tmp_path / "x.json"
    r = cli("export", "--format", "stix", "--out", str(out))
    assert r.exit_code == 0 and "2 indicator(s)" in r.stdout and out.exists()
    assert cli("learn").stdout.startswith("learned indicators: 0 added")
    assert "name" in cli("notes").stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = cli("import", str(bad))
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    r = cli("import", str(feed), "--tlp", "purple")
    assert r.exit_code == 2 and "unknown TLP" in r.stderr
