"""Threat-intelligence indicators as the workbench keeps them (mdo-reference §6).

An indicator is a typed value (URL, domain, IP, file hash, sender address, sender domain) with
where it came from, how sure that source is, how far it may be shared (TLP), when it was seen,
when it expires, tags, the threat family and a description. ``value`` is normalised so the same
indicator from two feeds is one value (:func:`normalise`).

>>> normalise(IndicatorType.DOMAIN, " Evil.Example. ")
'evil.example'
>>> Tlp.parse("TLP:AMBER+STRICT").shareable
False
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from workbench.errors import InputError


class IndicatorType(StrEnum):
    URL = "url"
    DOMAIN = "domain"
    IP = "ip"
    SHA256 = "sha256"
    SENDER = "sender"  # an email sender address
    SENDER_DOMAIN = "senderDomain"


class Tlp(StrEnum):
    """Traffic Light Protocol 2.0: how far an indicator may travel."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @classmethod
    def parse(cls, text: str | None) -> Tlp:
        """``TLP:AMBER``, ``amber``, ``white`` (TLP 1.0 for clear)..."""
        key = (text or "clear").strip().lower().removeprefix("tlp:").strip()
        key = {"white": "clear"}.get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise InputError(f"unknown TLP {text!r}; use clear, green, amber, amber+strict or red") from None

    @property
    def shareable(self) -> bool:
        """May leave the workbench in an export (RED and AMBER+STRICT stay inside)."""
        return self not in (Tlp.RED, Tlp.AMBER_STRICT)


def normalise(kind: IndicatorType, value: str) -> str:
    """The canonical form of *value*: lower-case hosts, domains, addresses and hashes; URLs keep
    their path but get a scheme; IPs in their compressed form."""
    v = (value or "").strip()
    if kind in (IndicatorType.DOMAIN, IndicatorType.SENDER_DOMAIN):
        return v.lower().strip(".").removeprefix("*.")
    if kind in (IndicatorType.SENDER, IndicatorType.SHA256):
        return v.lower()
    if kind is IndicatorType.IP:
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            return v
    if kind is IndicatorType.URL:
        return v if "://" in v else "http://" + v
    return v


@dataclass(frozen=True)
class Indicator:
    type: IndicatorType
    value: str
    source: str  # the feed or file it came from, or "workbench" for what investigations learned
    confidence: int = 50  # 0-100
    tlp: Tlp = Tlp.CLEAR
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    expires: datetime | None = None
    tags: tuple[str, ...] = ()
    family: str = ""  # threat family (malware or phish kit), when known
    description: str = ""
    allow: bool = False  # an allow-list entry (MISP warning list): suppresses false positives

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", IndicatorType(self.type))
        object.__setattr__(self, "tlp", Tlp.parse(self.tlp) if not isinstance(self.tlp, Tlp) else self.tlp)
        object.__setattr__(self, "value", normalise(self.type, self.value))
        if not self.value:
            raise InputError(f"an empty {self.type.value} indicator from {self.source}; remove it from the feed")
        if not 0 <= int(self.confidence) <= 100:
            raise InputError(f"confidence {self.confidence} of {self.value} is out of range; use 0-100")

    def active(self, at: datetime) -> bool:
        return self.expires is None or self.expires > at


@dataclass(frozen=True)
class ThreatNote:
    """A curated description of a threat (from STIX reports, intrusion sets, malware objects):
    what it is, how it works, its indicators and the recommended protections."""

    id: str
    name: str
    family: str
    description: str = ""
    techniques: tuple[str, ...] = ()  # ATT&CK technique ids and names
    protections: tuple[str, ...] = ()  # courses of action
    indicators: tuple[tuple[str, str], ...] = ()  # (type, value)
    source: str = ""
    tlp: Tlp = Tlp.CLEAR
    published: datetime | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


__all__ = ["IndicatorType", "Tlp", "Indicator", "ThreatNote", "normalise"]
