"""Defender XDR Advanced Hunting data: streaming-API JSON lines, bare Advanced Hunting rows,
Defender for Endpoint alert exports and portal CSV exports.

Streaming records look like ``{"category": "AdvancedHunting-EmailEvents", "time": ...,
"properties": {...}}``; a JSON line without a category is a bare Advanced Hunting row whose
table is inferred from its columns, and an MDE ``/api/alerts`` export (``{"value": [...]}``,
one document or one alert per line) becomes AlertInfo, AlertEvidence and DeviceInfo rows
(:mod:`workbench.ingest.mde`); CSV exports have the table's columns as headers (the table comes
from ``--table`` or the file name). Values are coerced to the canonical types; ``dynamic``
columns are kept as JSON text. Tables the workbench does not model are counted and skipped;
a record that lacks its table's key or time, or whose values do not fit, is rejected with
the reason.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from workbench import schema
from workbench.ingest import mde
from workbench.errors import InputError

_PREFIX = "AdvancedHunting-"


Record = tuple[str, str | None, dict | None, str | None]
#: The table name a bare row nothing recognises is counted under (skipped, not rejected).
UNRECOGNISED = "(unrecognised Advanced Hunting row)"


def object_records(source: str, obj: object) -> Iterator[Record]:
    """Records of one JSON value: a streaming record, an MDE alert (or export of them) or a
    bare Advanced Hunting row."""
    if isinstance(obj, list) and mde.alerts_of(obj) is None:
        for number, item in enumerate(obj, 1):
            yield from object_records(f"{source}#{number}", item)
        return
    if not isinstance(obj, dict):
        alerts = mde.alerts_of(obj)
        if alerts is None:
            yield source, None, None, "not a JSON object"
            return
        obj = {"value": alerts}
    category = str(obj.get("category") or "")
    props = obj.get("properties") if "properties" in obj else obj.get("Properties")
    if category.startswith(_PREFIX) and isinstance(props, dict):
        props = dict(props)
        props.setdefault("Timestamp", obj.get("time"))
        yield source, category[len(_PREFIX):], props, None
    elif category.startswith(_PREFIX) or props is not None:
        yield source, None, None, "not an Advanced Hunting streaming record (no category/properties)"
    elif (alerts := mde.alerts_of(obj)) is not None:
        for alert in alerts:
            for table, row in mde.alert_rows(alert):
                yield f"{source} alert {alert.get('id')}", table, row, None
    else:
        row = mde.fold_typed(obj)
        yield source, mde.table_of(row) or UNRECOGNISED, row, None


def streaming_records(path: Path) -> Iterator[Record]:
    """(source, table name, row values, error) per JSON line: streaming records, bare Advanced
    Hunting rows, MDE alerts."""
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
            yield from object_records(source, record)


def json_records(path: Path) -> Iterator[Record]:
    """A JSON file: JSON lines, or one document (an MDE alerts export, an array of rows)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    try:
        json.loads(first)
    except json.JSONDecodeError:
        try:
            document = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError:
            yield from streaming_records(path)  # JSON lines with a bad first line: rejected line by line
            return
        yield from object_records(path.name, document)
        return
    yield from streaming_records(path)


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
        if first.startswith((b"{", b"[")):
            yield from json_records(path)
        else:
            yield from csv_records(path, table_name)
