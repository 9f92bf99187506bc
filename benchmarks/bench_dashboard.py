"""Dashboard benchmark: every tile of the threat dashboard for one window, against naive pandas.

Target (dashboard issue): the data work behind all tiles in at most 1 s on 10 million
EmailEvents rows, measured against a naive pandas implementation in the same run.

Cases (same lake files, same window, same numbers — the run checks every one before timing):

- ``workbench_build``: :func:`workbench.dashboard.build` with the named window ending at
  ``--now``: every tile, the insights, and their drill-down queries;
- ``pandas_naive`` (baseline): ``pandas.read_parquet`` of the window's day files of
  EmailEvents, EmailPostDeliveryEvents, CloudAppEvents, UrlClickEvents, AlertInfo and
  IdentityInfo (the columns the tiles need, no filter pushed into the reader), then every
  tile's numbers computed the obvious way with pandas masks, ``groupby``, ``merge`` and
  ``json.loads``, following the definitions of :mod:`workbench.dashboard.data` and
  :mod:`workbench.dashboard.efficacy`.

Compared (the run stops and names the first differences if one is off): every metric of
every tile, which tiles are empty, the insights' numbers, the window and bucket, and the
rows of the tiles' frames (protection status by time and technology, by delivery and the
technology totals; trends per class; the malware trend and families; weekly detections;
top targeted users; users who clicked malicious links; the efficacy shares).

Rounds are interleaved; peak RSS comes from one more run of each case in a fresh process.
Make the tenant first (about 25 minutes, 6 GB)::

    .venv/bin/workbench demo generate --home bench-data --tenant big --users 20000 --end 2026-11-27
    .venv/bin/python -m benchmarks.bench_dashboard --tenant bench-data/tenants/big --now 2026-11-28T00:00:00Z
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, Case, run, run_in_child

TARGET_S = 1.0
SPANS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
TOP = 10

# The definitions of workbench.dashboard.data, written out again for the baseline.
NOT_DELIVERED = ("Junked", "Blocked", "Replaced")
ZERO_DAY = ("File detonation", "File detonation reputation", "File reputation")
ADVANCED_PHISH = ("URL detonation", "URL detonation reputation", "Impersonation brand", "Impersonation domain",
                  "Impersonation user", "Mailbox intelligence impersonation")
BLOCKED_CLICKS = ("ClickBlocked", "ClickBlockedByTenantPolicy")
ZAP_ACTIONS = ("Malware ZAP", "Phish ZAP")
ZAP_DONE = ("Success", "AdminPolicy")
REPORT_TYPES = ("Phish", "Junk", "Not junk")
THREATS = ("Phish", "Malware")
KEY = ["NetworkMessageId", "Recipient"]
SEVERITIES = ("High", "Medium", "Low", "Informational")

COLUMNS = {
    "EmailEvents": ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "ThreatTypes", "DetectionMethods",
                    "DeliveryAction", "EmailDirection", "ThreatNames", "OrgLevelAction", "UserLevelAction",
                    "LatestDeliveryLocation"],
    "EmailPostDeliveryEvents": ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "ActionType",
                                "ActionResult", "ThreatTypes"],
    "CloudAppEvents": ["Timestamp", "ActionType", "ObjectId", "RawEventData"],
    "UrlClickEvents": ["Timestamp", "NetworkMessageId", "AccountUpn", "ActionType", "ThreatTypes", "IsClickedThrough"],
    "AlertInfo": ["Timestamp", "AlertId", "Title", "Category", "Severity"],
    "IdentityInfo": ["Timestamp", "EmailAddress", "Tags"],
}
# Which rows of each table the dashboard reads: the window, from its start on (events about
# mail of the window may come later), or all of it (the directory).
READ = {"EmailEvents": "window", "AlertInfo": "window", "EmailPostDeliveryEvents": "from_start",
        "CloudAppEvents": "from_start", "UrlClickEvents": "from_start", "IdentityInfo": "all"}

# Frames compared between the cases, with their columns in order.
FRAMES = {
    "efficacy.shares": ["stage", "messages", "share"],
    "protection_status.by_technology": ["bucket", "technology", "messages"],
    "protection_status.by_delivery": ["bucket", "status", "messages"],
    "protection_status.technologies": ["technology", "messages"],
    "trends.by_class": ["bucket", "class", "messages"],
    "malware.trend": ["bucket", "messages"],
    "malware.families": ["family", "messages"],
    "weekly.weeks": ["week", "scanned", "threats_stopped", "removed_after_delivery"],
    "targeted_users.users": ["user", "messages", "phish", "malware", "delivered"],
    "clickers.users": ["user", "clicks", "blocked", "reached_the_site", "last_click"],
}


# --------------------------------------------------------------------------- setup


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bucket(start: datetime, end: datetime) -> str:
    """The trend step: hours up to 3 days, days up to 120 days, then weeks."""
    span = end - start
    return "1h" if span <= timedelta(days=3) else "1d" if span <= timedelta(days=120) else "1w"


def _setup(tenant_dir: str, window: str, now: str | None) -> dict[str, Any]:
    """Window and files of one case pair (plain data, so child processes can rebuild it)."""
    from workbench.lake import Lake
    from workbench.tenant import open_tenant

    if window not in SPANS:
        raise SystemExit(f"error: unknown window {window!r}; choose from {', '.join(SPANS)}")
    lake = Lake.for_tenant(open_tenant(tenant_dir))
    mail = lake.partition_files("EmailEvents")
    if not mail:
        raise SystemExit(f"error: {tenant_dir} has no EmailEvents; generate the tenant first (see --help)")
    if now is None:  # the end of the lake's last day, so the window covers the newest mail
        last = datetime.fromisoformat(mail[-1].parent.name.removeprefix("day=")).replace(tzinfo=UTC)
        end = last + timedelta(days=1)
    else:
        end = _utc(now)
    start = end - SPANS[window]
    ranges = {"window": (start, end), "from_start": (start, None), "all": (None, None)}
    files = {t: [str(f) for f in lake.partition_files(t, *ranges[READ[t]])] for t in COLUMNS}
    return {"tenant": tenant_dir, "window": window, "now": end.isoformat(), "start": start.isoformat(),
            "end": end.isoformat(), "bucket": _bucket(start, end), "files": files}


# --------------------------------------------------------------------------- answers


def _plain(value: Any) -> Any:
    """A JSON value both cases spell alike (numpy scalars, pandas timestamps, NaN)."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    return value


