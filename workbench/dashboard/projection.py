"""A narrow, per-day projection of EmailEvents made for the dashboard, cached next to the lake.

The dashboard needs a dozen facts per message copy, most of them yes/no: its class, whether
it was delivered, inbound, detected by detonation... Read from the lake, those come from
string columns that cost far more to decode than to count. This module derives them once
per day partition into ``<tenant>/cache/dashboard/day=YYYY-MM-DD/<signature>/``:

- ``rows.parquet``: every copy: time, 64-bit hashes of its message id and recipient (to match
  post-delivery events, submissions and clicks), class, delivered, blocked, inbound, threat;
- ``threats.parquet``: the phish and malware copies with every flag the tiles count and the
  few strings only threats need (recipient address, malware family, detection technology);
- ``volume.parquet``: copies per hour, class and whether blocked (what the trend tiles count).

The signature covers the day's file names, sizes and modification times, this module's
layout version and the polars version (hashes are stable within one), so a day is derived
again whenever an append, compaction or retention touched it. Windows stay exact to the
microsecond, as in the Explorer: ``rows`` and ``threats`` keep ``Timestamp``, and the hourly
volume is used only for days wholly inside the window (the edge days are counted from rows).
Without a writable cache folder (a read-only deployment) days are derived in memory each time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from workbench import schema
from workbench.lake import Lake

VERSION = 2
NOT_DELIVERED = ("Junked", "Blocked", "Replaced")  # a null or unknown DeliveryAction is neither
SEED = 0x5EED
CLASSES = ("Malware", "Phish", "Spam", "Good mail")  # one per copy, in this order of precedence
ZERO_DAY = ("File detonation", "File detonation reputation", "File reputation")
ADVANCED_PHISH = ("URL detonation", "URL detonation reputation", "Impersonation brand", "Impersonation domain",
                  "Impersonation user", "Mailbox intelligence impersonation")
_SOURCE_COLUMNS = ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "ThreatTypes", "DetectionMethods",
                   "DeliveryAction", "EmailDirection", "ThreatNames", "OrgLevelAction", "UserLevelAction",
                   "LatestDeliveryLocation"]


def key_hash(column: str | pl.Expr, *, lower: bool = False) -> pl.Expr:
    """The 64-bit hash the projection stores for a message id or (lower-cased) address."""
    expr = pl.col(column) if isinstance(column, str) else column
    return (expr.str.to_lowercase() if lower else expr).hash(seed=SEED)


def _has(column: str, value: str) -> pl.Expr:
    return pl.col(column).str.contains(value, literal=True).fill_null(False)


def _lists_any(values: tuple[str, ...]) -> pl.Expr:
    """DetectionMethods lists one of *values* (quoted: "File detonation" is not "File detonation reputation")."""
    return pl.col("DetectionMethods").str.contains_any([f'"{v}"' for v in values]).fill_null(False)


def _first_technology(threat: str) -> pl.Expr:
    return pl.col("DetectionMethods").str.extract(f'"{threat}"\\s*:\\s*\\[\\s*"([^"]+)"')


def derive(events: pl.LazyFrame) -> pl.LazyFrame:
    """Per copy: time, key hashes, class and every flag (EmailEvents rows with :data:`_SOURCE_COLUMNS`)."""
    malware, phish, spam = _has("ThreatTypes", "Malware"), _has("ThreatTypes", "Phish"), _has("ThreatTypes", "Spam")
    threat = malware | phish
    klass = (pl.when(malware).then(pl.lit("Malware")).when(phish).then(pl.lit("Phish"))
             .when(spam).then(pl.lit("Spam")).otherwise(pl.lit("Good mail")).cast(pl.Enum(CLASSES)))
    technology = (pl.when(malware).then(_first_technology("Malware")).otherwise(_first_technology("Phish"))
                  .fill_null("Other"))
    return events.select(
        "Timestamp",
        key_hash("NetworkMessageId").alias("nmid"),
        key_hash("RecipientEmailAddress", lower=True).alias("rcpt"),
        klass.alias("class"),
        (pl.col("DeliveryAction") == "Delivered").fill_null(False).alias("delivered"),
        pl.col("DeliveryAction").is_in(NOT_DELIVERED).fill_null(False).alias("blocked"),
        (pl.col("EmailDirection") == "Inbound").fill_null(False).alias("inbound"),
        threat.alias("threat"),
        malware.alias("malware"),
        phish.alias("phish"),
        (malware & _lists_any(ZERO_DAY)).alias("zero_day"),
        (phish & _lists_any(ADVANCED_PHISH)).alias("advanced"),
        ((pl.col("OrgLevelAction") == "Allow") | (pl.col("UserLevelAction") == "Allow")).fill_null(False).alias("allowed"),
        (pl.col("LatestDeliveryLocation") == "Inbox/folder").fill_null(False).alias("in_inbox"),
        pl.when(threat).then(technology).alias("technology"),
        pl.when(malware).then(pl.col("ThreatNames")).alias("ThreatNames"),
        pl.when(threat).then(pl.col("RecipientEmailAddress").str.to_lowercase()).alias("recipient"),
    )


ROW_COLUMNS = ["Timestamp", "nmid", "rcpt", "class", "delivered", "blocked", "inbound", "threat"]


def _volume(rows: pl.LazyFrame) -> pl.LazyFrame:
    return rows.group_by(pl.col("Timestamp").dt.truncate("1h").alias("hour"), "class", "blocked").len("messages")


def _signature(files: list[Path]) -> str:
    h = hashlib.sha256(f"v{VERSION} polars {pl.__version__}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cache_dir(lake: Lake) -> Path:
    """Where a lake's projections live: ``<tenant>/cache/dashboard`` (beside ``<tenant>/lake``)."""
    return lake.root.parent / "cache" / "dashboard"


