"""The parquet lake: one folder per table, one folder per UTC day, append-only files.

Layout: ``<root>/<Table>/day=YYYY-MM-DD/part-<unique>.parquet`` (zstd, rows sorted by the
table's time column; every file has every column of the table, so any parquet reader can
glob the lake). Appends are
schema-checked and idempotent by the table's key; every write goes to a dot-prefixed
temporary file that is renamed into place only when all of an append's files are written,
under an exclusive per-table lock (``<Table>/.lock``).
Readers take no lock: they list ``day=*/part-*.parquet`` and never see temporary files.

>>> import tempfile
>>> from workbench.schema import EmailEvents
>>> lake = Lake(Path(tempfile.mkdtemp()))
>>> rows = EmailEvents.conform(pl.DataFrame({
...     "Timestamp": [datetime(2024, 5, 1, 9, tzinfo=UTC), datetime(2024, 5, 2, 9, tzinfo=UTC)],
...     "ReportId": ["r1", "r2"],
... }))
>>> lake.append("EmailEvents", rows).rows_written
2
>>> lake.append("EmailEvents", rows).rows_written  # same keys: nothing new
0
>>> lake.scan("EmailEvents", date(2024, 5, 2), columns=["ReportId"]).collect()["ReportId"].to_list()
['r2']
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from workbench.errors import InputError, StorageError
from workbench.schema import TABLES, Table, table as lookup

_DAY = "day="
_PART = "part-"
_TMP = ".tmp-"
_TRASH = ".trash-"
SMALL_DAY_ROWS = 1000  # a many-day write averaging fewer rows per day skips column statistics

INFO_SCHEMA = pl.Schema(
    {
        "table": pl.String(),
        "partitions": pl.Int64(),
        "files": pl.Int64(),
        "rows": pl.Int64(),
        "bytes": pl.Int64(),
        "first_day": pl.Date(),
        "last_day": pl.Date(),
    }
)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AppendResult:
    """What one :meth:`Lake.append` did."""

    table: str
    rows_in: int
    rows_written: int
    files: tuple[Path, ...] = ()

    @property
    def rows_skipped(self) -> int:
        """Rows not written because their key was already in the lake or the frame."""
        return self.rows_in - self.rows_written

    def render(self) -> str:
        return (
            f"{self.table}: wrote {self.rows_written:,} of {self.rows_in:,} rows "
            f"({self.rows_skipped:,} duplicates skipped) in {len(self.files)} file(s)"
        )


@dataclass(frozen=True)
class CompactResult:
    """Partitions merged by :meth:`Lake.compact`: ``(table, day, files_before)`` each."""

    partitions: tuple[tuple[str, date, int], ...]
    rows: int

    @property
    def files_before(self) -> int:
        return sum(n for _, _, n in self.partitions)

    def render(self) -> str:
        if not self.partitions:
            return "nothing to compact"
        tables = len({t for t, _, _ in self.partitions})
        return (
            f"compacted {len(self.partitions)} partition(s) in {tables} table(s): "
            f"{self.files_before} files -> {len(self.partitions)} ({self.rows:,} rows)"
        )


@dataclass(frozen=True)
class RetentionResult:
    """Partitions older than *cutoff* that :meth:`Lake.retention` deleted (or would)."""

    cutoff: date
    partitions: tuple[tuple[str, date], ...]
    files: int
    bytes: int
    dry_run: bool

    def render(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        if not self.partitions:
            return f"no partitions before {self.cutoff}; nothing {verb.split()[-1]}"
        lines = [
            f"{verb} {len(self.partitions)} partition(s) before {self.cutoff}: "
            f"{self.files} files, {self.bytes / 1e6:.1f} MB"
        ]
        lines += [f"  {t} {d}" for t, d in self.partitions]
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


def _utc(value: datetime | date | str) -> datetime:
    """Dates mean midnight UTC; naive datetimes are UTC; strings are ISO 8601."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"bad date/time {value!r}; use ISO 8601 like 2024-05-01T09:30") from None
    if not isinstance(value, date):
        raise InputError(f"bad date/time {value!r}; pass a datetime, a date or an ISO 8601 string")
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day_of(folder: str) -> date | None:
    if not folder.startswith(_DAY):
        return None
    try:
        return date.fromisoformat(folder[len(_DAY) :])
    except ValueError:
        return None