def _rows(records: Any) -> list[list[Any]]:
    return [[_plain(v) for v in row] for row in records]


def workbench_build(s: dict[str, Any]) -> dict[str, Any]:
    """``workbench.dashboard.build(lake, window_named(w), now=now)``, then its numbers as plain data."""
    from workbench.dashboard import build, window_named
    from workbench.lake import Lake
    from workbench.tenant import open_tenant

    d = build(Lake.for_tenant(open_tenant(s["tenant"])), window_named(s["window"]), now=_utc(s["now"]))
    metrics = {f"{t.key}.{m.key}": m.value for t in d.tiles for m in t.metrics}
    frames = {}
    for name, columns in FRAMES.items():
        tile, frame = name.split(".")
        df = d.tile(tile).frames.get(frame)
        if df is None or any(c not in df.columns for c in columns):
            raise SystemExit(f"error: build() no longer gives frame {name} with columns {columns}; "
                             f"update benchmarks/bench_dashboard.py (has: {None if df is None else df.columns})")
        frames[name] = _rows(df.select(columns).iter_rows())
    return {"window": [d.start.isoformat(), d.end.isoformat(), d.bucket],
            "rows": metrics["weekly.scanned"],
            "empty_tiles": [t.key for t in d.tiles if not t.metrics and not t.frames],
            "metrics": metrics, "insights": {i.key: i.value for i in d.insights}, "frames": frames}


def _shares(counts: list[int]) -> list[float]:
    """Percentages with one decimal that add up to 100 (largest remainder), zeros for nothing."""
    total = sum(counts)
    if not total:
        return [0.0] * len(counts)
    exact = [c * 1000 / total for c in counts]
    units = [int(x) for x in exact]
    for i in sorted(range(len(counts)), key=lambda i: exact[i] - units[i], reverse=True)[: 1000 - sum(units)]:
        units[i] += 1
    return [u / 10 for u in units]


