"""What analyzers report and what they may consult.

An analyzer looks at one :class:`~workbench.ingest.message.ParsedMessage` with a
:class:`Context` and returns :class:`Evidence`: a named signal (``url.lookalike_domain``)
with the fact that raised it (which header, URL, file or indicator). Rules
(:mod:`workbench.detect.rules`) combine signals into verdicts, so every verdict can be
traced back to its evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbench.ingest.message import ParsedMessage

if TYPE_CHECKING:
    from workbench.detect.analyzers.yara import YaraRules


@dataclass(frozen=True)
class Evidence:
    analyzer: str
    signal: str
    detail: str
    weight: float = 1.0

    def to_dict(self) -> dict:
        return {"analyzer": self.analyzer, "signal": self.signal, "detail": self.detail}


@dataclass(frozen=True)
class Person:
    display_name: str
    address: str


@dataclass(frozen=True)
class Context:
    """What the organisation knows when a message arrives."""

    org_domains: tuple[str, ...] = ()
    protected_people: tuple[Person, ...] = ()  # executives and priority accounts
    bad_urls: frozenset[str] = frozenset()
    bad_domains: frozenset[str] = frozenset()
    bad_hashes: frozenset[str] = frozenset()
    allow_domains: frozenset[str] = frozenset()  # well-known domains (warning lists): never "lookalike"
    known_pairs: frozenset[tuple[str, str]] = field(default=frozenset())  # (sender, recipient) seen before
    yara: YaraRules | None = None  # compiled once per rules folder (workbench.detect.analyzers.yara.load)
    simulation_domains: frozenset[str] = frozenset()  # advanced delivery: senders of authorised simulations

    def is_org(self, domain: str | None) -> bool:
        return bool(domain) and any(domain == d or domain.endswith("." + d) for d in self.org_domains)

    def is_simulation(self, domain: str | None) -> bool:
        """Mail from *domain* is an authorised phishing simulation (the simulator's sending domains)."""
        return bool(domain) and any(domain == d or domain.endswith("." + d) for d in self.simulation_domains)


class Findings(list):
    """Evidence of one analyzer, each signal at most once (the first fact that raised it)."""

    def __init__(self, analyzer: str) -> None:
        super().__init__()
        self.analyzer = analyzer
        self._seen: set[str] = set()

    def add(self, signal: str, detail: str) -> None:
        if signal not in self._seen:
            self._seen.add(signal)
            self.append(Evidence(self.analyzer, signal, detail))


Analyzer = Callable[[ParsedMessage, Context], list[Evidence]]
ANALYZERS: dict[str, Analyzer] = {}


def analyzer(name: str) -> Callable[[Analyzer], Analyzer]:
    """Register an analyzer under *name* (the prefix of the signals it emits)."""

    def register(fn: Analyzer) -> Analyzer:
        ANALYZERS[name] = fn
        return fn

    return register
