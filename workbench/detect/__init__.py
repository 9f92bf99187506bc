"""Detection: analyzers emit evidence, rules (data) turn evidence into explainable verdicts."""

from workbench.detect.evidence import Context, Evidence, Person
from workbench.detect.verdict import Verdict, evaluate

__all__ = ["Context", "Evidence", "Person", "Verdict", "evaluate"]
