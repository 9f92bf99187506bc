"""Defender Advanced Hunting exports: streaming JSON lines and CSV into the canonical tables."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.errors import InputError
from workbench.ingest.defender import records
from workbench.ingest.tables import ingest_records
from workbench.lake import Lake
from workbench.tenant import ensure

SEKOIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "logs" / "sekoia_intake_formats"


@pytest.fixture
def tenant(tmp_path):
    return ensure("dx", base=tmp_path)


def _line(table: str, **props) -> str:
    return json.dumps({"time": "2026-11-02T10:00:00.1234567Z", "category": f"AdvancedHunting-{table}", "properties": props})


def test_streaming_lines_are_typed_and_idempotent(tenant, tmp_path):
    path = tmp_path / "stream.ndjson"
    path.write_text("\n".join([
        _line("EmailEvents", ReportId="r1", NetworkMessageId="n1", Timestamp="2026-11-02T10:00:00.1234567Z",
              BulkComplaintLevel="4", AttachmentCount=2, IsFirstContact="true", AdditionalFields={"a": 1}),
        _line("UrlClickEvents", ReportId="c1", Url="https://x.test", IsClickedThrough=False),
        _line("UrlClickEvents", ReportId="c1", Url="https://x.test", IsClickedThrough=True),
        _line("DeviceProcessEvents", ReportId="d1"),
        _line("EmailEvents", ReportId="r2", DeviceName="not-an-email"),
        "{not json",
    ]) + "\n")
    summary = ingest_records(tenant, records([path]))
    assert summary.rows == {"EmailEvents": 1, "UrlClickEvents": 2}
    assert summary.unsupported == {"DeviceProcessEvents": 1} and len(summary.rejected) == 2
    row = Lake.for_tenant(tenant).scan("EmailEvents").collect().row(0, named=True)
    assert row["BulkComplaintLevel"] == 4 and row["AttachmentCount"] == 2 and row["IsFirstContact"] is True
    assert json.loads(row["AdditionalFields"]) == {"a": 1}
    assert row["Timestamp"].isoformat() == "2026-11-02T10:00:00.123456+00:00"
    again = ingest_records(tenant, records([path]))
    assert sum(again.rows.values()) == 0 and again.duplicates == 3


def test_csv_export_needs_a_known_table(tenant, tmp_path):
    path = tmp_path / "EmailUrlInfo.csv"
    pl.DataFrame({"Timestamp": ["2026-11-02T10:00:00Z"], "NetworkMessageId": ["n1"], "Url": ["https://y.test/a"],
                  "UrlDomain": ["y.test"], "UrlLocation": ["Body"], "ReportId": ["u1"]}).write_csv(path)
    assert ingest_records(tenant, records([path])).rows == {"EmailUrlInfo": 1}
    other = tmp_path / "export.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="--table"):
        list(records([other]))


@pytest.mark.skipif(not SEKOIA.is_dir(), reason="external log samples not present (../shared/data/external)")
def test_sekoia_streaming_sample_loads_into_the_right_tables(tenant):
    summary = ingest_records(tenant, records([SEKOIA / "m365_defender_streaming.ndjson"]))
    lake = Lake.for_tenant(tenant)
    for table in ("EmailEvents", "EmailUrlInfo", "EmailAttachmentInfo", "EmailPostDeliveryEvents", "UrlClickEvents",
                  "CloudAppEvents", "AlertInfo", "AlertEvidence", "DeviceInfo", "IdentityInfo"):
        frame = lake.scan(table).collect()
        assert frame.height >= 1, table
        assert frame.schema == schema.table(table).schema
    events = lake.scan("EmailEvents").collect()
    assert events["NetworkMessageId"].null_count() == 0  # the mislabelled device record was rejected
    assert all("is not a" in why for _, why in summary.rejected)
    assert sum(ingest_records(tenant, records([SEKOIA / "m365_defender_streaming.ndjson"])).rows.values()) == 0
