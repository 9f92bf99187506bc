"""Lake.update: how an executed action sets EmailEvents' latest delivery location in place."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from workbench import schema
from workbench.errors import InputError
from workbench.lake import Lake


def _lake(tmp_path) -> Lake:
    lake = Lake(tmp_path / "lake")
    rows = [dict(Timestamp=datetime(2026, 11, d, 9, i, tzinfo=UTC), NetworkMessageId=f"m{d}-{i}",
                 RecipientEmailAddress="Ann@contoso.test", ReportId=f"r{d}-{i}", LatestDeliveryLocation="Inbox/folder",
                 LatestDeliveryAction="Delivered") for d in (18, 19) for i in range(3)]
    lake.append("EmailEvents", schema.EmailEvents.conform(pl.DataFrame(rows[:4])))
    lake.append("EmailEvents", schema.EmailEvents.conform(pl.DataFrame(rows[4:])))  # day 19 in two files
    return lake


def test_update_sets_only_the_named_rows_and_is_idempotent(tmp_path):
    lake = _lake(tmp_path)
    day18 = lake.partition_files("EmailEvents", datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC))
    change = pl.DataFrame({"Timestamp": [datetime(2026, 11, 19, 9, 1, tzinfo=UTC)], "NetworkMessageId": ["m19-1"],
                           "RecipientEmailAddress": ["Ann@contoso.test"], "LatestDeliveryLocation": ["Deleted items"],
                           "LatestDeliveryAction": ["Soft deleted"]})
    assert lake.update("EmailEvents", change, on=["NetworkMessageId", "RecipientEmailAddress"]) == 1
    assert lake.update("EmailEvents", change, on=["NetworkMessageId", "RecipientEmailAddress"]) == 1
    rows = lake.scan("EmailEvents").collect().sort("ReportId")
    assert rows.height == 6 and rows["ReportId"].n_unique() == 6
    assert rows.filter(pl.col("LatestDeliveryLocation") == "Deleted items")["NetworkMessageId"].to_list() == ["m19-1"]
    assert rows.filter(pl.col("NetworkMessageId") == "m19-1")["LatestDeliveryAction"].item() == "Soft deleted"
    assert lake.partition_files("EmailEvents", datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)) == day18
    assert len(lake.partition_files("EmailEvents", datetime(2026, 11, 19, tzinfo=UTC))) == 1


def test_update_refuses_keys_and_unknown_columns(tmp_path):
    lake = _lake(tmp_path)
    with pytest.raises(InputError, match="no|cannot update"):
        lake.update("EmailEvents", pl.DataFrame({"NetworkMessageId": ["m18-0"], "Nope": ["x"]}), on=["NetworkMessageId"])
    with pytest.raises(InputError, match="sets columns other than"):
        lake.update("EmailEvents", pl.DataFrame({"Timestamp": [datetime(2026, 11, 18, 9, tzinfo=UTC)],
                                                 "NetworkMessageId": ["m18-0"], "ReportId": ["x"]}), on=["NetworkMessageId"])
