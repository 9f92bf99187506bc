"""Tests for workbench.lake: schema checks, idempotence, pruning, atomicity, maintenance."""

from __future__ import annotations

import doctest
import multiprocessing
import os
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import workbench.lake as lake_module
from workbench.errors import InputError, NotFound, SchemaError, StorageError
from workbench.lake import INFO_SCHEMA, Lake
from workbench.schema import EmailEvents, UrlClickEvents
from workbench.tenant import Tenant

UTC = timezone.utc


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, second, micro, tzinfo=UTC)


def events(rows: list[tuple[str, datetime]], subject: str = "hello") -> pl.DataFrame:
    """EmailEvents rows from (ReportId, Timestamp) pairs."""
    return EmailEvents.conform(
        pl.DataFrame(
            {
                "ReportId": [r for r, _ in rows],
                "Timestamp": pl.Series([t for _, t in rows], dtype=pl.Datetime("us", "UTC")),
                "Subject": [subject] * len(rows),
            }
        )
    )


def parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


def ids(lf: pl.LazyFrame) -> list[str]:
    return sorted(lf.select("ReportId").collect()["ReportId"].to_list())


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def three_days(lake: Lake) -> Lake:
    lake.append("EmailEvents", events([(f"d{d}-{i}", at(d, 8 + i)) for d in (1, 2, 3) for i in range(4)]))
    return lake


# --------------------------------------------------------------------------- schema


def test_missing_column_is_named_and_nothing_written(lake: Lake) -> None:
    frame = events([("r1", at(1))]).drop("Subject")
    with pytest.raises(SchemaError, match=r"'Subject' is missing \(expected String\)"):
        lake.append("EmailEvents", frame)
    assert parquet_files(lake.root) == []


def test_mistyped_column_names_both_types(lake: Lake) -> None:
    frame = events([("r1", at(1))]).with_columns(pl.col("EmailSize").cast(pl.String))
    with pytest.raises(SchemaError, match=r"'EmailSize' has type String, expected Int64"):
        lake.append("EmailEvents", frame)
    assert parquet_files(lake.root) == []


def test_extra_column_is_named_with_its_type(lake: Lake) -> None:
    frame = events([("r1", at(1))]).with_columns(pl.lit(1, pl.Int32).alias("Bogus"))
    with pytest.raises(SchemaError, match=r"unknown column 'Bogus' \(type Int32\)"):
        lake.append("EmailEvents", frame)
    assert parquet_files(lake.root) == []


def test_null_time_or_key_is_an_input_error(lake: Lake) -> None:
    frame = events([("r1", at(1)), ("r2", at(2))])
    with pytest.raises(InputError, match=r"1 row\(s\) have a null 'Timestamp'"):
        lake.append("EmailEvents", frame.with_columns(pl.when(pl.col("ReportId") == "r2").then(None).otherwise(pl.col("Timestamp")).alias("Timestamp")))
    with pytest.raises(InputError, match=r"null 'ReportId'"):
        lake.append("EmailEvents", frame.with_columns(pl.lit(None, pl.String).alias("ReportId")))
    assert parquet_files(lake.root) == []


def test_unknown_table(lake: Lake) -> None:
    with pytest.raises(NotFound, match="unknown table 'Nope'"):
        lake.append("Nope", events([("r1", at(1))]))
    with pytest.raises(NotFound):
        lake.scan("Nope")


# --------------------------------------------------------------------------- idempotence


def test_append_twice_writes_nothing_the_second_time(lake: Lake) -> None:
    frame = events([("r1", at(1)), ("r2", at(1, 13)), ("r3", at(2))])
    first = lake.append("EmailEvents", frame)
    assert (first.rows_in, first.rows_written, len(first.files)) == (3, 3, 2)
    second = lake.append("EmailEvents", frame)
    assert (second.rows_written, second.rows_skipped, second.files) == (0, 3, ())
    assert ids(lake.scan("EmailEvents")) == ["r1", "r2", "r3"]
    assert len(parquet_files(lake.root)) == 2
    third = lake.append("EmailEvents", events([("r3", at(2)), ("r4", at(2, 14))]))
    assert third.rows_written == 1
    assert ids(lake.scan("EmailEvents")) == ["r1", "r2", "r3", "r4"]
    assert "wrote 1 of 2 rows (1 duplicates skipped)" in third.render()