def _json_field(raw: Any, key: str) -> str | None:
    """``$.key`` of a JSON object as text (strings unquoted, numbers as written), like a JSON path match."""
    if not isinstance(raw, str):
        return None
    value = json.loads(raw).get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def pandas_naive(s: dict[str, Any]) -> dict[str, Any]:
    """Every tile's numbers with plain pandas over the day files of the window."""
    import numpy as np
    import pandas as pd

    start, end, bucket = pd.Timestamp(s["start"]), pd.Timestamp(s["end"]), s["bucket"]

    def read(table: str) -> pd.DataFrame:
        files, columns = s["files"][table], COLUMNS[table]
        if not files:
            df = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
            df["Timestamp"] = pd.Series(dtype="datetime64[us, UTC]")
            return df
        df = pd.read_parquet(files, columns=columns)
        if READ[table] == "window":
            return df[(df["Timestamp"] >= start) & (df["Timestamp"] < end)]
        if READ[table] == "from_start":
            return df[df["Timestamp"] >= start]
        return df

    def truncate(ts: pd.Series, step: str) -> pd.Series:
        day = ts.dt.floor("D")
        if step == "1h":
            return ts.dt.floor("h")
        if step == "1d":
            return day
        return day - pd.to_timedelta(day.dt.day_of_week, unit="D")  # weeks start on Monday

    def contains(col: pd.Series, text: str) -> pd.Series:
        return col.fillna("").str.contains(text, regex=False)

    def lists_any(col: pd.Series, values: tuple[str, ...]) -> pd.Series:
        return col.fillna("").str.contains("|".join(re.escape(f'"{v}"') for v in values), regex=True)

    def frame(df: pd.DataFrame, name: str) -> list[list[Any]]:
        return _rows(df[FRAMES[name]].itertuples(index=False, name=None))

    # ---- the small tables
    pde = read("EmailPostDeliveryEvents")
    pde = pde[pde["ActionType"].isin([*ZAP_ACTIONS, "Redelivery"])].copy()
    pde["Recipient"] = pde["RecipientEmailAddress"].str.lower()
    cloud = read("CloudAppEvents")
    cloud = cloud[cloud["ActionType"].isin(["UserSubmission", "AdminSubmissionSubmitted"])]
    subs = pd.DataFrame({
        "ActionType": cloud["ActionType"],
        "NetworkMessageId": cloud["ObjectId"].fillna(cloud["RawEventData"].map(lambda r: _json_field(r, "NetworkMessageId"))),
        "Recipient": cloud["RawEventData"].map(lambda r: _json_field(r, "UserId")).str.lower(),
        "ReportType": cloud["RawEventData"].map(lambda r: _json_field(r, "ReportType")),
        "SubmissionType": cloud["RawEventData"].map(lambda r: _json_field(r, "SubmissionType")),
    })
    clicks = read("UrlClickEvents").copy()
    clicks["Recipient"] = clicks["AccountUpn"].str.lower()
    alerts = read("AlertInfo")
    identity = read("IdentityInfo")

    # ---- mail of the window
    e = read("EmailEvents")
    malware, phish = contains(e["ThreatTypes"], "Malware"), contains(e["ThreatTypes"], "Phish")
    spam = contains(e["ThreatTypes"], "Spam")
    delivered = e["DeliveryAction"].eq("Delivered")
    not_delivered = e["DeliveryAction"].notna() & ~delivered  # an unknown delivery action is neither
    klass = pd.Series(np.select([malware, phish, spam], ["Malware", "Phish", "Spam"], "Good mail"), index=e.index)
    when = truncate(e["Timestamp"], bucket)

    # trends and weekly detections: every copy, one class each
    volume = pd.DataFrame({"bucket": when, "class": klass,
                           "stopped": klass.isin(THREATS) & not_delivered, "week": truncate(when, "1w")})
    hours = pd.Series(pd.date_range(start, end, freq="h", inclusive="left"))
    grid = pd.MultiIndex.from_product([truncate(hours, bucket).unique(), ["Good mail", "Malware", "Phish", "Spam"]],
                                      names=["bucket", "class"])  # a quiet bucket is a zero
    by_class = (volume.groupby(["bucket", "class"]).size().rename("messages").reindex(grid, fill_value=0)
                .reset_index().sort_values(["bucket", "class"]))
    class_totals = volume["class"].value_counts()
    per_week = volume.groupby("week").agg(scanned=("class", "size"), threats_stopped=("stopped", "sum"))

    # phish and malware copies
    threat = malware | phish
    t = e[threat]
    t_mal, t_phish, t_del, t_notdel, t_when = malware[threat], phish[threat], delivered[threat], not_delivered[threat], when[threat]
    dm = t["DetectionMethods"]
    first_malware = dm.str.extract(r'"Malware"\s*:\s*\[\s*"([^"]+)"', expand=False)
    first_phish = dm.str.extract(r'"Phish"\s*:\s*\[\s*"([^"]+)"', expand=False)
    technology = first_malware.where(t_mal, first_phish).fillna("Other")
    zero_day = lists_any(dm, ZERO_DAY)
    advanced = lists_any(dm, ADVANCED_PHISH)
    inbound = t["EmailDirection"].eq("Inbound")
    allowed = t["OrgLevelAction"].eq("Allow") | t["UserLevelAction"].eq("Allow")
    in_inbox = t["LatestDeliveryLocation"].eq("Inbox/folder")
    tf = pd.DataFrame({"bucket": t_when, "technology": technology,
                       "status": np.where(t_del, "Delivered", "Blocked")})
    by_tech = tf.groupby(["bucket", "technology"]).size().rename("messages").reset_index().sort_values(["bucket", "technology"])
    by_delivery = tf.groupby(["bucket", "status"]).size().rename("messages").reset_index().sort_values(["bucket", "status"])
    techs = (tf.groupby("technology").size().rename("messages").reset_index()
             .sort_values(["messages", "technology"], ascending=[False, True]))
    malware_trend = t_when[t_mal].value_counts().rename("messages").rename_axis("bucket").reset_index().sort_values("bucket")
    names = t.loc[t_mal, "ThreatNames"].str.split(",").explode().str.strip()
    names = names.fillna("").replace("", "(no family named)")
    families = (names.value_counts().rename("messages").rename_axis("family").reset_index()
                .sort_values(["messages", "family"], ascending=[False, True]).head(TOP))
    users = (pd.DataFrame({"user": t["RecipientEmailAddress"].str.lower(), "phish": t_phish, "malware": t_mal,
                           "delivered": t_del})
             .groupby("user", dropna=False)
             .agg(messages=("phish", "size"), phish=("phish", "sum"), malware=("malware", "sum"),
                  delivered=("delivered", "sum"))
             .reset_index())
    top_users = users.sort_values(["messages", "user"], ascending=[False, True]).head(TOP)

    # copies that post-delivery events, submissions and clicks point at
    pointed = pd.concat([pde["NetworkMessageId"], subs["NetworkMessageId"], clicks["NetworkMessageId"]]).dropna().unique()
    hit = e["NetworkMessageId"].isin(pointed)
    copies = pd.DataFrame({"Delivered": e.loc[hit, "Timestamp"], "NetworkMessageId": e.loc[hit, "NetworkMessageId"],
                           "Recipient": e.loc[hit, "RecipientEmailAddress"].str.lower(),
                           "EmailDirection": e.loc[hit, "EmailDirection"], "threat": threat[hit]})
    clicked_copies = pd.DataFrame({"NetworkMessageId": t["NetworkMessageId"],
                                   "Recipient": t["RecipientEmailAddress"].str.lower()})[
        t["NetworkMessageId"].isin(clicks["NetworkMessageId"].dropna().unique())]

    # after delivery (efficacy, mdo-reference §2.2): each inbound copy in at most one group
    inbound_copies = copies[copies["EmailDirection"].eq("Inbound")].drop_duplicates(KEY)
    joined = pde.merge(inbound_copies, on=KEY, how="inner")
    fp = joined[joined["threat"] & joined["ActionType"].eq("Redelivery") & joined["ThreatTypes"].isna()].drop_duplicates(KEY)
    clean = joined[~joined["threat"] & joined["ActionType"].isin(ZAP_ACTIONS)]
    removed = clean[clean["ActionResult"].isin(ZAP_DONE)].drop_duplicates(KEY)
    removed_keys = set(zip(removed["NetworkMessageId"], removed["Recipient"]))
    failed = clean[[k not in removed_keys for k in zip(clean["NetworkMessageId"], clean["Recipient"])]].drop_duplicates(KEY)
    failed_keys = set(zip(failed["NetworkMessageId"], failed["Recipient"]))
    admin_ids = subs.loc[subs["ActionType"].eq("AdminSubmissionSubmitted") & subs["SubmissionType"].isin(["1", "2"]),
                         "NetworkMessageId"]
    admin = inbound_copies[~inbound_copies["threat"] & inbound_copies["NetworkMessageId"].isin(admin_ids)]
    admin = admin[[k not in removed_keys and k not in failed_keys
                   for k in zip(admin["NetworkMessageId"], admin["Recipient"])]]
    zapped = (pde.loc[pde["ActionType"].isin(ZAP_ACTIONS), KEY].drop_duplicates()
              .merge(copies[KEY].drop_duplicates(), on=KEY, how="inner"))
    pre = max(int(inbound.sum()) - len(fp), 0)
    post, uncaught = len(removed), len(failed) + len(admin)
    shares = pd.DataFrame({"stage": ["Pre-delivery", "Post-delivery", "Uncaught"], "messages": [pre, post, uncaught],
                           "share": _shares([pre, post, uncaught])})

    # weekly: removals counted in the week the copy was delivered
    removed_weeks = truncate(removed["Delivered"], "1w").value_counts().rename("removed_after_delivery")
    weeks = per_week.join(removed_weeks, how="left").fillna(0).astype("int64").rename_axis("week").reset_index()
    weeks = weeks.sort_values("week")

    # summary
    reports = subs.loc[subs["ActionType"].eq("UserSubmission") & subs["ReportType"].isin(REPORT_TYPES), KEY].drop_duplicates()
    reported = len(copies[KEY].drop_duplicates().merge(reports, on=KEY, how="inner"))
    blocked_clicks = int(((clicks["Timestamp"] < end) & clicks["ActionType"].isin(BLOCKED_CLICKS)).sum())

    # clickers: clicks on copies malicious at delivery or acted on by a ZAP
    malicious = pd.concat([clicked_copies[KEY], zapped[KEY]]).drop_duplicates()
    mc = clicks.merge(malicious, on=KEY, how="inner")
    was_blocked = mc["ActionType"].isin(BLOCKED_CLICKS)
    through = mc["IsClickedThrough"].fillna(False).astype(bool)
    clickers = (pd.DataFrame({"user": mc["Recipient"], "blocked": was_blocked, "reached": ~was_blocked | through,
                              "ts": mc["Timestamp"]})
                .groupby("user", dropna=False)
                .agg(clicks=("blocked", "size"), blocked=("blocked", "sum"), reached_the_site=("reached", "sum"),
                     last_click=("ts", "max"))
                .reset_index().sort_values(["clicks", "user"], ascending=[False, True]))

    # priority accounts: their latest directory entry has the tag
    latest = identity.sort_values("Timestamp", kind="stable").drop_duplicates("EmailAddress", keep="last")
    priority = latest.loc[contains(latest["Tags"], "Priority account"), "EmailAddress"].str.lower()
    priority_hit = users[users["user"].isin(priority)]

    n = lambda mask: int(mask.sum())  # noqa: E731
    detected, t_delivered = len(t), n(t_del)
    metrics = {
        "summary.malware_blocked": n(t_mal & t_notdel),
        "summary.phish_blocked": n(t_phish & t_notdel),
        "summary.reported": reported,
        "summary.zero_day_malware": n(t_mal & zero_day),
        "summary.advanced_phish": n(t_phish & advanced),
        "summary.urls_blocked_at_click": blocked_clicks,
        "efficacy.pre_delivery": pre,
        "efficacy.post_delivery": post,
        "efficacy.uncaught": uncaught,
        "efficacy.malicious": pre + post + uncaught,
        "protection_status.detected": detected,
        "protection_status.delivered": t_delivered,
        "protection_status.blocked": detected - t_delivered,
        **{f"trends.{c.lower().replace(' ', '_')}": int(class_totals.get(c, 0))
           for c in ("Malware", "Phish", "Spam", "Good mail")},
        "malware.malware": n(t_mal),
        "weekly.scanned": int(weeks["scanned"].sum()),
        "weekly.threats_stopped": int(weeks["threats_stopped"].sum()),
        "weekly.removed_after_delivery": int(weeks["removed_after_delivery"].sum()),
        "clickers.users": len(clickers),
        "clickers.clicks": len(mc),
    }
    empty = ["incidents", "intel"]
    if len(alerts):
        severity = alerts["Severity"].value_counts()
        metrics.update({f"alerts.{v.lower()}": int(severity.get(v, 0)) for v in SEVERITIES})
    else:
        empty.insert(0, "alerts")
    found = {
        "allowed_threats": n(t_del & allowed),
        "still_in_mailboxes": n(t_del & in_inbox),
        "clicked_malicious": len(clickers),
        "priority_targeted": int(priority_hit["messages"].sum()),
        "removed_after_delivery": post,
        "user_reports": reported,
    }
    frames = {
        "efficacy.shares": frame(shares, "efficacy.shares"),
        "protection_status.by_technology": frame(by_tech, "protection_status.by_technology"),
        "protection_status.by_delivery": frame(by_delivery, "protection_status.by_delivery"),
        "protection_status.technologies": frame(techs, "protection_status.technologies"),
        "trends.by_class": frame(by_class, "trends.by_class"),
        "malware.trend": frame(malware_trend, "malware.trend"),
        "malware.families": frame(families, "malware.families"),
        "weekly.weeks": frame(weeks, "weekly.weeks"),
        "targeted_users.users": frame(top_users, "targeted_users.users"),
        "clickers.users": frame(clickers.head(TOP), "clickers.users"),
    }
    return {"window": [start.isoformat(), end.isoformat(), bucket], "rows": len(e), "empty_tiles": empty,
            "metrics": metrics, "insights": {k: v for k, v in found.items() if v}, "frames": frames}


