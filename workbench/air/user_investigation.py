"""The user compromise investigation the compromised-user playbook runs (mdo-reference §4.2
"user / compromise checks", §4.5): forwarding rules, inbox rules, mailbox delegation, outbound
mail against the user's history, sign-in anomalies and endpoint alerts on the user's devices,
each a logged analyzer step, then the user's compromise verdict.

It only proposes: removing the forwarding and inbox rules and delegations found, and for a
compromised user a password reset and disabling the account, recorded as requests for a
directory adapter to carry out after approval. Nothing is changed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from workbench.air import records
from workbench.air.analyzers_endpoint import user_endpoint_alerts
from workbench.air.analyzers_user import (
    Proposal, compromise_verdict, forwarding_rules, inbox_rules, mailbox_delegation, outbound_anomaly,
    sign_in_anomalies,
)
from workbench.air.engine import Run
from workbench.air.model import InvestigationStatus
from workbench.air.records import EvidenceItem, Record
from workbench.errors import InputError
from workbench.incidents.model import Entity, RemediationStatus, Verdict
from workbench.lake import Lake
from workbench.store import Store

LOOKBACK = timedelta(days=30)  # how far back the analyzers look by default: the Explorer's 30 days (§4.7)
#: Tables whose last day of data ends the window when no ``now`` is given.
ACTIVITY_TABLES = ("EmailEvents", "AADSignInEventsBeta", "CloudAppEvents")
THREATS = (Verdict.MALICIOUS, Verdict.SUSPICIOUS)


@dataclass(frozen=True)
class UserInvestigation:
    """What the playbook notebook shows; the same is in the store as the run's record."""

    record: Record
    user: str
    verdict: Verdict  # the user's: malicious means compromised
    signals: tuple[str, ...]  # which checks fired
    start: datetime
    end: datetime

    @property
    def compromised(self) -> bool:
        return self.verdict is Verdict.MALICIOUS


def directory_user(lake: Lake, address: str) -> str | None:
    """The directory UPN (lower case) of an account by UPN or mail address; None when unknown."""
    address = address.strip().lower()
    if not address:
        return None
    d = (lake.scan("IdentityInfo", columns=["AccountUpn", "EmailAddress"])
         .select(pl.col("AccountUpn").str.to_lowercase().alias("upn"),
                 pl.col("EmailAddress").str.to_lowercase().alias("mail"))
         .filter((pl.col("upn") == address) | (pl.col("mail") == address)).head(1).collect())
    return d["upn"][0] if d.height else None


def data_end(lake: Lake) -> datetime | None:
    """Midnight after the last day the lake holds sign-ins, mail or audit events for."""
    days = [f.parent.name.removeprefix("day=") for t in ACTIVITY_TABLES for f in lake.partition_files(t)]
    if not days:
        return None
    return datetime.fromisoformat(max(days)).replace(tzinfo=UTC) + timedelta(days=1)


def window(lake: Lake, now: datetime | None = None, since: datetime | None = None) -> tuple[datetime, datetime]:
    """``(start, end)`` the analyzers read: up to *now* (default: the clock, or the end of the
    lake's data when that is earlier), from *since* (default: LOOKBACK before the end)."""
    end = now or min(datetime.now(UTC), data_end(lake) or datetime.now(UTC))
    start = since or end - LOOKBACK
    if start >= end:
        raise InputError(f"the investigation window starts ({start:%Y-%m-%d %H:%M}) after it ends "
                         f"({end:%Y-%m-%d %H:%M}); pass an earlier since or a later now")
    return start, end


def _configuration(proposals: Sequence[Proposal], evidence: Sequence[EvidenceItem],
                   analyzer: str) -> list[EvidenceItem]:
    """Each mailbox configuration proposed for removal (``<mailbox>\\<rule or delegate>``) as
    evidence of its own, with the verdict of the analyzer's evidence for it."""
    out = []
    for _action, kind, target, reason in proposals:
        verdict = next((e.verdict for e in evidence if e.details == reason), Verdict.SUSPICIOUS)
        config = Entity(kind, target, "mailbox configuration")  # as the proposal names it (case kept)
        out.append(EvidenceItem(config, verdict, RemediationStatus.PENDING, analyzer, reason))
    return out


def investigate_user(store: Store, lake: Lake, user: str, *, playbook: str, name: str, started_by: str,
                     alert_id: str | None = None, incident_id: int | None = None, parameters: dict | None = None,
                     now: datetime | None = None, since: datetime | None = None, playbook_version: str = "",
                     notebook: str = "") -> UserInvestigation:
    """Investigate *user* (a UPN or mail address of the directory) over :func:`window` and
    record the run; returns its record."""
    if not user or not user.strip():
        raise InputError("a user investigation needs the account to investigate (-p user someone@example.com)")
    upn = directory_user(lake, user)
    if upn is None:
        raise InputError(f"{user.strip()!r} is not in this tenant's directory (IdentityInfo); "
                         "pass the user's UPN or mail address as -p user")
    start, end = window(lake, now, since)
    run = Run.begin(store, playbook, name, started_by=started_by, alert_id=alert_id, incident_id=incident_id,
                    parameters=parameters or {"user": upn}, playbook_version=playbook_version)
    fwd = run.step("forwarding_rules", forwarding_rules, lake, upn, start, end)
    rules = run.step("inbox_rules", inbox_rules, lake, upn, start, end)
    deleg = run.step("mailbox_delegation", mailbox_delegation, lake, upn, start, end)
    out = run.step("outbound_anomaly", outbound_anomaly, lake, upn, start, end)
    signins = run.step("sign_in_anomalies", sign_in_anomalies, lake, upn, start, end)
    endpoint = run.step("endpoint_alerts", user_endpoint_alerts, lake, upn, start, end)
    verdict = run.step("compromise_verdict", compromise_verdict, fwd, rules, deleg, out, signins, endpoint)

    evidence = list(verdict.evidence)  # first: the user's own verdict is the compromise verdict
    for result, analyzer in ((fwd, "forwarding_rules"), (rules, "inbox_rules"), (deleg, "mailbox_delegation")):
        evidence += _configuration(result.proposals, result.evidence, analyzer) + list(result.evidence)
    evidence += [*out.evidence, *signins.evidence, *endpoint.evidence]
    records.add_evidence(store, run.id, evidence)
    for action, kind, target, reason in verdict.proposals:
        records.propose(store, run.id, action, kind, target, reason=reason)

    rec = records.load(store, run.id)
    status = (InvestigationStatus.PENDING_ACTION if rec.actions else
              InvestigationStatus.PARTIALLY_INVESTIGATED if any(e.verdict in THREATS for e in rec.evidence) else
              InvestigationStatus.NO_THREATS_FOUND)
    run.finish(status, notebook=notebook)
    return UserInvestigation(records.load(store, run.id), upn, verdict.verdict, verdict.signals, start, end)


__all__ = ["UserInvestigation", "investigate_user", "directory_user", "data_end", "window", "LOOKBACK"]
