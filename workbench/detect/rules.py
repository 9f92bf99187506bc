"""Rules combine analyzer signals into verdicts, with the explanation that reproduces them.

A rule is either a combination of signals (``all`` / ``any`` / ``and_any`` / ``none``) or a
**score**: each signal carries a weight (``data/scores.yaml``, every weight with its reason)
and the rule fires when the weights of the message's signals add up to its ``threshold``
(SpamAssassin-style). Either way the explanation lists the evidence, and for a score every
contribution, so the verdict can be recomputed from the explanation alone.

>>> rule = Rule.from_dict({"id": "X-1", "name": "n", "threat": "Phish", "technology": "Spoof DMARC",
...                        "severity": "high", "all": ["auth.dmarc_fail"], "any": ["content.credential"]})
>>> rule.matches({"auth.dmarc_fail", "content.credential"}), rule.matches({"auth.dmarc_fail"})
(True, False)
>>> scored = Rule.from_dict({"id": "X-2", "name": "n", "threat": "Spam", "technology": "General filter",
...                          "score": {"content.spam_terms": 2.5, "content.shouting": 1.5}, "threshold": 4})
>>> scored.score({"content.spam_terms", "content.shouting"}), scored.matches({"content.spam_terms"})
(4.0, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from workbench.detect.reference import DATA
from workbench.enums import DetectionTechnology, ThreatClassification, ThreatType
from workbench.errors import InputError

SEVERITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    threat: ThreatType
    technology: DetectionTechnology
    severity: str
    all: frozenset[str] = frozenset()
    any: frozenset[str] = frozenset()
    min_any: int = 1
    none: frozenset[str] = frozenset()
    and_any: frozenset[str] = frozenset()  # a second group: at least one of these too
    classification: ThreatClassification | None = None
    weights: tuple[tuple[str, float], ...] = ()  # a score rule: signal weights ...
    threshold: float | None = None  # ... and the total at which it fires

    @classmethod
    def from_dict(cls, data: dict, source: str = "rule", tables: dict | None = None) -> "Rule":
        try:
            weights = _weights(data.get("score"), tables)
            rule = cls(
                id=str(data["id"]), name=str(data["name"]), threat=ThreatType(data["threat"]),
                technology=DetectionTechnology(data["technology"]), severity=str(data.get("severity", "medium")),
                all=frozenset(data.get("all") or ()), any=frozenset(data.get("any") or ()),
                min_any=int(data.get("min_any", 1)), none=frozenset(data.get("none") or ()),
                and_any=frozenset(data.get("and_any") or ()),
                classification=ThreatClassification(data["classification"]) if data.get("classification") else None,
                weights=weights,
                threshold=float(data["threshold"]) if weights else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{source}: invalid rule {data.get('id', '?')!r} ({exc}); see workbench/detect/data/rules.yaml") from None
        if rule.severity not in SEVERITIES or not (rule.all or rule.any or rule.weights):
            raise InputError(f"{source}: rule {rule.id} needs a severity in {SEVERITIES} and at least one signal")
        return rule

    def score(self, signals: set[str]) -> float:
        """The sum of the weights of *signals* (0 for a rule that is not a score)."""
        return round(sum(w for s, w in self.weights if s in signals), 2)

    def contributions(self, signals: set[str]) -> dict[str, float]:
        return {s: w for s, w in self.weights if s in signals}

    def matches(self, signals: set[str]) -> bool:
        if not self.all <= signals or self.none & signals:
            return False
        if self.and_any and not self.and_any & signals:
            return False
        if self.weights and self.score(signals) < self.threshold:
            return False
        return not self.any or len(self.any & signals) >= self.min_any

    def signals(self) -> frozenset[str]:
        return self.all | self.any | self.and_any | {s for s, _ in self.weights}


def _weights(score, tables: dict | None) -> tuple[tuple[str, float], ...]:
    """A rule's ``score``: the name of a table in scores.yaml, or an inline {signal: weight}."""
    if score is None:
        return ()
    if isinstance(score, str):
        if not tables or score not in tables:
            raise KeyError(f"score table {score!r} (data/scores.yaml)")
        score = tables[score]
    out = []
    for signal, entry in score.items():
        weight = entry["weight"] if isinstance(entry, dict) else entry
        out.append((str(signal), float(weight)))
    return tuple(out)


def score_tables(path: Path | None = None) -> dict[str, dict]:
    """The weight tables: ``{table: {signal: {weight, why}}}``."""
    path = path or DATA / "scores.yaml"
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read signal weights from {path}: {exc}; check the file") from None


def load(path: Path | None = None, scores: Path | None = None) -> tuple[Rule, ...]:
    """Rules from a YAML file (default: the shipped rules); ids must be unique. Score rules take
    their weights from *scores* (default: the shipped ``scores.yaml``)."""
    path = path or DATA / "rules.yaml"
    try:
        items = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read rules from {path}: {exc}; check the file") from None
    tables = score_tables(scores) if any(isinstance(i, dict) and isinstance(i.get("score"), str) for i in items or []) else {}
    rules = tuple(Rule.from_dict(item, str(path), tables) for item in items or [])
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate rule ids; each rule needs its own id")
    return rules


@cache
def default_rules() -> tuple[Rule, ...]:
    return load()