CASES = {"pandas_naive": pandas_naive, "workbench_build": workbench_build}


def workbench_build_cold(s: dict[str, Any], cache_root: str) -> dict[str, Any] | None:
    """One build with the dashboard's per-day projection cache pointed at an empty folder: the
    first build after new mail (every day of the window derived from the lake and written).
    None when the workbench keeps no such cache (every build is then cold)."""
    import time

    try:
        from workbench.dashboard import projection
    except ImportError:
        return None
    if not callable(getattr(projection, "cache_dir", None)):
        return None
    projection.cache_dir = lambda lake: Path(cache_root)  # the tenant's own cache stays untouched
    started = time.perf_counter()
    answers = workbench_build(s)
    return {"seconds": time.perf_counter() - started, "answers": answers}


# --------------------------------------------------------------------------- cross-check


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Every way the workbench's answers (*ours*) differ from the baseline's (*theirs*)."""
    out: list[str] = []
    for key in ("window", "rows", "empty_tiles"):
        if ours[key] != theirs[key]:
            out.append(f"{key}: workbench {ours[key]!r}, pandas {theirs[key]!r}")
    for group in ("metrics", "insights"):
        a, b = ours[group], theirs[group]
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                out.append(f"{group} {name}: workbench {a.get(name, 'missing')}, pandas {b.get(name, 'missing')}")
    for name in FRAMES:
        a, b = ours["frames"][name], theirs["frames"][name]
        if a == b:
            continue
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        out.append(f"frame {name} ({', '.join(FRAMES[name])}): {len(a)} rows in workbench, {len(b)} in pandas; "
                   f"first difference at row {first}: workbench {a[first] if first < len(a) else 'none'}, "
                   f"pandas {b[first] if first < len(b) else 'none'}")
    return out


def _cold(s: dict[str, Any], expected: dict[str, Any]) -> dict[str, float] | None:
    """Time one cold build in a fresh process (cache in a temporary folder); it must agree too."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-cache-") as folder:
        child = run_in_child(workbench_build_cold, s, folder)
    if child.result is None:
        return None
    diff = differences(child.result["answers"], expected)
    if diff:
        raise SystemExit("error: the cold workbench_build and pandas_naive disagree:\n  " + "\n  ".join(diff))
    return {"seconds": round(child.result["seconds"], 4), "peak_rss_mb": round(child.peak_rss_mb, 1)}


