"""Export a query's rows to CSV or Parquet with no row cap, a day at a time (bounded memory,
progress per day); the file appears only when complete.

>>> import tempfile, pathlib
>>> from workbench.lake import Lake
>>> from workbench.explorer.query import Query, Window
>>> lake = Lake(pathlib.Path(tempfile.mkdtemp()))
>>> out = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
>>> export(lake, Query("phish", Window.between("2026-11-01", "2026-11-03")), out).rows
0
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from workbench.errors import InputError, StorageError
from workbench.explorer.compile import compile_query
from workbench.explorer.query import Query, Window
from workbench.lake import Lake

FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    format: str


def _days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while day < end:
        out.append((max(day, start), min(day + timedelta(days=1), end)))
        day += timedelta(days=1)
    return out


def export(lake: Lake, q: Query, path: Path | str, *, columns: Sequence[str] | None = None, fmt: str | None = None,
           progress: Callable[[int, int], None] | None = None, now: datetime | None = None,
           audit_store: Any = None, actor: str = "") -> ExportResult:
    """Write every row of *q* to *path* (format from *fmt* or the suffix); *progress(done, total)*
    is called after each day. With *audit_store* (the tenant's store) the export is audited
    (``explorer.export``: *actor*, file, rows, query)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise InputError(f"cannot export to {path.name!r}: choose a .csv or .parquet file")
    _, plan = compile_query(lake, q, columns=columns, now=now)
    start = plan.start
    end = plan.end or datetime.now(start.tzinfo)
    days = _days(start, end)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent if path.parent.is_dir() else None))
    rows = 0
    try:
        parts = []
        for i, (lo, hi) in enumerate(days):
            frame, _ = compile_query(lake, Query(q.view, Window(start=lo, end=hi), q.where), columns=columns, now=now)
            chunk = frame.sort("Timestamp").collect() if "Timestamp" in frame.collect_schema() else frame.collect()
            if chunk.height:
                part = work / f"{i:06d}.parquet"
                chunk.write_parquet(part)
                parts.append(part)
                rows += chunk.height
            if progress:
                progress(i + 1, len(days))
        tmp = work / f"out.{fmt}"
        if parts:
            combined = pl.scan_parquet(parts)
        else:
            combined = compile_query(lake, q, columns=columns, now=now)[0].head(0)
        if fmt == "csv":
            combined.sink_csv(tmp)
        else:
            combined.sink_parquet(tmp, compression="zstd")
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if audit_store is not None:
        from workbench import audit

        audit.record(audit_store, actor=actor, activity="explorer.export", target=path.name,
                     details={"rows": rows, "format": fmt, "query": q.to_json()})
    return ExportResult(path, rows, fmt)


__all__ = ["export", "ExportResult", "FORMATS"]
