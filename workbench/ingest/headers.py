"""Header facts: addresses, the Received chain and its sender IP, authentication results.

Every function takes already-decoded header strings and never raises on malformed input:
what cannot be read is returned as ``None`` (or an empty list).

>>> auth_results(["mx.example; spf=softfail smtp.mailfrom=x.test; dkim=none; dmarc=fail action=quarantine header.from=x.test; compauth=fail reason=001"])
{'SPF': 'softfail', 'DKIM': 'none', 'DMARC': 'fail', 'CompAuth': 'fail'}
>>> sender_ip(["from mail.example.org (mail.example.org [52.100.1.9]) by mx.contoso.test", "from [10.0.0.5] by mail.example.org"])
'52.100.1.9'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import getaddresses, parsedate_to_datetime

from workbench.enums import CompAuthResult, DkimResult, DmarcResult, SpfResult

_IPV4 = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
_IPV6 = r"(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}"
_IP_IN_FROM = re.compile(rf"\[(?:IPv6:)?({_IPV4}|{_IPV6})\]|\(({_IPV4})\)|\b({_IPV4})\b")
_FROM_HOST = re.compile(r"^\s*from\s+([^\s(;]+)", re.IGNORECASE)
_BY_HOST = re.compile(r"\bby\s+([^\s(;]+)", re.IGNORECASE)
_METHOD = re.compile(r"\b(spf|dkim|dmarc|compauth)\s*=\s*([a-zA-Z]+)", re.IGNORECASE)
_RECEIVED_SPF = re.compile(r"^\s*([a-zA-Z]+)")

_VALUES = {
    "SPF": {v.value for v in SpfResult},
    "DKIM": {v.value for v in DkimResult},
    "DMARC": {v.value for v in DmarcResult},
    "CompAuth": {v.value for v in CompAuthResult},
}
_NAMES = {"spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC", "compauth": "CompAuth"}
_ALIASES = {"hardfail": "fail", "softpass": "softpass", "bestguesspass": "bestguesspass", "policy": "fail"}


@dataclass(frozen=True)
class Hop:
    """One Received header."""

    from_host: str | None
    ip: str | None
    by_host: str | None
    time: datetime | None


# One plain address, bare, in angle brackets, or after a display name of plain words or in
# quotes: getaddresses() would return exactly the parts this pattern captures (it is slow:
# 1 ms for a To header of 400 addresses).
_ADDR = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ADDRESS = re.compile(
    rf"[ \t\r\n]*(?:(?P<bare>{_ADDR})|(?:(?P<name>[A-Za-z0-9'_-]+(?: [A-Za-z0-9'_-]+)*)[ \t]*"
    rf"|\"(?P<quoted>[^\"\\\r\n]*)\"[ \t]*)?<(?P<angle>{_ADDR})>)[ \t\r\n]*"
)


def _getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """``getaddresses(values)``; a list of plain addresses (the usual case) is read by a pattern."""
    if all(isinstance(v, str) for v in values):
        # getaddresses joins the values with ", " and reads each comma-separated item alone
        found = [_SIMPLE_ADDRESS.fullmatch(item) for item in ", ".join(values).split(",")]
        if all(found):
            return [("", m["bare"]) if m["bare"] else (m["name"] or m["quoted"] or "", m["angle"]) for m in found]
    return getaddresses(values) if values else []


def addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-case address) pairs from address headers; junk entries dropped."""
    out = []
    for name, addr in _getaddresses([v for v in values if v]):
        addr = addr.strip().strip("<>").lower()
        if "@" in addr and " " not in addr and len(addr) <= 320:
            out.append((name.strip(), addr))
    return out


def domain_of(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip(".").lower() or None


def is_public(ip: str | None) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global  # type: ignore[arg-type]
    except ValueError:
        return False


def parse_hop(value: str) -> Hop:
    head, _, stamp = value.rpartition(";")
    text = head or value
    ip = None
    from_part = text.split(" by ", 1)[0] if " by " in text else text
    match = _IP_IN_FROM.search(from_part)
    if match:
        ip = next(g for g in match.groups() if g)
    from_host = _FROM_HOST.search(text)
    by_host = _BY_HOST.search(text)
    when = None
    if stamp.strip():
        try:
            when = parsedate_to_datetime(stamp.strip())
            when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
    return Hop(
        from_host.group(1).lower() if from_host else None,
        ip,
        by_host.group(1).lower() if by_host else None,
        when,
    )


def received_chain(values: list[str]) -> list[Hop]:
    """Received headers, newest first (as they appear in the message)."""
    return [parse_hop(v) for v in values]


def sender_ip(values: list[str], org_domains: tuple[str, ...] = ()) -> str | None:
    """The IP of the last hop outside the organisation.

    Walks the chain from the newest hop: hops handed over by the organisation's own hosts
    (names under its domains) or from private addresses are internal; the first public IP
    handed to us from outside is the sender's.
    """
    return first_outside_ip(received_chain(values), org_domains)


def first_outside_ip(hops: Iterable[Hop], org_domains: tuple[str, ...] = ()) -> str | None:
    """:func:`sender_ip` over an already parsed chain (newest hop first)."""
    for hop in hops:
        if hop.ip is None or not is_public(hop.ip):
            continue
        if hop.from_host and any(hop.from_host == d or hop.from_host.endswith("." + d) for d in org_domains):
            continue
        return hop.ip
    return None


def auth_results(results: list[str], received_spf: list[str] = ()) -> dict[str, str]:
    """SPF / DKIM / DMARC / CompAuth from the topmost Authentication-Results (ARC or plain).

    Values outside the Explorer value sets are dropped; a missing method is ``"none"``.
    """
    found: dict[str, str] = {}
    for header in results:
        for method, value in _METHOD.findall(header or ""):
            name = _NAMES[method.lower()]
            value = _ALIASES.get(value.lower(), value.lower())
            if name not in found and value in _VALUES[name]:
                found[name] = value
        if found:
            break  # the newest header that says anything wins
    if "SPF" not in found:
        for header in received_spf:
            match = _RECEIVED_SPF.match(header or "")
            if match and match.group(1).lower() in _VALUES["SPF"]:
                found["SPF"] = match.group(1).lower()
                break
    return {name: found.get(name, "none") for name in ("SPF", "DKIM", "DMARC", "CompAuth")}


def message_date(value: str | None, hops: list[Hop]) -> datetime | None:
    """The Date header in UTC, else the newest Received time."""
    if value:
        try:
            when = parsedate_to_datetime(value)
            return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return next((h.time for h in hops if h.time), None)
