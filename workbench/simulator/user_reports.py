"""Simulation messages users reported, found in the lake: each marks its target ``reported``.

Two ways a report arrives (as for real phish, mdo-reference §1):

- the user-reported view: a ``UserSubmission`` in CloudAppEvents (the report button) naming the
  message's NetworkMessageId and the reporter — reported at the submission's time;
- the report mailbox: the user forwarded the message as an attachment; ingest records that as a
  ``UserSubmission`` too (:func:`workbench.ingest.batch.report_submission`), at the forward's time.

A report matches a target when the reported message is the one the simulator sent that target
(its Message-ID) and the reporter is that target. Recording goes through the same
:class:`~workbench.simulator.recorder.StoreTracker` as the tracking server's report button, so
a target is reported once, at the first report, and flagged reports stay out of the rates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from workbench.simulator.campaigns import T
from workbench.simulator.model import EventKind, Hit
from workbench.simulator.recorder import StoreTracker


def _sent(store: Any) -> dict[tuple[str, str], tuple[str, datetime | None]]:
    """(Message-ID, recipient) -> (token, reported time) of every message the simulator sent."""
    with store.read() as conn:
        rows = conn.execute(sa.select(T.message_id, T.email, T.token, T.reported)
                            .where(T.message_id.is_not(None))).all()
    return {(r.message_id.strip("<>").lower(), r.email): (r.token, r.reported) for r in rows}


def reports_in_lake(lake: Any, since: datetime | None = None) -> pl.DataFrame:
    """(InternetMessageId, reporter, at, source) of every ``UserSubmission`` the lake holds."""
    raw = pl.col("RawEventData")
    submissions = (lake.scan("CloudAppEvents", since, columns=["Timestamp", "ActionType", "ObjectId", "RawEventData"])
                   .filter(pl.col("ActionType") == "UserSubmission")
                   .select(pl.coalesce(raw.str.json_path_match("$.NetworkMessageId"), pl.col("ObjectId"))
                           .alias("NetworkMessageId"),
                           raw.str.json_path_match("$.UserId").str.to_lowercase().alias("reporter"),
                           pl.col("Timestamp").alias("at"),
                           pl.coalesce(raw.str.json_path_match("$.Source"), pl.lit("report button")).alias("source"))
                   .collect())
    ids = (lake.scan("EmailEvents", None, columns=["NetworkMessageId", "InternetMessageId"])
           .unique("NetworkMessageId").filter(pl.col("NetworkMessageId").is_in(submissions["NetworkMessageId"].implode()))
           .collect())
    return submissions.join(ids, on="NetworkMessageId", how="inner").select("InternetMessageId", "reporter", "at",
                                                                             "source")


def mark_user_reports(store: Any, lake: Any, *, since: datetime | None = None) -> int:
    """Mark the targets whose simulation message they reported; returns how many were newly marked."""
    sent = _sent(store)
    if not sent:
        return 0
    tracker = StoreTracker(store)
    marked = 0
    for row in reports_in_lake(lake, since).sort("at").iter_rows(named=True):
        key = ((row["InternetMessageId"] or "").strip("<>").lower(), row["reporter"] or "")
        found = sent.get(key)
        if found is None or found[1] is not None:
            continue  # not a simulation message, or already reported
        token = found[0]
        tracker.record(token, EventKind.REPORTED, Hit(at=row["at"], ip="", user_agent="", source=row["source"]))
        sent[key] = (token, row["at"])
        marked += 1
    return marked


__all__ = ["mark_user_reports", "reports_in_lake"]
