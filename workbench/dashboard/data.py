"""The threat dashboard's numbers, computed from the lake for one window.

Counting unit: message copies, one per recipient (EmailEvents rows), as in Explorer, so a
tile's number equals the row count of the Explorer query it links to. Mail is read once:
one pass gives the volume by time, class and delivery (trends, weekly detections) and the
phish and malware copies (a few percent of mail) that every threat tile works from; a
second, narrow pass reads only the copies that post-delivery events, submissions and clicks
point at. Everything else (post-delivery events, submissions, clicks, alerts, directory) is
small.

>>> from workbench.dashboard.data import window_named
>>> window_named("7d").span.days
7
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import polars as pl

from workbench.dashboard import insights, projection
from workbench.dashboard.efficacy import FORMULA, Efficacy
from workbench.dashboard.projection import ADVANCED_PHISH, CLASSES, NOT_DELIVERED, ZERO_DAY, key_hash
from workbench.dashboard.tiles import UNIT, Dashboard, Metric, Tile
from workbench.errors import InputError
from workbench.explorer.aggregate import bucket_for
from workbench.explorer.query import And, Cond, Op, Or, Query, Window
from workbench.lake import Lake

UNNAMED = "(no family named)"  # malware whose verdict names no family still counts in the chart
WINDOWS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days"}
BLOCKED_CLICKS = ("ClickBlocked", "ClickBlockedByTenantPolicy")
ZAP_ACTIONS = ("Malware ZAP", "Phish ZAP")
ZAP_DONE = ("Success", "AdminPolicy")
REPORT_TYPES = ("Phish", "Junk", "Not junk")
THREATS = ("Phish", "Malware")
KEY = ["nmid", "rcpt"]  # a message copy: hashes of its message id and lower-cased recipient



def window_named(name: str, start: datetime | str | None = None, end: datetime | str | None = None) -> Window:
    """``24h`` / ``7d`` / ``30d`` / ``90d``, or ``custom`` with *start* and *end* (no 30-day cap)."""
    if name == "custom":
        if start is None or end is None:
            raise InputError("a custom window needs a start and an end date, e.g. --start 2026-01-01 --end 2026-04-01")
        return Window.between(start, end)
    if name not in WINDOWS:
        raise InputError(f"unknown window {name!r}; choose one of {', '.join(WINDOWS)} or custom with a start and end")
    return Window.last(name)


def user_drill(d: Dashboard, user: str) -> Query:
    """The Explorer query of one user's phish and malware in the dashboard's window."""
    return Query("campaigns", Window.between(d.start, d.end), Cond("recipients", Op.ANY, (user,)))


_FLAGS = ("malware", "phish", "delivered", "blocked", "inbound", "zero_day", "advanced", "allowed", "in_inbox")


def _keys(message_id: str, address: str) -> list[pl.Expr]:
    """The hashed copy key (message id, lower-cased address) the projection stores."""
    return [key_hash(message_id).alias("nmid"), key_hash(address, lower=True).alias("rcpt")]


def build(lake: Lake, window: Window, *, now: datetime | None = None, top: int = 10, store: Any = None) -> Dashboard:
    """Every tile of the dashboard for *window* (relative windows end at *now*). With the
    tenant's *store* (``workbench.store.Store``), the alert and incident tiles show the
    workbench's own alerts and open incidents; without it, the alerts exported into the lake."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    start, end = window.resolve(now)
    end = end or now
    bucket = bucket_for(start, end)
    drill = Window.between(start, end)  # absolute, so a link shows the same rows tomorrow
    when = pl.col("Timestamp").dt.truncate(bucket).alias("bucket")

    # small tables first: they say which copies the narrow pass over mail must return
    pde_lf = (lake.scan("EmailPostDeliveryEvents", start, None,
                        columns=["NetworkMessageId", "RecipientEmailAddress", "ActionType", "ActionResult", "ThreatTypes"])
              .filter(pl.col("ActionType").is_in([*ZAP_ACTIONS, "Redelivery"]))
              .with_columns(*_keys("NetworkMessageId", "RecipientEmailAddress")))
    raw = pl.col("RawEventData")
    subs_lf = (lake.scan("CloudAppEvents", start, None, columns=["ActionType", "ObjectId", "RawEventData"])
               .filter(pl.col("ActionType").is_in(["UserSubmission", "AdminSubmissionSubmitted"]))
               .select("ActionType",
                       pl.coalesce(pl.col("ObjectId"), raw.str.json_path_match("$.NetworkMessageId")).alias("NetworkMessageId"),
                       raw.str.json_path_match("$.UserId").alias("UserId"),
                       raw.str.json_path_match("$.ReportType").alias("ReportType"),
                       raw.str.json_path_match("$.SubmissionType").alias("SubmissionType"))
               .with_columns(*_keys("NetworkMessageId", "UserId")))
    clicks_lf = (lake.scan("UrlClickEvents", start, None,
                           columns=["Timestamp", "NetworkMessageId", "AccountUpn", "ActionType", "IsClickedThrough"])
                 .with_columns(*_keys("NetworkMessageId", "AccountUpn"), pl.col("AccountUpn").str.to_lowercase().alias("user")))
    alerts_lf = lake.scan("AlertInfo", start, end, columns=["Timestamp", "AlertId", "Title", "Category", "Severity"])
    identity_lf = lake.scan("IdentityInfo", columns=["Timestamp", "EmailAddress", "Tags"])
    pde, subs, clicks, alerts, identity = pl.collect_all([pde_lf, subs_lf, clicks_lf, alerts_lf, identity_lf])

    pointed = pl.concat([pde["nmid"], subs["nmid"]]).drop_nulls().unique().implode()
    clicked = clicks["nmid"].drop_nulls().unique().implode()
    mail = projection.scan(lake, start, end)
    volume_lf = (mail.volume.group_by(pl.col("hour").dt.truncate(bucket).alias("bucket"), "class", "blocked")
                 .agg(pl.col("messages").sum()))
    pointed_lf = (mail.rows.filter(pl.col("nmid").is_in(pointed))
                  .select(pl.col("Timestamp").alias("Delivered"), *KEY, "inbound", "threat"))
    volume, threat_rows, copies = pl.collect_all([volume_lf, mail.threats, pointed_lf])
    threats = threat_rows.lazy()  # phish and malware are a few percent of mail: read once, count in memory
    users_lf = threats.group_by("rcpt").agg(
        pl.col("recipient").first().alias("user"), pl.len().alias("messages"), pl.col("phish").sum(),
        pl.col("malware").sum(), pl.col("delivered").sum())
    frames = dict(zip(("flags", "families", "users", "clicked"), pl.collect_all([
        threats.group_by(when, "technology", *_FLAGS).len("messages"),
        threats.filter("malware").group_by("ThreatNames").len("messages"),
        users_lf,
        threats.filter(pl.col("nmid").is_in(clicked)).select(KEY)])))
    frames.update(volume=volume, copies=copies)
    frames.update(pde=pde, subs=subs, clicks=clicks, alerts=alerts, identity=identity)
    if store is not None:
        frames.update(_store_frames(store, start, end))

    ctx = _Context(start, end, drill, bucket, top, frames)
    tiles = (ctx.summary(), ctx.efficacy(), ctx.protection_status(), ctx.trends(), ctx.malware(), ctx.weekly(),
             ctx.targeted_users(), ctx.clickers(), ctx.alerts(), ctx.incidents(), ctx.intel())
    return Dashboard(start, end, bucket, tiles, insights.find(ctx), time.perf_counter() - started)


