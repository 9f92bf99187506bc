"""The training catalog: modules a simulation can assign (``library/training.json``).

>>> by_id("report-phishing").minutes
3
>>> len(load_catalog()) >= 6
True
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from workbench.errors import InputError, NotFound
from workbench.simulator.model import TrainingModule

_CATALOG = "library/training.json"


@cache
def load_catalog() -> tuple[TrainingModule, ...]:
    """Every training module, in catalog order (ids unique, 1–60 minutes each)."""
    raw = json.loads(resources.files(__package__).joinpath(_CATALOG).read_text(encoding="utf-8"))
    modules, seen = [], set()
    for i, d in enumerate(raw):
        where = f"{_CATALOG}[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not isinstance(d.get("title"), str):
            raise InputError(f"{where}: needs an id and a title; fix the catalog entry")
        if d["id"] in seen:
            raise InputError(f"{where}: id {d['id']!r} is used twice; give each module its own id")
        minutes = d.get("minutes")
        if not isinstance(minutes, int) or not 1 <= minutes <= 60:
            raise InputError(f"{where}: minutes must be a whole number from 1 to 60")
        seen.add(d["id"])
        modules.append(TrainingModule(id=d["id"], title=d["title"], minutes=minutes, summary=d.get("summary", "")))
    return tuple(modules)


def by_id(module_id: str) -> TrainingModule:
    """The catalog module *module_id*."""
    for m in load_catalog():
        if m.id == module_id:
            return m
    raise NotFound(f"unknown training module {module_id!r}; use one of {', '.join(m.id for m in load_catalog())}")


__all__ = ["load_catalog", "by_id"]
