"""Office 365 Management Activity, Entra sign-ins, OfficeActivity and message trace exports."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.errors import InputError
from workbench.ingest import message_trace, office365
from workbench.ingest.tables import ingest_records
from workbench.lake import Lake
from workbench.tenant import ensure

LOGS = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "logs"
needs_logs = pytest.mark.skipif(not LOGS.is_dir(), reason="external log samples not present (../shared/data/external)")

TI_MAIL = {
    "CreationTime": "2026-11-02T09:10:19", "Id": "m1", "Operation": "TIMailData", "RecordType": 28, "Workload": "ThreatIntelligence",
    "AttachmentData": [{"FileName": "a.pdf.exe", "FileType": "exe", "FileVerdict": 1, "MalwareFamily": "Trojan_X", "SHA256": "ab" * 32}],
    "AuthDetails": [{"Name": "SPF", "Value": "Pass"}, {"Name": "DKIM", "Value": "Fail"}, {"Name": "DMARC", "Value": "Best guess pass"}],
    "DeliveryAction": "Blocked", "DetectionMethod": "File detonation", "Directionality": "Inbound",
    "InternetMessageId": "<x@y>", "LatestDeliveryLocation": "Quarantine", "MessageTime": "2026-11-02T09:07:47",
    "NetworkMessageId": "n-1", "OriginalDeliveryLocation": "Quarantine", "P1Sender": "bounce@s.test", "P2Sender": "ceo@s.test",
    "Recipients": ["ann@f.test", "bob@f.test"], "SenderIp": "52.1.2.3", "Subject": "Invoice",
    "ThreatsAndDetectionTech": ["Malware: [File detonation]", "Phish: [Spoof DMARC]"],
}
CLICK = {"CreationTime": "2026-11-02T10:10:52", "Id": "c1", "Operation": "TIUrlClickData", "RecordType": 41,
         "Workload": "ThreatIntelligence", "UserId": "ann@f.test", "AppName": "Mail", "SourceId": "n-1",
         "TimeOfClick": "2026-11-02T09:33:33", "Url": "https://bad.test/", "UserIp": "52.9.9.9", "URLClickAction": 4}
FILE = {"CreationTime": "2026-11-02T22:38:49", "Id": "f1", "Operation": "AtpDetection", "RecordType": 47, "Workload": "ThreatIntelligence",
        "DetectionDate": "2026-11-02T22:38:11", "DetectionMethod": "AntiMalware", "SourceWorkload": 2,
        "FileData": {"DocumentId": "d1", "FileName": "x.exe", "FilePath": "https://t.test/x", "FileSize": "12345",
                     "FileVerdict": 1, "MalwareFamily": "Win32/X", "SHA256": "cd" * 32}, "LastModifiedBy": "bob@f.test"}


@pytest.fixture
def tenant(tmp_path):
    return ensure("o3", base=tmp_path)


def test_threat_records_are_typed_into_their_tables(tenant, tmp_path):
    path = tmp_path / "audit.json"
    path.write_text(json.dumps([TI_MAIL, CLICK, FILE, {"hello": 1}]))
    summary = ingest_records(tenant, office365.records([path]))
    assert summary.rows == {"CloudAppEvents": 3, "EmailEvents": 2, "EmailAttachmentInfo": 2, "UrlClickEvents": 1,
                            "FileMaliciousContentInfo": 1}
    assert len(summary.rejected) == 1 and "RecordType" in summary.rejected[0][1]
    lake = Lake.for_tenant(tenant)
    events = lake.scan("EmailEvents").collect().sort("RecipientEmailAddress")
    assert events["RecipientEmailAddress"].to_list() == ["ann@f.test", "bob@f.test"]
    row = events.row(0, named=True)
    assert row["ThreatTypes"] == "Malware, Phish" and json.loads(row["DetectionMethods"]) == {
        "Malware": ["File detonation"], "Phish": ["Spoof DMARC"]}
    assert json.loads(row["AuthenticationDetails"]) == {"SPF": "pass", "DKIM": "fail", "DMARC": "bestguesspass", "CompAuth": "none"}
    click = lake.scan("UrlClickEvents").collect().row(0, named=True)
    assert click["IsClickedThrough"] is True and click["NetworkMessageId"] == "n-1" and click["Workload"] == "Email"
    file = lake.scan("FileMaliciousContentInfo").collect().row(0, named=True)
    assert (file["Workload"], file["FileSize"], file["ThreatTypes"]) == ("Teams", 12345, "Malware")
    assert json.loads(lake.scan("CloudAppEvents").collect()["RawEventData"][0])["RecordType"] in (28, 41, 47)
    assert sum(ingest_records(tenant, office365.records([path])).rows.values()) == 0


def test_message_trace_csv(tenant, tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("Date,Sender Address,Recipient Address,Subject,Status,From IP,Size,Message ID,Message Trace ID\n"
                    "2026-11-02T10:00:00Z,a@s.test,b@f.test,Hi,FilteredAsSpam,52.1.1.1,2000,<m@s>,t-1\n")
    assert ingest_records(tenant, message_trace.records([path])).rows == {"EmailEvents": 1}
    row = Lake.for_tenant(tenant).scan("EmailEvents").collect().row(0, named=True)
    assert (row["DeliveryAction"], row["DeliveryLocation"], row["EmailSize"]) == ("Junked", "Junk folder", 2000)
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="not a message trace"):
        list(message_trace.records([bad]))


@needs_logs
def test_external_samples_load_into_the_right_tables(tenant):
    files = [LOGS / "sekoia_intake_formats" / "o365_management_activity.ndjson", LOGS / "msticpy" / "aad_signinlogs.jsonl",
             LOGS / "msticpy" / "demo_exchange_data.csv"]
    summary = ingest_records(tenant, office365.records(files))
    assert summary.rejected == []
    trace = ingest_records(tenant, message_trace.records([LOGS / "sekoia_intake_formats" / "o365_message_trace.ndjson"]))
    assert trace.rows == {"EmailEvents": 2}
    lake = Lake.for_tenant(tenant)
    for table, minimum in (("CloudAppEvents", 1000), ("AADSignInEventsBeta", 40), ("EmailEvents", 3),
                           ("FileMaliciousContentInfo", 2), ("UrlClickEvents", 1), ("EmailAttachmentInfo", 1)):
        frame = lake.scan(table).collect()
        assert frame.height >= minimum, table
        assert frame.schema == schema.table(table).schema
    rules = lake.scan("CloudAppEvents").filter(pl.col("ActionType") == "New-InboxRule").collect()
    assert rules.height >= 1
    assert sum(ingest_records(tenant, office365.records(files)).rows.values()) == 0
