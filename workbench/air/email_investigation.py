"""The email investigation every email playbook runs (mdo-reference §4.2): root investigation
of the messages' indicators, reputation of their URLs and files, hunting for similar mail
(clusters), then proposed remediation. It only proposes: nothing is moved or deleted here.

Proposals never reach beyond malicious mail: a cluster soft delete lists only the copies of
a malicious *indicator* cluster (every copy carries the malicious URL or file) that are still
in a mailbox; similarity clusters (same sender, same subject) are evidence for the analyst,
never a delete list, since a compromised supplier's domain also sends good mail. The one
exception is a sender the sender reputation analyzer judged malicious, which it does only for
attacker-owned senders with no history of good mail (a lookalike domain, a protected person's
display name from an outside domain, an indicator-store match, nothing but threats): all of
its mail still in a mailbox is proposed, and its messages count as malicious.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from workbench.air import records
from workbench.air.analyzers_endpoint import clicker_endpoint_alerts
from workbench.air.analyzers_mail import (
    email_indicators, file_reputation, message_verdicts, missed_malware, simulations, url_reputation,
)
from workbench.air.analyzers_sender import sender_reputation
from workbench.air.clusters import identify, seed_of
from workbench.air.engine import Run
from workbench.air.model import ActionType, ClusterKind, InvestigationStatus
from workbench.air.records import EvidenceItem, Record
from workbench.errors import InputError
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Verdict
from workbench.intel.feeds import Indicator, read_all
from workbench.lake import Lake
from workbench.store import Store

WINDOW = timedelta(days=30)  # how far before the messages the analyzers look, by default
#: Playbooks that also look at the devices of the users who clicked (the "endpoint_alerts" step).
CLICK_PLAYBOOKS = ("url_click_verdict_change",)


@dataclass(frozen=True)
class EmailInvestigation:
    """What the playbook notebook shows; the same is in the store as the run's record."""

    record: Record
    malicious_messages: tuple[str, ...]
    simulations: tuple[str, ...] = ()


def org_domains(lake: Lake) -> frozenset[str]:
    """The organisation's domains, from the directory."""
    ids = lake.scan("IdentityInfo", columns=["EmailAddress"]).collect()["EmailAddress"].drop_nulls()
    return frozenset(a.rsplit("@", 1)[-1].lower() for a in ids if "@" in a)


def tenant_indicators(lake: Lake, store: Store | None = None) -> list[Indicator]:
    """The tenant's indicators: its store's (workbench.intel.store, when *store* is given) and the
    feed files in the tenant's ``intel/`` folder, if any."""
    folder = lake.root.parent / "intel"
    found = list(read_all([folder])) if folder.is_dir() else []
    if store is not None:
        from workbench.intel.store import as_feed

        found += as_feed(store)
    return found