def test_duplicates_inside_one_frame_collapse_to_the_first(lake: Lake) -> None:
    frame = pl.concat([events([("r1", at(1))], "first"), events([("r1", at(1)), ("r2", at(1))], "second")])
    result = lake.append("EmailEvents", frame)
    assert (result.rows_in, result.rows_written) == (3, 2)
    got = lake.scan("EmailEvents").select("ReportId", "Subject").sort("ReportId").collect()
    assert got.rows() == [("r1", "first"), ("r2", "second")]


def test_click_through_pair_is_two_rows(lake: Lake) -> None:
    clicks = UrlClickEvents.conform(
        pl.DataFrame(
            {
                "ReportId": ["c1", "c1", "c1"],
                "IsClickedThrough": [False, True, True],
                "Timestamp": [at(1, 9), at(1, 9, 1), at(1, 9, 1)],
            }
        )
    )
    assert lake.append("UrlClickEvents", clicks).rows_written == 2
    assert lake.append("UrlClickEvents", clicks).rows_written == 0
    got = lake.scan("UrlClickEvents").select("ReportId", "IsClickedThrough").collect()
    assert sorted(got.rows()) == [("c1", False), ("c1", True)]


def test_appending_an_empty_frame_writes_nothing(lake: Lake) -> None:
    result = lake.append("EmailEvents", EmailEvents.empty())
    assert (result.rows_in, result.rows_written) == (0, 0)
    assert lake.tables() == []


# --------------------------------------------------------------------------- layout and pruning


def test_layout_and_sorted_files(lake: Lake) -> None:
    lake.append("EmailEvents", events([("late", at(2, 23)), ("early", at(2, 1)), ("mid", at(2, 12))]))
    (only,) = parquet_files(lake.root)
    assert only.parent == lake.root / "EmailEvents" / "day=2024-05-02"
    assert only.name.startswith("part-")
    assert pl.read_parquet(only)["ReportId"].to_list() == ["early", "mid", "late"]


def test_partition_files_prunes_to_the_window(three_days: Lake) -> None:
    files = three_days.partition_files("EmailEvents", date(2024, 5, 2), date(2024, 5, 3))
    assert [f.parent.name for f in files] == ["day=2024-05-02"]
    assert len(three_days.partition_files("EmailEvents")) == 3
    assert [f.parent.name for f in three_days.partition_files("EmailEvents", at(2, 18))] == [
        "day=2024-05-02",
        "day=2024-05-03",
    ]
    assert [f.parent.name for f in three_days.partition_files("EmailEvents", end=date(2024, 5, 2))] == [
        "day=2024-05-01"
    ]


def test_one_day_scan_never_opens_other_days(three_days: Lake) -> None:
    for f in parquet_files(three_days.root):
        if f.parent.name != "day=2024-05-02":
            f.write_bytes(b"this is not parquet" * 10)
    got = three_days.scan("EmailEvents", date(2024, 5, 2), date(2024, 5, 3)).collect()
    assert sorted(got["ReportId"]) == ["d2-0", "d2-1", "d2-2", "d2-3"]
    with pytest.raises(pl.exceptions.PolarsError):
        three_days.scan("EmailEvents").collect()


def test_scan_ignores_temporary_files_and_append_sweeps_them(three_days: Lake) -> None:
    folder = three_days.root / "EmailEvents" / "day=2024-05-02"
    stale = folder / ".tmp-crashed.parquet"
    stale.write_bytes(b"half a file")
    assert len(three_days.scan("EmailEvents").collect()) == 12
    three_days.append("EmailEvents", events([("new", at(2, 20))]))
    assert not stale.exists()
    assert len(three_days.scan("EmailEvents").collect()) == 13


# --------------------------------------------------------------------------- atomic writes


def _snapshot(lake: Lake) -> tuple[list[Path], list[tuple]]:
    return parquet_files(lake.root), lake.scan("EmailEvents").sort("ReportId").collect().rows()


def _fail_on_second(real):
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return wrapper


def _three_day_append() -> pl.DataFrame:
    return events([("n1", at(1, 20)), ("n2", at(2)), ("n3", at(3))])