SEVERITIES = ("High", "Medium", "Low", "Informational")


def _store_frames(store: Any, start: datetime, end: datetime) -> dict[str, pl.DataFrame]:
    """The workbench's alerts of the window and its open incidents, as small frames."""
    from workbench.incidents.model import IncidentStatus
    from workbench.incidents.repo import IncidentFilter
    from workbench.incidents.service import IncidentService

    svc = IncidentService(store, "dashboard")
    alerts = [a for a in svc.alerts(since=None) if start <= a.first_activity < end]
    alert_frame = pl.DataFrame(
        {"Timestamp": [a.first_activity for a in alerts], "AlertId": [a.id for a in alerts],
         "Title": [a.title for a in alerts], "Category": [a.category for a in alerts],
         "Severity": [a.severity.value.capitalize() for a in alerts]},
        schema={"Timestamp": pl.Datetime("us", "UTC"), "AlertId": pl.String, "Title": pl.String,
                "Category": pl.String, "Severity": pl.String})
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    found = svc.list(IncidentFilter(status=(IncidentStatus.ACTIVE, IncidentStatus.IN_PROGRESS), limit=10_000))
    found.sort(key=lambda i: (rank.get(i.severity.value.capitalize(), 9), -i.last_update.timestamp()))
    incidents = pl.DataFrame(
        {"Id": [i.id for i in found], "Name": [i.name for i in found],
         "Severity": [i.severity.value.capitalize() for i in found], "Alerts": [i.alert_count for i in found],
         "Status": [i.status.value for i in found], "Last activity": [i.last_activity for i in found]},
        schema={"Id": pl.Int64, "Name": pl.String, "Severity": pl.String, "Alerts": pl.Int64, "Status": pl.String,
                "Last activity": pl.Datetime("us", "UTC")})
    return {"alerts": alert_frame, "incidents": incidents}


