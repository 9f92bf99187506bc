"""What playbook notebooks call: open the tenant and its store from the notebook's parameters,
run the investigation, and give back tables to display. A notebook is a page; this is the
program (tested without a kernel).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl

from workbench.air.email_investigation import EmailInvestigation, investigate_emails
from workbench.air.records import Record
from workbench.identity import acting_user
from workbench.lake import Lake

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
# which playbook investigates an alert of each policy (mdo-reference §4.1)
PLAYBOOK_FOR_POLICY = {
    "user_reported_message": "user_reported_phish", "malicious_url_click": "url_click_verdict_change",
    "zap_malicious_file": "malware_zap", "zap_malware": "malware_zap", "zap_malicious_url": "phish_zap",
    "zap_phish_url": "phish_zap", "manual_investigation": "manual_email_investigation",
}


def version_of(playbook: str) -> str:
    """The playbook notebook's content hash: which version of it ran."""
    path = PLAYBOOKS_DIR / f"{playbook}.ipynb"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""


def run_email_playbook(playbook: str, *, tenant: str, messages: list[str], alert_id: str = "", started_by: str = "",
                       db_url: str = "", record_notebook: str = "", name: str = "") -> EmailInvestigation:
    """Run the email investigation for a playbook notebook's parameters and record it."""
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
            parameters={"tenant": tenant, "messages": messages, "alert_id": alert_id},
            playbook_version=version_of(playbook), notebook=record_notebook)
    finally:
        store.dispose()


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
                                   "remediation": e.remediation.value, "analyzer": e.analyzer} for e in record.evidence],
                                 schema=["kind", "entity", "verdict", "remediation", "analyzer"]),
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


def show(result: EmailInvestigation | Record) -> Any:
    """Display the record's tables in a notebook (plain tables: nothing in them is rendered as HTML
    from the data, so hostile subjects and URLs stay text)."""
    from IPython.display import Markdown, display

    record = result.record if isinstance(result, EmailInvestigation) else result
    for title, frame in frames(record).items():
        display(Markdown(f"### {title.capitalize()}"))
        with pl.Config(tbl_rows=50, fmt_str_lengths=80, tbl_width_chars=200):
            print(frame)
