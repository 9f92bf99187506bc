"""Share the tenant's indicators (STIX 2.1 or CSV), and learn indicators from its own investigations.

Exports hold block indicators only (never allow-list entries) and never TLP:RED or
TLP:AMBER+STRICT ones: those stay in the workbench. Files are written atomically and every export
is audited (``intel.export``). :func:`learn_from_investigations` turns what automated
investigations found malicious (URLs, files, sender IPs and domains) into indicators from source
``workbench`` (TLP:AMBER), so detection, retro-hunts and exports can use them.

>>> _uuid("indicator", "url", "http://evil.example")[:20]
'indicator--f32dbc32-'
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workbench.csv_cells import spreadsheet_safe
from workbench.errors import InputError
from workbench.intel.model import Indicator, IndicatorType, Tlp
from workbench.intel.store import UpsertResult, search, upsert
from workbench.store import tables as t
from workbench.store.engine import Store

LEARNED = "workbench"  # the source of indicators learned from investigations
PRODUCER = "Workbench"
_TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_TLP2_CREATOR = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"
TLP2_IDS = {  # the OASIS TLP 2.0 marking definitions
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
CSV_COLUMNS = ("type", "value", "source", "confidence", "tlp", "first_seen", "last_seen", "expires", "tags", "family",
               "description")


def _uuid(kind: str, *parts: str) -> str:
    """A stable STIX id (UUIDv4 layout from a hash), so exporting twice gives the same ids."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:16]
    return f"{kind}--{uuid.UUID(bytes=digest, version=4)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern(ind: Indicator) -> str:
    """The STIX 2.1 pattern for one indicator.

    >>> pattern(Indicator("senderDomain", "evil.example", "feed"))
    "[email-message:from_ref.value LIKE '%@evil.example']"
    """
    v = _escape(ind.value)
    if ind.type is IndicatorType.IP:
        return f"[{'ipv6-addr' if ':' in ind.value else 'ipv4-addr'}:value = '{v}']"
    return {IndicatorType.URL: f"[url:value = '{v}']", IndicatorType.DOMAIN: f"[domain-name:value = '{v}']",
            IndicatorType.SHA256: f"[file:hashes.'SHA-256' = '{v}']",
            IndicatorType.SENDER: f"[email-addr:value = '{v}']",
            IndicatorType.SENDER_DOMAIN: f"[email-message:from_ref.value LIKE '%@{v}']"}[ind.type]


def shareable(store: Store, *, include_learned: bool = True, at: datetime | None = None) -> list[Indicator]:
    """Block indicators that may leave the workbench: unexpired, not TLP:RED or AMBER+STRICT."""
    found = search(store, allow=False, active_at=at or datetime.now(UTC), limit=None)
    return [i for i in found if i.tlp.shareable and (include_learned or i.source != LEARNED)]


def _write_atomic(path: Path, write: Callable[[Any], None], newline: str | None = None) -> None:
    from workbench.atomic import atomic_open

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, newline=newline) as fh:
        write(fh)


def _marking(tlp: Tlp) -> Any:
    import stix2

    return stix2.v21.MarkingDefinition(
        id=TLP2_IDS[tlp], created="2022-10-01T00:00:00.000Z", name=f"TLP:{tlp.value.upper()}",
        created_by_ref=_TLP2_CREATOR, allow_custom=True,
        extensions={_TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp.value}})


def _stix_indicator(ind: Indicator, producer: str, now: datetime) -> Any:
    import stix2

    valid_from = ind.first_seen or now
    until = ind.expires if ind.expires and ind.expires > valid_from else None
    extra = {"valid_until": until} if until else {}
    if ind.tags:
        extra["labels"] = sorted(ind.tags)
    return stix2.v21.Indicator(
        id=_uuid("indicator", ind.type.value, ind.value, ind.source), created=valid_from, modified=valid_from,
        name=ind.value, description=ind.description or None,
        pattern=pattern(ind), pattern_type="stix", valid_from=valid_from, confidence=int(ind.confidence),
        indicator_types=["malicious-activity"], object_marking_refs=[TLP2_IDS[ind.tlp]], created_by_ref=producer,
        **extra)


def _families(indicators: Sequence[tuple[Indicator, Any]], producer: str, now: datetime) -> list[Any]:
    """One malware (family) object per family, marked with the strictest TLP of its indicators, and
    ``indicates`` relationships from its indicators."""
    import stix2

    from workbench.intel.imports import strictest

    out: list[Any] = []
    by_family: dict[str, list[tuple[Indicator, Any]]] = {}
    for ind, obj in indicators:
        if ind.family:
            by_family.setdefault(ind.family, []).append((ind, obj))
    for family, members in sorted(by_family.items()):
        tlp = strictest([i.tlp for i, _ in members], Tlp.CLEAR)
        malware = stix2.v21.Malware(id=_uuid("malware", family), name=family, is_family=True, created=now,
                                    modified=now, created_by_ref=producer, object_marking_refs=[TLP2_IDS[tlp]])
        out.append(malware)
        for ind, obj in members:
            out.append(stix2.v21.Relationship(
                id=_uuid("relationship", obj.id, malware.id), source_ref=obj.id, relationship_type="indicates",
                target_ref=malware.id, created=now, modified=now, created_by_ref=producer,
                object_marking_refs=[TLP2_IDS[ind.tlp]]))
    return out