def test_failed_parquet_write_leaves_lake_unchanged(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.append("EmailEvents", events([("old", at(1))]))
    before = _snapshot(lake)
    # Every parquet write (one per existing day, one batched write for new days) goes through sink_parquet.
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", _fail_on_second(pl.LazyFrame.sink_parquet))
    with pytest.raises(StorageError, match="No space left on device.*rolled back"):
        lake.append("EmailEvents", _three_day_append())
    monkeypatch.undo()
    assert _snapshot(lake) == before
    assert list(lake.root.rglob(".tmp-*")) == [] and list(lake.root.rglob(".trash-*")) == []
    assert sorted(p.name for p in (lake.root / "EmailEvents").iterdir()) == [".lock", "day=2024-05-01"]
    assert lake.append("EmailEvents", _three_day_append()).rows_written == 3  # still usable


def test_failed_rename_rolls_back_the_renamed_ones(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.append("EmailEvents", events([("old", at(1))]))
    before = _snapshot(lake)
    monkeypatch.setattr(lake_module.os, "replace", _fail_on_second(os.replace))
    with pytest.raises(StorageError):
        lake.append("EmailEvents", _three_day_append())
    monkeypatch.undo()
    assert _snapshot(lake) == before
    assert list(lake.root.rglob(".tmp-*")) == []
    assert lake.partition_files("EmailEvents", date(2024, 5, 2)) == []


def test_failure_in_an_existing_partition_keeps_old_files(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    lake.append("EmailEvents", events([("a", at(1)), ("b", at(2))]))
    before = _snapshot(lake)

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(lake_module, "_write_sorted", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        lake.append("EmailEvents", events([("c", at(2))]))
    monkeypatch.undo()
    assert _snapshot(lake) == before


# --------------------------------------------------------------------------- scan


def test_scan_window_is_start_inclusive_end_exclusive(lake: Lake) -> None:
    lake.append(
        "EmailEvents",
        events(
            [
                ("before", at(1, 23, 59, 59, 999_999)),
                ("start", at(2, 0)),
                ("last", at(2, 23, 59, 59, 999_999)),
                ("next", at(3, 0)),
            ]
        ),
    )
    assert ids(lake.scan("EmailEvents", date(2024, 5, 2), date(2024, 5, 3))) == ["last", "start"]
    assert ids(lake.scan("EmailEvents", at(2, 0), at(2, 23, 59, 59, 999_999))) == ["start"]
    assert ids(lake.scan("EmailEvents", at(2, 0), at(2, 0))) == []
    # naive datetimes are UTC; other zones are converted
    assert ids(lake.scan("EmailEvents", datetime(2024, 5, 2), datetime(2024, 5, 3))) == ["last", "start"]
    plus2 = timezone(timedelta(hours=2))
    assert ids(lake.scan("EmailEvents", datetime(2024, 5, 3, 2, tzinfo=plus2))) == ["next"]
    assert ids(lake.scan("EmailEvents", end="2024-05-02")) == ["before"]
    assert ids(lake.scan("EmailEvents", start=at(1, 23, 59, 59, 999_999), end=at(2, 0, 0, 0, 1))) == [
        "before",
        "start",
    ]
    with pytest.raises(InputError, match="swap start and end"):
        lake.scan("EmailEvents", date(2024, 5, 3), date(2024, 5, 2))
    with pytest.raises(InputError, match="ISO 8601"):
        lake.scan("EmailEvents", "yesterday")


def test_scan_projects_columns(three_days: Lake) -> None:
    lf = three_days.scan("EmailEvents", date(2024, 5, 1), date(2024, 5, 2), columns=["ReportId", "Subject"])
    assert lf.collect_schema().names() == ["ReportId", "Subject"]
    got = lf.filter(pl.col("ReportId") == "d1-2").collect()
    assert got.rows() == [("d1-2", "hello")]
    with pytest.raises(InputError, match=r"no column 'Nope'; valid columns: Timestamp, NetworkMessageId"):
        three_days.scan("EmailEvents", columns=["ReportId", "Nope"])


def test_scan_keeps_the_table_schema(three_days: Lake) -> None:
    assert three_days.scan("EmailEvents").collect_schema() == EmailEvents.schema
    assert three_days.scan("EmailEvents").collect().schema == EmailEvents.schema


def test_empty_table_scan_has_the_schema(lake: Lake) -> None:
    got = lake.scan("EmailEvents", date(2024, 5, 1), date(2024, 5, 2)).collect()
    assert got.height == 0
    assert got.schema == EmailEvents.schema
    assert lake.scan("UrlClickEvents", columns=["Url"]).collect().schema == pl.Schema({"Url": pl.String()})
    assert lake.tables() == []
    assert lake.info().schema == INFO_SCHEMA and lake.info().height == 0


def test_window_without_data_is_empty(three_days: Lake) -> None:
    assert three_days.scan("EmailEvents", date(2024, 6, 1)).collect().height == 0


# --------------------------------------------------------------------------- info, compact, retention


def test_info_counts(three_days: Lake) -> None:
    three_days.append("EmailEvents", events([("x", at(3, 22))]))
    three_days.append("UrlClickEvents", UrlClickEvents.conform(pl.DataFrame({"ReportId": ["c"], "IsClickedThrough": [True], "Timestamp": [at(9)]})))
    info = three_days.info()
    assert info["table"].to_list() == ["EmailEvents", "UrlClickEvents"]
    row = info.row(0, named=True)
    assert (row["partitions"], row["files"], row["rows"]) == (3, 4, 13)
    assert (row["first_day"], row["last_day"]) == (date(2024, 5, 1), date(2024, 5, 3))
    assert row["bytes"] == sum(f.stat().st_size for f in three_days.partition_files("EmailEvents"))
    assert three_days.tables() == ["EmailEvents", "UrlClickEvents"]


def test_for_tenant_uses_the_lake_dir(tmp_path: Path) -> None:
    assert Lake.for_tenant(Tenant("t", tmp_path)).root == tmp_path / "lake"


def test_compact_merges_small_files(lake: Lake) -> None:
    for batch in range(3):
        lake.append("EmailEvents", events([(f"a{batch}-{i}", at(1, 20 - batch * 3 - i)) for i in range(3)]))
    for batch in range(2):
        lake.append("EmailEvents", events([(f"b{batch}", at(2, 5 - batch))]))
    lake.append("EmailEvents", events([("c", at(3))]))
    before = lake.scan("EmailEvents").sort("ReportId").collect()
    assert [len(lake.partition_files("EmailEvents", date(2024, 5, d), date(2024, 5, d + 1))) for d in (1, 2, 3)] == [3, 2, 1]

    assert lake.compact(min_files=3).partitions == (("EmailEvents", date(2024, 5, 1), 3),)
    result = lake.compact("EmailEvents")
    assert result.partitions == (("EmailEvents", date(2024, 5, 2), 2),)
    assert result.rows == 2
    assert "2 files -> 1" in result.render()
    assert len(parquet_files(lake.root)) == 3
    assert lake.scan("EmailEvents").sort("ReportId").collect().equals(before)
    (day1,) = lake.partition_files("EmailEvents", date(2024, 5, 1), date(2024, 5, 2))
    times = pl.read_parquet(day1)["Timestamp"]
    assert times.is_sorted() and len(times) == 9
    assert lake.compact().render() == "nothing to compact"
    with pytest.raises(InputError):
        lake.compact(min_files=0)


def test_retention_deletes_old_days(lake: Lake) -> None:
    lake.append("EmailEvents", events([(f"r{d}", at(d)) for d in range(1, 6)]))
    dry = lake.retention(2, today=date(2024, 5, 5), dry_run=True)
    assert dry.cutoff == date(2024, 5, 3)
    assert dry.partitions == (("EmailEvents", date(2024, 5, 1)), ("EmailEvents", date(2024, 5, 2)))
    assert "would delete 2 partition(s)" in dry.render()
    assert len(parquet_files(lake.root)) == 5

    done = lake.retention(2, "EmailEvents", today=date(2024, 5, 5))
    assert (done.partitions, done.files, done.dry_run) == (dry.partitions, 2, False)
    assert ids(lake.scan("EmailEvents")) == ["r3", "r4", "r5"]
    assert sorted(p.name for p in (lake.root / "EmailEvents").iterdir()) == [
        ".lock",
        "day=2024-05-03",
        "day=2024-05-04",
        "day=2024-05-05",
    ]
    assert lake.retention(2, today=date(2024, 5, 5)).partitions == ()
    with pytest.raises(InputError, match="at least 1"):
        lake.retention(0)
    with pytest.raises(NotFound):
        lake.retention(3, "Nope")


def test_module_examples_run() -> None:
    assert doctest.testmod(lake_module).failed == 0


# --------------------------------------------------------------------------- concurrency


def _append_worker(root: str, seed: int, go, results) -> None:
    """Append 200 shared keys over two days in shuffled batches of 10 (runs in a child)."""
    rows = [(f"k{i}", at(1 + i % 2, i % 24, i % 60)) for i in range(200)]
    random.Random(seed).shuffle(rows)
    lake = Lake(Path(root))
    go.wait(60)  # both children start appending together
    written = 0
    for start in range(0, len(rows), 10):
        written += lake.append("EmailEvents", events(rows[start : start + 10])).rows_written
    results.put(written)


def test_concurrent_processes_do_not_duplicate_keys(lake: Lake) -> None:
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_append_worker, args=(str(lake.root), seed, go, results)) for seed in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    written = [results.get(timeout=5) for _ in procs]
    assert sum(written) == 200
    got = lake.scan("EmailEvents").collect()
    assert got.height == 200
    assert got["ReportId"].n_unique() == 200
