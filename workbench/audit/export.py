"""Export audit records as JSON lines or CSV, written atomically (a temp file, then a rename).

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> from workbench.audit import record
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> store = open_store(url=f"sqlite:///{folder / 'wb.sqlite'}")
>>> _ = record(store, actor="ana", activity="export", target="audit")
>>> export(store, folder / "audit.jsonl", "jsonl")
1
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from workbench.atomic import atomic_open
from workbench.audit.log import query, record
from workbench.csv_cells import spreadsheet_safe
from workbench.errors import InputError, StorageError

FORMATS = ("jsonl", "csv")
COLUMNS = ["seq", "at", "actor", "activity", "target", "result", "request_id", "details", "prev_hash", "hash"]


def require_reader(store: Any, actor: str, activity: str = "audit.read") -> None:
    """Reading or exporting the audit log needs metadata read (every security role; docs/rbac.md)."""
    from workbench import rbac

    rbac.require(store, actor, rbac.Permission.METADATA_READ, activity=activity, target="audit log")


def export(store: Any, path: Path | str, fmt: str = "jsonl", *, actor: str | None = None, **filters: Any) -> int:
    """Write the records matching *filters* (see :func:`workbench.audit.query`; no limit unless
    given) oldest first to *path*; returns how many were written. With *actor* (who needs
    metadata read, :func:`require_reader`), the export itself is audited (``audit.export``,
    after the records it wrote)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; use jsonl or csv")
    if actor:
        require_reader(store, actor, "audit.export")
    path = Path(path)
    if not path.parent.is_dir():
        raise StorageError(f"cannot write {path}: folder {path.parent} does not exist")
    filters.setdefault("limit", None)
    records = query(store, newest_first=False, **filters)
    with atomic_open(path, newline="") as fh:
        if fmt == "jsonl":
            for r in records:
                fh.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
        else:  # cells a spreadsheet opens as text (targets and details can hold anyone's text)
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for r in records:
                row = {**r.to_json()}
                row["details"] = json.dumps(row["details"], sort_keys=True, ensure_ascii=False)
                writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
    if actor:
        record(store, actor=actor, activity="audit.export", target=path.name,
               details={"format": fmt, "records": len(records),
                        "filters": {k: v for k, v in filters.items() if v is not None}})
    return len(records)


__all__ = ["FORMATS", "export"]