class _Context:
    """The collected frames of one build and the tiles made from them."""

    def __init__(self, start: datetime, end: datetime, drill: Window, bucket: str, top: int,
                 frames: dict[str, pl.DataFrame]) -> None:
        self.start, self.end, self.drill, self.bucket, self.top = start, end, drill, bucket, top
        self.volume = frames["volume"]  # (bucket, class, delivered) -> messages
        self.flags = frames["flags"]  # phish and malware: (bucket, technology, flags...) -> messages
        self.families, self.users = frames["families"], frames["users"]
        self.clicked, self.copies = frames["clicked"], frames["copies"]  # copies: those events point at
        self.pde, self.subs, self.clicks = frames["pde"], frames["subs"], frames["clicks"]
        self.alert_rows, self.identity = frames["alerts"], frames["identity"]
        self.open_incidents = frames.get("incidents")  # None: no incident store for this tenant
        self._zap = self._post_delivery()

    # ----------------------------------------------------------------- queries

    def query(self, view: str = "all_email", *conds: Cond | Or) -> Query:
        where = None if not conds else conds[0] if len(conds) == 1 else And(*conds)
        return Query(view, self.drill, where)

    def threat_query(self, *conds: Cond | Or) -> Query:
        return self.query("campaigns", *conds)  # the campaigns view is phish or malware

    def removed_query(self) -> Query:
        """Inbound copies clean at delivery that a malware or phish ZAP removed."""
        return self.query("all_email", Cond("directionality", Op.ANY, ("Inbound",)),
                          Cond("threat_type", Op.NONE, THREATS),
                          Cond("post_delivery_action", Op.ANY, ZAP_ACTIONS),
                          Cond("post_delivery_result", Op.ANY, ZAP_DONE))

    # ----------------------------------------------------------------- shared facts

    def _post_delivery(self) -> dict[str, pl.DataFrame]:
        """Inbound copies delivered in the window and what happened to them after delivery
        (mdo-reference §2.2): false-positive ZAP, successful ZAP, failed ZAP, admin submission.
        Each copy lands in at most one group, in that order of precedence."""
        inbound = self.copies.filter("inbound").unique(KEY)
        pde = self.pde.join(inbound, on=KEY, how="inner")
        fp = pde.filter(pl.col("threat") & (pl.col("ActionType") == "Redelivery") & pl.col("ThreatTypes").is_null())
        clean = pde.filter(~pl.col("threat") & pl.col("ActionType").is_in(ZAP_ACTIONS))
        removed = clean.filter(pl.col("ActionResult").is_in(ZAP_DONE)).unique(KEY)
        zapped = (self.pde.filter(pl.col("ActionType").is_in(ZAP_ACTIONS)).select(KEY).unique()
                  .join(self.copies.select(KEY), on=KEY, how="semi"))  # delivered in the window
        failed = clean.join(removed, on=KEY, how="anti").unique(KEY)
        admin_ids = self.subs.filter((pl.col("ActionType") == "AdminSubmissionSubmitted")
                                     & pl.col("SubmissionType").is_in(["1", "2"]))["nmid"]
        admin = (inbound.filter(~pl.col("threat") & pl.col("nmid").is_in(admin_ids.implode()))
                 .join(removed, on=KEY, how="anti").join(failed, on=KEY, how="anti"))
        return {"false_positive": fp.unique(KEY), "removed": removed, "failed": failed, "admin": admin,
                "zapped": zapped}

    def count(self, condition: pl.Expr | bool = True) -> int:
        """Phish and malware copies meeting *condition* (on the flag columns)."""
        return int(self.flags.filter(condition)["messages"].sum())

    def malicious_copies(self) -> pl.DataFrame:
        """Clicked copies malicious at delivery, and copies a malware or phish ZAP acted on."""
        return pl.concat([self.clicked.select(KEY), self._zap["zapped"]]).unique()

    def priority_accounts(self) -> list[str]:
        latest = self.identity.sort("Timestamp").unique("EmailAddress", keep="last")
        return latest.filter(pl.col("Tags").str.contains("Priority account", literal=True).fill_null(False))["EmailAddress"].str.to_lowercase().to_list()

    # ----------------------------------------------------------------- tiles

    def summary(self) -> Tile:
        c, malware, phish = self.count, pl.col("malware"), pl.col("phish")
        blocked = Cond("delivery_action", Op.ANY, NOT_DELIVERED)
        reported = (self.copies.unique(KEY).join(
            self.subs.filter((pl.col("ActionType") == "UserSubmission") & pl.col("ReportType").is_in(REPORT_TYPES))
            .select(KEY).unique(), on=KEY, how="semi"))
        clicks = self.clicks.filter((pl.col("Timestamp") < self.end) & pl.col("ActionType").is_in(BLOCKED_CLICKS))
        metrics = (
            Metric("malware_blocked", "Malware blocked", c(malware & pl.col("blocked")),
                   self.query("malware", blocked), "malware copies not delivered (junked, blocked or replaced)"),
            Metric("phish_blocked", "Phish blocked", c(phish & pl.col("blocked")),
                   self.query("phish", blocked), "phish copies not delivered (junked, blocked or replaced)"),
            Metric("reported", "Reported by users", reported.height,
                   self.query("user_reported"), "copies users reported as phish, junk or not junk"),
            Metric("zero_day_malware", "Zero-day malware", c(malware & pl.col("zero_day")),
                   self.query("malware", Cond("detection_technology", Op.ANY, ZERO_DAY)),
                   f"malware caught by {', '.join(ZERO_DAY).lower()}"),
            Metric("advanced_phish", "Advanced phish", c(phish & pl.col("advanced")),
                   self.query("phish", Cond("detection_technology", Op.ANY, ADVANCED_PHISH)),
                   "phish caught by URL detonation or impersonation protection"),
            Metric("urls_blocked_at_click", "Malicious URLs blocked at click", clicks.height,
                   self.query("url_clicks", Cond("click_action", Op.ANY, BLOCKED_CLICKS)),
                   "clicks that Safe Links blocked in the window"),
        )
        return Tile("summary", "Threat management summary", metrics, note=UNIT)

    def efficacy(self) -> Tile:
        inbound = Cond("directionality", Op.ANY, ("Inbound",))
        mailflow = self.count(pl.col("inbound"))
        z = self._zap
        e = Efficacy.of(mailflow=mailflow, false_positive_zap=z["false_positive"].height,
                        zap_removed=z["removed"].height, zap_failed=z["failed"].height,
                        admin_submitted=z["admin"].height)
        pre, post, uncaught = e.shares()
        frame = pl.DataFrame({"stage": ["Pre-delivery", "Post-delivery", "Uncaught"],
                              "messages": [e.pre_delivery, e.post_delivery, e.uncaught],
                              "share": [pre, post, uncaught]})
        metrics = (
            Metric("pre_delivery", "Pre-delivery", e.pre_delivery, self.threat_query(inbound), FORMULA),
            Metric("post_delivery", "Post-delivery (ZAP)", e.post_delivery, self.removed_query(), FORMULA),
            Metric("uncaught", "Uncaught", e.uncaught, None, FORMULA),
            Metric("malicious", "Malicious inbound mail", e.total, None, FORMULA),
        )
        return Tile("efficacy", "Efficacy", metrics, {"shares": frame}, note=FORMULA)

    def protection_status(self) -> Tile:
        t = self.flags
        total = pl.col("messages").sum()
        by_tech = t.group_by("bucket", "technology").agg(total).sort("bucket", "technology")
        status = pl.when("delivered").then(pl.lit("Delivered")).when("blocked").then(pl.lit("Blocked")).otherwise(pl.lit("Other"))
        by_delivery = (t.group_by("bucket", status
                                  .alias("status")).agg(total).sort("bucket", "status"))
        techs = t.group_by("technology").agg(total).sort(["messages", "technology"], descending=[True, False])
        detected, delivered, blocked = self.count(), self.count(pl.col("delivered")), self.count(pl.col("blocked"))
        metrics = (
            Metric("detected", "Phish and malware detected", detected, self.threat_query()),
            Metric("delivered", "Delivered", delivered, self.threat_query(Cond("delivery_action", Op.ANY, ("Delivered",)))),
            Metric("blocked", "Blocked", blocked, self.threat_query(Cond("delivery_action", Op.ANY, NOT_DELIVERED))),
        )
        return Tile("protection_status", "Threat protection status", metrics,
                    {"by_technology": by_tech, "by_delivery": by_delivery, "technologies": techs},
                    self.threat_query(), note=f"{UNIT}; each copy counted once, under the first technology listed for it")

    def trends(self) -> Tile:
        per = self.volume.group_by("bucket", pl.col("class").cast(pl.String)).agg(pl.col("messages").sum())
        dtype = self.volume.schema["bucket"]
        hours = pl.datetime_range(self.start, self.end, "1h", closed="left", eager=True)
        grid = (pl.DataFrame({"bucket": hours.dt.truncate(self.bucket).unique()}).with_columns(pl.col("bucket").cast(dtype))
                .join(pl.DataFrame({"class": list(CLASSES)}), how="cross"))
        per = (grid.join(per, on=["bucket", "class"], how="left").with_columns(pl.col("messages").fill_null(0))
               .sort("bucket", "class"))  # a quiet hour is a zero, not a gap the line jumps over
        totals = dict(self.volume.group_by("class").agg(pl.col("messages").sum()).iter_rows())
        def of_class(c: str) -> Query:  # this class and none of those before it
            before = CLASSES[:CLASSES.index(c)]
            conds = [Cond("threat_type", Op.ANY, (c,))] if c != "Good mail" else []
            return self.query("all_email", *conds, *([Cond("threat_type", Op.NONE, before)] if before else []))

        metrics = tuple(Metric(c.lower().replace(" ", "_"), c, int(totals.get(c, 0)), of_class(c)) for c in CLASSES)
        return Tile("trends", "Trends", metrics, {"by_class": per}, self.query(),
                    note=f"{UNIT}; a copy is malware, else phish, else spam, else good mail")

    def malware(self) -> Tile:
        trend = self.flags.filter("malware").group_by("bucket").agg(pl.col("messages").sum()).sort("bucket")
        families = (self.families.select(pl.col("messages"), pl.col("ThreatNames").str.split(",").list.eval(pl.element().str.strip_chars()).alias("family"))
                    .explode("family").with_columns(pl.col("family").replace("", None).fill_null(UNNAMED))
                    .group_by("family").agg(pl.col("messages").sum())
                    .sort(["messages", "family"], descending=[True, False]).head(self.top))
        return Tile("malware", "Malware", (Metric("malware", "Malware messages", self.count(pl.col("malware")), self.query("malware")),),
                    {"trend": trend, "families": families}, self.query("malware"), note=UNIT)

    def weekly(self) -> Tile:
        week = pl.col("bucket").dt.truncate("1w").alias("week")
        stopped = pl.col("class").is_in(THREATS) & pl.col("blocked")
        per_week = self.volume.group_by(week).agg(pl.col("messages").sum().alias("scanned"),
                                                  pl.col("messages").filter(stopped).sum().alias("threats_stopped"))
        removed = self._zap["removed"].group_by(pl.col("Delivered").dt.truncate("1w").alias("week")).len("removed_after_delivery")
        table = (per_week.join(removed, on="week", how="left").fill_null(0).sort("week")
                 .with_columns(pl.col("removed_after_delivery").cast(pl.Int64)))
        metrics = (
            Metric("scanned", "Messages scanned", int(table["scanned"].sum()), self.query()),
            Metric("threats_stopped", "Threats stopped", int(table["threats_stopped"].sum()),
                   self.threat_query(Cond("delivery_action", Op.ANY, NOT_DELIVERED))),
            Metric("removed_after_delivery", "Removed after delivery (ZAP)", int(table["removed_after_delivery"].sum()),
                   self.removed_query()),
        )
        return Tile("weekly", "Weekly detections", metrics, {"weeks": table}, self.query(),
                    note=f"{UNIT}; weeks start on Monday; threats are phish and malware")

    def targeted_users(self) -> Tile:
        users = (self.users
                 .sort(["messages", "user"], descending=[True, False]).head(self.top))
        return Tile("targeted_users", "Top targeted users", (), {"users": users}, self.threat_query(),
                    note="phish and malware copies per recipient")


    def clickers(self) -> Tile:
        clicks = self.clicks.join(self.malicious_copies(), on=KEY, how="semi")
        users = (clicks.group_by("user")
                 .agg(pl.len().alias("clicks"),
                      pl.col("ActionType").is_in(BLOCKED_CLICKS).sum().alias("blocked"),
                      (~pl.col("ActionType").is_in(BLOCKED_CLICKS) | pl.col("IsClickedThrough").fill_null(False))
                      .sum().alias("reached_the_site"),
                      pl.col("Timestamp").max().alias("last_click"))
                 .sort(["clicks", "user"], descending=[True, False]))
        malicious = Or(Cond("threat_type", Op.ANY, THREATS), Cond("post_delivery_action", Op.ANY, ZAP_ACTIONS))
        any_click = Cond("click_verdict", Op.ANY, ("ClickAllowed", "ClickBlocked", "ClickBlockedByTenantPolicy",
                                                    "UrlErrorPage", "UrlScanInProgress"))
        metrics = (Metric("users", "Users who clicked", users.height, self.query("all_email", malicious, any_click)),
                   Metric("clicks", "Clicks", clicks.height))
        return Tile("clickers", "Users who clicked malicious links", metrics, {"users": users.head(self.top)},
                    self.query("all_email", malicious, any_click),
                    note="clicks on links in mail that was phish or malware at delivery or removed as such later")

    def alerts(self) -> Tile:
        a = self.alert_rows
        if not a.height:
            return Tile("alerts", "Recent alerts", empty="No alerts in this window. Alerts appear here as the "
                        "alert policies raise them (user-reported phish, malicious clicks, ZAP, ...).")
        counts = dict(a.group_by("Severity").len().iter_rows())
        metrics = tuple(Metric(s.lower(), s, int(counts.get(s, 0))) for s in SEVERITIES)
        recent = a.sort("Timestamp", descending=True).head(self.top)
        return Tile("alerts", "Recent alerts", metrics, {"recent": recent}, note="alerts raised in the window by severity")

    def alert_query(self, alert_id: str) -> Query:
        return self.query("all_email", Cond("alert_id", Op.ANY, (alert_id,)))

    def incidents(self) -> Tile:
        if self.open_incidents is None:
            return Tile("incidents", "Open incidents", empty="Open incidents by severity appear here once the incident "
                        "queue is set up for this tenant: alert policies then group related alerts into incidents.")
        o = self.open_incidents
        counts = dict(o.group_by("Severity").len().iter_rows()) if o.height else {}
        metrics = tuple(Metric(s.lower(), s, int(counts.get(s, 0))) for s in SEVERITIES)
        return Tile("incidents", "Open incidents", metrics, {"open": o.head(self.top)},
                    note="active and in-progress incidents now, most severe first")

    def intel(self) -> Tile:
        return Tile("intel", "Threat-intelligence trends", empty="Threat-intelligence trends appear here once "
                    "indicators and threat trackers are imported into this tenant's indicator store.")


__all__ = ["build", "window_named", "user_drill", "WINDOWS", "ZERO_DAY", "ADVANCED_PHISH", "NOT_DELIVERED", "BLOCKED_CLICKS",
           "ZAP_ACTIONS", "CLASSES"]