def _day_files(lake: Lake, start: datetime | None, end: datetime | None) -> dict[date, list[Path]]:
    by_day: dict[date, list[Path]] = {}
    for f in lake.partition_files("EmailEvents", start, end):
        by_day.setdefault(date.fromisoformat(f.parent.name.removeprefix("day=")), []).append(f)
    return by_day


def _source(files: list[Path]) -> pl.LazyFrame:
    return derive(pl.scan_parquet(files, hive_partitioning=False).select(_SOURCE_COLUMNS))


def _cached(lake: Lake, day: date, files: list[Path]) -> Path | None:
    """The day's projection folder, derived now if missing or stale; None if it cannot be written."""
    folder = cache_dir(lake) / f"day={day.isoformat()}"
    target = folder / _signature(files)
    if (target / "volume.parquet").is_file():
        return target
    tmp = folder / f".{uuid.uuid4().hex}.tmp"
    try:
        tmp.mkdir(parents=True)
        full = _source(files).collect()
        full.select(ROW_COLUMNS).write_parquet(tmp / "rows.parquet", compression="zstd")
        full.filter("threat").drop("threat").write_parquet(tmp / "threats.parquet", compression="zstd")
        _volume(full.lazy()).collect().write_parquet(tmp / "volume.parquet")  # last: marks the folder complete
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return target if (target / "volume.parquet").is_file() else None  # another process may have won
    for old in folder.iterdir():  # earlier signatures of this day
        if old != target and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Projection:
    """The window's copies (``rows``), its phish and malware (``threats``), both cut exactly
    to the window, and the copies per hour, class and delivery (``volume``)."""

    rows: pl.LazyFrame
    threats: pl.LazyFrame
    volume: pl.LazyFrame


def scan(lake: Lake, start: datetime, end: datetime) -> Projection:
    """The projection of every copy with ``start <= Timestamp < end``, deriving missing days."""
    in_window = (pl.col("Timestamp") >= start) & (pl.col("Timestamp") < end)
    rows, threats, volume = [], [], []
    for day, files in sorted(_day_files(lake, start, end).items()):
        folder = _cached(lake, day, files)
        whole = start <= datetime.combine(day, time(), start.tzinfo) and \
            datetime.combine(day + timedelta(days=1), time(), end.tzinfo) <= end
        if folder is None:
            full = _source(files)
            rows.append(full.select(ROW_COLUMNS))
            threats.append(full.filter("threat").drop("threat"))
            volume.append(_volume(full.filter(in_window)))
            continue
        rows.append(pl.scan_parquet(folder / "rows.parquet"))
        threats.append(pl.scan_parquet(folder / "threats.parquet"))
        volume.append(pl.scan_parquet(folder / "volume.parquet") if whole
                      else _volume(pl.scan_parquet(folder / "rows.parquet").filter(in_window)))
    if not rows:
        empty = derive(schema.table("EmailEvents").empty().lazy().select(_SOURCE_COLUMNS))
        rows, threats, volume = [empty.select(ROW_COLUMNS)], [empty.drop("threat")], [_volume(empty)]
    return Projection(pl.concat(rows).filter(in_window), pl.concat(threats).filter(in_window), pl.concat(volume))


def warm(lake: Lake, days: int | None = None) -> int:
    """Derive the projection of every day (or of the last *days*) not yet cached; return how many
    days are cached. Run after appends (a pipeline stage does) so the dashboard never waits."""
    found = _day_files(lake, None, None)
    chosen = sorted(found)[-days:] if days else sorted(found)
    return sum(_cached(lake, day, found[day]) is not None for day in chosen)


def clear(lake: Lake) -> None:
    """Forget every cached projection (they are derived again on demand)."""
    shutil.rmtree(cache_dir(lake), ignore_errors=True)


__all__ = ["Projection", "derive", "scan", "warm", "clear", "cache_dir", "key_hash", "CLASSES", "ZERO_DAY", "ADVANCED_PHISH"]