def _parts(folder: Path) -> list[Path]:
    """The visible data files of one partition, oldest first."""
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith(_PART) and e.name.endswith(".parquet")]
    except FileNotFoundError:
        return []
    return [folder / n for n in sorted(names)]


def _new_name(prefix: str) -> str:
    # time-ordered so that sorting file names gives write order
    return f"{prefix}{time.time_ns():016x}-{uuid.uuid4().hex[:8]}.parquet"


def _scan(files: list[Path], t: Table) -> pl.LazyFrame:
    # Explicit files (no hive columns); the table schema tolerates files written before a
    # column was added.
    return pl.scan_parquet(files, schema=t.schema, hive_partitioning=False, missing_columns="insert")


def _first_per_key(frame: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Keep the first row of each key (no copy when the keys are already unique)."""
    expr = pl.col(key[0]) if len(key) == 1 else pl.struct(*key)
    if frame.select(expr.n_unique()).item() == frame.height:
        return frame
    return frame.filter(expr.is_first_distinct())


def _write_sorted(frame: pl.DataFrame, folder: Path, time_column: str) -> Path:
    """Write *frame* sorted by time to a temporary file in *folder*; return its path."""
    tmp = folder / _new_name(_TMP)
    try:
        frame.sort(time_column, maintain_order=True).write_parquet(tmp, compression="zstd")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_days(frame: pl.DataFrame, folder: Path, time_column: str) -> list[tuple[str, str]]:
    """Write *frame* (with a ``__day`` column, days without a folder yet) in one partitioned
    write, each day's rows sorted by time to a temporary file directly in its new day folder;
    return (temporary, final) paths. Each day costs one folder and one file, nothing more."""
    stem = _new_name(_TMP).removesuffix(".parquet")
    produced: list[str] = []  # paths as strings: hundreds of days, Path objects cost more than the names

    def path_of(args: Any) -> str:
        day = args.partition_keys["__day"][0]
        path = f"{folder}/{_DAY}{day.isoformat()}/{stem}-{args.index_in_partition}.parquet"
        produced.append(path)
        return path

    # Column statistics let readers skip row groups of large files, compression shrinks them;
    # small files (old mail spread thin over many days) gain from neither: a page of a few
    # rows is smaller raw than in a compression frame, and both cost time per column.
    # `Lake.compact` rewrites a day's files compressed once the day has several.
    small = frame.height < SMALL_DAY_ROWS * frame["__day"].n_unique()
    frame.sort(time_column, maintain_order=True).lazy().sink_parquet(
        pl.PartitionBy(folder, key="__day", include_key=False, file_path_provider=path_of),
        compression="uncompressed" if small else "zstd", mkdir=True, statistics=not small)
    final = _new_name(_PART)  # one name serves every day: each file is alone in its new folder
    return [(tmp, f"{tmp.rpartition('/')[0]}/{final}") for tmp in sorted(produced)]


# --------------------------------------------------------------------------- the lake


class Lake:
    """A tenant's parquet lake rooted at *root* (created on first write)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @classmethod
    def for_tenant(cls, tenant: Any) -> Lake:
        return cls(tenant.lake_dir)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    # ----------------------------------------------------------------- reading

    def _partitions(self, t: Table, first: date | None = None, last: date | None = None) -> list[tuple[date, Path]]:
        """Day folders of *t* within [first, last] (inclusive), in day order."""
        try:
            entries = list(os.scandir(self.root / t.name))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            day = _day_of(entry.name)
            if day and entry.is_dir() and (first is None or day >= first) and (last is None or day <= last):
                found.append((day, Path(entry.path)))
        return sorted(found)

    def partition_files(
        self, table: str | Table, start: datetime | date | None = None, end: datetime | date | None = None
    ) -> list[Path]:
        """Data files of the day partitions that intersect [start, end)."""
        t = lookup(table)
        lo, hi = self._window(start, end)
        first = lo.date() if lo else None
        last = (hi - timedelta(microseconds=1)).date() if hi else None
        return [f for _, folder in self._partitions(t, first, last) for f in _parts(folder)]

    @staticmethod
    def _window(start: Any, end: Any) -> tuple[datetime | None, datetime | None]:
        lo = _utc(start) if start is not None else None
        hi = _utc(end) if end is not None else None
        if lo and hi and lo > hi:
            raise InputError(f"scan window starts ({lo}) after it ends ({hi}); swap start and end")
        return lo, hi

    def scan(
        self,
        table: str | Table,
        start: datetime | date | None = None,
        end: datetime | date | None = None,
        columns: Sequence[str] | None = None,
    ) -> pl.LazyFrame:
        """A LazyFrame over rows with ``start <= time < end``, reading only those days' files.

        Dates mean midnight UTC, naive datetimes are UTC. Filters and column selections
        added by the caller are pushed down into the parquet reader.
        """
        t = lookup(table)
        if isinstance(columns, str):
            columns = [columns]
        unknown = [c for c in columns or () if c not in t.schema]
        if unknown:
            raise InputError(
                f"{t.name} has no column {unknown[0]!r}; valid columns: {', '.join(t.column_names)}"
            )
        lo, hi = self._window(start, end)
        files = self.partition_files(t, lo, hi)
        if not files:
            lf = t.empty().lazy()
        else:
            lf = _scan(files, t)
            col = pl.col(t.time_column)
            if lo is not None:
                lf = lf.filter(col >= lo)
            if hi is not None:
                lf = lf.filter(col < hi)
        return lf.select(columns) if columns else lf

    def tables(self) -> list[str]:
        """Names of the tables that hold data."""
        if not self.root.is_dir():
            return []
        names = []
        for name in sorted(e.name for e in os.scandir(self.root) if e.name in TABLES):
            if any(_parts(folder) for _, folder in self._partitions(TABLES[name])):
                names.append(name)
        return names

    def info(self) -> pl.DataFrame:
        """One row per table: partitions, files, rows (from parquet footers), bytes, days."""
        rows = []
        for name in self.tables():
            parts = [(day, _parts(folder)) for day, folder in self._partitions(lookup(name))]
            parts = [(day, files) for day, files in parts if files]
            files = [f for _, fs in parts for f in fs]
            count = _scan(files, lookup(name)).select(pl.len()).collect().item()
            rows.append(
                {
                    "table": name,
                    "partitions": len(parts),
                    "files": len(files),
                    "rows": count,
                    "bytes": sum(f.stat().st_size for f in files),
                    "first_day": parts[0][0],
                    "last_day": parts[-1][0],
                }
            )
        return pl.DataFrame(rows, schema=INFO_SCHEMA)

    # ----------------------------------------------------------------- writing

    @contextmanager
    def _locked(self, t: Table) -> Iterator[Path]:
        folder = self.root / t.name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = open(folder / ".lock", "a+b")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise StorageError(
                f"cannot write the lake at {folder}: {exc.strerror or exc}; "
                "check permissions and free space, or set WORKBENCH_HOME to a writable folder"
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
            try:
                yield folder
            except OSError as exc:
                raise StorageError(
                    f"{t.name}: writing the lake failed ({exc.strerror or exc}); the failed "
                    "step was rolled back; check free space and permissions, then retry"
                ) from exc

    @staticmethod
    def _sweep(folder: Path) -> None:
        """Remove what a crashed writer left in *folder* (callers hold the table lock)."""
        for entry in os.scandir(folder):
            if entry.name.startswith(_TMP):
                os.unlink(entry.path)
            elif entry.name.startswith(_TRASH):
                shutil.rmtree(entry.path, ignore_errors=True)

    def _unseen(self, t: Table, folder: Path, frame: pl.DataFrame, days: list[date]) -> list[tuple[date, pl.DataFrame]]:
        """Rows of *frame* (with ``__day``) whose key is not yet stored in their day, per day.

        One scan reads the keys of every day's files (instead of one scan per day)."""
        files: list[Path] = []
        for d in days:
            target = folder / f"{_DAY}{d.isoformat()}"
            self._sweep(target)
            files += _parts(target)
        if files:
            keys = _scan(files, t).select(*t.key, pl.col(t.time_column).dt.date().alias("__day")).collect()
            frame = frame.join(keys, on=[*t.key, "__day"], how="anti", maintain_order="left")
        if not frame.height:
            return []
        if len(days) == 1:
            return [(days[0], frame.drop("__day"))]
        groups = frame.partition_by("__day", as_dict=True, include_key=False)
        return sorted(((d, part) for (d,), part in groups.items()), key=lambda kv: kv[0])

    def append(self, table: str | Table, frame: pl.DataFrame | pl.LazyFrame) -> AppendResult:
        """Write *frame*'s new rows; rows whose key is already stored (or repeated) are skipped.

        All-or-nothing: a schema error, a null time or key, or a failed write leaves the
        lake as it was.
        """
        t = lookup(table)
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        t.validate(frame)
        if t.lowercase_columns:
            frame = frame.with_columns(pl.col(c).str.to_lowercase() for c in t.lowercase_columns)
        for name in (t.time_column, *t.key):
            nulls = frame[name].null_count()
            if nulls:
                raise InputError(
                    f"{t.name}: {nulls:,} row(s) have a null {name!r}; "
                    f"every row needs a {name} (fill or drop them before appending)"
                )
        rows_in = frame.height
        if not rows_in:
            return AppendResult(t.name, 0, 0)
        frame = _first_per_key(frame, t.key).with_columns(pl.col(t.time_column).dt.date().alias("__day"))
        day_counts = dict(frame.group_by("__day").len().iter_rows())

        with self._locked(t) as folder:
            # Days that already have a folder need a key check; new days need none.
            existing = {e.name for e in os.scandir(folder) if e.name.startswith(_DAY) and e.is_dir()}  # one listing, not a stat per day
            old_days = sorted(d for d in day_counts if f"{_DAY}{d.isoformat()}" in existing)
            new_days = sorted(d for d in day_counts if f"{_DAY}{d.isoformat()}" not in existing)
            written: list[tuple[Path | str, Path | str]] = []  # (temporary, final)
            placed: list[Path] = []
            created: list[Path] = []
            rows_written = 0
            try:
                if old_days:
                    old = frame if not new_days else frame.filter(pl.col("__day").is_in(old_days))
                    for d, part in self._unseen(t, folder, old, old_days):
                        target = folder / f"{_DAY}{d.isoformat()}"
                        written.append((_write_sorted(part, target, t.time_column), target / _new_name(_PART)))
                        rows_written += part.height
                if len(new_days) == 1:
                    d = new_days[0]
                    target = folder / f"{_DAY}{d.isoformat()}"
                    target.mkdir()
                    created.append(target)
                    part = frame.drop("__day") if not old_days else frame.filter(pl.col("__day") == d).drop("__day")
                    written.append((_write_sorted(part, target, t.time_column), target / _new_name(_PART)))
                    rows_written += part.height
                elif new_days:  # many new days (an import of old mail): one partitioned write
                    fresh = frame if not old_days else frame.filter(~pl.col("__day").is_in(old_days))
                    created += [folder / f"{_DAY}{d.isoformat()}" for d in new_days]
                    written += _write_days(fresh, folder, t.time_column)
                    rows_written += sum(day_counts[d] for d in new_days)
                for tmp, final in written:
                    os.replace(tmp, final)
                    placed.append(Path(final))
            except BaseException:
                for path in [*placed, *(tmp for tmp, _ in written)]:
                    Path(path).unlink(missing_ok=True)
                for target in created:
                    shutil.rmtree(target, ignore_errors=True)
                raise
        return AppendResult(t.name, rows_in, rows_written, tuple(placed))

    def update(self, table: str | Table, frame: pl.DataFrame, on: Sequence[str]) -> int:
        """Set columns of stored rows (the "latest" columns, e.g. EmailEvents.LatestDeliveryLocation
        after a remediation). Each row of *frame* names stored rows by the *on* columns within
        the day of its time column and carries new values for its other columns.

        Only the named days are rewritten, each into one new file that replaces the day's
        files under the table lock (as :meth:`compact` does); applying the same update again
        changes nothing. Returns the number of stored rows matched."""
        t = lookup(table)
        setting = [c for c in frame.columns if c not in (*on, t.time_column)]
        unknown = [c for c in (*on, *setting) if c not in t.schema]
        if unknown or t.time_column not in frame.columns:
            raise InputError(f"{t.name}: cannot update by {list(on)} with {frame.columns}; "
                             f"give {t.time_column}, the key columns and columns of {t.name}")
        if set(setting) & {*t.key, t.time_column} or not setting:
            raise InputError(f"{t.name}: an update sets columns other than {t.time_column} and the key {list(t.key)}")
        if not frame.height:
            return 0
        frame = (frame.with_columns(pl.col(t.time_column).dt.date().alias("__day"))
                 .unique(subset=[*on, "__day"], keep="last", maintain_order=True))
        matched = 0
        with self._locked(t) as folder:
            for (day,), part in sorted(frame.partition_by("__day", as_dict=True).items(), key=lambda kv: kv[0]):
                target = folder / f"{_DAY}{day.isoformat()}"
                if not target.is_dir():
                    continue
                self._sweep(target)
                files = _parts(target)
                if not files:
                    continue
                stored = _scan(files, t).collect()
                new = part.select(*on, *(pl.col(c).cast(t.schema[c]).alias(f"__new_{c}") for c in setting),
                                  pl.lit(True).alias("__hit"))
                joined = stored.join(new, on=list(on), how="left", maintain_order="left")
                hits = int(joined["__hit"].fill_null(False).sum())
                if not hits:
                    continue
                hit = pl.col("__hit").fill_null(False)
                rewritten = joined.with_columns(
                    pl.when(hit).then(pl.col(f"__new_{c}")).otherwise(pl.col(c)).alias(c) for c in setting
                ).select(t.column_names)
                tmp = _write_sorted(_first_per_key(rewritten, t.key), target, t.time_column)
                try:
                    os.replace(tmp, target / _new_name(_PART))
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
                for f in files:  # a crash here leaves old rows beside new ones: the next update or compaction drops them
                    f.unlink()
                matched += hits
        return matched

    def _targets(self, table: str | Table | None) -> list[Table]:
        """The named table (or every table with data) if its folder exists."""
        tables = [lookup(table)] if table is not None else [TABLES[n] for n in self.tables()]
        return [t for t in tables if (self.root / t.name).is_dir()]

    def compact(self, table: str | Table | None = None, *, min_files: int = 2) -> CompactResult:
        """Merge each partition holding at least *min_files* files into one file."""
        if min_files < 1:
            raise InputError(f"min_files must be at least 1 (got {min_files})")
        done: list[tuple[str, date, int]] = []
        rows = 0
        for t in self._targets(table):
            with self._locked(t) as root:
                self._sweep(root)
                for day, folder in self._partitions(t):
                    self._sweep(folder)
                    files = _parts(folder)
                    if len(files) < min_files:
                        continue
                    merged = _scan(files, t).collect()
                    # a crash between rename and unlink could leave a key twice: drop it here
                    merged = _first_per_key(merged, t.key)
                    tmp = _write_sorted(merged, folder, t.time_column)
                    try:
                        os.replace(tmp, folder / _new_name(_PART))
                    except BaseException:
                        tmp.unlink(missing_ok=True)
                        raise
                    for f in files:
                        f.unlink()
                    done.append((t.name, day, len(files)))
                    rows += merged.height
        return CompactResult(tuple(done), rows)

    def retention(
        self,
        days: int,
        table: str | Table | None = None,
        *,
        today: date | None = None,
        dry_run: bool = False,
    ) -> RetentionResult:
        """Delete whole day partitions dated before ``today - days`` (today: UTC by default).

        ``days=30`` keeps today and the 30 days before it.
        """
        if days < 1:
            raise InputError(f"retention days must be at least 1 (got {days}); pass --days 1 or more")
        cutoff = (today or datetime.now(UTC).date()) - timedelta(days=days)
        gone: list[tuple[str, date]] = []
        n_files = n_bytes = 0
        for t in self._targets(table):
            with self._locked(t) as root:
                self._sweep(root)
                for day, folder in self._partitions(t, last=cutoff - timedelta(days=1)):
                    files = _parts(folder)
                    n_files += len(files)
                    n_bytes += sum(f.stat().st_size for f in files)
                    gone.append((t.name, day))
                    if not dry_run:
                        trash = root / f"{_TRASH}{folder.name}-{uuid.uuid4().hex[:8]}"
                        os.replace(folder, trash)  # readers stop seeing the day at once
                        shutil.rmtree(trash)
        return RetentionResult(cutoff, tuple(gone), n_files, n_bytes, dry_run)


__all__ = ["Lake", "AppendResult", "CompactResult", "RetentionResult", "INFO_SCHEMA"]
