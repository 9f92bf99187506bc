"""Defender XDR Advanced Hunting data: streaming-API JSON lines and portal CSV exports.

Streaming records look like ``{"category": "AdvancedHunting-EmailEvents", "time": ...,
"properties": {...}}``; CSV exports have the table's columns as headers (the table comes
from ``--table`` or the file name). Values are coerced to the canonical types; ``dynamic``
columns are kept as JSON text. Tables the workbench does not model are counted and skipped;
a record that lacks its table's key or time, or whose values do not fit, is rejected with
the reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from workbench import schema
from workbench.errors import InputError
from workbench.lake import Lake
from workbench.tenant import Tenant

_PREFIX = "AdvancedHunting-"


@dataclass
class ExportSummary:
    records: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    unsupported: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"read {self.records:,} records"]
        lines += [f"  {t:<26} {n:>10,} rows" for t, n in sorted(self.rows.items())]
        lines.append(f"  duplicates skipped         {self.duplicates:>10,} rows")
        if self.unsupported:
            lines.append("  skipped (tables the workbench does not model): "
                         + ", ".join(f"{t} {n}" for t, n in sorted(self.unsupported.items())))
        lines.append(f"  rejected                   {len(self.rejected):>10,} records")
        lines += [f"    {src}: {why}" for src, why in self.rejected[:20]]
        return "\n".join(lines)


def _time(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip().replace("Z", "+00:00")
    if "." in text:  # Defender writes 7 fractional digits; Python takes 6
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _bool(value) -> bool | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def coerce(table: schema.Table, values: dict) -> dict:
    """One row of *table* from raw values (case-insensitive names); raises ValueError on misfits."""
    lower = {k.lower(): v for k, v in values.items()}
    row = {}
    for name, dtype in table.columns:
        value = values.get(name, lower.get(name.lower()))
        if value == "":
            value = None
        if value is None:
            row[name] = None
        elif dtype == pl.Datetime("us", "UTC"):
            row[name] = _time(value)
        elif dtype == pl.Boolean():
            row[name] = _bool(value)
        elif dtype in (pl.Int32(), pl.Int64()):
            row[name] = int(value)
        elif isinstance(value, (dict, list)):
            row[name] = json.dumps(value, sort_keys=True, separators=(",", ":"))
        else:
            row[name] = str(value)
    if row.get("ReportId") is None and "ReportId" in table.key and table.name == "AlertEvidence":
        # Advanced Hunting's AlertEvidence has no ReportId; ours is a digest of the record.
        canonical = json.dumps(values, sort_keys=True, default=str).encode()
        row["ReportId"] = "ae-" + hashlib.sha256(canonical).hexdigest()[:32]
    missing = [c for c in (*table.key, table.time_column, *table.required) if row.get(c) is None]
    if missing:
        raise ValueError(f"no {missing[0]} (this is not a {table.name} record)")
    return row


def streaming_records(path: Path) -> Iterator[tuple[str, str | None, dict | None, str | None]]:
    """(source, table name, row values, error) per JSON line of a streaming export."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            source = f"{path.name}:{number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield source, None, None, f"not JSON ({exc.msg})"
                continue
            category = str(record.get("category") or record.get("Category") or "")
            props = record.get("properties") or record.get("Properties")
            if not category.startswith(_PREFIX) or not isinstance(props, dict):
                yield source, None, None, "not an Advanced Hunting streaming record (no category/properties)"
                continue
            props = dict(props)
            props.setdefault("Timestamp", record.get("time"))
            yield source, category[len(_PREFIX):], props, None


def csv_records(path: Path, table_name: str | None) -> Iterator[tuple[str, str | None, dict | None, str | None]]:
    name = table_name or path.stem.split("-")[0].split("_")[0]
    if name not in schema.TABLES:
        raise InputError(f"cannot tell which table {path.name} holds; pass --table (one of {', '.join(sorted(schema.TABLES))})")
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        for number, row in enumerate(csv.DictReader(fh), 2):
            yield f"{path.name}:{number}", name, row, None


def records(paths: Iterable[Path], table_name: str | None = None):
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"no such file: {path}; check the path")
        with open(path, "rb") as fh:
            first = fh.read(64).lstrip()
        if first.startswith(b"{"):
            yield from streaming_records(path)
        else:
            yield from csv_records(path, table_name)


def ingest_records(tenant: Tenant, recs, *, chunk: int = 5000) -> ExportSummary:
    summary = ExportSummary()
    lake = Lake.for_tenant(tenant)
    pending: dict[str, list[dict]] = {}

    def flush() -> None:
        for name, rows in pending.items():
            if rows:
                result = lake.append(name, schema.TABLES[name].from_rows(rows))
                summary.rows[name] = summary.rows.get(name, 0) + result.rows_written
                summary.duplicates += result.rows_skipped
                rows.clear()

    for source, name, values, error in recs:
        summary.records += 1
        if error:
            summary.rejected.append((source, error))
            continue
        if name not in schema.TABLES:
            summary.unsupported[name] = summary.unsupported.get(name, 0) + 1
            continue
        try:
            row = coerce(schema.TABLES[name], values)
        except (ValueError, TypeError, OverflowError) as exc:
            summary.rejected.append((source, f"{name}: {exc}"))
            continue
        pending.setdefault(name, []).append(row)
        if len(pending[name]) >= chunk:
            flush()
    flush()
    return summary
