"""Ingest a stream of raw messages into a tenant: lake rows, raw mail, dead letters.

One bad item never stops the batch: anything that cannot be parsed (or raises while being
turned into rows) is copied to ``<tenant>/dead-letter/`` with a JSON note naming its source
and the reason. Raw mail is stored every :data:`CHUNK` messages' rows; lake rows are kept as
frames and appended every :data:`LAKE_CHUNK` EmailEvents rows (and at the end), so an import
of old mail spread over many days writes one file per day and table for up to that many rows
rather than one per chunk. Re-ingesting the same input adds nothing (ids come from the
message), which the summary reports as duplicates.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from workbench import schema
from workbench.enums import Folder
from workbench.detect import Context, Person, evaluate
from workbench.ingest.message import ParseError, parse
from workbench.ingest.rows import message_rows
from workbench.ingest.sources import RawItem
from workbench.lake import Lake
from workbench.mail.embedded import EmbeddedMailStore
from workbench.tenant import Tenant

CHUNK = 5000  # EmailEvents rows held as dicts; then they become frames and raw mail is stored
LAKE_CHUNK = 50_000  # EmailEvents rows held as frames (about 2 KB each) before a lake append
EMAIL_TABLES = ("EmailEvents", "EmailAttachmentInfo", "EmailUrlInfo")


@dataclass
class IngestSummary:
    items: int = 0
    messages: int = 0
    rows: dict[str, int] = field(default_factory=lambda: {t: 0 for t in EMAIL_TABLES})
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def render(self) -> str:
        lines = [f"read {self.items:,} items, ingested {self.messages:,} messages in {self.seconds:.1f} s"]
        lines += [f"  {t:<22} {n:>10,} rows" for t, n in self.rows.items()]
        lines.append(f"  duplicates skipped      {self.duplicates:>10,} rows")
        lines.append(f"  rejected               {len(self.rejected):>10,} items (see dead-letter/)")
        lines += [f"    {src}: {why}" for src, why in self.rejected[:20]]
        if len(self.rejected) > 20:
            lines.append(f"    ... and {len(self.rejected) - 20} more")
        return "\n".join(lines)


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """Header block (with the empty line that ends it) and body."""
    positions = [p for p in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if p >= 0]
    if not positions:
        return raw, b""
    cut = min(positions)
    end = cut + (4 if raw[cut:cut + 4] == b"\r\n\r\n" else 2)
    return raw[:end], raw[end:]


def protected_people(identity: pl.DataFrame) -> tuple[Person, ...]:
    """Executives and priority accounts from IdentityInfo rows: the people worth impersonating."""
    people = identity.filter(
        pl.col("Tags").str.contains("Priority account") | pl.col("JobTitle").str.contains("(?i)chief|president|director|head of")
    ).unique(["AccountUpn"], maintain_order=True)
    return tuple(Person(n, u) for n, u in people.select("AccountDisplayName", "AccountUpn").iter_rows() if n)


SIMULATION_OVERRIDE = "Phishing Simulation"  # the OrgLevelPolicy of authorised simulation mail


def tenant_context(tenant: Tenant, org_domains: tuple[str, ...] = ()) -> Context:
    """What detection may know about the tenant: its domains, its protected people, its simulation
    senders and the unexpired indicators of its indicator store (workbench.intel.store)."""
    lake = Lake.for_tenant(tenant)
    identity = lake.scan("IdentityInfo", columns=["AccountDisplayName", "AccountUpn", "JobTitle", "Tags"]).collect()
    from workbench.intel.feeds import with_indicators
    from workbench.intel.store import as_feed
    from workbench.simulator.config import load as simulator_config
    from workbench.store import existing_store

    ctx = Context(org_domains=org_domains, protected_people=protected_people(identity),
                  simulation_domains=frozenset(simulator_config(tenant).simulation_domains))
    store = existing_store(tenant)  # the tenant's indicator store, when it has one
    if store is None:
        return ctx
    try:
        return with_indicators(ctx, as_feed(store))
    finally:
        store.dispose()


def report_submission(message: Any, report_mailbox: str | None) -> dict:
    """The ``UserSubmission`` (CloudAppEvents) of a message a user forwarded to the report mailbox,
    so report-mailbox reports reach the user-reported view and its alert policy like the Report
    button's (mdo-reference §1: "user-reported" submissions)."""
    reporter = (message.reported_by or "").lower()
    when = message.reported_at or message.date or datetime.now(timezone.utc)
    return {"Timestamp": when, "ActionType": "UserSubmission", "Application": "Microsoft Exchange Online",
            "AccountId": reporter, "ActivityType": "Report", "ObjectName": message.subject,
            "ObjectId": message.network_message_id, "ObjectType": "Email",
            "ReportId": f"report-mailbox:{message.network_message_id}:{reporter}",
            "RawEventData": json.dumps({"Operation": "UserSubmission", "UserId": reporter, "ReportType": "Phish",
                                        "NetworkMessageId": message.network_message_id,
                                        "InternetMessageId": message.internet_message_id,
                                        "Subject": message.subject, "P2Sender": message.from_address,
                                        "ReportMailbox": report_mailbox, "Source": "report mailbox"})}


