"""Rules combine analyzer signals into verdicts, with the explanation that reproduces them.

>>> rule = Rule.from_dict({"id": "X-1", "name": "n", "threat": "Phish", "technology": "Spoof DMARC",
...                        "severity": "high", "all": ["auth.dmarc_fail"], "any": ["content.credential"]})
>>> rule.matches({"auth.dmarc_fail", "content.credential"}), rule.matches({"auth.dmarc_fail"})
(True, False)
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

    @classmethod
    def from_dict(cls, data: dict, source: str = "rule") -> "Rule":
        try:
            rule = cls(
                id=str(data["id"]), name=str(data["name"]), threat=ThreatType(data["threat"]),
                technology=DetectionTechnology(data["technology"]), severity=str(data.get("severity", "medium")),
                all=frozenset(data.get("all") or ()), any=frozenset(data.get("any") or ()),
                min_any=int(data.get("min_any", 1)), none=frozenset(data.get("none") or ()),
                and_any=frozenset(data.get("and_any") or ()),
                classification=ThreatClassification(data["classification"]) if data.get("classification") else None,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{source}: invalid rule {data.get('id', '?')!r} ({exc}); see workbench/detect/data/rules.yaml") from None
        if rule.severity not in SEVERITIES or not (rule.all or rule.any):
            raise InputError(f"{source}: rule {rule.id} needs a severity in {SEVERITIES} and at least one signal")
        return rule

    def matches(self, signals: set[str]) -> bool:
        if not self.all <= signals or self.none & signals:
            return False
        if self.and_any and not self.and_any & signals:
            return False
        return not self.any or len(self.any & signals) >= self.min_any

    def signals(self) -> frozenset[str]:
        return self.all | self.any | self.and_any


def load(path: Path | None = None) -> tuple[Rule, ...]:
    """Rules from a YAML file (default: the shipped rules); ids must be unique."""
    path = path or DATA / "rules.yaml"
    try:
        items = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read rules from {path}: {exc}; check the file") from None
    rules = tuple(Rule.from_dict(item, str(path)) for item in items or [])
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate rule ids; each rule needs its own id")
    return rules


@cache
def default_rules() -> tuple[Rule, ...]:
    return load()