def _agree(answers: dict[str, dict[str, Any]]) -> None:
    diff = differences(answers["workbench_build"], answers["pandas_naive"])
    if diff:
        raise SystemExit("error: workbench_build and pandas_naive disagree:\n  " + "\n  ".join(diff))


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", required=True, help="tenant folder (or name) holding the large lake")
    parser.add_argument("--window", default="30d", help=f"comma-separated, each one of {', '.join(SPANS)}")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--now", default=None,
                        help="ISO time the relative windows end at (default: the end of the lake's last EmailEvents day)")
    parser.add_argument("--no-children", action="store_true",
                        help="skip the runs in fresh processes (peak RSS, cold build): for quick checks")
    args = parser.parse_args(argv)
    reports = []
    for window in [w.strip() for w in args.window.split(",") if w.strip()]:
        s = _setup(args.tenant, window, args.now)
        print(f"{window}: {s['start']} .. {s['end']} ({s['bucket']} buckets); cross-checking every tile ...")
        answers = {name: fn(s) for name, fn in CASES.items()}  # also the warm-up of every case
        _agree(answers)
        checked = (len(answers["workbench_build"]["metrics"]), len(answers["workbench_build"]["insights"]),
                   sum(len(f) for f in answers["workbench_build"]["frames"].values()))
        print(f"  both agree: {checked[0]} metrics, {checked[1]} insights, {checked[2]} frame rows")
        if args.no_children:
            peaks: dict[str, float | None] = dict.fromkeys(CASES)
            cold = None
        else:
            peaks = {name: run_in_child(fn, s).peak_rss_mb for name, fn in CASES.items()}
            cold = _cold(s, answers["pandas_naive"])
        rows = answers["workbench_build"]["rows"]
        report = run(
            f"dashboard_{window}",
            [Case(name, (lambda fn=fn: {"rows": fn(s)["rows"]}), baseline=name == "pandas_naive",
                  description=fn.__doc__ or name) for name, fn in CASES.items()],
            repeat=args.repeat, warmup=0, interleave=True,
            params={"tenant": args.tenant, "window": window, "now": s["now"], "start": s["start"], "end": s["end"],
                    "files": {t: len(f) for t, f in s["files"].items()}},
            setup={"email_rows": rows, "metrics_checked": checked[0], "insights_checked": checked[1],
                   "frame_rows_checked": checked[2], "cold_build": cold},
            results_dir=None,
        )
        for case in report["cases"]:
            peak = peaks[case["name"]]
            case["extra"] = {"rows": rows, **({"peak_rss_mb": round(peak, 1)} if peak is not None else {})}
        wb = next(c for c in report["cases"] if c["name"] == "workbench_build")
        pd_ = next(c for c in report["cases"] if c["name"] == "pandas_naive")
        verdict = "meets" if wb["median"] <= TARGET_S else "misses"
        print(f"{window}: workbench_build {wb['median']:.3f} s median ({verdict} the {TARGET_S:g} s target) on "
              f"{rows:,} EmailEvents rows; pandas_naive {pd_['median']:.3f} s; ratio {wb['ratio']:.3f} "
              f"({1 / wb['ratio']:.1f}x faster)" + ("" if args.no_children else
              f"; peak RSS {peaks['workbench_build']:.0f} MB (pandas {peaks['pandas_naive']:.0f} MB)"))
        if cold:
            print(f"{window}: cold workbench_build (empty projection cache, fresh process) {cold['seconds']:.3f} s, "
                  f"peak RSS {cold['peak_rss_mb']:.0f} MB")
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            (results_dir / f"dashboard_{window}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        reports.append(report)
    return reports


if __name__ == "__main__":
    main()