def dead_letter(tenant: Tenant, item: RawItem, reason: str) -> None:
    folder = tenant.root / "dead-letter"
    folder.mkdir(parents=True, exist_ok=True)
    data = item.data or b""
    stem = hashlib.sha256(data or item.source.encode()).hexdigest()[:32]
    if data:
        (folder / f"{stem}.eml").write_bytes(data)
    (folder / f"{stem}.json").write_text(json.dumps({"source": item.source, "reason": reason}, indent=1) + "\n")


def ingest(tenant: Tenant, items: Iterable[RawItem], *, org_domains: tuple[str, ...] = (),
           progress: bool = False, total: int | None = None, context: Context | None = None,
           detect: bool = True) -> IngestSummary:
    """Parse, judge, store and append every item; see the module docstring."""
    ctx = (context or tenant_context(tenant, org_domains)) if detect else None
    started = time.perf_counter()
    summary = IngestSummary()
    lake = Lake.for_tenant(tenant)
    store = EmbeddedMailStore.for_tenant(tenant)
    pending: dict[str, list[dict]] = {t: [] for t in EMAIL_TABLES}
    frames: dict[str, list[pl.DataFrame]] = {t: [] for t in EMAIL_TABLES}  # converted rows awaiting a lake append
    buffered = 0  # EmailEvents rows in frames
    raw_rows: list[tuple[str, str, bytes, bytes]] = []  # body bytes until flush stores them
    submissions: list[dict] = []  # report-mailbox reports, as the user-reported view shows them
    placements: list[tuple[str, str, str]] = []

    def append_frames() -> None:
        nonlocal buffered
        for table, parts in frames.items():
            if parts:
                result = lake.append(table, parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False))
                summary.rows[table] += result.rows_written
                summary.duplicates += result.rows_skipped
                parts.clear()
        buffered = 0

    def flush(final: bool = False) -> None:
        nonlocal buffered
        for table, rows in pending.items():
            if rows:
                frames[table].append(schema.table(table).from_rows(rows))
                if table == "EmailEvents":
                    buffered += len(rows)
                rows.clear()
        if final or buffered >= LAKE_CHUNK:
            append_frames()
        if raw_rows:
            ids = store.put_bodies([body for *_, body in raw_rows])
            store.put_messages((nmid, received, head, bid) for (nmid, received, head, _), bid in zip(raw_rows, ids))
            raw_rows.clear()
        if placements:
            store.place(placements)
            placements.clear()
        if submissions:
            lake.append("CloudAppEvents", schema.table("CloudAppEvents").from_rows(submissions))
            submissions.clear()

    bar = tqdm(items, total=total, desc="ingesting", unit="msg", disable=not progress, leave=False)
    try:
        for item in bar:
            summary.items += 1
            if item.error or item.data is None:
                summary.rejected.append((item.source, item.error or "no data"))
                dead_letter(tenant, item, item.error or "no data")
                continue
            try:
                message = parse(item.data)
                verdict = evaluate(message, ctx) if ctx is not None else None
                rows = message_rows(message, org_domains=org_domains, location=item.location, verdict=verdict)
                if ctx is not None and ctx.is_simulation(message.from_domain):  # advanced delivery
                    for row in rows["EmailEvents"]:
                        row.update(OrgLevelAction="Allow", OrgLevelPolicy=SIMULATION_OVERRIDE)
                head, body = _split(message.raw)
                received = (message.date.isoformat() if message.date else "1970-01-01T00:00:00+00:00")
                raw_rows.append((message.network_message_id, received, head, body))
            except ParseError as exc:
                summary.rejected.append((item.source, str(exc)))
                dead_letter(tenant, item, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - the batch never crashes on one message
                reason = f"unexpected {type(exc).__name__}: {str(exc)[:200]}"
                summary.rejected.append((item.source, reason))
                dead_letter(tenant, item, reason)
                continue
            summary.messages += 1
            if message.reported_by:
                submissions.append(report_submission(message, item.mailbox))
            for table, table_rows in rows.items():
                pending[table].extend(table_rows)
            folder = Folder.for_location(item.location) if item.location else None
            if folder and item.mailbox:
                placements.append((message.network_message_id, item.mailbox, folder.value))
            if len(pending["EmailEvents"]) >= CHUNK:
                flush()
        flush(final=True)
    finally:
        bar.close()
        store.close()
    summary.seconds = time.perf_counter() - started
    return summary


__all__ = ["IngestSummary", "ingest", "dead_letter", "tenant_context", "protected_people"]
