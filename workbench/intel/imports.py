"""Import indicators (and threat notes) into the tenant's indicator store.

Formats, detected from the content: STIX 2.0 and 2.1 bundles (parsed with the ``stix2``
library, patterns with ``stix2patterns``), MISP events, MISP warning lists (allow-list entries),
and URLhaus-style plain-text and CSV blocklists. Every file is one import, recorded in
``intel_imports`` and audited (``intel.import``); re-importing the same file changes nothing.
Importing needs the alert policy configuration permission (detection tuning, like MDO's Tenant
Allow/Block List).

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> s = open_store(url=f"sqlite:///{d / 'wb.sqlite'}")
>>> _ = (d / "block.txt").write_text("! a blocklist\\n||evil.example^\\n203.0.113.9\\n")
>>> import_file(s, d / "block.txt", actor="ana").render()
'block.txt (text): 2 added, 0 updated, 0 unchanged'
>>> import_file(s, d / "block.txt", actor="ana").added
0
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workbench.errors import InputError, NotFound
from workbench.intel.model import Indicator, IndicatorType, ThreatNote, Tlp
from workbench.intel.store import upsert
from workbench.store import tables as t
from workbench.store.engine import Store

SUFFIXES = (".json", ".txt", ".csv")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_HOST = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9_](?:[a-z0-9_-]{0,62}[a-z0-9_])?\.)+[a-z0-9-]{2,63}\.?$", re.I)
_EMAIL = re.compile(r"^[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+$")
_REASONS = 5  # how many skip reasons a result keeps

# TLP 1.0 (STIX 2.0/2.1 built-in) and TLP 2.0 (OASIS extension) marking definitions.
TLP_MARKINGS: dict[str, Tlp] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,  # TLP 1.0 WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": Tlp.CLEAR,  # TLP 2.0
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": Tlp.GREEN,
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": Tlp.AMBER,
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": Tlp.AMBER_STRICT,
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": Tlp.RED,
}
_TLP_ORDER = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


def strictest(levels: Iterable[Tlp], default: Tlp) -> Tlp:
    """The most restrictive of *levels* (*default* when there are none).

    >>> strictest([Tlp.GREEN, Tlp.RED], Tlp.CLEAR), strictest([], Tlp.AMBER)
    (<Tlp.RED: 'red'>, <Tlp.AMBER: 'amber'>)
    """
    found = list(levels)
    return max(found, key=_TLP_ORDER.index) if found else default


@dataclass(frozen=True)
class Parsed:
    """What one file holds, before it is stored."""

    format: str
    indicators: tuple[Indicator, ...] = ()
    notes: tuple[ThreatNote, ...] = ()
    skipped: int = 0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    source: str
    format: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    reasons: tuple[str, ...] = ()  # the first few reasons for skipped items
    notes: int = 0  # threat notes added or changed
    by_type: tuple[tuple[str, int], ...] = ()  # indicators in the file per type ("allow domain"...)

    def render(self) -> str:
        text = (f"{self.source} ({self.format}): {self.added:,} added, {self.updated:,} updated, "
                f"{self.unchanged:,} unchanged")
        if self.notes:
            text += f", {self.notes:,} threat note(s)"
        if self.skipped:
            text += f", {self.skipped:,} skipped ({'; '.join(self.reasons)})"
        return text

    @property
    def failed(self) -> bool:
        return self.format == "unreadable"


class _Skips:
    """Counts skipped items and keeps the first few distinct reasons."""

    def __init__(self) -> None:
        self.count, self.reasons = 0, []

    def __call__(self, reason: str) -> None:
        self.count += 1
        if reason not in self.reasons and len(self.reasons) < _REASONS:
            self.reasons.append(reason)


# ------------------------------------------------------------------ values


def _when(value: Any) -> datetime | None:
    """A UTC datetime from a datetime, date, epoch seconds or ISO text (None when unparsable)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        return _when(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _ip(value: str) -> str | None:
    """An address or network in canonical form (a full-length prefix is the address).

    >>> _ip("10.0.0.1/32"), _ip("2001:db8::/32"), _ip("evil.example")
    ('10.0.0.1', '2001:db8::/32', None)
    """
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def classify(value: str) -> tuple[IndicatorType, str] | None:
    """The indicator type of a bare blocklist value, with the value to store.

    >>> classify("evil.example/a.php"), classify("Evil.Example"), classify("not a value")
    ((<IndicatorType.URL: 'url'>, 'evil.example/a.php'), (<IndicatorType.DOMAIN: 'domain'>, 'Evil.Example'), None)
    """
    v = value.strip()
    if not v or any(c.isspace() for c in v):
        return None
    if _SHA256.match(v):
        return IndicatorType.SHA256, v
    if _EMAIL.match(v):
        return IndicatorType.SENDER, v
    if (ip := _ip(v)) is not None:
        return IndicatorType.IP, ip
    if "://" in v or "/" in v:
        return IndicatorType.URL, v
    host = v.split(":")[0]
    if (ip := _ip(host.strip("[]"))) is not None:
        return IndicatorType.IP, ip
    return (IndicatorType.DOMAIN, host) if _HOST.match(host) else None


def _make(skip: _Skips, kind: IndicatorType, value: str, **fields: Any) -> Indicator | None:
    try:
        return Indicator(kind, value, **fields)
    except (InputError, ValueError) as exc:
        skip(str(exc)[:120])
        return None


# ------------------------------------------------------------------ STIX


def _stix_version(data: dict[str, Any]) -> str:
    objects = data.get("objects") or []
    if any(isinstance(o, dict) and o.get("spec_version") == "2.1" for o in objects):
        return "2.1"
    return "2.0" if data.get("spec_version") == "2.0" or objects else "2.1"


def _stix_objects(data: dict[str, Any], version: str, skip: _Skips) -> dict[str, Any]:
    """Every object of the bundle that ``stix2`` accepts, by id (the others are skipped with why)."""
    import stix2

    out: dict[str, Any] = {}
    for raw in data.get("objects") or []:
        try:
            obj = stix2.parse(raw, allow_custom=True, version=version)
        except Exception as exc:  # stix2 raises many types for one bad object
            ident = raw.get("id", "an object") if isinstance(raw, dict) else "an object"
            skip(f"{ident}: {type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}")
            continue
        out[obj["id"]] = obj
    return out


def _unquote(literal: str) -> str:
    text = literal[1:-1] if len(literal) >= 2 and literal[0] == literal[-1] == "'" else literal
    return text.replace("\\'", "'").replace("\\\\", "\\")


def pattern_values(pattern: str, version: str = "2.1") -> list[tuple[IndicatorType, str]]:
    """The (type, value) pairs a STIX pattern tests for equality (every comparison of an OR/AND).

    >>> pattern_values("[url:value = 'http://evil.example/a'] OR [file:hashes.'SHA-256' = '" + "a" * 64 + "']")
    [(<IndicatorType.URL: 'url'>, 'http://evil.example/a'), (<IndicatorType.SHA256: 'sha256'>, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')]
    """
    if version == "2.0":
        from stix2patterns.v20.pattern import Pattern
    else:
        from stix2patterns.v21.pattern import Pattern
    out = []
    for object_type, comparisons in Pattern(pattern).inspect().comparisons.items():
        for path, op, literal in comparisons:
            found = _comparison(object_type, [str(p) for p in path], op, _unquote(str(literal)))
            if found:
                out.append(found)
    return out


_EQUALS = {("url", "value"): IndicatorType.URL, ("domain-name", "value"): IndicatorType.DOMAIN,
           ("ipv4-addr", "value"): IndicatorType.IP, ("ipv6-addr", "value"): IndicatorType.IP,
           ("email-addr", "value"): IndicatorType.SENDER, ("email-message", "from_ref.value"): IndicatorType.SENDER,
           ("email-message", "sender_ref.value"): IndicatorType.SENDER,
           ("file", "hashes.sha-256"): IndicatorType.SHA256, ("file", "hashes.sha256"): IndicatorType.SHA256}
_SENDER_PATHS = (("email-addr", "value"), ("email-message", "from_ref.value"), ("email-message", "sender_ref.value"))


def _comparison(object_type: str, path: list[str], op: str, value: str) -> tuple[IndicatorType, str] | None:
    key = ".".join(p.strip("'").lower() for p in path)
    if op == "=":
        kind = _EQUALS.get((object_type, key))
        if kind is IndicatorType.IP:
            return (kind, _ip(value)) if _ip(value) else None
        return (kind, value) if kind else None
    if (op == "LIKE" and (object_type, key) in _SENDER_PATHS and value.startswith("%@")
            and not set(value[2:]) & {"%", "_"}):
        return IndicatorType.SENDER_DOMAIN, value[2:]
    if op == "ISSUBSET" and object_type in ("ipv4-addr", "ipv6-addr") and key == "value" and _ip(value):
        return IndicatorType.IP, _ip(value) or value
    return None


class _Graph:
    """A bundle's objects and who relates to whom (relationships and report ``object_refs``)."""

    FAMILY_TYPES = ("malware", "intrusion-set", "threat-actor")

    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects
        self.rels: list[tuple[str, str, str]] = [(o["source_ref"], o["relationship_type"], o["target_ref"])
                                                 for o in objects.values() if o["type"] == "relationship"]
        self.reports = {i: self._closure(i) for i, o in objects.items() if o["type"] == "report"}

    def _closure(self, report_id: str) -> set[str]:
        seen, todo = {report_id}, [report_id]
        while todo:
            obj = self.objects.get(todo.pop())
            for ref in (obj.get("object_refs", []) if obj is not None and obj["type"] == "report" else []):
                if ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
        return seen

    def neighbours(self, ids: set[str]) -> set[str]:
        return ({t for s, _, t in self.rels if s in ids} | {s for s, _, t in self.rels if t in ids}) - ids

    def of_type(self, ids: Iterable[str], *types: str) -> list[Any]:
        found = [self.objects[i] for i in ids if i in self.objects and self.objects[i]["type"] in types]
        return sorted(found, key=lambda o: (str(o.get("name", "")), o["id"]))

    def family(self, ids: set[str]) -> str:
        """The malware or intrusion-set (directly related, or in a report with) these objects point at."""
        near = ids | self.neighbours(ids)
        near |= {t for s, r, t in self.rels if s in near and r == "attributed-to"}
        for scope in (near, *[c for c in self.reports.values() if c & near]):
            names = [o.get("name", "") for o in self.of_type(scope, *self.FAMILY_TYPES) if o.get("name")]
            if names:
                return names[0]
        return ""

    def scope(self, ident: str) -> set[str]:
        """What a threat note about *ident* covers: its report contents (for a malware or intrusion
        set, those of the reports naming it), plus everything one relationship away."""
        ids = set(self.reports.get(ident, {ident}))
        if self.objects[ident]["type"] in self.FAMILY_TYPES:
            for closure in self.reports.values():
                if ident in closure:
                    ids |= closure
        return ids | self.neighbours(ids)


def _markings(obj: Any, extra: dict[str, Tlp], default: Tlp) -> Tlp:
    refs = obj.get("object_marking_refs") or []
    return strictest([(TLP_MARKINGS.get(r) or extra[r]) for r in refs if r in TLP_MARKINGS or r in extra], default)


def _bundle_tlps(objects: dict[str, Any]) -> dict[str, Tlp]:
    """TLP marking definitions a bundle defines itself (TLP 1.0 ``definition`` or a TLP name)."""
    out = {}
    for ident, obj in objects.items():
        if obj["type"] != "marking-definition":
            continue
        definition = obj.get("definition") or {}
        level = definition.get("tlp") if isinstance(definition, dict) else None
        level = level or next((e.get("tlp_2_0") for e in (obj.get("extensions") or {}).values()
                               if isinstance(e, dict) and e.get("tlp_2_0")), None)
        level = level or (obj.get("name", "") if str(obj.get("name", "")).upper().startswith("TLP:") else None)
        try:
            if level:
                out[ident] = Tlp.parse(str(level))
        except InputError:
            pass
    return out


def _family_from_name(name: str, value: str) -> str:
    name = (name or "").strip()
    return name if re.fullmatch(r"[A-Za-z][\w -]{1,60}", name) and name.lower() != value.lower() else ""


def _stix_indicators(graph: _Graph, tlps: dict[str, Tlp], source: str, version: str, tlp_default: Tlp,
                     skip: _Skips) -> Iterator[tuple[str, Indicator]]:
    for obj in graph.objects.values():
        if obj["type"] != "indicator":
            continue
        try:
            found = pattern_values(obj["pattern"], version) if obj.get("pattern_type", "stix") == "stix" else []
        except Exception as exc:  # stix2patterns raises its own parse errors
            skip(f"{obj['id']}: unparsable pattern ({type(exc).__name__})")
            continue
        if not found:
            skip(f"no supported comparison in {obj['pattern'][:60]}")
            continue
        family = graph.family({obj["id"]})
        for kind, value in found:
            ind = _make(skip, kind, value, source=source, confidence=int(obj.get("confidence", 50)),
                        tlp=_markings(obj, tlps, tlp_default), first_seen=_when(obj.get("valid_from")),
                        last_seen=_when(obj.get("modified")), expires=_when(obj.get("valid_until")),
                        tags=tuple(str(x) for x in (obj.get("labels") or [])),
                        family=family or _family_from_name(obj.get("name", ""), value),
                        description=str(obj.get("description") or obj.get("name") or ""))
            if ind is not None:
                yield obj["id"], ind


def _technique(obj: Any) -> str:
    ext = next((r.get("external_id") for r in obj.get("external_references") or []
                if str(r.get("source_name", "")).startswith("mitre") and r.get("external_id")), "")
    name = str(obj.get("name", ""))
    return f"{ext}: {name.removeprefix(ext + ': ')}" if ext else name


def _notes(graph: _Graph, tlps: dict[str, Tlp], by_id: dict[str, list[Indicator]], source: str,
           tlp_default: Tlp) -> Iterator[ThreatNote]:
    for obj in graph.of_type(graph.objects, "report", "intrusion-set", "malware", "campaign"):
        scope = graph.scope(obj["id"])
        patterns = [o["id"] for o in graph.of_type(scope, "attack-pattern")]
        coas = graph.of_type(scope | {s for s, r, t in graph.rels if r == "mitigates" and t in patterns},
                             "course-of-action")
        inds = sorted({(i.type.value, i.value) for ident in scope for i in by_id.get(ident, [])})
        family = obj.get("name", "") if obj["type"] in graph.FAMILY_TYPES else graph.family(scope)
        techniques = tuple(_technique(o) for o in graph.of_type(scope, "attack-pattern"))
        yield ThreatNote(obj["id"], str(obj.get("name", obj["id"])), family or str(obj.get("name", "")),
                         str(obj.get("description", "")), techniques,
                         tuple(dict.fromkeys(str(o.get("name", "")) for o in coas)), tuple(inds), source,
                         _markings(obj, tlps, tlp_default), _when(obj.get("published") or obj.get("created")),
                         tuple(str(x) for x in obj.get("labels") or []))


def parse_stix(data: dict[str, Any], source: str, tlp_default: Tlp = Tlp.CLEAR) -> Parsed:
    """Indicators and threat notes of a STIX 2.0 or 2.1 bundle (as JSON data)."""
    version, skip = _stix_version(data), _Skips()
    objects = _stix_objects(data, version, skip)
    graph, tlps = _Graph(objects), _bundle_tlps(objects)
    pairs = list(_stix_indicators(graph, tlps, source, version, tlp_default, skip))
    by_id: dict[str, list[Indicator]] = {}
    for ident, ind in pairs:
        by_id.setdefault(ident, []).append(ind)
    notes = tuple(_notes(graph, tlps, by_id, source, tlp_default))
    return Parsed(f"stix-{version}", tuple(i for _, i in pairs), notes, skip.count, tuple(skip.reasons))


# ------------------------------------------------------------------ MISP

_MISP_TYPES: dict[str, tuple[IndicatorType | None, ...]] = {  # one type per "|"-separated part
    "url": (IndicatorType.URL,), "uri": (IndicatorType.URL,), "domain": (IndicatorType.DOMAIN,),
    "hostname": (IndicatorType.DOMAIN,), "hostname|port": (IndicatorType.DOMAIN,),
    "ip-src": (IndicatorType.IP,), "ip-dst": (IndicatorType.IP,), "ip-src|port": (IndicatorType.IP,),
    "ip-dst|port": (IndicatorType.IP,), "domain|ip": (IndicatorType.DOMAIN, IndicatorType.IP),
    "sha256": (IndicatorType.SHA256,), "filename|sha256": (None, IndicatorType.SHA256),
    "email-src": (IndicatorType.SENDER,), "email": (IndicatorType.SENDER,),
}
_THREAT_LEVEL = {"1": 85, "2": 65, "3": 45, "4": 50}


def _misp_events(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("Event"), dict):
        return [data["Event"]]
    if isinstance(data, dict) and isinstance(data.get("response"), list):
        data = data["response"]
    if isinstance(data, list) and data and all(isinstance(x, dict) and isinstance(x.get("Event"), dict) for x in data):
        return [x["Event"] for x in data]
    return []


def _tags(obj: dict[str, Any]) -> list[str]:
    return [str(t.get("name", "")) for t in obj.get("Tag") or [] if isinstance(t, dict) and t.get("name")]


def _misp_tlp(tags: Iterable[str]) -> list[Tlp]:
    out = []
    for tag in tags:
        if tag.lower().startswith("tlp:"):
            try:
                out.append(Tlp.parse(tag.replace('"', "")))
            except InputError:
                pass
    return out


def _misp_family(event: dict[str, Any], tags: list[str]) -> str:
    for galaxy in event.get("Galaxy") or []:
        for cluster in galaxy.get("GalaxyCluster") or []:
            if cluster.get("value"):
                return str(cluster["value"])
    for tag in tags:
        if tag.startswith("misp-galaxy:") and '="' in tag:
            return tag.split('="', 1)[1].rstrip('"')
    return str(event.get("info", ""))


def _misp_attributes(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (a for a in event.get("Attribute") or [] if isinstance(a, dict))
    for obj in event.get("Object") or []:
        yield from (a for a in obj.get("Attribute") or [] if isinstance(a, dict))


def _to_ids(attr: dict[str, Any]) -> bool:
    return str(attr.get("to_ids", True)).lower() in ("true", "1")


def _misp_event(event: dict[str, Any], source: str, tlp_default: Tlp, skip: _Skips) -> Iterator[Indicator]:
    tags = _tags(event)
    family, info = _misp_family(event, tags), str(event.get("info", ""))
    plain = tuple(x for x in tags if not x.lower().startswith("tlp:"))
    confidence = _THREAT_LEVEL.get(str(event.get("threat_level_id", "4")), 50)
    for attr in _misp_attributes(event):
        kinds, kind_name = _MISP_TYPES.get(str(attr.get("type"))), str(attr.get("type"))
        if not kinds:
            skip(f"MISP type {kind_name} is not an indicator type")
            continue
        if not _to_ids(attr) or attr.get("deleted") in (True, "1"):
            skip("not for detection (to_ids off)")
            continue
        attr_tags = _tags(attr)
        comment = str(attr.get("comment") or "")
        for kind, part in zip(kinds, str(attr.get("value", "")).split("|"), strict=False):
            if kind is None:
                continue
            if kind is IndicatorType.IP:
                part = _ip(part) or part
            ind = _make(skip, kind, part, source=source, confidence=confidence,
                        tlp=strictest(_misp_tlp(tags + attr_tags), tlp_default),
                        first_seen=_when(attr.get("first_seen")) or _when(event.get("date")),
                        last_seen=_when(attr.get("last_seen")) or _when(attr.get("timestamp")),
                        tags=plain + tuple(x for x in attr_tags if not x.lower().startswith("tlp:")),
                        family=family, description=f"{info}: {comment}" if comment else info)
            if ind is not None:
                yield ind


def parse_misp_event(data: Any, source: str, tlp_default: Tlp = Tlp.CLEAR) -> Parsed:
    """Indicators of MISP events (``{"Event": ...}``, a list of them, or ``{"response": [...]}``)."""
    skip = _Skips()
    inds = tuple(i for event in _misp_events(data) for i in _misp_event(event, source, tlp_default, skip))
    return Parsed("misp-event", inds, (), skip.count, tuple(skip.reasons))


_EMAIL_ATTRS = {"email-src", "email-dst", "email", "target-email", "whois-registrant-email", "dns-soa-email"}
_HOST_ATTRS = {"domain", "hostname", "url", "uri"}


def _allow_kind(value: str, attrs: set[str]) -> tuple[IndicatorType, str] | None:
    if value.startswith("@"):
        return IndicatorType.SENDER_DOMAIN, value[1:]
    found = classify(value.lstrip("*."))
    if found is None:
        return None
    if found[0] is IndicatorType.DOMAIN and attrs & _EMAIL_ATTRS and not attrs & _HOST_ATTRS:
        return IndicatorType.SENDER_DOMAIN, found[1]
    return found


def parse_warninglist(data: dict[str, Any], source: str, tlp_default: Tlp = Tlp.CLEAR) -> Parsed:
    """A MISP warning list as allow-list entries (regex lists are skipped: not exact values)."""
    skip, kind, attrs = _Skips(), str(data.get("type", "string")), set(data.get("matching_attributes") or [])
    name = str(data.get("name", source))
    description = f"MISP warning list: {name}" + (f" ({data['description']})" if data.get("description") else "")
    out = []
    for raw in data.get("list") or []:
        value = str(raw).strip()
        if kind == "regex":
            skip("regex warning-list entries are not exact values")
            continue
        found = (IndicatorType.IP, _ip(value)) if kind == "cidr" and _ip(value) else _allow_kind(value, attrs)
        if found is None:
            skip(f"{value[:60]!r} is not a domain, address, IP or URL")
            continue
        ind = _make(skip, found[0], str(found[1]), source=source, confidence=90, tlp=tlp_default,
                    tags=("warninglist",), family="", description=description, allow=True)
        if ind is not None:
            out.append(ind)
    return Parsed("misp-warninglist", tuple(out), (), skip.count, tuple(skip.reasons))


# ------------------------------------------------------------------ blocklists


def _header_time(lines: Sequence[str]) -> datetime | None:
    for line in lines[:30]:
        m = re.match(r"^[#!]\s*(?:Updated|Last modified|Generated)\s*:\s*(\S+)", line, re.I)
        if m:
            return _when(m.group(1))
    return None


def _line_value(line: str) -> str:
    """The value of one blocklist line: adblock ``||host^$opts``, hosts-file ``0.0.0.0 host`` or bare."""
    line = line.split("$", 1)[0] if line.startswith("||") else line
    line = line.removeprefix("||").removeprefix("|").rstrip("^|")
    parts = line.split()
    if len(parts) >= 2 and parts[0] in ("0.0.0.0", "127.0.0.1", "::", "::1"):
        return parts[1]
    return parts[0] if parts else ""


def parse_text(text: str, source: str, tlp_default: Tlp = Tlp.CLEAR) -> Parsed:
    """One value a line (comments start with ``#`` or ``!``)."""
    skip, lines = _Skips(), text.splitlines()
    seen = _header_time(lines)
    out = []
    for line in (x.strip() for x in lines):
        if not line or line[0] in "#!" or line.startswith("[Adblock"):
            continue
        found = classify(_line_value(line))
        if found is None:
            skip(f"{line[:60]!r} is not a URL, domain, IP, hash or address")
            continue
        ind = _make(skip, found[0], found[1], source=source, tlp=tlp_default, last_seen=seen)
        if ind is not None:
            out.append(ind)
    return Parsed("text", tuple(out), (), skip.count, tuple(skip.reasons))


_COLUMNS = {  # CSV header (lower case) -> what it holds
    "url": "url", "ioc": "value", "indicator": "value", "value": "value", "host": "host", "domain": "host",
    "hostname": "host", "ip": "ip", "ip_address": "ip", "dst_ip": "ip", "sha256": "sha256",
    "sha256_hash": "sha256", "sender": "sender", "email": "sender", "from": "sender", "path": "path",
}


def _csv_rows(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows and comment lines; a commented-out last header line (URLhaus ``# id,...``) counts."""
    lines = text.splitlines()
    comments = [x for x in lines if x.startswith("#")]
    body = [x for x in lines if x.strip() and not x.startswith("#")]
    rows = list(csv.reader(body))
    if comments and "," in comments[-1] and not (rows and set(_COLUMNS) & {c.strip().lower() for c in rows[0]}):
        return [c.strip().lower() for c in next(csv.reader([comments[-1].lstrip("# ")]))], rows, comments
    return ([c.strip().lower() for c in rows[0]] if rows else []), rows[1:], comments


def _csv_value(row: dict[str, str]) -> tuple[IndicatorType, str] | None:
    typed = (row.get("type") or "").strip()
    if typed in {k.value for k in IndicatorType} and (row.get("value") or "").strip():
        return IndicatorType(typed), row["value"].strip()
    by = {}
    for column, text in row.items():
        if column in _COLUMNS and (text or "").strip():
            by.setdefault(_COLUMNS[column], text.strip())
    if "url" in by:
        return IndicatorType.URL, by["url"]
    if "host" in by:
        return classify(by["host"] + by.get("path", ""))
    for key, kind in (("sha256", IndicatorType.SHA256), ("sender", IndicatorType.SENDER), ("ip", IndicatorType.IP)):
        if key in by:
            return (kind, _ip(by[key]) or by[key]) if kind is IndicatorType.IP else (kind, by[key])
    return classify(by["value"]) if "value" in by else None


def _csv_tlp(row: dict[str, str], default: Tlp) -> Tlp:
    try:
        return Tlp.parse(row["tlp"]) if (row.get("tlp") or "").strip() else default
    except InputError:
        return default


def parse_csv(text: str, source: str, path: Path, tlp_default: Tlp = Tlp.CLEAR) -> Parsed:
    """A CSV blocklist with a header naming its value columns (url, host+path, domain, ip, sha256, sender)."""
    header, rows, comments = _csv_rows(text)
    if not set(header) & set(_COLUMNS):
        raise InputError(f"{path}: no url, host, domain, ip, sha256 or sender column in the CSV header; "
                         f"add a header row naming the value column")
    skip, seen, out = _Skips(), _header_time(comments), []
    for cells in rows:
        row = dict(zip(header, cells, strict=False))
        found = _csv_value(row)
        if found is None:
            skip(f"row {','.join(cells)[:60]!r} has no usable value")
            continue
        tags = tuple(x.strip() for x in (row.get("tags") or "").split(",") if x.strip() and x.strip() != "None")
        ind = _make(skip, found[0], found[1], source=source, tlp=_csv_tlp(row, tlp_default), tags=tags,
                    confidence=int(row["confidence"]) if (row.get("confidence") or "").isdigit() else 50,
                    first_seen=_when(row.get("dateadded") or row.get("first_seen")),
                    last_seen=_when(row.get("updated") or row.get("last_online")) or seen,
                    expires=_when(row.get("expires")),
                    family=(row.get("family") or row.get("malware") or "").strip(),
                    description=(row.get("message") or row.get("threat") or row.get("description") or "").strip())
        if ind is not None:
            out.append(ind)
    return Parsed("csv", tuple(out), (), skip.count, tuple(skip.reasons))


# ------------------------------------------------------------------ detection and storing


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; use import_paths for folders") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}; check the path") from None


def parse(path: Path, content: bytes, tlp_default: Tlp = Tlp.CLEAR) -> Parsed:
    """What a file holds, its format detected from the content (JSON) or the name (.csv)."""
    text = content.decode("utf-8-sig", errors="replace")
    source, stripped = path.name, text.lstrip()
    if "\x00" in text[:4096]:
        raise InputError(f"{path}: a binary file, not a feed; import STIX/MISP JSON or a text/CSV blocklist")
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); fix the file or export it "
                             f"again") from None
        if isinstance(data, dict) and data.get("type") == "bundle":
            return parse_stix(data, source, tlp_default)
        if _misp_events(data):
            return parse_misp_event(data, source, tlp_default)
        if isinstance(data, dict) and isinstance(data.get("list"), list):
            return parse_warninglist(data, source, tlp_default)
        raise InputError(f"{path}: JSON that is not a STIX bundle, MISP event or MISP warning list; export it in "
                         f"one of those formats")
    if path.suffix.lower() == ".csv":
        return parse_csv(text, source, path, tlp_default)
    return parse_text(text, source, tlp_default)


def _note_json(note: ThreatNote) -> str:
    data = asdict(note)
    data["tlp"] = note.tlp.value
    data["published"] = note.published.isoformat() if note.published else None
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def _note_from(definition: str) -> ThreatNote:
    data = json.loads(definition)
    return ThreatNote(**{**data, "tlp": Tlp(data["tlp"]), "published": _when(data.get("published")),
                         "techniques": tuple(data["techniques"]), "protections": tuple(data["protections"]),
                         "indicators": tuple(tuple(x) for x in data["indicators"]), "tags": tuple(data["tags"])})


def save_notes(store: Store, notes: Sequence[ThreatNote], *, now: datetime | None = None) -> int:
    """Add or replace threat notes by id; returns how many were new or changed (0 on a re-import)."""
    now, tn = now or datetime.now(UTC), t.threat_notes

    def do(conn: sa.Connection) -> int:
        changed = 0
        for note in {n.id: n for n in notes}.values():
            definition = _note_json(note)
            row = conn.execute(sa.select(tn.c.definition).where(tn.c.id == note.id)).first()
            values = dict(name=note.name[:300], family=note.family[:200], definition=definition,
                          source=note.source[:300], updated=now)
            if row is None:
                conn.execute(tn.insert().values(id=note.id, **values))
            elif row.definition != definition:
                conn.execute(tn.update().where(tn.c.id == note.id).values(**values))
            else:
                continue
            changed += 1
        return changed

    return store.run(do)


def notes(store: Store) -> list[ThreatNote]:
    """Every threat note, by name."""
    with store.read() as conn:
        rows = conn.execute(sa.select(t.threat_notes.c.definition).order_by(t.threat_notes.c.name)).scalars().all()
    return [_note_from(r) for r in rows]


def note(store: Store, ident: str) -> ThreatNote:
    """One threat note by its id (the STIX object id)."""
    with store.read() as conn:
        row = conn.execute(sa.select(t.threat_notes.c.definition).where(t.threat_notes.c.id == ident)).first()
    if row is None:
        raise NotFound(f"no threat note {ident!r}; list them with `workbench intel notes`")
    return _note_from(row.definition)


def _by_type(indicators: Iterable[Indicator]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for i in indicators:
        key = ("allow " if i.allow else "") + i.type.value
        counts[key] = counts.get(key, 0) + 1
    return tuple(sorted(counts.items()))


def _record(store: Store, result: ImportResult, digest: str, actor: str, now: datetime) -> None:
    store.run(lambda conn: conn.execute(t.intel_imports.insert().values(
        source=result.source[:300], format=result.format, sha256=digest, at=now, actor=actor, added=result.added,
        updated=result.updated, unchanged=result.unchanged)))


def import_file(store: Store, path: Path | str, *, actor: str, tlp_default: Tlp = Tlp.CLEAR,
                now: datetime | None = None) -> ImportResult:
    """Import one file: parse, upsert its indicators and threat notes, record and audit the import."""
    from workbench import audit, rbac

    path, now = Path(path), now or datetime.now(UTC)
    rbac.require(store, actor, rbac.Permission.ALERT_POLICY_CONFIGURATION, activity="intel.import", target=path.name)
    content = _read(path)
    parsed = parse(path, content, Tlp.parse(tlp_default) if not isinstance(tlp_default, Tlp) else tlp_default)
    stored = upsert(store, parsed.indicators, now=now)
    result = ImportResult(path.name, parsed.format, stored.added, stored.updated, stored.unchanged, parsed.skipped,
                          parsed.reasons, save_notes(store, parsed.notes, now=now), _by_type(parsed.indicators))
    digest = hashlib.sha256(content).hexdigest()
    _record(store, result, digest, actor, now)
    audit.record(store, actor=actor, activity="intel.import", target=path.name,
                 details={"format": result.format, "sha256": digest, "added": result.added,
                          "updated": result.updated, "unchanged": result.unchanged, "skipped": result.skipped,
                          "notes": result.notes})
    return result


def files_below(paths: Iterable[Path | str]) -> list[tuple[Path, bool]]:
    """Each file to import and whether it was found in a folder (folders: every .json/.txt/.csv below)."""
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            out += [(p, True) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in SUFFIXES]
        else:
            out.append((path, False))
    return out


def import_paths(store: Store, paths: Iterable[Path | str], *, actor: str, tlp_default: Tlp = Tlp.CLEAR,
                 progress: Callable[[int, int], None] | None = None) -> list[ImportResult]:
    """Import files and folders. A bad file named directly raises; one found in a folder gives an
    ``unreadable`` result naming the problem and the others are imported."""
    from workbench import rbac

    files = files_below(paths)
    rbac.require(store, actor, rbac.Permission.ALERT_POLICY_CONFIGURATION, activity="intel.import",
                 target=", ".join(str(p) for p in paths)[:300] if isinstance(paths, (list, tuple)) else "")
    results = []
    for n, (path, in_folder) in enumerate(files, 1):
        try:
            results.append(import_file(store, path, actor=actor, tlp_default=tlp_default))
        except InputError as exc:
            if not in_folder:
                raise
            results.append(ImportResult(path.name, "unreadable", skipped=1, reasons=(str(exc),)))
        if progress is not None:
            progress(n, len(files))
    return results


def imports(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The latest imports, newest first."""
    with store.read() as conn:
        rows = conn.execute(sa.select(t.intel_imports).order_by(t.intel_imports.c.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


__all__ = ["ImportResult", "Parsed", "TLP_MARKINGS", "classify", "pattern_values", "parse", "parse_stix",
           "parse_misp_event", "parse_warninglist", "parse_text", "parse_csv", "import_file", "import_paths",
           "files_below", "imports", "save_notes", "notes", "note", "strictest"]
