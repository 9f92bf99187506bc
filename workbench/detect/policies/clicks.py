"""Clicks on URLs known to be malicious: the ``malicious_url_click`` policy, and the finder the
``risky_signin_after_click`` policy shares.

A click counts when it reached the URL: Safe Links allowed it (``ClickAllowed``) or the user
clicked through the warning page (``IsClickedThrough``). The URL is malicious when one of
these is known within :data:`CLICK_LOOKBACK` after the click:

- the click's own verdict (``ThreatTypes`` Phish or Malware);
- a Phish or Malware verdict on the message it came from, at delivery (EmailEvents) or after
  delivery (a Phish or Malware ZAP in EmailPostDeliveryEvents);
- the same URL in other mail whose verdict came from URL analysis (URL detonation or
  reputation): a message judged phish for its sender or wording says nothing about links it
  shares with harmless mail.

Message verdicts never condemn a link to the organisation's own or a well-known brand's
domain (phish often carries a real privacy-statement link): there only the click's own verdict
counts.

The finding's time is when both the click and the verdict are known (a URL verdict change
alerts hours after the click), so evaluating from a watermark finds it exactly once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from workbench.detect import reference
from workbench.detect.policies import evaluator
from workbench.detect.policies.base import (
    MALICIOUS, MESSAGE_HORIZON, SECOND, ZAP_TYPES, Run, email_entities, has_threat, lower,
)
from workbench.explorer.query import Cond, Op, Query, Window
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Verdict
from workbench.ingest.links import host_of

#: How long after a click its URL's verdict can still arrive and make it an alert.
CLICK_LOOKBACK = timedelta(hours=48)

CLICK_COLUMNS = ["Timestamp", "Url", "ActionType", "AccountUpn", "Workload", "NetworkMessageId", "ThreatTypes",
                 "IPAddress", "IsClickedThrough", "ReportId"]
_URL_VERDICT = pl.col("DetectionMethods").fill_null("").str.contains('"URL ', literal=True).alias("url_verdict")


def _known(clicks: pl.DataFrame, knowledge: pl.DataFrame, key: str, label: str) -> pl.DataFrame:
    """Per click (ReportId), the earliest knowledge about its *key* (message id or URL) from
    ``MESSAGE_HORIZON`` before the click to ``CLICK_LOOKBACK`` after it."""
    if not knowledge.height or not clicks.height:
        return pl.DataFrame(schema={"ReportId": pl.String, f"{label}_at": pl.Datetime("us", "UTC"),
                                    f"{label}_why": pl.String})
    joined = clicks.select("ReportId", "Timestamp", pl.col(key).alias("key")).join(
        knowledge.select("key", "at", "why"), on="key", how="inner")
    joined = joined.filter((pl.col("at") >= pl.col("Timestamp") - MESSAGE_HORIZON)
                           & (pl.col("at") <= pl.col("Timestamp") + CLICK_LOOKBACK))
    return (joined.sort("at").group_by("ReportId").agg(pl.col("at").first().alias(f"{label}_at"),
                                                       pl.col("why").first().alias(f"{label}_why")))


def malicious_clicks(run: Run, start: datetime | None) -> pl.DataFrame:
    """Clicks in ``[start, until)`` that reached a URL known to be malicious: one row per click
    (``ReportId``) with ``user`` (lower case), Url, NetworkMessageId, Workload, IPAddress,
    ``through``, ``Timestamp`` (the click), ``known_at`` and ``why`` (the verdict), and
    ``finding_at`` (when both were known). Every row read counts for the watermark."""
    raw = run.saw(run.scan("UrlClickEvents", start, CLICK_COLUMNS)
                  .filter((pl.col("ActionType") == "ClickAllowed") | pl.col("IsClickedThrough").fill_null(False))
                  .collect())
    clicks = (raw.sort("Timestamp")
              .group_by("ReportId", maintain_order=True)
              .agg(pl.col("Timestamp").first(), lower("AccountUpn").first().alias("user"), pl.col("Url").first(),
                   pl.col("NetworkMessageId").first(), pl.col("Workload").first(), pl.col("IPAddress").first(),
                   pl.col("IsClickedThrough").fill_null(False).any().alias("through"),
                   pl.col("ThreatTypes").drop_nulls().first().alias("click_threat")))
    know_start = start - MESSAGE_HORIZON if start is not None else None
    zaps = run.saw(run.scan("EmailPostDeliveryEvents", know_start,
                            ["Timestamp", "NetworkMessageId", "ActionType", "ThreatTypes", "DetectionMethods"])
                   .filter(pl.col("ActionType").is_in(ZAP_TYPES)).collect())
    bad = run.saw(run.scan("EmailEvents", know_start, ["Timestamp", "NetworkMessageId", "ThreatTypes", "DetectionMethods"])
                  .filter(has_threat("ThreatTypes", MALICIOUS)).collect())
    by_message = pl.concat([
        zaps.select(pl.col("NetworkMessageId").alias("key"), pl.col("Timestamp").alias("at"),
                    pl.format("{} after delivery", pl.col("ActionType")).alias("why"), _URL_VERDICT),
        bad.select(pl.col("NetworkMessageId").alias("key"), pl.col("Timestamp").alias("at"),
                   pl.format("{} verdict at delivery", pl.col("ThreatTypes")).alias("why"), _URL_VERDICT),
    ]).unique(["key", "at", "url_verdict"], keep="first", maintain_order=True)
    # Only a verdict reached by URL analysis says the links themselves are bad: a message
    # judged phish for its sender or wording may link to harmless pages other mail shares.
    by_links = by_message.filter("url_verdict")
    urls = (run.scan("EmailUrlInfo", know_start, ["NetworkMessageId", "Url"])
            .filter(pl.col("NetworkMessageId").is_in(by_links["key"].unique().implode())).unique().collect())
    by_url = (urls.join(by_links, left_on="NetworkMessageId", right_on="key", how="inner")
              .select(pl.col("Url").alias("key"), "at",
                      pl.format("the URL is in other mail ({})", pl.col("why")).alias("why"))
              .unique(["key", "at"], keep="first", maintain_order=True))

    # A message's verdict says nothing about the organisation's own or a brand's links in it
    # (nor does a verdict on other mail carrying them): only the click's own verdict counts there.
    brands = reference.brand_domains()
    own = [run.is_org(host_of(u)) or reference.in_list(host_of(u), brands) for u in clicks["Url"].fill_null("")]
    eligible = clicks.filter(~pl.Series(own, dtype=pl.Boolean)) if clicks.height else clicks
    found = (clicks
             .join(_known(eligible, by_message, "NetworkMessageId", "message"), on="ReportId", how="left")
             .join(_known(eligible, by_url, "Url", "url"), on="ReportId", how="left")
             .with_columns(pl.when(has_threat("click_threat", MALICIOUS)).then(pl.col("Timestamp")).alias("click_at")))
    found = found.with_columns(
        pl.min_horizontal("click_at", "message_at", "url_at").alias("known_at"),
    ).filter(pl.col("known_at").is_not_null())
    return found.with_columns(
        pl.when(pl.col("known_at") == pl.col("click_at"))
        .then(pl.format("the click's verdict was {}", pl.col("click_threat")))
        .when(pl.col("known_at") == pl.col("message_at")).then(pl.format("the message: {}", pl.col("message_why")))
        .otherwise(pl.col("url_why")).alias("why"),
        pl.max_horizontal("Timestamp", "known_at").alias("finding_at"),
    ).select("ReportId", "Timestamp", "user", "Url", "NetworkMessageId", "Workload", "IPAddress", "through",
             "click_threat", "known_at", "why", "finding_at").sort("Timestamp", "ReportId")


def click_copies(run: Run, found: pl.DataFrame) -> pl.DataFrame:
    """The EmailEvents rows of the clicked copies (message id, clicking user)."""
    keys = found.filter(pl.col("NetworkMessageId").is_not_null()).select("NetworkMessageId", pl.col("user").alias("rcpt"))
    start = found["Timestamp"].min() - MESSAGE_HORIZON if found.height else None
    return run.email_rows(keys, start)


@evaluator("malicious_url_click")
def url_clicks(run: Run) -> list[AlertDraft]:
    found = malicious_clicks(run, run.back()).filter(run.is_new("finding_at"))
    if not found.height:
        return []
    copies = click_copies(run, found)
    drafts = []
    for click in found.iter_rows(named=True):
        mine = copies.filter((pl.col("NetworkMessageId") == click["NetworkMessageId"]) & (pl.col("rcpt") == click["user"]))
        url = click["Url"]
        entities = [Entity.of(EntityKind.USER, click["user"], "clicked"), Entity.of(EntityKind.URL, url, "clicked")]
        entities += run.url_entities([url], "clicked")
        entities += email_entities(mine, "clicked") + run.sender_entities(mine)
        verdicts = [(Entity.of(EntityKind.URL, url), Verdict.MALICIOUS)]
        verdicts += [(e, Verdict.MALICIOUS) for e in email_entities(mine) if e.kind is EntityKind.EMAIL]
        how = "clicked through the warning page" if click["through"] else f"allowed ({click['Workload'] or 'Email'})"
        detail = (f"Clicked {click['Timestamp']:%Y-%m-%d %H:%M} UTC, {how}. Known malicious from "
                  f"{click['known_at']:%Y-%m-%d %H:%M} UTC: {click['why']}.")
        query = None if mine.height else Query("url_clicks", Window.between(click["Timestamp"], click["Timestamp"] + SECOND),
                                                Cond("click_id", Op.ANY, (click["ReportId"],)))
        drafts.append(run.draft(
            f"click:{click['ReportId']}", {"user": click["user"], "url": url}, click["Timestamp"], click["finding_at"],
            entities, copies=mine, query=query, verdicts=verdicts, detail=detail))
    return drafts


__all__ = ["malicious_clicks", "click_copies", "CLICK_LOOKBACK"]
