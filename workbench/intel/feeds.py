"""Read indicators from the formats teams exchange: STIX 2.x bundles, MISP events, MISP
warning lists (allow-lists), plain-text and CSV blocklists (URLhaus style).

>>> import json, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "bundle.json"
>>> _ = p.write_text(json.dumps({"type": "bundle", "objects": [{"type": "indicator",
...     "pattern": "[domain-name:value = 'evil.test']"}]}))
>>> [(i.kind, i.value) for i in read(p)]
[('domain', 'evil.test')]
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import InputError

KINDS = ("url", "domain", "ip", "sha256", "email", "allow-domain")
_STIX = re.compile(r"\[(url:value|domain-name:value|ipv4-addr:value|ipv6-addr:value|email-addr:value|"
                   r"file:hashes\.'?SHA-256'?|file:hashes\.sha256)\s*=\s*'([^']+)'\]", re.IGNORECASE)
_STIX_KIND = {"url:value": "url", "domain-name:value": "domain", "ipv4-addr:value": "ip", "ipv6-addr:value": "ip",
              "email-addr:value": "email"}
_MISP_KIND = {"url": "url", "link": None, "domain": "domain", "hostname": "domain", "ip-dst": "ip", "ip-src": "ip",
              "sha256": "sha256", "email-src": "email", "email": "email", "domain|ip": "domain"}
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Indicator:
    kind: str
    value: str
    source: str


def _classify(value: str) -> str | None:
    value = value.strip()
    if not value or " " in value:
        return None
    if _SHA256.match(value):
        return "sha256"
    if "://" in value or "/" in value:
        return "url"
    host = value.split(":")[0]
    try:
        ipaddress.ip_address(host)
        return "ip"
    except ValueError:
        pass
    return "domain" if "." in value else None


def _normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind in ("domain", "email", "allow-domain", "sha256"):
        return value.lower().strip(".")
    if kind == "url" and "://" not in value:
        return "http://" + value
    return value


def read(path: Path | str) -> list[Indicator]:
    """Every indicator in one file; unknown formats raise :class:`InputError`."""
    path = Path(path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}; check the path") from None
    stripped = text.lstrip()
    out: list[Indicator] = []
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
        if data.get("type") == "bundle":
            for obj in data.get("objects", []):
                for field, value in _STIX.findall(str(obj.get("pattern", ""))):
                    kind = _STIX_KIND.get(field.lower(), "sha256")
                    out.append(Indicator(kind, _normalise(kind, value), source))
        elif "Event" in data:
            attributes = list(data["Event"].get("Attribute", []))
            for obj in data["Event"].get("Object", []) or []:
                attributes += obj.get("Attribute", [])
            for attr in attributes:
                kind = _MISP_KIND.get(str(attr.get("type")))
                if kind and attr.get("to_ids", True):
                    value = str(attr.get("value", "")).split("|")[0]
                    out.append(Indicator(kind, _normalise(kind, value), source))
        elif isinstance(data.get("list"), list):  # MISP warning list: things not to flag
            for value in data["list"]:
                value = str(value).strip().lstrip("*.")
                if _classify(value) == "domain":
                    out.append(Indicator("allow-domain", _normalise("allow-domain", value), source))
        else:
            raise InputError(f"{path}: not a STIX bundle, MISP event or MISP warning list")
        return out
    if path.suffix.lower() == ".csv":
        rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
        for row in rows:
            host, rest = (row.get("host") or row.get("url") or "").strip(), (row.get("path") or "").strip()
            value = host + rest if rest else host
            if kind := _classify(value):
                out.append(Indicator(kind, _normalise(kind, value), source))
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        line = line.removeprefix("||").removesuffix("^").split()[0]
        if kind := _classify(line):
            out.append(Indicator(kind, _normalise(kind, line), source))
    return out


def read_all(paths: Iterable[Path | str]) -> Iterator[Indicator]:
    """Indicators of files and folders (folders: every .json/.txt/.csv below them)."""
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".json", ".txt", ".csv")) if path.is_dir() else [path]
        for file in files:
            try:
                yield from read(file)
            except InputError:
                if not path.is_dir():
                    raise


def with_indicators(ctx, indicators: Iterable[Indicator]):
    """A detection Context that also knows these indicators (and allow-listed domains)."""
    from dataclasses import replace

    by_kind: dict[str, set[str]] = {k: set() for k in KINDS}
    for ind in indicators:
        by_kind[ind.kind].add(ind.value)
    return replace(
        ctx,
        bad_urls=ctx.bad_urls | frozenset(by_kind["url"]),
        bad_domains=ctx.bad_domains | frozenset(by_kind["domain"] | by_kind["ip"]),
        bad_hashes=ctx.bad_hashes | frozenset(by_kind["sha256"]),
        allow_domains=ctx.allow_domains | frozenset(by_kind["allow-domain"]),
    )
