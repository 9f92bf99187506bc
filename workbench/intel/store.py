"""The tenant's indicator store (``intel_indicators`` in the SQL store).

One row per (type, value, source): the same indicator from two feeds is two rows, so each keeps
its own confidence, TLP and expiry. :func:`upsert` is idempotent — a re-import that changes
nothing counts every indicator ``unchanged`` and touches no row — and returns what it added, so
a retro-hunt can start from exactly the new ones (:func:`added_since`).

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> from workbench.intel.model import Indicator
>>> s = open_store(url=f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'wb.sqlite'}")
>>> upsert(s, [Indicator("domain", "Evil.Example", "feed")]).added
1
>>> upsert(s, [Indicator("domain", "evil.example", "feed")]).unchanged
1
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from workbench.intel.model import Indicator, IndicatorType, Tlp
from workbench.store import tables as t
from workbench.store.engine import Store

I = t.intel_indicators.c  # noqa: E741 - the table's columns, as elsewhere (T, C, A)
_FIELDS = ("confidence", "tlp", "first_seen", "last_seen", "expires", "tags", "family", "description", "allow")


@dataclass(frozen=True)
class UpsertResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    added_ids: tuple[int, ...] = ()

    def render(self) -> str:
        return f"{self.added:,} added, {self.updated:,} updated, {self.unchanged:,} unchanged"


def _values(ind: Indicator) -> dict[str, Any]:
    return {"confidence": int(ind.confidence), "tlp": ind.tlp.value, "first_seen": ind.first_seen,
            "last_seen": ind.last_seen, "expires": ind.expires, "tags": json.dumps(sorted(set(ind.tags))),
            "family": ind.family[:200], "description": ind.description, "allow": bool(ind.allow)}


def _same(row: Any, values: dict[str, Any]) -> bool:
    return all(getattr(row, k) == values[k] for k in _FIELDS)


def upsert(store: Store, indicators: Iterable[Indicator], *, now: datetime | None = None) -> UpsertResult:
    """Add new indicators and update changed ones (by type, value, source), in one transaction."""
    now = now or datetime.now(UTC)
    unique = {(i.type.value, i.value, i.source): i for i in indicators}
    if not unique:
        return UpsertResult()

    def do(conn: sa.Connection) -> UpsertResult:
        added, updated, unchanged, ids = 0, 0, 0, []
        keys = list(unique)
        existing: dict[tuple[str, str, str], Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = conn.execute(sa.select(t.intel_indicators).where(
                sa.tuple_(I.type, I.value, I.source).in_(chunk))).all()
            existing.update({(r.type, r.value, r.source): r for r in rows})
        fresh = []
        for key, ind in unique.items():
            values = _values(ind)
            row = existing.get(key)
            if row is None:
                fresh.append({"type": key[0], "value": key[1], "source": key[2], "added": now, "updated": now,
                              **values})
            elif _same(row, values):
                unchanged += 1
            else:
                conn.execute(t.intel_indicators.update().where(I.id == row.id).values(updated=now, **values))
                updated += 1
        for start in range(0, len(fresh), 1000):
            chunk = fresh[start:start + 1000]
            conn.execute(t.intel_indicators.insert(), chunk)
            added += len(chunk)
        if fresh:
            ids = conn.execute(sa.select(I.id).where(I.added == now, sa.tuple_(I.type, I.value, I.source).in_(
                [(f["type"], f["value"], f["source"]) for f in fresh]))).scalars().all() if len(fresh) <= 5000 \
                else conn.execute(sa.select(I.id).where(I.added == now)).scalars().all()
        return UpsertResult(added, updated, unchanged, tuple(ids))

    return store.run(do)


def _indicator(r: Any) -> Indicator:
    return Indicator(IndicatorType(r.type), r.value, r.source, r.confidence, Tlp(r.tlp), r.first_seen, r.last_seen,
                     r.expires, tuple(json.loads(r.tags or "[]")), r.family or "", r.description or "", bool(r.allow))


def search(store: Store, *, text: str = "", types: Sequence[IndicatorType | str] = (), source: str = "",
           family: str = "", allow: bool | None = None, active_at: datetime | None = None,
           added_after: datetime | None = None, limit: int | None = 500) -> list[Indicator]:
    """Indicators matching every given filter: *text* a substring of the value, family or
    description (any case); *active_at* drops those expired by then; newest first."""
    stmt = sa.select(t.intel_indicators)
    if text:
        like = f"%{text.strip().lower()}%"
        stmt = stmt.where(sa.or_(sa.func.lower(I.value).like(like), sa.func.lower(I.family).like(like),
                                 sa.func.lower(I.description).like(like)))
    if types:
        stmt = stmt.where(I.type.in_([IndicatorType(x).value for x in types]))
    if source:
        stmt = stmt.where(I.source == source)
    if family:
        stmt = stmt.where(sa.func.lower(I.family) == family.strip().lower())
    if allow is not None:
        stmt = stmt.where(I.allow.is_(allow))
    if active_at is not None:
        stmt = stmt.where(sa.or_(I.expires.is_(None), I.expires > active_at))
    if added_after is not None:
        stmt = stmt.where(I.added > added_after)
    stmt = stmt.order_by(I.added.desc(), I.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.read() as conn:
        return [_indicator(r) for r in conn.execute(stmt)]


def added_since(store: Store, since: datetime | None) -> list[Indicator]:
    """Block indicators (not allow-list entries) stored after *since* (all when None): what a retro-hunt looks for."""
    return search(store, allow=False, added_after=since, limit=None)


def active(store: Store, at: datetime | None = None) -> dict[IndicatorType, frozenset[str]]:
    """Every unexpired block indicator by type (what detection and AIR match against)."""
    at = at or datetime.now(UTC)
    with store.read() as conn:
        rows = conn.execute(sa.select(I.type, I.value).where(I.allow.is_(False), sa.or_(
            I.expires.is_(None), I.expires > at))).all()
    out: dict[IndicatorType, set[str]] = {k: set() for k in IndicatorType}
    for r in rows:
        out[IndicatorType(r.type)].add(r.value)
    return {k: frozenset(v) for k, v in out.items()}


def allowed(store: Store) -> dict[IndicatorType, frozenset[str]]:
    """Allow-list entries by type (MISP warning lists): never flagged."""
    with store.read() as conn:
        rows = conn.execute(sa.select(I.type, I.value).where(I.allow.is_(True))).all()
    out: dict[IndicatorType, set[str]] = {k: set() for k in IndicatorType}
    for r in rows:
        out[IndicatorType(r.type)].add(r.value)
    return {k: frozenset(v) for k, v in out.items()}


_FEED_KIND = {IndicatorType.URL: "url", IndicatorType.DOMAIN: "domain", IndicatorType.IP: "ip",
              IndicatorType.SHA256: "sha256", IndicatorType.SENDER: "email", IndicatorType.SENDER_DOMAIN: "domain"}


def as_feed(store: Store, at: datetime | None = None) -> list[Any]:
    """The store's unexpired indicators as :class:`workbench.intel.feeds.Indicator` (what detection's
    context and AIR's analyzers match); allow-listed domains as ``allow-domain``."""
    from workbench.intel.feeds import Indicator as FeedIndicator

    at = at or datetime.now(UTC)
    with store.read() as conn:
        rows = conn.execute(sa.select(I.type, I.value, I.source, I.allow).where(
            sa.or_(I.expires.is_(None), I.expires > at))).all()
    out = []
    for r in rows:
        kind = IndicatorType(r.type)
        if r.allow:
            if kind in (IndicatorType.DOMAIN, IndicatorType.SENDER_DOMAIN):
                out.append(FeedIndicator("allow-domain", r.value, r.source))
        else:
            out.append(FeedIndicator(_FEED_KIND[kind], r.value, r.source))
    return out


def counts(store: Store) -> dict[str, int]:
    """How many indicators per type (allow-list entries apart)."""
    with store.read() as conn:
        rows = conn.execute(sa.select(I.type, I.allow, sa.func.count()).group_by(I.type, I.allow)).all()
    return {("allow " if a else "") + ty: n for ty, a, n in rows}


__all__ = ["UpsertResult", "upsert", "search", "added_since", "active", "allowed", "as_feed", "counts"]
