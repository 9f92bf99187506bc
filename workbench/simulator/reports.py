"""Simulation reports (mdo-reference §5.5): per campaign, across campaigns, and the per-user CSV.

Only counted events count: a flagged event (scanner, link preview, too fast, not a browser,
outside the campaign) is listed with its reasons and excluded from every number and rate.
Rates are over the users who received the message (delivered): compromise rate = compromised /
received, click rate = clicked / received, report rate = reported / received.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from workbench.atomic import atomic_open
from workbench.csv_cells import spreadsheet_safe
from workbench.simulator.model import EventKind, Technique
from workbench.store import tables as t

T, E, C = t.sim_targets.c, t.sim_events.c, t.sim_campaigns.c
ACTIVITY = {  # report line -> the event kind that counts for it
    "read": EventKind.READ, "clicked": EventKind.CLICKED, "attachment_opened": EventKind.ATTACHMENT_OPENED,
    "attachment_link_clicked": EventKind.ATTACHMENT_LINK_CLICKED, "file_downloaded": EventKind.FILE_DOWNLOADED,
    "credentials_supplied": EventKind.CREDENTIALS_SUPPLIED, "consent_granted": EventKind.CONSENT_GRANTED,
    "reported": EventKind.REPORTED, "training_completed": EventKind.TRAINING_COMPLETED,
}


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    name: str
    technique: Technique
    status: str
    counts: dict[str, int]  # targeted, delivered, failed, read, clicked, ..., compromised, reported, flagged_events
    rates: dict[str, float | None]  # compromise_rate, click_rate, report_rate (None: nothing received)
    timing: dict[str, float | None]  # seconds: first/average to click, first/average to report
    by_department: pl.DataFrame
    by_title: pl.DataFrame
    flagged: pl.DataFrame  # time, user, kind, ip, user agent, reasons
    timeline: pl.DataFrame = field(default_factory=pl.DataFrame)  # counted events per hour and kind

    def render(self) -> str:
        c, r = self.counts, self.rates

        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.1%}"
        lines = [f"campaign {self.campaign_id} {self.name!r} ({self.technique.label}, {self.status})",
                 "  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in c.items()),
                 f"  compromise rate {pct(r['compromise_rate'])}, click rate {pct(r['click_rate'])}, "
                 f"report rate {pct(r['report_rate'])}"]
        for key, value in self.timing.items():
            if value is not None:
                lines.append(f"  {key.removesuffix('_seconds').replace('_', ' ')}: {timedelta(seconds=round(value))}")
        return "\n".join(lines)


def _targets_frame(conn: sa.Connection, campaign_ids: Sequence[int]) -> pl.DataFrame:
    rows = conn.execute(sa.select(T.id, T.campaign_id, T.email, T.attributes, T.status, T.delivered, T.failed, T.read,
                                  T.clicked, T.compromised, T.reported, T.training_assigned, T.training_completed,
                                  T.training_due).where(T.campaign_id.in_(list(campaign_ids)))).all()
    records = []
    for r in rows:
        attrs = json.loads(r.attributes or "{}")
        records.append({"target_id": r.id, "campaign_id": r.campaign_id, "email": r.email,
                        "name": attrs.get("display_name", ""), "department": attrs.get("department", "") or "(none)",
                        "title": attrs.get("title", "") or "(none)", "status": r.status, "delivered": r.delivered,
                        "failed": r.failed, "read": r.read, "clicked": r.clicked, "compromised": r.compromised,
                        "reported": r.reported, "assigned": len(json.loads(r.training_assigned or "[]")),
                        "completed": len(json.loads(r.training_completed or "{}")), "training_due": r.training_due})
    schema = {"target_id": pl.Int64, "campaign_id": pl.Int64, "email": pl.String, "name": pl.String,
              "department": pl.String, "title": pl.String, "status": pl.String,
              **{k: pl.Datetime("us", "UTC") for k in ("delivered", "failed", "read", "clicked", "compromised",
                                                       "reported", "training_due")},
              "assigned": pl.Int64, "completed": pl.Int64}
    return pl.DataFrame(records, schema=schema, orient="row")


def _events_frame(conn: sa.Connection, campaign_ids: Sequence[int]) -> pl.DataFrame:
    rows = conn.execute(sa.select(E.target_id, E.campaign_id, E.kind, E.at, E.ip, E.user_agent, E.source, E.reasons,
                                  E.details).where(E.campaign_id.in_(list(campaign_ids))).order_by(E.at, E.id)).all()
    schema = {"target_id": pl.Int64, "campaign_id": pl.Int64, "kind": pl.String, "at": pl.Datetime("us", "UTC"),
              "ip": pl.String, "user_agent": pl.String, "source": pl.String, "reasons": pl.String,
              "details": pl.String}
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def _breakdown(targets: pl.DataFrame, by: str) -> pl.DataFrame:
    got = targets.filter(pl.col("delivered").is_not_null())
    return (got.group_by(by).agg(pl.len().alias("received"), pl.col("clicked").is_not_null().sum().alias("clicked"),
                                 pl.col("compromised").is_not_null().sum().alias("compromised"),
                                 pl.col("reported").is_not_null().sum().alias("reported"))
            .with_columns((pl.col("compromised") / pl.col("received")).alias("compromise_rate"),
                          (pl.col("reported") / pl.col("received")).alias("report_rate"))
            .sort(["compromise_rate", by], descending=[True, False]))


def _seconds(targets: pl.DataFrame, column: str) -> tuple[float | None, float | None]:
    span = (targets.filter(pl.col(column).is_not_null() & pl.col("delivered").is_not_null())
            .select((pl.col(column) - pl.col("delivered")).dt.total_seconds().alias("s"))["s"])
    if span.is_empty():
        return None, None
    return float(span.min()), float(span.mean())


def campaign_report(store: Any, campaign_id: int, *, actor: str | None = None) -> CampaignReport:
    """The report of one campaign; with *actor*, checked (reports need simulation management or
    a security role) and audited as a report view."""
    from workbench.simulator.campaigns import SimulationService

    service = SimulationService(store, actor or "")
    campaign = service.get(campaign_id) if actor is not None else service._get(campaign_id)
    with store.read() as conn:
        targets = _targets_frame(conn, [campaign_id])
        events = _events_frame(conn, [campaign_id])
    counted = events.filter(pl.col("reasons") == "")
    counts = {"targeted": targets.height,
              "delivered": targets["delivered"].is_not_null().sum(),
              "failed": targets.filter(pl.col("status") == "failed").height}
    for key, kind in ACTIVITY.items():
        counts[key] = counted.filter(pl.col("kind") == kind.value)["target_id"].n_unique()
    counts["clicked"] = targets["clicked"].is_not_null().sum()
    counts["compromised"] = targets["compromised"].is_not_null().sum()
    counts["reported"] = targets["reported"].is_not_null().sum()
    counts["flagged_events"] = events.height - counted.height
    received = counts["delivered"]
    first_click, avg_click = _seconds(targets, "clicked")
    first_report, avg_report = _seconds(targets, "reported")
    emails = dict(zip(targets["target_id"], targets["email"]))
    flagged = (events.filter(pl.col("reasons") != "")
               .with_columns(pl.col("target_id").replace_strict(emails, default="").alias("user"))
               .select("at", "user", "kind", "source", "ip", "user_agent", "reasons"))
    timeline = (counted.filter(pl.col("kind").is_in([k.value for k in ACTIVITY.values()]))
                .with_columns(pl.col("at").dt.truncate("1h").alias("hour"))
                .group_by("hour", "kind").agg(pl.len().alias("events")).sort("hour", "kind"))
    return CampaignReport(
        campaign_id, campaign.name, campaign.technique, campaign.status.value, counts,
        {"compromise_rate": _rate(counts["compromised"], received), "click_rate": _rate(counts["clicked"], received),
         "report_rate": _rate(counts["reported"], received)},
        {"first_click_seconds": first_click, "average_click_seconds": avg_click,
         "first_report_seconds": first_report, "average_report_seconds": avg_report},
        _breakdown(targets, "department"), _breakdown(targets, "title"), flagged, timeline)


# ------------------------------------------------------------------ across campaigns


def user_trends(store: Any) -> pl.DataFrame:
    """One row per user and campaign (oldest first): received, clicked, compromised, reported."""
    with store.read() as conn:
        ids = conn.execute(sa.select(C.id).where(C.started.is_not(None))).scalars().all()
        started = dict(conn.execute(sa.select(C.id, C.started)).all())
        targets = _targets_frame(conn, ids)
    return (targets.filter(pl.col("delivered").is_not_null())
            .with_columns(pl.col("campaign_id").replace_strict(started, return_dtype=pl.Datetime("us", "UTC"))
                          .alias("started"),
                          pl.col("clicked").is_not_null().alias("clicked"),
                          pl.col("compromised").is_not_null().alias("compromised"),
                          pl.col("reported").is_not_null().alias("reported"))
            .select("email", "department", "campaign_id", "started", "clicked", "compromised", "reported")
            .sort("started", "email"))


def department_trends(store: Any) -> pl.DataFrame:
    """Per department and campaign: received, compromise and report rates (for a trend chart)."""
    trends = user_trends(store)
    return (trends.group_by("department", "campaign_id", "started")
            .agg(pl.len().alias("received"), pl.col("compromised").mean().alias("compromise_rate"),
                 pl.col("reported").mean().alias("report_rate"))
            .sort("started", "department"))


def coverage(store: Any, directory_emails: Sequence[str], *, now: datetime | None = None,
             days: int = 90) -> dict[str, int]:
    """Simulated vs not simulated directory users over the last *days*."""
    from workbench.simulator.targets import simulated_since

    recent = simulated_since(store, (now or datetime.now(UTC)) - timedelta(days=days))
    users = {e.lower() for e in directory_emails}
    return {"users": len(users), "simulated": len(users & recent), "not_simulated": len(users - recent)}


def training_completion(store: Any, *, now: datetime | None = None) -> dict[str, int]:
    """Assigned trainings: completed, in progress (due date ahead), incomplete (overdue)."""
    now = now or datetime.now(UTC)
    with store.read() as conn:
        ids = conn.execute(sa.select(C.id)).scalars().all()
        targets = _targets_frame(conn, ids).filter(pl.col("assigned") > 0)
    done = targets.filter(pl.col("completed") >= pl.col("assigned")).height
    overdue = targets.filter((pl.col("completed") < pl.col("assigned")) & (pl.col("training_due") < now)).height
    return {"assigned": targets.height, "completed": done, "in_progress": targets.height - done - overdue,
            "incomplete": overdue}


def repeat_offender_table(store: Any, users: pl.DataFrame, *, threshold: int = 2) -> pl.DataFrame:
    """The repeat offenders (:func:`~workbench.simulator.targets.repeat_offenders`) with their department
    from the directory *users* (else the one recorded on their latest simulation), longest run first."""
    from workbench.simulator.targets import repeat_offenders

    streaks = repeat_offenders(store, threshold)
    known: dict[str, str] = {}
    if streaks and not users.is_empty() and {"email", "Department"} <= set(users.columns):
        known = {e: d for e, d in zip(users["email"], users["Department"]) if d}
    if streaks and len(known) < len(streaks):
        latest = user_trends(store).filter(pl.col("department") != "(none)")
        known = {**dict(zip(latest["email"], latest["department"])), **known}  # the oldest row loses
    rows = sorted(((e, known.get(e, ""), n) for e, n in streaks.items()), key=lambda r: (-r[2], r[0]))
    return pl.DataFrame(rows, schema={"email": pl.String, "department": pl.String, "consecutive": pl.Int64},
                        orient="row")


def recent_user_trends(store: Any, *, last: int = 5) -> tuple[list[int], pl.DataFrame]:
    """The *last* launched campaigns (oldest first) and, per user who received any of them: the
    department, one outcome per campaign (column ``"#<id>"``: "clicked", "compromised", "reported"
    joined, "no action", or "" when not received) and the clicked / compromised / reported totals;
    most compromised first."""
    trends = user_trends(store)
    ids = (trends.select("campaign_id", "started").unique().sort("started", "campaign_id")
           .tail(last)["campaign_id"].to_list())
    cols = [f"#{i}" for i in ids]
    schema = {"email": pl.String, "department": pl.String, **dict.fromkeys(cols, pl.String),
              "clicked": pl.Int64, "compromised": pl.Int64, "reported": pl.Int64}
    users: dict[str, dict[str, Any]] = {}
    for r in trends.filter(pl.col("campaign_id").is_in(ids)).iter_rows(named=True):  # oldest first
        u = users.setdefault(r["email"], {"email": r["email"], **dict.fromkeys(cols, ""), "clicked": 0,
                                          "compromised": 0, "reported": 0})
        u["department"] = r["department"]  # the latest
        done = [k for k in ("clicked", "compromised", "reported") if r[k]]
        u[f"#{r['campaign_id']}"] = ", ".join(done) or "no action"
        for k in done:
            u[k] += 1
    frame = pl.DataFrame([{k: u.get(k) for k in schema} for u in users.values()], schema=schema, orient="row")
    return ids, frame.sort(["compromised", "clicked", "email"], descending=[True, True, False])


# ------------------------------------------------------------------ per-user CSV (§5.5)

CSV_FIELDS = ["UserName", "UserMail", "Compromised",
              *[f"AttachmentOpened_{x}" for x in ("TimeStamp", "Browser", "IP", "Device")],
              *[f"AttachmentLinkClicked_{x}" for x in ("TimeStamp", "Browser", "IP", "Device")],
              *[f"EmailLinkClicked_{x}" for x in ("TimeStamp", "Browser", "IP", "Device", "ClickSource")],
              *[f"CredSupplied_{x}" for x in ("TimeStamp", "Browser", "IP", "Device")],
              "ConsentGranted_TimeStamp", "FileDownloaded_TimeStamp",
              "SuccessfullyDeliveredEmail_TimeStamp", "MessageRead_TimeStamp", "FailedToDeliverEmail_TimeStamp",
              "Last Simulation Activity", "Assigned Trainings", "Completed Trainings", "Training Status",
              "Phishing Reported On", "Department", "Company", "Title", "City", "Country", "Manager",
              "ExcludedEvents"]


def browser_of(agent: str) -> str:
    """A coarse browser name from a user agent (Edge, Chrome, Firefox, Safari, other)."""
    a = agent or ""
    for needle, name in (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")):
        if needle in a:
            return name
    return "Other" if a else ""


def device_of(agent: str) -> str:
    """A coarse device from a user agent (Windows, macOS, iPhone, iPad, Android, Linux, other)."""
    a = agent or ""
    for needle, name in (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
                         ("Mac OS X", "macOS"), ("Linux", "Linux")):
        if needle in a:
            return name
    return "Other" if a else ""


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else ""


def user_rows(store: Any, campaign_id: int) -> list[dict[str, str]]:
    """One row per target with the §5.5 fields (counted events only; the first of each kind)."""
    with store.read() as conn:
        targets = conn.execute(sa.select(t.sim_targets).where(T.campaign_id == campaign_id).order_by(T.email)).all()
        events = _events_frame(conn, [campaign_id])
    counted = events.filter(pl.col("reasons") == "")
    firsts: dict[tuple[int, str], dict[str, Any]] = {}
    for ev in counted.iter_rows(named=True):
        firsts.setdefault((ev["target_id"], ev["kind"]), ev)
    excluded = dict(events.filter(pl.col("reasons") != "").group_by("target_id").len().iter_rows())
    last = dict(counted.group_by("target_id").agg(pl.col("at").max()).iter_rows())
    out = []
    for r in targets:
        attrs = json.loads(r.attributes or "{}")
        row: dict[str, str] = dict.fromkeys(CSV_FIELDS, "")
        assigned = json.loads(r.training_assigned or "[]")
        completed = json.loads(r.training_completed or "{}")
        row.update({"UserName": attrs.get("display_name", ""), "UserMail": r.email,
                    "Compromised": "Yes" if r.compromised else "No",
                    "SuccessfullyDeliveredEmail_TimeStamp": _iso(r.delivered), "MessageRead_TimeStamp": _iso(r.read),
                    "FailedToDeliverEmail_TimeStamp": _iso(r.failed), "Phishing Reported On": _iso(r.reported),
                    "Last Simulation Activity": _iso(last.get(r.id)), "Assigned Trainings": ";".join(assigned),
                    "Completed Trainings": ";".join(completed),
                    "Training Status": ("" if not assigned else "Completed" if len(completed) >= len(assigned)
                                        else "Overdue" if r.training_due and r.training_due < datetime.now(UTC)
                                        else "In progress"),
                    "Department": attrs.get("department", ""), "Company": attrs.get("company", ""),
                    "Title": attrs.get("title", ""), "City": attrs.get("city", ""),
                    "Country": attrs.get("country", ""), "Manager": attrs.get("manager", ""),
                    "ExcludedEvents": str(excluded.get(r.id, 0))})
        for prefix, kind in (("AttachmentOpened", EventKind.ATTACHMENT_OPENED),
                             ("AttachmentLinkClicked", EventKind.ATTACHMENT_LINK_CLICKED),
                             ("EmailLinkClicked", EventKind.CLICKED), ("CredSupplied", EventKind.CREDENTIALS_SUPPLIED)):
            ev = firsts.get((r.id, kind.value))
            if ev:
                row.update({f"{prefix}_TimeStamp": _iso(ev["at"]), f"{prefix}_Browser": browser_of(ev["user_agent"]),
                            f"{prefix}_IP": ev["ip"], f"{prefix}_Device": device_of(ev["user_agent"])})
                if prefix == "EmailLinkClicked":
                    row["EmailLinkClicked_ClickSource"] = "QRCode" if ev["source"] == "qr" else "PhishingURL"
        for column, kind in (("ConsentGranted_TimeStamp", EventKind.CONSENT_GRANTED),
                             ("FileDownloaded_TimeStamp", EventKind.FILE_DOWNLOADED)):
            ev = firsts.get((r.id, kind.value))
            row[column] = _iso(ev["at"]) if ev else ""
        out.append(row)
    return out


def export_users_csv(store: Any, campaign_id: int, path: Path | str, *, actor: str) -> int:
    """Write the per-user CSV atomically; checked and audited (``simulator.export``). Returns rows written."""
    from workbench import audit
    from workbench.simulator.campaigns import SimulationService

    SimulationService(store, actor).require_reports(f"campaign {campaign_id}")
    rows = user_rows(store, campaign_id)
    path = Path(path)
    with atomic_open(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    audit.record(store, actor=actor, activity="simulator.export", target=f"campaign {campaign_id}",
                 details={"file": path.name, "rows": len(rows)})
    return len(rows)


__all__ = ["CampaignReport", "campaign_report", "user_trends", "department_trends", "coverage",
           "training_completion", "repeat_offender_table", "recent_user_trends", "user_rows", "export_users_csv", "CSV_FIELDS", "browser_of", "device_of"]
