"""Email efficacy (mdo-reference §2.2): what share of malicious mail was stopped before
delivery, removed after it, or never caught.

>>> e = Efficacy.of(mailflow=90, false_positive_zap=2, zap_removed=6, zap_failed=1, admin_submitted=1)
>>> e.pre_delivery, e.post_delivery, e.uncaught, e.total
(88, 6, 2, 96)
>>> e.shares()
(91.7, 6.2, 2.1)
>>> sum(e.shares())
100.0
"""

from __future__ import annotations

from dataclasses import dataclass

FORMULA = (
    "Efficacy over inbound mail delivered in the window, counted per recipient copy.\n"
    "Pre-delivery = phish or malware detected in mail flow − those later redelivered as clean (FP ZAP).\n"
    "Post-delivery = clean at delivery, later removed by Malware ZAP or Phish ZAP (ActionResult Success or AdminPolicy).\n"
    "Uncaught = clean at delivery, then a ZAP that did not succeed or an admin submission as phish or malware.\n"
    "Share = count / (pre-delivery + post-delivery + uncaught)."
)


@dataclass(frozen=True)
class Efficacy:
    pre_delivery: int
    post_delivery: int
    uncaught: int

    @classmethod
    def of(cls, *, mailflow: int, false_positive_zap: int, zap_removed: int, zap_failed: int,
           admin_submitted: int) -> Efficacy:
        """From the counts of §2.2 (each copy in at most one of the last three)."""
        return cls(max(mailflow - false_positive_zap, 0), zap_removed, zap_failed + admin_submitted)

    @property
    def total(self) -> int:
        return self.pre_delivery + self.post_delivery + self.uncaught

    def shares(self, digits: int = 1) -> tuple[float, float, float]:
        """Percentages that add up to exactly 100 (largest remainder), or zeros with no malicious mail."""
        counts = (self.pre_delivery, self.post_delivery, self.uncaught)
        if not self.total:
            return (0.0, 0.0, 0.0)
        scale = 100 * 10**digits
        exact = [c * scale / self.total for c in counts]
        units = [int(x) for x in exact]
        for i in sorted(range(3), key=lambda i: exact[i] - units[i], reverse=True)[: scale - sum(units)]:
            units[i] += 1
        return tuple(u / 10**digits for u in units)  # type: ignore[return-value]


__all__ = ["Efficacy", "FORMULA"]
