"""Malicious files in SharePoint, OneDrive and Teams (FileMaliciousContentInfo): one alert per
file hash per day, with every place the file was found, the people who put it there, and the
outside senders who mailed the same file in the month before (so the alert joins the mail
campaign's incident)."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from workbench.detect.policies import evaluator
from workbench.detect.policies.base import SECOND, Run, day_key, lower
from workbench.explorer.query import Cond, Op, Query, Window
from workbench.incidents.model import AlertDraft, Entity, EntityKind, Verdict

MAILED_BEFORE = timedelta(days=30)  # how far back mail carrying the same file is looked for
COLUMNS = ["Timestamp", "Workload", "FileName", "FolderPath", "SiteUrl", "SHA256", "ThreatNames", "FileOwner",
           "LastModifiedBy", "ReportId"]


@evaluator("content_malware")
def content_malware(run: Run) -> list[AlertDraft]:
    files = run.saw(run.scan("FileMaliciousContentInfo", run.back(), COLUMNS)
                    .filter(pl.col("SHA256").is_not_null())
                    .with_columns(lower("SHA256").alias("SHA256"), pl.col("Timestamp").dt.date().alias("day"))
                    .sort("Timestamp").collect())
    drafts = []
    for (sha, _), group in files.group_by("SHA256", "day", maintain_order=True):
        if not group.filter(run.is_new()).height:
            continue
        first, last = group["Timestamp"].min(), group["Timestamp"].max()
        people = list(dict.fromkeys(p.lower() for p in [*group["LastModifiedBy"].drop_nulls(), *group["FileOwner"].drop_nulls()]))
        entities = [Entity.of(EntityKind.FILE, sha, "malicious"), Entity.of(EntityKind.CLUSTER, "file:" + sha)]
        entities += [Entity.of(EntityKind.USER, p, "uploaded") for p in people if "@" in p]
        entities += _mailed_by(run, sha, first)
        family = ", ".join(dict.fromkeys(n for names in group["ThreatNames"].drop_nulls() for n in names.split(", ")))
        places = "; ".join(f"{w}: {f}/{n}" for w, f, n in group.select("Workload", "FolderPath", "FileName").iter_rows())
        query = Query("content_malware", Window.between(first, last + SECOND), Cond("sha256", Op.ANY, (sha,)))
        drafts.append(run.draft(
            f"{sha}:{day_key(first)}",
            {"workload": ", ".join(dict.fromkeys(group["Workload"].drop_nulls())) or "cloud storage",
             "file": group["FileName"][0] or sha, "family": family or "no family named"},
            first, last, entities, query=query, verdicts=[(Entity.of(EntityKind.FILE, sha), Verdict.MALICIOUS)],
            threat_family=family, detail=f"{group.height} file(s): {places}."))
    return drafts


def _mailed_by(run: Run, sha: str, before: datetime) -> list[Entity]:
    """Sender entities of mail that carried the file in the month before it was found."""
    carried = (run.scan("EmailAttachmentInfo", before - MAILED_BEFORE, ["Timestamp", "NetworkMessageId", "SHA256"])
               .filter((lower("SHA256") == sha) & (pl.col("Timestamp") <= before))
               .select("NetworkMessageId").unique().head(500).collect())
    if not carried.height:
        return []
    rows = (run.scan("EmailEvents", before - MAILED_BEFORE, ["NetworkMessageId", "SenderFromAddress", "SenderFromDomain",
                                                             "SenderIPv4"])
            .filter(pl.col("NetworkMessageId").is_in(carried["NetworkMessageId"].implode()))
            .select("SenderFromAddress", "SenderFromDomain", "SenderIPv4").unique().sort("SenderFromAddress")
            .head(50).collect())
    return run.sender_entities(rows)
