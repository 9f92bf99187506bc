"""What playbook notebooks call: open the tenant and its store from the notebook's parameters,
run the investigation, and give back tables to display. A notebook is a page; this is the
program (tested without a kernel).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from workbench.air.email_investigation import EmailInvestigation, investigate_emails
from workbench.air.parameters import PlaybookParameters
from workbench.air.records import Record
from workbench.air.user_investigation import UserInvestigation, investigate_user
from workbench.identity import acting_user
from workbench.lake import Lake

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
# which playbook investigates an alert of each policy (mdo-reference §4.1)
PLAYBOOK_FOR_POLICY = {
    "user_reported_message": "user_reported_phish", "malicious_url_click": "url_click_verdict_change",
    "zap_malicious_file": "malware_zap", "zap_malware": "malware_zap", "zap_malicious_url": "phish_zap",
    "zap_phish_url": "phish_zap", "manual_investigation": "manual_email_investigation",
    # no §4.1 playbook covers impersonation: its definition asks for a manual email investigation
    "impersonation_delivered": "manual_email_investigation",
    # the "User compromised" investigation: sending anomalies, forwarding, risky sign-ins, the analyst's request
    "suspicious_sending": "compromised_user", "user_restricted_sending": "compromised_user",
    "user_compromise_investigation": "compromised_user", "suspicious_forwarding_rule": "compromised_user",
    "risky_signin_after_click": "compromised_user", "endpoint_alert_mailbox_owner": "compromised_user",
    # new intelligence matched past mail: investigate those messages, remove what is still delivered
    "threat_intel_retro_hunt": "manual_email_investigation",
}
#: Entity roles naming the account an alert is about, most telling first (the mailbox a
#: forwarding rule was set on before the account that set it).
USER_ROLES = ("compromised", "investigated", "forwarding", "sender", "clicked", "actor")


def version_of(playbook: str) -> str:
    """The playbook notebook's content hash: which version of it ran."""
    path = PLAYBOOKS_DIR / f"{playbook}.ipynb"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""


def run_email_playbook(playbook: str, *, tenant: str, messages: list[str], alert_id: str = "", started_by: str = "",
                       db_url: str = "", record_notebook: str = "", name: str = "", days: int = 30) -> EmailInvestigation:
    """Run the email investigation for a playbook notebook's parameters and record it; the
    analyzers look *days* back from the first message."""
    from datetime import timedelta
    from workbench.store import open_store
    from workbench.tenant import open_tenant

    t = open_tenant(tenant or None)
    store = open_store(t, db_url or None)
    try:
        if not messages and alert_id:
            messages = messages_of_alert(store, alert_id)
        return investigate_emails(
            store, Lake.for_tenant(t), messages, playbook=playbook,
            name=name or f"{playbook.replace('_', ' ').capitalize()}: {len(messages)} email(s)",
            started_by=started_by or acting_user(), alert_id=alert_id or None,
            parameters={"tenant": tenant, "messages": messages, "alert_id": alert_id, "days": days},
            playbook_version=version_of(playbook), notebook=record_notebook, window=timedelta(days=days))
    finally:
        store.dispose()


def run_user_playbook(playbook: str, *, tenant: str, user: str = "", alert_id: str = "",
                      messages: list[str] | None = None, started_by: str = "", db_url: str = "",
                      record_notebook: str = "", days: int = 30, name: str = "") -> UserInvestigation:
    """Run the user compromise investigation for a playbook notebook's parameters and record it.
    The user is *user*, else the alert's account, else the sender of *messages*; the window
    reaches *days* back from the end of the data, and back to the alert's first activity."""
    from datetime import timedelta

    from workbench.air.user_investigation import directory_user, window
    from workbench.errors import InputError
    from workbench.incidents.service import IncidentService
    from workbench.store import open_store
    from workbench.tenant import open_tenant

    if days < 1:
        raise InputError(f"days must be at least 1, got {days}; pass e.g. -p days 30")
    t = open_tenant(tenant or None)
    lake = Lake.for_tenant(t)
    store = open_store(t, db_url or None)
    try:
        alert = IncidentService(store, "playbook").alert(alert_id) if alert_id else None
        if not user.strip():
            user = (user_of_alert(lake, alert) if alert else "") or sender_of(lake, messages or [])
        if not user:
            raise InputError("no user to investigate: pass -p user someone@example.com, or -p alert_id of an alert "
                             "naming a user or mailbox of the directory, or -p messages the user sent")
        end = window(lake)[1]
        since = end - timedelta(days=days)
        if alert is not None:
            since = min(since, alert.first_activity - timedelta(days=1))
        upn = directory_user(lake, user) or user.strip()  # an unknown account is investigate_user's error to raise
        return investigate_user(
            store, lake, upn, playbook=playbook, name=name or f"User compromise investigation of {upn}",
            started_by=started_by or acting_user(), alert_id=alert_id or None,
            incident_id=alert.incident_id if alert else None,
            parameters={"tenant": tenant, "user": upn, "alert_id": alert_id, "messages": list(messages or []),
                        "days": days},
            now=end, since=since, playbook_version=version_of(playbook), notebook=record_notebook)
    finally:
        store.dispose()


def user_of_alert(lake: Lake, alert: Any) -> str:
    """The directory account an alert is about: its USER, then MAILBOX entities, by USER_ROLES
    (an outside address, such as a forwarding destination, is never picked); "" when none."""
    from workbench.air.user_investigation import directory_user
    from workbench.incidents.model import EntityKind

    rank = {r: i for i, r in enumerate(USER_ROLES)}
    candidates = sorted((e for e in alert.entities if e.kind in (EntityKind.USER, EntityKind.MAILBOX)),
                        key=lambda e: (e.kind is not EntityKind.USER, rank.get(e.role, len(rank))))
    return next((u for e in candidates if (u := directory_user(lake, e.value))), "")


