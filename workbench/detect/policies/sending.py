"""Sending policies: one internal sender's intra-org and outbound mail per hour (and per day).

A copy counts as a threat when it had a phish, malware or spam verdict at delivery, or a ZAP
removed it within :data:`~workbench.detect.policies.base.ZAP_HORIZON` (mail from a compromised
mailbox is often clean at delivery and found out later). Counting uses fixed UTC hours (and
days), so a finding is the same whichever run sees it: an hour is re-counted whenever a new
copy or a new ZAP touches it, from the start of that hour.

- ``suspicious_sending``: an hour with ``messages_per_hour`` copies, or ``threat_copies_per_hour``
  threat copies. One alert per sender and hour.
- ``user_restricted_sending``: a day with ``recipients_per_day`` copies, or an hour with
  ``recipients_per_hour`` copies or ``threat_copies_per_hour`` threat copies (outbound spam
  limits). One alert per sender and day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from workbench.detect.policies import evaluator
from workbench.detect.policies.base import (
    DAY, HOUR, INTERNAL_DIRECTIONS, THREATS, ZAP_HORIZON, Run, email_entities, has_threat, lower,
)
from workbench.explorer.query import And, Cond, Op, Query, Window
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Verdict

ALL_ZAPS = ("Phish ZAP", "Malware ZAP", "Spam ZAP")


def _floor(ts: datetime, size: timedelta) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0) if size == HOUR else ts.replace(hour=0, minute=0, second=0, microsecond=0)


def sent_copies(run: Run, bucket: timedelta) -> pl.LazyFrame:
    """Internal senders' copies in the buckets that new copies or new ZAPs touched: EmailEvents
    rows plus ``rcpt`` and ``sender`` (lower case), ``hour``, ``bucket``, ``threat`` and
    ``threat_at``. Lazy: callers count first and collect the rows of the buckets that fire."""
    start = run.back()
    if start is not None:
        start = _floor(start, bucket)
    sent = (run.scan("EmailEvents", start, ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromAddress",
                                            "SenderFromDomain", "SenderIPv4", "Subject", "EmailDirection", "ThreatTypes"])
            .filter(pl.col("EmailDirection").is_in(INTERNAL_DIRECTIONS) & run.org_expr("SenderFromDomain")))
    run.saw_all(sent)
    zaps = run.saw(run.scan("EmailPostDeliveryEvents", start, ["Timestamp", "NetworkMessageId", "RecipientEmailAddress",
                                                               "ActionType", "EmailDirection"])
                   .filter(pl.col("ActionType").is_in(ALL_ZAPS)).collect())
    zapped = (zaps.select("NetworkMessageId", lower("RecipientEmailAddress").alias("rcpt"), pl.col("Timestamp").alias("zap_at"))
              .group_by("NetworkMessageId", "rcpt").agg(pl.col("zap_at").min()))
    sent = (sent.with_columns(lower("RecipientEmailAddress").alias("rcpt"), lower("SenderFromAddress").alias("sender"),
                              pl.col("Timestamp").dt.truncate("1h").alias("hour"),
                              pl.col("Timestamp").dt.truncate("1h" if bucket == HOUR else "1d").alias("bucket"))
            .join(zapped.lazy(), on=["NetworkMessageId", "rcpt"], how="left")
            .with_columns(pl.when(pl.col("zap_at") > pl.col("Timestamp") + ZAP_HORIZON).then(None)
                          .otherwise(pl.col("zap_at")).alias("zap_at"))
            .with_columns(pl.when(has_threat("ThreatTypes", THREATS)).then(pl.col("Timestamp"))
                          .otherwise(pl.col("zap_at")).alias("threat_at"))
            .with_columns(pl.col("threat_at").is_not_null().alias("threat")))
    touched = sent.filter(run.is_new() | (run.is_new("threat_at") & pl.col("threat_at").is_not_null())
                          ).select("sender", "bucket").unique()
    return sent.join(touched, on=["sender", "bucket"], how="semi")


def _draft(run: Run, sender: str, bucket: datetime, size: timedelta, copies: pl.DataFrame, reasons: list[str],
           key: str, fields: dict) -> AlertDraft:
    threats = copies.filter("threat")
    end = bucket + size if run.until is None else min(bucket + size, run.until)
    query = Query("all_email", Window.between(bucket, end),
                  And(Cond("sender_address", Op.ANY, (sender,)), Cond("directionality", Op.ANY, INTERNAL_DIRECTIONS)))
    entities = [Entity.of(EntityKind.USER, sender, "sender"), Entity.of(EntityKind.MAILBOX, sender, "sender")]
    entities += email_entities(threats, "sent") + [Entity.of(EntityKind.IP, ip, "sender") for ip in threats["SenderIPv4"].drop_nulls().unique(maintain_order=True)]
    urls = run.message_urls(threats["NetworkMessageId"], threats["Timestamp"].min()) if threats.height else {}
    entities += run.url_entities([u for us in urls.values() for u in us], "sent")
    entities += email_entities(copies.filter(~pl.col("threat")), "sent")
    verdicts = [(e, Verdict.SUSPICIOUS) for e in email_entities(threats) if e.kind is EntityKind.EMAIL]
    outbound = copies.filter(pl.col("EmailDirection") == "Outbound").height
    detail = (f"{copies.height} copies ({outbound} outbound) of {copies['NetworkMessageId'].n_unique()} messages to "
              f"{copies['rcpt'].n_unique()} recipients; {threats.height} with phish, malware or spam verdicts "
              f"(at delivery or by ZAP). Over: {'; '.join(reasons)}.")
    return run.draft(key, fields, copies["Timestamp"].min(), copies["Timestamp"].max(), entities,
                     query=query, message_count=copies.height, verdicts=verdicts, detail=detail)


def _groups(sent: pl.LazyFrame, firing: pl.DataFrame):
    """(sender, bucket, copies) of the firing (sender, bucket) pairs only."""
    chosen = sent.join(firing.lazy().select("sender", "bucket"), on=["sender", "bucket"], how="semi").sort("Timestamp").collect()
    for (sender, bucket), copies in chosen.group_by("sender", "bucket", maintain_order=True):
        yield sender, bucket, copies


@evaluator("suspicious_sending")
def suspicious_sending(run: Run) -> list[AlertDraft]:
    volume, threat = run.threshold("messages_per_hour"), run.threshold("threat_copies_per_hour")
    sent = sent_copies(run, HOUR)
    stats = sent.group_by("sender", "bucket").agg(pl.len().alias("n"), pl.col("threat").sum().alias("bad"))
    firing = stats.filter((pl.col("n") >= volume) | (pl.col("bad") >= threat)).collect()
    drafts = []
    for sender, hour, copies in _groups(sent, firing):
        n, bad = copies.height, int(copies["threat"].sum())
        reasons = ([f"{n} copies in the hour (threshold {volume:g})"] if n >= volume else []) + \
                  ([f"{bad} threat copies in the hour (threshold {threat:g})"] if bad >= threat else [])
        drafts.append(_draft(run, sender, hour, HOUR, copies, reasons, f"{sender}|{hour:%Y-%m-%dT%H}",
                             {"user": sender, "count": n, "threats": bad, "hour": f"{hour:%Y-%m-%d %H}:00"}))
    return drafts


@evaluator("user_restricted_sending")
def restricted_sending(run: Run) -> list[AlertDraft]:
    per_hour, per_day = run.threshold("recipients_per_hour"), run.threshold("recipients_per_day")
    threat = run.threshold("threat_copies_per_hour")
    sent = sent_copies(run, DAY)
    hourly = (sent.group_by("sender", "bucket", "hour").agg(pl.len().alias("n"), pl.col("threat").sum().alias("bad"))
              .group_by("sender", "bucket").agg(pl.col("n").sum().alias("day"), pl.col("n").max().alias("peak"),
                                                pl.col("bad").max().alias("bad_peak")))
    firing = hourly.filter((pl.col("day") >= per_day) | (pl.col("peak") >= per_hour) | (pl.col("bad_peak") >= threat)).collect()
    drafts = []
    for sender, day, copies in _groups(sent, firing):
        hours = copies.group_by("hour").agg(pl.len().alias("n"), pl.col("threat").sum().alias("bad"))
        n, bad = copies.height, int(copies["threat"].sum())
        reasons = []
        if n >= per_day:
            reasons.append(f"{n} copies in the day (threshold {per_day:g})")
        if hours["n"].max() >= per_hour:
            reasons.append(f"{hours['n'].max()} copies in one hour (threshold {per_hour:g})")
        if hours["bad"].max() >= threat:
            reasons.append(f"{hours['bad'].max()} threat copies in one hour (threshold {threat:g})")
        drafts.append(_draft(run, sender, day, DAY, copies, reasons, f"{sender}|{day:%Y-%m-%d}",
                             {"user": sender, "count": n, "threats": bad, "day": f"{day:%Y-%m-%d}"}))
    return drafts


__all__ = ["sent_copies"]
