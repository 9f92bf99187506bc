"""SIEM export: event sources (deterministic ids, order, checkpoints) and the O365, OCSF and CEF formats."""

from __future__ import annotations

import json
import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa

from workbench.lake import Lake
from workbench.siem.events import SOURCES, SourceEvent, collect, event_id
from workbench.siem.formats import cef_line, to_cef, to_o365, to_ocsf
from workbench.store import open_store
from workbench.store import tables as t

T0 = datetime(2026, 11, 19, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(small_tenant, tmp_path_factory):
    """The small tenant's lake and a fresh store with its alerts and incidents, one AIR run and a simulation."""
    from workbench.air import records
    from workbench.air.model import InvestigationStatus
    from workbench.incidents import alerting

    lake = Lake.for_tenant(small_tenant)
    store = open_store(url=f"sqlite:///{tmp_path_factory.mktemp('siem') / 'wb.sqlite'}")
    alerting.run(store, lake)
    run = records.start(store, "user_reported_phish", "User reported | phish = bad\\", started_by="air",
                        parameters={})
    records.finish(store, run, InvestigationStatus.NO_THREATS_FOUND)

    def sim(conn: sa.Connection) -> None:
        conn.execute(t.sim_campaigns.insert().values(
            id=1, name="Q4 payroll", technique="credentialHarvest", payload_id="p1", status="running",
            settings="{}", created_by="ana", created=T0, launch_at=T0, end_at=T0 + timedelta(days=7)))
        conn.execute(t.sim_targets.insert().values(
            id=1, campaign_id=1, email="leon.wang@proseware.com", token="tok1",
            attributes=json.dumps({"display_name": "Leon Wang"}), status="clicked"))
        for n, kind in enumerate(("delivered", "read", "clicked", "credentialsSupplied", "fileDownloaded")):
            conn.execute(t.sim_events.insert().values(campaign_id=1, target_id=1, kind=kind,
                                                      at=T0 + timedelta(minutes=n), ip="10.0.0.1"))
    store.run(sim)
    return lake, store


@pytest.fixture(scope="module")
def events(world) -> list[SourceEvent]:
    return list(collect(*world))


def of(events: list[SourceEvent], source: str) -> list[SourceEvent]:
    return [e for e in events if e.source == source]


# ------------------------------------------------------------------------------------ collect


def test_every_source_yields(events):
    assert {e.source for e in events} == set(SOURCES)


def test_ids_are_deterministic(world, events):
    again = list(collect(*world))
    assert [e.id for e in again] == [e.id for e in events]
    assert len({e.id for e in events}) == len(events)
    email = of(events, "email")[0]
    assert email.id == event_id("email", email.data["ReportId"])


def test_changed_state_is_a_new_event(world):
    from workbench.air import records
    from workbench.air.model import InvestigationStatus

    lake, store = world
    before = of(list(collect(lake, store, sources=["investigation"])), "investigation")
    run = records.start(store, "malware_zap", "zap", started_by="air", parameters={})
    running = [e for e in collect(lake, store, sources=["investigation"]) if e.data["id"] == run]
    records.finish(store, run, InvestigationStatus.REMEDIATED)
    done = [e for e in collect(lake, store, sources=["investigation"]) if e.data["id"] == run]
    assert running[0].id != done[0].id
    assert done[0].id == event_id("investigation", str(run), "remediated")
    assert before[0].id == event_id("investigation", str(before[0].data["id"]), before[0].data["status"])


def test_a_status_change_without_a_new_timestamp_is_still_exported_after_the_checkpoint(world):
    """An investigation moved from pendingAction to remediated by the action center sets no
    started/ended time; its ``updated`` time still puts the change after a checkpoint."""
    import sqlalchemy as sa

    from workbench.air import records
    from workbench.air.model import InvestigationStatus
    from workbench.store import tables as t

    lake, store = world
    run = records.start(store, "phish_zap", "zap", started_by="air", parameters={})
    records.finish(store, run, InvestigationStatus.PENDING_ACTION)
    first = [e for e in collect(lake, store, sources=["investigation"]) if e.data["id"] == run]
    checkpoint = {"investigation": max(e.position for e in collect(lake, store, sources=["investigation"]))}
    store.run(lambda conn: conn.execute(t.investigations.update().where(t.investigations.c.id == run)
                                        .values(status=InvestigationStatus.REMEDIATED.value)))
    later = list(collect(lake, store, sources=["investigation"], since=checkpoint))
    assert [(e.data["id"], e.data["status"]) for e in later] == [(run, "remediated")]
    assert later[0].id != first[0].id and later[0].time > first[0].time
    with store.read() as conn:
        assert conn.execute(sa.select(t.investigations.c.updated).where(t.investigations.c.id == run)).scalar()


def test_ordered_by_time_then_id_within_each_source(events):
    for source in SOURCES:
        positions = [e.position for e in of(events, source)]
        assert positions == sorted(positions), source


def test_since_yields_only_later_events(world, events):
    for source in ("email", "click", "alert", "simulation"):
        evs = of(events, source)
        mid = evs[len(evs) // 2]
        later = list(collect(*world, sources=[source], since={source: mid.position}))
        assert [e.id for e in later] == [e.id for e in evs[len(evs) // 2 + 1:]]
    last = of(events, "email")[-1]
    assert list(collect(*world, sources=["email"], since={"email": last.position})) == []


def test_since_splits_a_time_tie_by_id(world):
    lake, store = world
    same = [SourceEvent("email", i, T0, {}) for i in ("b", "a", "c")]
    from workbench.siem.events import _after

    assert [e.id for e in _after(same, (T0, "a"))] == ["b", "c"]


def test_until_and_sources(world, events):
    emails = of(events, "email")
    cut = emails[100].time
    got = list(collect(*world, sources=["email"], until=cut))
    assert got and all(e.time < cut for e in got) and all(e.source == "email" for e in got)
    with pytest.raises(Exception, match="unknown event source"):
        list(collect(*world, sources=["nope"]))


def test_email_events_carry_urls_and_attachments(events):
    emails = of(events, "email")
    assert any(e.data["Urls"] for e in emails)
    assert any(e.data["Attachments"] for e in emails)


# ------------------------------------------------------------------------------------ OCSF

from ocsf.v1_6_0.events import DetectionFinding, EmailActivity, IncidentFinding  # noqa: E402

MODELS = {4009: EmailActivity, 2004: DetectionFinding, 2005: IncidentFinding}
CLASS_NAMES = {4009: "email_activity", 2004: "detection_finding", 2005: "incident_finding"}


def _schema() -> dict:
    import ocsf

    return json.loads((Path(ocsf.__file__).parent / "schemas" / "v1_6_0.json").read_text())


def _required(schema: dict, name: str) -> set[str]:
    """Required attributes of an event class in the bundled schema, through its ``extends`` chain."""
    cls = schema["events"][name]
    own = {k for k, a in cls["attributes"].items() if isinstance(a, dict) and a.get("requirement") == "required"}
    parent = cls.get("extends")
    return own | (_required(schema, parent) if parent and parent in schema["events"] else set())


def _models_in(annotation: typing.Any) -> list[type[pydantic.BaseModel]]:
    args = typing.get_args(annotation) or (annotation,)
    found = []
    for a in args:
        if isinstance(a, type) and issubclass(a, pydantic.BaseModel):
            found.append(a)
        elif typing.get_args(a):
            found += _models_in(a)
    return found


def _unknown(model: type[pydantic.BaseModel], data: dict, path: str = "") -> list[str]:
    """Attributes the (lenient, extra='allow') models would accept silently but OCSF does not define."""
    fields = {(f.alias or n): f for n, f in model.model_fields.items()}
    bad = []
    for key, value in data.items():
        if key not in fields:
            bad.append(f"{path}{key}")
            continue
        if key == "unmapped":
            continue
        for sub in _models_in(fields[key].annotation)[:1]:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    bad += _unknown(sub, item, f"{path}{key}.")
    return bad


def _ocsf_records(events):
    return [(e, r) for e in events if (r := to_ocsf(e)) is not None]


def test_ocsf_covers_email_alerts_incidents(events):
    classes = {r["class_uid"] for _, r in _ocsf_records(events)}
    assert classes == {4009, 2004, 2005}
    assert all(to_ocsf(e) is None for e in events if e.source in ("click", "file", "investigation", "simulation"))


def test_ocsf_records_validate_against_the_schema(events):
    schema = _schema()
    for ev, record in _ocsf_records(events):
        model = MODELS[record["class_uid"]]
        model.model_validate(record)  # required attributes, enum ids, type_uid/class_uid/sibling consistency
        assert _unknown(model, record) == [], ev.source
        missing = _required(schema, CLASS_NAMES[record["class_uid"]]) - set(record)
        assert not missing, (ev.source, missing)
        assert record["type_uid"] == record["class_uid"] * 100 + record["activity_id"]
        assert record["metadata"]["uid"] == ev.id and record["metadata"]["version"] == "1.6.0"
        assert record["metadata"]["product"]["name"] == "Workbench"
        assert record["time"] == int(ev.time.timestamp() * 1000)


def test_ocsf_checks_reject_bad_records(events):
    ev, record = next((e, r) for e, r in _ocsf_records(events) if r["class_uid"] == 4009)
    with pytest.raises(pydantic.ValidationError):
        EmailActivity.model_validate({**record, "severity_id": 42})
    with pytest.raises(pydantic.ValidationError):
        EmailActivity.model_validate({k: v for k, v in record.items() if k != "direction_id"})
    assert sorted(_unknown(EmailActivity, {**record, "bogus": 1, "email": {**record["email"], "zz": 1}})) == \
        ["bogus", "email.zz"]
    assert "direction_id" in _required(_schema(), "email_activity")


def test_ocsf_email_content(events):
    ev, record = next((e, r) for e, r in _ocsf_records(events) if r["class_uid"] == 4009 and e.data["Attachments"])
    assert record["email"]["uid"] == ev.data["NetworkMessageId"]
    assert record["email"]["files"][0]["hashes"][0]["algorithm_id"] == 3


# ------------------------------------------------------------------------------------ CEF

_UNESCAPED_PIPE = re.compile(r"(?<!\\)(?:\\\\)*\|")


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """A CEF parser per the spec: 7 header fields split on unescaped pipes, then key=value pairs
    where a key is alphanumeric, values run to the next unescaped `` key=``."""
    assert line.startswith("CEF:")
    fields, buf, i = [], "", 4
    while len(fields) < 7:
        c = line[i]
        if c == "\\":
            buf += line[i + 1]
            i += 2
            continue
        if c == "|":
            fields.append(buf)
            buf = ""
        else:
            buf += c
        i += 1
    ext = line[i:]
    pairs = {}
    keys = [m for m in re.finditer(r"(?:^| )([A-Za-z0-9]+)=", ext) if not _escaped(ext, m.end() - 1)]
    for n, m in enumerate(keys):
        end = keys[n + 1].start() if n + 1 < len(keys) else len(ext)
        pairs[m.group(1)] = _unescape(ext[m.end():end])
    return fields, pairs


def _escaped(text: str, at: int) -> bool:
    n = 0
    while at - n - 1 >= 0 and text[at - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), value)


def _header_pipes(line: str) -> int:
    """Unescaped pipes before the extension (which starts after the integer severity)."""
    fields, _ = parse_cef(line)
    severity_end = [m.end() for m in _UNESCAPED_PIPE.finditer(line)][6]
    assert fields[6].isdigit()
    return len(_UNESCAPED_PIPE.findall(line[:severity_end]))


HOSTILE = "a|b\\c=d\ne f=g\\\\|h\\=i\r\n msg=x"


def test_cef_round_trips_hostile_values():
    line = cef_line(f"sig|{HOSTILE}", f"name{HOSTILE}", 7, {"msg": HOSTILE, "suser": "u=1", "cs1": "\\", "cs1Label": "x"})
    fields, ext = parse_cef(line)
    assert "\n" not in line and "\r" not in line
    assert len(fields) == 7 and fields[0] == "0" and fields[6] == "7"
    assert fields[4] == f"sig|{HOSTILE}".replace("\r\n", " ").replace("\n", " ")
    assert ext == {"msg": HOSTILE, "suser": "u=1", "cs1": "\\", "cs1Label": "x"}
    assert _header_pipes(line) == 7
    with pytest.raises(ValueError):
        cef_line("s", "n", 1, {"bad-key": 1})


def test_cef_for_every_event(world, events):
    for ev in events:
        line = to_cef(ev)
        assert line is not None and "\n" not in line, ev.source
        fields, ext = parse_cef(line)
        assert _header_pipes(line) == 7
        assert fields[1:3] == ["Workbench Project", "Workbench"] and 0 <= int(fields[6]) <= 10
        assert ext["externalId"] == ev.id and int(ext["rt"]) == int(ev.time.timestamp() * 1000)
    run = next(e for e in events if e.source == "investigation" and "|" in e.data["name"])
    assert parse_cef(to_cef(run))[0][5].endswith("User reported | phish = bad\\")


# ------------------------------------------------------------------------------------ O365 (§8.1)

COMMON = {"Id", "RecordType", "CreationTime", "Operation", "OrganizationId", "UserType", "UserKey", "Workload",
          "ResultStatus", "ObjectId", "UserId", "ClientIP"}
FIELDS = {
    28: {"AttachmentData", "DetectionType", "DetectionMethod", "InternetMessageId", "NetworkMessageId", "P1Sender",
         "P2Sender", "Policy", "PolicyAction", "Recipients", "SenderIp", "Subject", "Verdict", "MessageTime",
         "EventDeepLink", "Delivery Action", "Original Delivery location", "Latest Delivery location",
         "Directionality", "ThreatsAndDetectionTech", "AdditionalActionsAndResults", "Connectors", "AuthDetails",
         "SystemOverrides", "Phish Confidence Level"},
    41: {"UserId", "AppName", "URLClickAction", "SourceId", "TimeOfClick", "URL", "UserIp"},
    47: {"FileData", "SourceWorkload", "DetectionMethod", "LastModifiedDate", "LastModifiedBy", "EventDeepLink"},
    64: {"InvestigationId", "InvestigationName", "InvestigationType", "LastUpdateTimeUtc", "StartTimeUtc", "Status",
         "DeeplinkURL", "Actions", "Data"},
    85: {"Batch ID", "Campaign ID", "UserDisplayName", "AttackTechnique", "CampaignType", "TimeData", "EndTimeData",
         "AttackSimEvent", "ExtendedProperties"},
}
RECORD_TYPE = {"email": 28, "click": 41, "file": 47, "investigation": 64, "simulation": 85}


def _o365(events):
    return [(e, r) for e in events if (r := to_o365(e)) is not None]


def test_o365_field_names_and_record_types(events):
    seen = set()
    for ev, record in _o365(events):
        rt = record["RecordType"]
        assert rt == RECORD_TYPE[ev.source]
        assert set(record) == COMMON | FIELDS[rt], rt
        assert record["Id"] == ev.id and record["CreationTime"] == ev.time.strftime("%Y-%m-%dT%H:%M:%S")
        assert isinstance(record["UserType"], int)
        json.dumps(record)  # serialisable as is
        seen.add(rt)
    assert seen == {28, 47, 64, 85}
    assert all(to_o365(e) is None for e in events if e.source in ("alert", "incident"))


def test_o365_enums_are_numbers(events):
    for _ev, r in _o365(events):
        if r["RecordType"] == 28:
            assert r["Policy"] in range(0, 18) and r["PolicyAction"] in range(0, 9)
            assert all(a["FileVerdict"] in (0, 1, -1, -2, -3) for a in r["AttachmentData"])
            assert {"Phish", "Malware"} & set(r["Verdict"].split(", ")) or r["Verdict"] in ("Phish", "Malware")
        if r["RecordType"] == 47:
            assert r["SourceWorkload"] in (0, 1, 2) and r["FileData"]["FileVerdict"] == 1
            assert set(r["FileData"]) == {"DocumentId", "FileName", "FilePath", "FileVerdict", "MalwareFamily",
                                          "SHA256", "FileSize"}
        if r["RecordType"] == 85:
            assert r["AttackSimEvent"] in (1, 2, 6, 7, 8, 10, 12, 13, 14, 15, 16, 17, 18)
    sims = [r["AttackSimEvent"] for e, r in _o365(events) if e.source == "simulation"]
    assert sims == [1, 12, 8, 6]  # fileDownloaded has no AttackSim event


def test_o365_email_only_for_threat_mail(events):
    for ev in of(events, "email"):
        threats = ev.data["ThreatTypes"] or ""
        assert (to_o365(ev) is not None) == ("Phish" in threats or "Malware" in threats)


def test_o365_click_actions():
    base = {"Url": "http://x", "AccountUpn": "u@x", "Workload": "Email", "NetworkMessageId": "n",
            "IPAddress": "1.2.3.4", "ReportId": "r"}
    cases = {("ClickBlocked", False): 2, ("UrlScanInProgress", False): 3, ("ClickBlocked", True): 4,
             ("UrlScanInProgress", True): 5, ("ClickAllowed", False): None}
    for (action, through), code in cases.items():
        ev = SourceEvent("click", event_id("click", f"r/{through}"), T0,
                         {**base, "ActionType": action, "IsClickedThrough": through})
        r = to_o365(ev)
        assert (r and r["URLClickAction"]) == code
        if r:
            assert set(r) == COMMON | FIELDS[41] and r["AppName"] == "Mail" and r["SourceId"] == "n"


def test_o365_air_status_and_type(events):
    r = next(r for e, r in _o365(events) if r["RecordType"] == 64)
    assert r["InvestigationType"] == "User-Reported Messages" and r["Status"] == "No threats found"
    assert isinstance(json.loads(r["Data"]), dict)