def sender_of(lake: Lake, messages: list[str]) -> str:
    """The directory account that sent *messages* (NetworkMessageIds); "" when none did."""
    from workbench.air.user_investigation import directory_user

    ids = [m.split("|", 1)[0].strip() for m in messages if m and m.strip()]
    if not ids:
        return ""
    senders = (lake.scan("EmailEvents", columns=["NetworkMessageId", "SenderFromAddress"])
               .filter(pl.col("NetworkMessageId").is_in(pl.Series(ids, dtype=pl.String).implode()))
               .select(pl.col("SenderFromAddress").str.to_lowercase()).unique().collect()["SenderFromAddress"])
    return next((u for s in sorted(senders.drop_nulls()) if (u := directory_user(lake, s))), "")


def messages_of_alert(store: Any, alert_id: str) -> list[str]:
    """The NetworkMessageIds an alert names (its email entities)."""
    from workbench.errors import InputError
    from workbench.incidents.model import EntityKind
    from workbench.incidents.service import IncidentService

    alert = IncidentService(store, "playbook").alert(alert_id)
    found = sorted({e.value.split("|", 1)[0] for e in alert.entities if e.kind == EntityKind.EMAIL})
    if not found:
        raise InputError(f"alert {alert_id} names no email to investigate; pass -p messages '[...]'")
    return found


def frames(record: Record) -> dict[str, pl.DataFrame]:
    """The record as tables: summary, analyzer log, evidence, clusters, proposed actions."""
    inv = record.investigation
    return {
        "summary": pl.DataFrame({"field": ["investigation", "status", "playbook", "started by", "started", "ended"],
                                 "value": [f"{inv.id}: {inv.name}", inv.status.value, inv.playbook, inv.started_by,
                                           str(inv.started), str(inv.ended)]}),
        "log": pl.DataFrame([{"analyzer": x.analyzer, "status": x.status, "seconds": x.seconds, "summary": x.summary,
                              "error": x.error} for x in record.log], schema=["analyzer", "status", "seconds", "summary", "error"]),
        "evidence": pl.DataFrame([{"kind": e.entity.kind.value, "entity": e.entity.value, "verdict": e.verdict.value,
                                   "remediation": e.remediation.value, "analyzer": e.analyzer, "details": e.details}
                                  for e in record.evidence],
                                 schema=["kind", "entity", "verdict", "remediation", "analyzer", "details"]),
        "clusters": pl.DataFrame([{"cluster": c.name, "verdict": c.verdict.value, "copies": c.counts.total,
                                   "threats": c.counts.threats, "in mailbox": c.counts.in_mailbox,
                                   "volume anomaly": c.volume_anomaly} for c in record.clusters],
                                 schema={"cluster": pl.String, "verdict": pl.String, "copies": pl.Int64,
                                         "threats": pl.Int64, "in mailbox": pl.Int64, "volume anomaly": pl.Boolean}),
        "actions": pl.DataFrame([{"action": a.action.value, "target": a.target, "messages": len(a.messages),
                                  "reason": a.reason, "status": a.status} for a in record.actions],
                                schema={"action": pl.String, "target": pl.String, "messages": pl.Int64,
                                        "reason": pl.String, "status": pl.String}),
    }


def show(result: EmailInvestigation | UserInvestigation | Record) -> Any:
    """Display the record's tables in a notebook (plain tables: nothing in them is rendered as HTML
    from the data, so hostile subjects and URLs stay text)."""
    from IPython.display import Markdown, display

    record = result if isinstance(result, Record) else result.record
    for title, frame in frames(record).items():
        display(Markdown(f"### {title.capitalize()}"))
        with pl.Config(tbl_rows=50, fmt_str_lengths=80, tbl_width_chars=200):
            print(frame)


# ----- one entry point per playbook, whatever its kind (what open_playbook and the notebooks call)

def _run_email(playbook: str, params: PlaybookParameters) -> Record:
    return run_email_playbook(playbook, tenant=params.tenant, messages=list(params.messages), alert_id=params.alert_id,
                              started_by=params.started_by, db_url=params.db_url,
                              record_notebook=params.record_notebook, days=params.days).record


def _run_user(playbook: str, params: PlaybookParameters) -> Record:
    return run_user_playbook(playbook, tenant=params.tenant, user=params.user, alert_id=params.alert_id,
                             messages=list(params.messages), days=params.days, started_by=params.started_by,
                             db_url=params.db_url, record_notebook=params.record_notebook).record


# playbook -> runner (parameters -> the run's record); a playbook not listed is an email playbook
PLAYBOOK_RUNNERS: dict[str, Callable[[str, PlaybookParameters], Record]] = {"compromised_user": _run_user}


def playbooks() -> list[str]:
    """The playbook notebooks in ``playbooks/``, by name."""
    return sorted(p.stem for p in PLAYBOOKS_DIR.glob("*.ipynb"))


def run_playbook(playbook: str, params: PlaybookParameters) -> Record:
    """Run *playbook* for *params* with its runner; returns the recorded run."""
    from workbench.errors import NotFound

    if not (PLAYBOOKS_DIR / f"{playbook}.ipynb").is_file():
        raise NotFound(f"no playbook {playbook!r}; playbooks: {', '.join(playbooks()) or 'none'}")
    return PLAYBOOK_RUNNERS.get(playbook, _run_email)(playbook, params)