def stix_bundle(indicators: Iterable[Indicator], *, now: datetime | None = None) -> Any:
    """A STIX 2.1 bundle (made with ``stix2``) of shareable *indicators*; others are left out."""
    import stix2

    now = (now or datetime.now(UTC)).replace(microsecond=0)
    producer = stix2.v21.Identity(id=_uuid("identity", PRODUCER), name=PRODUCER, identity_class="system",
                                  created=datetime(2026, 1, 1, tzinfo=UTC), modified=datetime(2026, 1, 1, tzinfo=UTC))
    kept = [i for i in indicators if i.tlp.shareable and not i.allow]
    pairs = [(i, _stix_indicator(i, producer.id, now)) for i in kept]
    markings = [_marking(tlp) for tlp in TLP2_IDS if any(i.tlp is tlp for i in kept)]
    return stix2.v21.Bundle(producer, *markings, *[o for _, o in pairs], *_families(pairs, producer.id, now),
                            id=_uuid("bundle", now.isoformat()), allow_custom=True)


def _audit(store: Store, actor: str, path: Path, fmt: str, count: int) -> None:
    from workbench import audit

    audit.record(store, actor=actor, activity="intel.export", target=str(path), details={"format": fmt,
                                                                                         "indicators": count})


def _require(store: Store, actor: str, path: Path) -> None:
    from workbench import rbac

    rbac.require(store, actor, rbac.Permission.METADATA_READ, activity="intel.export", target=str(path))


def export_stix(store: Store, path: Path | str, *, actor: str, include_learned: bool = True,
                now: datetime | None = None) -> int:
    """Write shareable indicators as a STIX 2.1 bundle (atomically); returns how many."""
    path = Path(path)
    _require(store, actor, path)
    kept = shareable(store, include_learned=include_learned, at=now)
    bundle = stix_bundle(kept, now=now)
    _write_atomic(path, lambda fh: fh.write(bundle.serialize(pretty=True)))
    _audit(store, actor, path, "stix-2.1", len(kept))
    return len(kept)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return ",".join(value)
    return spreadsheet_safe(value)


def export_csv(store: Store, path: Path | str, *, actor: str, include_learned: bool = True,
               now: datetime | None = None) -> int:
    """Write shareable indicators as CSV (one row each, formula-safe cells, atomically); returns how many."""
    path = Path(path)
    _require(store, actor, path)
    kept = shareable(store, include_learned=include_learned, at=now)

    def write(fh: Any) -> None:
        out = csv.writer(fh)
        out.writerow(CSV_COLUMNS)
        for ind in kept:
            out.writerow([_cell(v.value if isinstance(v, (IndicatorType, Tlp)) else v)
                          for v in (getattr(ind, c) for c in CSV_COLUMNS)])

    _write_atomic(path, write, newline="")
    _audit(store, actor, path, "csv", len(kept))
    return len(kept)


# ------------------------------------------------------------------ learning

_CONFIDENCE = {"malicious": 85, "suspicious": 50}
_EVIDENCE = {"url": IndicatorType.URL, "file": IndicatorType.SHA256}
_CLUSTERS = {"url": IndicatorType.URL, "file": IndicatorType.SHA256, "senderIp": IndicatorType.IP,
             "senderDomain": IndicatorType.SENDER_DOMAIN}


_Finding = tuple[IndicatorType, str, str, int, str, datetime]


def _findings(store: Store, verdicts: Sequence[str]) -> list[_Finding]:
    """(type, value, verdict, investigation id, name, created) for every finding with one of *verdicts*."""
    inv, ev, cl = t.investigations.c, t.investigation_evidence.c, t.investigation_clusters.c
    out = []
    with store.read() as conn:
        for table, col, kinds in ((t.investigation_evidence, ev, _EVIDENCE), (t.investigation_clusters, cl, _CLUSTERS)):
            rows = conn.execute(sa.select(col.kind, col.value, col.verdict, inv.id, inv.name, inv.created)
                                .join(t.investigations, inv.id == col.investigation_id)
                                .where(col.verdict.in_(verdicts), col.kind.in_(list(kinds)))).all()
            out += [(kinds[r.kind], r.value, r.verdict, r.id, r.name, r.created) for r in rows]
    return out


def _learned(kind: IndicatorType, value: str, found: list[_Finding]) -> Indicator:
    first, runs = min(found, key=lambda f: f[3]), {f[3] for f in found}
    more = f" and {len(runs) - 1} more" if len(runs) > 1 else ""
    return Indicator(kind, value, LEARNED, max(_CONFIDENCE.get(f[2], 50) for f in found), Tlp.AMBER,
                     first_seen=min(f[5] for f in found), last_seen=max(f[5] for f in found),
                     tags=tuple(sorted({f[2] for f in found})),
                     description=f"learned from investigation {first[3]} ({first[4][:200]}){more}")


def learned(store: Store, *, verdicts: Sequence[str] = ("malicious",)) -> list[Indicator]:
    """Indicators from investigation findings: one per value, described by its first investigation
    (seen from the first to the last), with the strongest verdict's confidence."""
    by_key: dict[tuple[IndicatorType, str], list[_Finding]] = {}
    for f in _findings(store, verdicts):
        by_key.setdefault((f[0], f[1].strip()), []).append(f)
    out = []
    for (kind, value), found in sorted(by_key.items(), key=lambda kv: (kv[0][0].value, kv[0][1])):
        try:
            out.append(_learned(kind, value, found))
        except InputError:  # an empty value: nothing to learn
            continue
    return out


def learn_from_investigations(store: Store, *, verdicts: Sequence[str] = ("malicious",),
                              now: datetime | None = None) -> UpsertResult:
    """Upsert what investigations found malicious as indicators from source ``workbench``;
    running it again without new findings changes nothing."""
    return upsert(store, learned(store, verdicts=verdicts), now=now)


__all__ = ["LEARNED", "TLP2_IDS", "CSV_COLUMNS", "pattern", "shareable", "stix_bundle", "export_stix", "export_csv",
           "learned", "learn_from_investigations"]