def investigate_emails(store: Store, lake: Lake, messages: Sequence[str], *, playbook: str, name: str,
                       started_by: str, alert_id: str | None = None, incident_id: int | None = None,
                       parameters: dict | None = None, now: datetime | None = None,
                       playbook_version: str = "", notebook: str = "",
                       indicators: Sequence[Indicator] | None = None, window: timedelta = WINDOW,
                       endpoint: bool | None = None) -> EmailInvestigation:
    """Investigate *messages* (NetworkMessageIds) and record the run; returns its record.
    *indicators* (domains, IPs) feed the sender reputation; by default the tenant's ``intel/``.
    *endpoint* (default: for the URL-click playbooks, :data:`CLICK_PLAYBOOKS`) adds the
    "endpoint_alerts" step: the devices of the users who clicked and endpoint alerts on them."""
    messages = list(dict.fromkeys(m.strip() for m in messages if m and m.strip()))
    if not messages:
        raise InputError("an email investigation needs at least one NetworkMessageId (-p messages '[\"...\"]')")
    times = (lake.scan("EmailEvents", columns=["NetworkMessageId", "Timestamp"])
             .filter(pl.col("NetworkMessageId").is_in(pl.Series(messages, dtype=pl.String).implode()))
             .select(pl.col("Timestamp").min().alias("first"), pl.col("Timestamp").max().alias("last")).collect())
    if times["first"][0] is None:
        raise InputError(f"none of the {len(messages)} message id(s) is in this tenant's EmailEvents; "
                         "copy them from the Explorer (NetworkMessageId)")
    anchor = times["last"][0]
    start, end = times["first"][0] - window, (now or datetime.now(UTC)) + timedelta(days=1)
    run = Run.begin(store, playbook, name, started_by=started_by, alert_id=alert_id, incident_id=incident_id,
                    parameters=parameters or {"messages": messages}, playbook_version=playbook_version)
    sims = run.step("simulation_check", simulations, lake, messages, start, end)
    real = [m for m in messages if m not in sims]  # authorised simulations are neither threats nor remediated
    ind = run.step("email_indicators", email_indicators, lake, real, start, end)
    own = run.step("email_verdicts", message_verdicts, lake, real, start, end)
    urls = run.step("url_reputation", url_reputation, lake, ind.urls, start, end)
    files = run.step("file_reputation", file_reputation, lake, [sha for sha, _ in ind.files], start, end)
    org = org_domains(lake)
    senders = run.step("sender_reputation", sender_reputation, lake, real, start, end, org_domains=org,
                       indicators=tenant_indicators(lake, store) if indicators is None else indicators)
    bad_urls = [u for u, v in urls.verdicts if v is Verdict.MALICIOUS]
    bad_files = [f for f, v in files.verdicts if v is Verdict.MALICIOUS]
    seed = seed_of(lake, real, org_domains=org, start=start, end=end,
                   malicious_urls=bad_urls, malicious_files=bad_files)
    clusters = run.step("mail_cluster_identification", identify, lake, seed, anchor, lookback=window)
    malicious_ids = sorted((_carrying(lake, bad_urls, bad_files, start, end)
                            | {m for m, v in own.items() if v is Verdict.MALICIOUS}
                            | _sent_by(lake, real, senders.malicious_domains, senders.malicious_ips, start, end)) - sims)
    missed = run.step("missed_malware", missed_malware, lake, malicious_ids, malicious_ids, start, end)
    devices = (run.step("endpoint_alerts", clicker_endpoint_alerts, lake, real, start, end)
               if (playbook in CLICK_PLAYBOOKS if endpoint is None else endpoint) else None)

    evidence = [*urls.evidence, *files.evidence, *senders.evidence]
    for nmid in messages:
        if nmid in sims:
            evidence.append(EvidenceItem(Entity.of(EntityKind.EMAIL, nmid), Verdict.NO_THREATS_FOUND,
                                         RemediationStatus.NONE, "simulation_check", "authorised phishing simulation"))
            continue
        verdict = Verdict.MALICIOUS if nmid in malicious_ids else own.get(nmid, Verdict.UNKNOWN)
        evidence.append(EvidenceItem(Entity.of(EntityKind.EMAIL, nmid), verdict, RemediationStatus.NONE,
                                     "email_indicators"))
    evidence += devices.evidence if devices is not None else ()
    records.add_evidence(store, run.id, evidence)
    records.add_clusters(store, run.id, clusters)
    for action, kind, target, reason in (*urls.proposals, *senders.proposals):
        records.propose(store, run.id, action, kind, target, reason=reason)
    bad_senders = {(ClusterKind.SENDER_DOMAIN, d) for d in senders.malicious_domains}
    bad_senders |= {(ClusterKind.SENDER_IP, ip) for ip in senders.malicious_ips}
    for c in clusters:
        if not c.in_mailbox:
            continue
        if c.kind.indicator and c.verdict is Verdict.MALICIOUS:
            records.propose(store, run.id, ActionType.SOFT_DELETE_CLUSTER, EntityKind.CLUSTER, c.name,
                            messages=c.in_mailbox, reason=f"every copy carries the malicious {c.kind.value} {c.value}")
        elif (c.kind, c.value.lower()) in bad_senders:
            records.propose(store, run.id, ActionType.SOFT_DELETE_CLUSTER, EntityKind.CLUSTER, c.name,
                            messages=c.in_mailbox, reason=f"every copy was sent by the malicious sender {c.value} "
                                                          f"({senders.reason(c.value)})")
    if missed.copies:
        records.propose(store, run.id, ActionType.SOFT_DELETE_EMAIL, EntityKind.EMAIL, f"{len(missed.copies)} copies",
                        messages=missed.copies, reason="malicious copies still in mailboxes")
    rec = records.load(store, run.id)
    # a sender's suspicious history alone (some spam, a compromised correspondent) is no finding
    # about these messages; a malicious sender is
    suspicious = any(e.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS) for e in rec.evidence
                     if e.analyzer != "sender_reputation" or e.verdict is Verdict.MALICIOUS) or any(
        c.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS) for c in rec.clusters if c.kind.indicator)
    status = (InvestigationStatus.PENDING_ACTION if rec.actions else
              InvestigationStatus.PARTIALLY_INVESTIGATED if suspicious else InvestigationStatus.NO_THREATS_FOUND)
    run.finish(status, notebook=notebook)
    return EmailInvestigation(records.load(store, run.id), tuple(malicious_ids), tuple(sorted(sims)))


def _sent_by(lake: Lake, messages: Sequence[str], domains: Sequence[str], ips: Sequence[str], start: datetime,
             end: datetime) -> set[str]:
    """Of *messages*, those sent from any of the sender *domains* (From or MAIL FROM) or *ips*."""
    if not domains and not ips:
        return set()
    low = lambda c: pl.col(c).str.to_lowercase().str.strip_chars(".")  # noqa: E731
    series = lambda values: pl.Series(list(values), dtype=pl.String).implode()  # noqa: E731
    wanted_domains, wanted_ips = series(domains), series(ips)
    columns = ["NetworkMessageId", "SenderFromDomain", "SenderMailFromDomain", "SenderIPv4", "SenderIPv6"]
    return set(lake.scan("EmailEvents", start, end, columns=columns)
               .filter(pl.col("NetworkMessageId").is_in(series(messages))
                       & (low("SenderFromDomain").is_in(wanted_domains) | low("SenderMailFromDomain").is_in(wanted_domains)
                          | pl.col("SenderIPv4").is_in(wanted_ips) | pl.col("SenderIPv6").is_in(wanted_ips)))
               .collect()["NetworkMessageId"])


def _carrying(lake: Lake, urls: Sequence[str], files: Sequence[str], start: datetime, end: datetime) -> set[str]:
    """Ids of messages carrying any of the malicious URLs or files."""
    found: set[str] = set()
    if urls:
        found |= set(lake.scan("EmailUrlInfo", start, end, columns=["NetworkMessageId", "Url"])
                     .filter(pl.col("Url").is_in(pl.Series(list(urls), dtype=pl.String).implode()))
                     .collect()["NetworkMessageId"])
    if files:
        found |= set(lake.scan("EmailAttachmentInfo", start, end, columns=["NetworkMessageId", "SHA256"])
                     .filter(pl.col("SHA256").str.to_lowercase().is_in(pl.Series(list(files), dtype=pl.String).implode()))
                     .collect()["NetworkMessageId"])
    return found
