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
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from workbench import schema
from workbench.errors import InputError

_PREFIX = "AdvancedHunting-"


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
