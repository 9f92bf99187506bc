"""Alert policies: lake data → :class:`~workbench.incidents.model.AlertDraft`, incrementally.

The policies are data (``definitions.yaml``: name, title template, severity, category,
techniques, investigation type, thresholds, lookback); each lake-evaluated one has an
evaluator registered with :func:`evaluator`. :func:`evaluate` runs one policy over the rows
newer than a watermark and returns its drafts and the new watermark; the caller stores the
watermark and passes it back as ``since`` next time. A policy that groups events over time
re-reads ``since - lookback`` so its findings are complete, and each finding has a
``dedup_key`` that does not depend on where a run started: evaluating once, or in pieces,
gives the same keys.

Admins change :class:`PolicySettings` (enabled, severity, thresholds); the definitions stay
as shipped.

>>> policy("zap_phish_url").severity
<Severity.INFORMATIONAL: 'informational'>
>>> policy("suspicious_sending").threshold("messages_per_hour")
30.0

Limits: one watermark per policy covers every table the policy reads, so rows written to
one table later than rows of another (ingestion lag between sources) with older timestamps
than the watermark are not seen; a policy's lookback covers the gaps it is written for
(a verdict arriving after a click, a ZAP after delivery), not arbitrary late data.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from workbench.errors import InputError, NotFound
from workbench.incidents.model import AlertDraft, Severity
from workbench.lake import Lake

DEFINITIONS = Path(__file__).resolve().parent / "definitions.yaml"
TRIGGERS = ("lake", "manual")


@dataclass(frozen=True)
class Policy:
    """One alert policy as shipped (see ``definitions.yaml``)."""

    id: str
    name: str  # the policy's name in the policy list
    title: str  # the alert title template, ``{fields}`` filled per alert
    description: str
    severity: Severity
    category: str
    mitre: tuple[str, ...] = ()
    investigation: str = ""  # the AIR investigation type / playbook it starts (§4.1)
    enabled: bool = True
    thresholds: tuple[tuple[str, float], ...] = ()
    lookback: timedelta = timedelta(0)
    trigger: str = "lake"

    @property
    def defaults(self) -> dict[str, float]:
        return dict(self.thresholds)

    def threshold(self, name: str) -> float:
        try:
            return self.defaults[name]
        except KeyError:
            raise InputError(f"policy {self.id} has no threshold {name!r}; "
                             f"it has: {', '.join(self.defaults) or 'none'}") from None


@dataclass(frozen=True)
class PolicySettings:
    """What an admin can change about a policy. ``severity`` None keeps the policy's;
    ``thresholds`` overrides some of the policy's named thresholds."""

    enabled: bool = True
    severity: Severity | None = None
    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.severity is not None and not isinstance(self.severity, Severity):
            try:
                object.__setattr__(self, "severity", Severity(str(self.severity).lower()))
            except ValueError:
                raise InputError(f"unknown severity {self.severity!r}; use one of: "
                                 f"{', '.join(s.value for s in Severity if s is not Severity.UNKNOWN)}") from None
        object.__setattr__(self, "thresholds", MappingProxyType(dict(self.thresholds)))

    def resolve(self, policy: Policy) -> dict[str, float]:
        """The policy's thresholds with these overrides, checked."""
        values = policy.defaults
        for name, value in self.thresholds.items():
            if name not in values:
                raise InputError(f"policy {policy.id} has no threshold {name!r}; "
                                 f"it has: {', '.join(values) or 'none'}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InputError(f"threshold {name} of policy {policy.id} must be a positive number (got {value!r})")
            values[name] = float(value)
        return values


@dataclass(frozen=True)
class PolicyResult:
    """What one evaluation found, and the newest event time it read (the next ``since``)."""

    policy_id: str
    drafts: tuple[AlertDraft, ...]
    watermark: datetime | None
    seconds: float = 0.0


# --------------------------------------------------------------------------- definitions


_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELDS = {"id", "name", "title", "description", "severity", "category", "mitre", "investigation", "enabled",
           "thresholds", "lookback", "trigger"}


def _duration(text: Any, where: str) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise InputError(f"{where}: bad lookback {text!r}; write a number and a unit: 0h, 90m, 24h, 7d")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def _policy(data: Any, where: str) -> Policy:
    if not isinstance(data, dict):
        raise InputError(f"{where}: a policy is a mapping of fields")
    unknown = set(data) - _FIELDS
    if unknown:
        raise InputError(f"{where}: unknown field {min(unknown)!r}; fields are {', '.join(sorted(_FIELDS))}")
    for name in ("id", "name", "title", "severity", "category"):
        if not data.get(name):
            raise InputError(f"{where}: policy lacks {name!r}")
    pid = str(data["id"])
    if not _ID.match(pid):
        raise InputError(f"{where}: policy id {pid!r} must be snake_case")
    where = f"{where} ({pid})"
    try:
        severity = Severity(str(data["severity"]).lower())
    except ValueError:
        raise InputError(f"{where}: unknown severity {data['severity']!r}") from None
    thresholds = data.get("thresholds") or {}
    if not isinstance(thresholds, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in thresholds.values()):
        raise InputError(f"{where}: thresholds are names with positive numbers")
    trigger = str(data.get("trigger", "lake"))
    if trigger not in TRIGGERS:
        raise InputError(f"{where}: trigger is one of {', '.join(TRIGGERS)}")
    return Policy(
        id=pid, name=str(data["name"]), title=str(data["title"]), description=" ".join(str(data.get("description", "")).split()),
        severity=severity, category=str(data["category"]), mitre=tuple(str(t) for t in data.get("mitre") or ()),
        investigation=str(data.get("investigation", "")), enabled=bool(data.get("enabled", True)),
        thresholds=tuple((str(k), float(v)) for k, v in thresholds.items()),
        lookback=_duration(data.get("lookback", "0h"), where), trigger=trigger,
    )


def load_policies(path: Path | str | None = None) -> tuple[Policy, ...]:
    """The policies of *path* (default: the shipped ``definitions.yaml``), checked: unique ids,
    known severities, and an evaluator for every lake-evaluated policy."""
    if path is None:
        return _shipped()
    return _load(Path(path))


@cache
def _shipped() -> tuple[Policy, ...]:
    return _load(DEFINITIONS)


def _load(path: Path) -> tuple[Policy, ...]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read alert policies {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of policies")
    policies = tuple(_policy(item, f"{path.name} item {i + 1}") for i, item in enumerate(data))
    ids = [p.id for p in policies]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate:
        raise InputError(f"{path}: policy id {duplicate!r} appears twice")
    missing = [p.id for p in policies if p.trigger == "lake" and p.id not in EVALUATORS]
    if missing:
        raise InputError(f"{path}: no evaluator for policy {missing[0]!r}; register one with @evaluator({missing[0]!r})")
    return policies


def get_policy(policy_id: str) -> Policy:
    """A shipped policy by id."""
    for p in load_policies():
        if p.id == policy_id:
            return p
    raise NotFound(f"no alert policy {policy_id!r}; policies: {', '.join(p.id for p in load_policies())}")


policy = get_policy


# --------------------------------------------------------------------------- evaluation

Evaluator = Callable[[Any], list[AlertDraft]]  # (Run) -> drafts
EVALUATORS: dict[str, Evaluator] = {}


def evaluator(policy_id: str) -> Callable[[Evaluator], Evaluator]:
    """Register the function that evaluates *policy_id* over the lake."""

    def register(fn: Evaluator) -> Evaluator:
        if policy_id in EVALUATORS and EVALUATORS[policy_id] is not fn:
            raise ValueError(f"two evaluators for policy {policy_id!r}")
        EVALUATORS[policy_id] = fn
        return fn

    return register


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InputError(f"{name} must be a datetime (got {type(value).__name__})")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def evaluate(lake: Lake, policy: Policy | str, *, since: datetime | None, until: datetime | None = None,
             settings: PolicySettings | None = None) -> PolicyResult:
    """Evaluate *policy* over the events with ``since < Timestamp < until`` (``since`` None:
    from the beginning; ``until`` None: to the end of the lake).

    The watermark is the newest Timestamp read from the policy's trigger tables (never older
    than ``since``). A disabled policy, or a manual one, reads nothing and keeps ``since``.
    """
    from workbench.detect.policies.base import Run

    started = time.perf_counter()
    if isinstance(policy, str):
        policy = get_policy(policy)
    settings = settings or PolicySettings()
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and since >= until:
        raise InputError(f"since ({since}) is not before until ({until}); nothing to evaluate")
    thresholds = settings.resolve(policy)
    if not (settings.enabled and policy.enabled) or policy.trigger != "lake":
        return PolicyResult(policy.id, (), since, time.perf_counter() - started)
    run = Run(lake, policy, since, until, settings.severity or policy.severity, thresholds,
              severity_set=settings.severity is not None)
    drafts = EVALUATORS[policy.id](run)
    watermark = since if run.newest is None or (since is not None and run.newest < since) else run.newest
    ordered = tuple(sorted(drafts, key=lambda d: (d.first_activity, d.dedup_key)))
    return PolicyResult(policy.id, ordered, watermark, time.perf_counter() - started)


def evaluate_all(lake: Lake, *, watermarks: Mapping[str, datetime | None] | None = None,
                 until: datetime | None = None, settings: Mapping[str, PolicySettings] | None = None,
                 policies: Iterable[Policy] | None = None) -> dict[str, PolicyResult]:
    """Every lake-evaluated policy, each from its own watermark (missing: from the beginning)."""
    watermarks, settings = watermarks or {}, settings or {}
    return {p.id: evaluate(lake, p, since=watermarks.get(p.id), until=until, settings=settings.get(p.id))
            for p in (policies if policies is not None else load_policies()) if p.trigger == "lake"}


# The evaluators register themselves on import.
from workbench.detect.policies import clicks, content, endpoint, identity, mail, sending  # noqa: E402, F401
from workbench.detect.policies.manual import manual_investigation_draft, user_compromise_investigation_draft  # noqa: E402

__all__ = ["Policy", "PolicySettings", "PolicyResult", "load_policies", "policy", "get_policy", "evaluator", "evaluate",
           "evaluate_all", "EVALUATORS", "DEFINITIONS", "manual_investigation_draft",
           "user_compromise_investigation_draft"]
