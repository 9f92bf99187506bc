"""Named saved queries of a tenant (mdo-reference §1.9), one JSON file each, with no horizon:
a relative window ("last 90d") stays relative, an absolute one keeps its dates.

>>> import tempfile, pathlib
>>> from workbench.explorer.query import Query, Window
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = save(folder, "Phish this week", Query("phish", Window.last("7d")), author="ann")
>>> [s.name for s in list_saved(folder)], load(folder, "phish this week").query.view
(['Phish this week'], 'phish')
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench.errors import ConflictError, InputError, NotFound
from workbench.explorer.query import Query

_NAME = re.compile(r"^[\w][\w .,()+&'-]{0,79}$")


@dataclass(frozen=True)
class SavedQuery:
    name: str
    query: Query
    author: str
    saved_at: datetime
    tracked: bool = False  # run on a schedule by the trackers (threat intelligence issue)


def folder_of(tenant: object) -> Path:
    """Where a tenant (a Tenant, or its folder as a path) keeps its saved queries."""
    root = tenant.root if hasattr(tenant, "lake_dir") else tenant  # a Path's own .root is "/"
    return Path(root) / "explorer" / "queries"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _check(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise InputError(f"bad query name {name!r}: 1-80 letters, digits, spaces and . , ( ) + & ' -")
    return name


def save(folder: Path, name: str, query: Query, *, author: str, tracked: bool = False,
         overwrite: bool = False) -> SavedQuery:
    """Save *query* as *name* (atomic); an existing name needs *overwrite*."""
    name = _check(name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_slug(name)}.json"
    if path.exists() and not overwrite:
        raise ConflictError(f"a saved query {name!r} exists; choose another name or overwrite it")
    saved = SavedQuery(name, query, author, datetime.now(UTC), tracked)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"name": name, "query": query.to_json(), "author": author,
                               "saved_at": saved.saved_at.isoformat(), "tracked": tracked}, indent=1) + "\n")
    os.replace(tmp, path)
    return saved


def _read(path: Path) -> SavedQuery:
    try:
        data = json.loads(path.read_text())
        return SavedQuery(data["name"], Query.from_json(data["query"]), data.get("author", ""),
                          datetime.fromisoformat(data["saved_at"]), bool(data.get("tracked", False)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"saved query file {path.name} is damaged ({type(exc).__name__}); delete or fix it") from None


def load(folder: Path, name: str) -> SavedQuery:
    path = folder / f"{_slug(name)}.json"
    if not path.is_file():
        known = ", ".join(s.name for s in list_saved(folder)) or "none yet"
        raise NotFound(f"no saved query {name!r}; saved queries: {known}")
    return _read(path)


def list_saved(folder: Path) -> list[SavedQuery]:
    """Saved queries by name; damaged files are skipped."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(_read(path))
        except InputError:
            continue
    return sorted(out, key=lambda s: s.name.lower())


def delete(folder: Path, name: str) -> None:
    path = folder / f"{_slug(name)}.json"
    if not path.is_file():
        raise NotFound(f"no saved query {name!r} to delete")
    path.unlink()


__all__ = ["SavedQuery", "save", "load", "list_saved", "delete", "folder_of"]
