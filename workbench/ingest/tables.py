"""Records from exports into the canonical tables: typed coercion, chunked idempotent appends.

Readers (:mod:`workbench.ingest.defender`, :mod:`workbench.ingest.office365`,
:mod:`workbench.ingest.message_trace`) yield ``(source, table name, values, error)``
records; :func:`ingest_records` coerces and appends them and reports what it did.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl

from workbench import schema
from workbench.lake import Lake
from workbench.tenant import Tenant


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
