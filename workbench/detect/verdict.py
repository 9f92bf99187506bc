"""Run the analyzers over a message and decide its verdict, with the explanation.

>>> from workbench.ingest.message import parse
>>> v = evaluate(parse(b"From: x@y.test\\r\\nSubject: hello\\r\\n\\r\\nhi"), Context())
>>> v.threat_types, v.explanation
((), ())
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from workbench.detect import analyzers as _registered  # noqa: F401  (registers the analyzers)
from workbench.detect.analyzers.content import bulk_complaint_level
from workbench.detect.evidence import ANALYZERS, Context, Evidence
from workbench.detect.rules import Rule, default_rules
from workbench.ingest.message import ParsedMessage

_ORDER = {"Malware": 0, "Phish": 1, "Spam": 2}


@dataclass(frozen=True)
class Verdict:
    threat_types: tuple[str, ...]
    detection_methods: dict[str, list[str]]
    confidence: dict[str, str]
    bulk_complaint_level: int
    classification: str | None
    explanation: tuple[dict, ...]  # matched rules with the evidence behind them
    evidence: tuple[Evidence, ...]

    @property
    def threat_types_text(self) -> str | None:
        return ", ".join(self.threat_types) or None

    @property
    def detection_methods_text(self) -> str | None:
        return json.dumps(self.detection_methods, separators=(",", ":")) if self.detection_methods else None

    @property
    def confidence_text(self) -> str | None:
        return json.dumps(self.confidence, separators=(",", ":")) if self.confidence else None

    def explanation_json(self) -> str:
        return json.dumps(self.explain(), separators=(",", ":"))

    def explain(self) -> dict:
        """The verdict in words and data: rules that fired with their evidence, and every other
        signal seen (so a clean verdict also says what was checked and what was noticed)."""
        used = {(e["analyzer"], e["signal"]) for rule in self.explanation for e in rule["evidence"]}
        return {
            "verdict": ", ".join(self.threat_types) or "No threats found",
            "analyzers": sorted(ANALYZERS),
            "rules": list(self.explanation),
            "other_signals": [e.to_dict() for e in self.evidence if (e.analyzer, e.signal) not in used],
        }


def evaluate(message: ParsedMessage, ctx: Context, rules: tuple[Rule, ...] | None = None) -> Verdict:
    evidence: list[Evidence] = []
    for name, run in ANALYZERS.items():
        try:
            evidence += run(message, ctx)
        except Exception as exc:  # noqa: BLE001 - one analyzer's failure is evidence, not a crash
            evidence.append(Evidence(name, f"{name}.error", f"analyzer failed: {type(exc).__name__}: {str(exc)[:100]}", 0))
    signals = {e.signal for e in evidence}
    matched = [r for r in (rules or default_rules()) if r.matches(signals)]
    methods: dict[str, list[str]] = {}
    confidence: dict[str, str] = {}
    classification = None
    explanation = []
    for rule in sorted(matched, key=lambda r: (_ORDER[r.threat.value], r.id)):
        threat = rule.threat.value
        if rule.technology.value not in methods.setdefault(threat, []):
            methods[threat].append(rule.technology.value)
        level = "High" if rule.severity == "high" or len([r for r in matched if r.threat == rule.threat]) > 1 else "Normal"
        if confidence.get(threat) != "High":
            confidence[threat] = level
        classification = classification or (rule.classification.value if rule.classification else None)
        used = rule.signals()
        entry = {
            "rule": rule.id, "name": rule.name, "threat": threat, "technology": rule.technology.value,
            "evidence": [e.to_dict() for e in evidence if e.signal in used],
        }
        if rule.weights:  # a score: every contribution, so the total can be recomputed
            weights = rule.contributions(signals)
            firsts = {}
            for item in entry["evidence"]:  # a signal counts once: its first fact carries the weight
                firsts.setdefault(item["signal"], {**item, "weight": weights[item["signal"]]})
            entry["evidence"] = list(firsts.values())
            entry["score"], entry["threshold"] = rule.score(signals), rule.threshold
        explanation.append(entry)
    threats = tuple(sorted(methods, key=_ORDER.get))
    return Verdict(threats, methods, confidence, bulk_complaint_level(evidence), classification,
                   tuple(explanation), tuple(evidence))
