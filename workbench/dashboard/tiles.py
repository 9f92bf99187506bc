"""What the threat dashboard shows, as data: tiles of numbers, small frames and drill-downs.

Nothing here reads the lake or draws anything: :mod:`workbench.dashboard.data` fills these,
the panel and the report draw them. Every number that can be drilled into carries the
Explorer :class:`~workbench.explorer.query.Query` that lists exactly the rows it counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import polars as pl

from workbench.explorer.query import Query

UNIT = "messages (one per recipient)"


@dataclass(frozen=True)
class Metric:
    """One number on a tile, and the Explorer query that lists what it counts (if any)."""

    key: str
    label: str
    value: int
    query: Query | None = None
    hint: str = ""  # shown on hover: how the number is computed


@dataclass(frozen=True)
class Tile:
    """A dashboard tile. An *empty* tile says what will fill it; it is never blank."""

    key: str
    title: str
    metrics: tuple[Metric, ...] = ()
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # small, already aggregated
    query: Query | None = None  # the tile's own drill-down ("open in Explorer")
    note: str = ""
    empty: str = ""

    def metric(self, key: str) -> Metric:
        for m in self.metrics:
            if m.key == key:
                return m
        raise KeyError(f"tile {self.key!r} has no metric {key!r}")

    def value(self, key: str) -> int:
        return self.metric(key).value


class Severity(StrEnum):
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    INFORMATIONAL = "Informational"


@dataclass(frozen=True)
class Insight:
    """A short computed finding: a sentence around a number, and where to look."""

    key: str
    text: str
    value: int
    severity: Severity
    query: Query | None = None


@dataclass(frozen=True)
class Dashboard:
    """Every tile for one window."""

    start: datetime
    end: datetime
    bucket: str  # "1h", "1d" or "1w": the time step of the trend charts
    tiles: tuple[Tile, ...]
    insights: tuple[Insight, ...]
    seconds: float = 0.0

    def tile(self, key: str) -> Tile:
        for t in self.tiles:
            if t.key == key:
                return t
        raise KeyError(f"no tile {key!r}; tiles: {', '.join(t.key for t in self.tiles)}")


__all__ = ["UNIT", "Metric", "Tile", "Insight", "Severity", "Dashboard"]
