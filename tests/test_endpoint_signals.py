"""Endpoint signals: bare Advanced Hunting rows and MDE alert exports load; a user's devices
and the endpoint alerts on them reach the compromised-user and URL-click investigations, the
incident page and report, and the email entity."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.air.email_investigation import investigate_emails
from workbench.air.user_investigation import investigate_user
from workbench.endpoint.correlate import INVENTORY, SIGN_IN, devices_of, endpoint_alerts
from workbench.explorer.actions import MessageRef
from workbench.explorer.entity import email_entity
from workbench.incidents.model import EntityKind, Verdict
from workbench.ingest.defender import UNRECOGNISED, records
from workbench.ingest.tables import ingest_records
from workbench.lake import Lake
from workbench.store import open_store
from workbench.tenant import ensure

OTRF = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "logs" / "otrf_security_datasets"
END = datetime(2026, 11, 21, tzinfo=UTC)

MDE_EXPORT = {
    "@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#Alerts",
    "value": [{
        "id": "da637472900382838869_1364969609", "incidentId": 1126093, "severity": "High", "status": "New",
        "detectionSource": "WindowsDefenderAtp", "category": "Execution",
        "title": "Low-reputation arbitrary code executed by signed executable", "description": "Binaries…",
        "alertCreationTime": "2026-11-02T10:05:00.0000000Z", "firstEventTime": "2026-11-02T10:00:00.1234567Z",
        "lastEventTime": "2026-11-02T10:01:00Z", "machineId": "111e6dd8c833c8a052ea231ec1b19adaf497b625",
        "computerDnsName": "temp123.middleeast.corp.microsoft.com", "rbacGroupName": "A",
        "mitreTechniques": ["T1064", "T1085"], "relatedUser": {"userName": "alice", "domainName": "CONTOSO"},
        "loggedOnUsers": [{"accountName": "alice", "domainName": "CONTOSO"}],
        "evidence": [
            {"entityType": "User", "evidenceCreationTime": "2026-11-02T10:00:30Z", "accountName": "alice",
             "domainName": "CONTOSO", "userPrincipalName": "alice@contoso.test", "aadUserId": "u-1"},
            {"entityType": "File", "evidenceCreationTime": "2026-11-02T10:00:30Z", "sha1": "ff83",
             "sha256": "AB" * 32, "fileName": "rundll32.exe", "filePath": "C:\\Windows\\SysWOW64",
             "detectionStatus": "Detected"},
        ],
    }],
}


def _lake(tmp_path, name: str) -> tuple[Lake, object]:
    tenant = ensure(name, base=tmp_path)
    return Lake.for_tenant(tenant), tenant


# ----------------------------------------------------------------------------- ingest


@pytest.mark.skipif(not OTRF.is_dir(), reason="external log samples not present (../shared/data/external)")
def test_the_otrf_sample_loads(tmp_path):
    lake, tenant = _lake(tmp_path, "otrf")
    path = OTRF / "Microsoft365DefenderEvents.json"
    summary = ingest_records(tenant, records([path]))
    assert summary.rows == {"DeviceEvents": 5, "CloudAppEvents": 4} and not summary.rejected
    events = lake.scan("DeviceEvents").collect()
    assert events.schema == schema.DeviceEvents.schema
    assert set(events["ActionType"]) == {"LdapSearch"} and set(events["InitiatingProcessFileName"]) == {"powershell.exe"}
    assert events["ReportId"].null_count() == 0  # folded from ReportId_long
    assert json.loads(events["AdditionalFields"][0])["ScopeOfSearch"] == "Base"  # from AdditionalFields_string
    cloud = lake.scan("CloudAppEvents").collect()
    assert "MailItemsAccessed" in set(cloud["ActionType"]) and cloud["UserAgent"].drop_nulls().len() >= 1
    again = ingest_records(tenant, records([path]))
    assert sum(again.rows.values()) == 0 and again.duplicates == 9


def test_bare_rows_are_placed_by_their_columns(tmp_path):
    lake, tenant = _lake(tmp_path, "bare")
    t = "2026-11-02T10:00:00Z"
    rows = [
        dict(Timestamp=t, AlertId="a1", Title="Suspicious PowerShell", Category="Execution", Severity="Medium",
             ServiceSource="Microsoft Defender for Endpoint", DetectionSource="EDR"),
        dict(Timestamp=t, AlertId="a1", Title="Suspicious PowerShell", EntityType="Machine", EvidenceRole="Impacted",
             DeviceId="d1", DeviceName="pc1", ServiceSource="Microsoft Defender for Endpoint"),
        dict(Timestamp=t, DeviceId="d1", DeviceName="pc1", OSPlatform="Windows11", ReportId="r1",
             LoggedOnUsers=[{"UserName": "bob", "DomainName": "CONTOSO"}]),
        dict(Timestamp=t, DeviceId="d1", DeviceName="pc1", ActionType="ProcessCreated", ReportId_long=5,
             InitiatingProcessFileName="explorer.exe"),
        dict(Timestamp=t, Something="else"),
    ]
    path = tmp_path / "hunting.json"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    summary = ingest_records(tenant, records([path]))
    assert summary.rows == {"AlertInfo": 1, "AlertEvidence": 1, "DeviceInfo": 1}
    assert summary.unsupported == {"DeviceProcessEvents": 1, UNRECOGNISED: 1} and not summary.rejected
    [device] = devices_of(lake, "Bob@contoso.test")
    assert (device.device_id, device.name, device.how) == ("d1", "pc1", (INVENTORY,))
    [alert] = endpoint_alerts(lake, [device], None, None)
    assert alert.alert_id == "a1" and alert.device_id == "d1"


def test_the_mde_alerts_export_maps_to_alerts_evidence_and_the_device(tmp_path):
    lake, tenant = _lake(tmp_path, "mde")
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(MDE_EXPORT, indent=2))  # a pretty-printed document, not JSON lines
    summary = ingest_records(tenant, records([path]))
    assert summary.rows == {"AlertInfo": 1, "AlertEvidence": 4, "DeviceInfo": 1}, summary.render()
    info = lake.scan("AlertInfo").collect().row(0, named=True)
    assert info["AlertId"] == MDE_EXPORT["value"][0]["id"] and info["DetectionSource"] == "EDR"
    assert info["ServiceSource"] == "Microsoft Defender for Endpoint" and info["Severity"] == "High"
    assert json.loads(info["AttackTechniques"]) == ["T1064", "T1085"]
    assert info["Timestamp"] == datetime(2026, 11, 2, 10, 0, 0, 123456, tzinfo=UTC)
    ev = lake.scan("AlertEvidence").collect()
    assert sorted(ev["EntityType"]) == ["File", "Machine", "User", "User"]
    assert set(ev["DeviceId"]) == {"111e6dd8c833c8a052ea231ec1b19adaf497b625"}
    assert ev.filter(pl.col("EntityType") == "File")["SHA256"][0] == "AB" * 32
    [device] = devices_of(lake, "alice@contoso.test", at=datetime(2026, 11, 3, tzinfo=UTC))
    assert device.name == "temp123.middleeast.corp.microsoft.com" and device.machine_group == "A"
    [alert] = endpoint_alerts(lake, "alice@contoso.test", datetime(2026, 11, 1, tzinfo=UTC), END)
    assert alert.severity == "High" and alert.files == (("rundll32.exe", "ab" * 32),)
    assert "alice@contoso.test" in alert.users
    assert sum(ingest_records(tenant, records([path])).rows.values()) == 0  # idempotent


# ----------------------------------------------------------------------------- the generated tenant


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


def _clicked_message(lake: Lake, user: str) -> str:
    clicks = lake.scan("UrlClickEvents").filter(pl.col("AccountUpn").str.to_lowercase() == user).sort("Timestamp").collect()
    return clicks["NetworkMessageId"].drop_nulls()[0]


def test_the_compromised_users_device_is_linked_by_inventory_and_sign_ins(lake, stories):
    story = stories["endpoint-alert"]
    assert story["user"] == stories["compromised-user"]["user"]
    devices = devices_of(lake, story["user"], at=END)
    assert [d.device_id for d in devices] == [story["DeviceId"]]
    assert devices[0].name == story["device"] and set(devices[0].how) == {INVENTORY, SIGN_IN}
    [alert] = endpoint_alerts(lake, story["user"], END.replace(day=17), END)
    assert alert.alert_id == story["AlertId"] and alert.device_id == story["DeviceId"]


def test_the_planted_endpoint_alert_is_in_the_compromised_user_investigation(store, lake, stories):
    story = stories["endpoint-alert"]
    result = investigate_user(store, lake, story["user"], playbook="compromised_user", name="Investigate",
                              started_by="ana", now=END)
    rec = result.record
    assert ("endpoint_alerts", "ok") in [(x.analyzer, x.status) for x in rec.log]
    assert "endpoint alert" in result.signals and result.compromised
    evidence = {e.entity.key: e for e in rec.evidence}
    device = evidence[f"device:{story['DeviceId']}"]
    assert device.analyzer == "endpoint_alerts" and device.verdict is Verdict.SUSPICIOUS
    assert story["AlertId"] in device.details and story["device"] in device.details
    assert any(e.entity.kind is EntityKind.FILE and e.analyzer == "endpoint_alerts" for e in rec.evidence)


def test_the_url_click_investigation_shows_the_clickers_device(store, lake, stories):
    story = stories["endpoint-alert"]
    nmid = _clicked_message(lake, story["user"])
    result = investigate_emails(store, lake, [nmid], playbook="url_click_verdict_change", name="Clicked",
                                started_by="ana", now=END)
    rec = result.record
    assert "endpoint_alerts" in [x.analyzer for x in rec.log]
    device = {e.entity.key: e for e in rec.evidence}[f"device:{story['DeviceId']}"]
    assert device.verdict is Verdict.SUSPICIOUS and story["AlertId"] in device.details
    other = investigate_emails(store, lake, [nmid], playbook="manual_email", name="Manual", started_by="ana", now=END)
    assert "endpoint_alerts" not in [x.analyzer for x in other.record.log]  # only the click playbooks look


def test_the_incident_page_and_report_show_the_users_device(small_tenant, lake, stories, tmp_path):
    from workbench.endpoint.incident import incident_devices
    from workbench.incidents import alerting, report
    from workbench.incidents.service import IncidentService
    from workbench.ui.incidents import IncidentPanel

    story = stories["endpoint-alert"]
    store = open_store(url=f"sqlite:///{tmp_path / 'inc.sqlite'}")
    try:
        alerting.run(store, lake)
        svc = IncidentService(store, "ana")
        [alert] = [a for a in svc.alerts() if a.policy_id == "endpoint_alert_mailbox_owner"
                   and any(e.kind is EntityKind.DEVICE and e.value == story["DeviceId"] for e in a.entities)]
        page = svc.page(alert.incident_id)
        found = incident_devices(lake, page)
        mine = [d for d in found if d.device.device_id == story["DeviceId"]]
        assert mine and mine[0].user == story["user"]
        assert story["AlertId"] in [a.alert_id for a in mine[0].alerts]
        html = report.html(page, devices=found)
        assert "<h2>User devices</h2>" in html and story["device"] in html and story["AlertId"] in html
        md = report.markdown(page, devices=found)
        assert "## User devices" in md and report.md_text(story["AlertId"]) in md
        assert "User devices" not in report.html(page)  # without a lake: the report as before
        panel = IncidentPanel(svc, alert.incident_id, lake=lake, export_dir=tmp_path)
        assert f'data-device="{story["DeviceId"]}"' in panel.devices.value and story["device"] in panel.devices.value
        written = panel.export("md")
        assert written is not None and report.md_text(story["device"]) in written.read_text()
    finally:
        store.dispose()


def test_the_email_entity_shows_the_recipients_device_and_alert(small_tenant, lake, stories):
    from workbench.ui.explorer import ExplorerPanel

    story = stories["endpoint-alert"]
    nmid = _clicked_message(lake, story["user"])
    e = email_entity(lake, nmid, story["user"])
    assert [d.device_id for d in e.devices] == [story["DeviceId"]]
    assert [a.alert_id for a in e.endpoint_alerts] == [story["AlertId"]]
    assert e.alert_table()["AlertId"].to_list() == [story["AlertId"]]
    panel = ExplorerPanel(lake, chart=False)
    panel.open_email(MessageRef(nmid, story["user"]))
    tabs = panel.entity.children[1]
    devices = tabs.children[tabs.titles.index("Devices")].value
    assert story["device"] in devices and story["AlertId"] in devices


def test_device_names_are_escaped_in_the_entity_tab(tmp_path):
    from workbench.explorer.entity import EmailEntity
    from workbench.endpoint.correlate import Device
    from workbench.ui.render import table_html

    e = EmailEntity("n", "r", {}, "", {}, pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), None, None,
                    devices=(Device("d<1>", "<img src=x onerror=alert(1)>"),))
    shown = table_html(e.device_table())
    assert "<img" not in shown and "&lt;img" in shown
