"""The demo tenant: a realistic organisation with a month of mail and planted attacks.

``generate("demo", users=300, days=30, seed=7)`` builds ``<home>/tenants/demo/`` with the
lake (every canonical table), the mail store (raw RFC 5322 messages and a folder per
recipient copy), the file store (``files/``: shared SharePoint, OneDrive and Teams files,
including the content-malware story's, whose SHA256 is that of their FileMaliciousContentInfo rows) and ``scenarios.json`` (ground truth: the ids of every row that belongs to
each planted story). The same seed, user count, day count and end date give identical rows
and identical raw messages. Generation streams day by day, so memory stays flat as the
tenant grows; it writes into a staging folder that becomes the tenant only when complete.
"""

from __future__ import annotations

import json
import time
from functools import partial
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from workbench import __version__, schema, tenant as tenants
from workbench.enums import (
    ActionResult,
    ActionTrigger,
    DeliveryLocation,
    LatestDeliveryAction,
    PostDeliveryAction,
)
from workbench.errors import InputError
from workbench.ingest.demo import activity, lures, org as orgs, stories
from workbench.ingest.demo.content import background_templates
from workbench.detect import Context
from workbench.ingest.batch import protected_people
from workbench.ingest.demo.emit import Catalog, emit, header_blocks, spec_frame
from workbench.ingest.demo.judge import IntelFeed, Judge, Zap, zap_type
from workbench.ingest.demo.traffic import WORK_HOURS, Traffic
from workbench.files.store import FileStore
from workbench.ingest.demo.shared import benign_files
from workbench.lake import Lake
from workbench.mail.embedded import EmbeddedMailStore

DEFAULT_USERS, DEFAULT_DAYS, DEFAULT_SEED = 300, 30, 7
MIN_USERS, MAX_USERS, MAX_DAYS = 5, 1_000_000, 3650
_ESTABLISHED = ["internal", "partner", "saas", "newsletter", "outbound"]


@dataclass(frozen=True)
class GenerationSummary:
    tenant: str
    root: Path
    organisation: str
    users: int
    days: int
    seed: int
    start: datetime
    end: datetime
    rows: dict[str, int]
    stories: list[str]
    raw_messages: int
    seconds: float
    extra: dict = field(default_factory=dict)

    def render(self) -> str:
        width = max(len(t) for t in self.rows)
        lines = [
            f"tenant {self.tenant!r} ({self.organisation}, {self.users} users, {self.days} days, seed {self.seed}) "
            f"at {self.root}",
            f"window {self.start:%Y-%m-%d} .. {self.end - timedelta(days=1):%Y-%m-%d}, generated in {self.seconds:.1f} s",
            "",
            f"{'table':<{width}}  rows",
        ]
        lines += [f"{name:<{width}}  {count:>10,}" for name, count in self.rows.items()]
        lines += ["", f"raw messages in the mail store: {self.raw_messages:,}", f"stories planted ({len(self.stories)}): "
                  + ", ".join(self.stories), "ground truth: scenarios.json"]
        return "\n".join(lines)


def _check(users: int, days: int) -> None:
    if not MIN_USERS <= users <= MAX_USERS:
        raise InputError(
            f"--users must be between {MIN_USERS} and {MAX_USERS:,} (got {users}; the planted stories need "
            f"{MIN_USERS} mailboxes); try --users 300"
        )
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"--days must be between 1 and {MAX_DAYS} (got {days}); try --days 30")


def _uuid_maker(rng: np.random.Generator):
    def uuids(n: int) -> list[str]:
        raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
        h = raw.tobytes().hex()
        return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
                for i in range(0, 32 * n, 32)]

    return uuids


def _apply_zaps(specs: pl.DataFrame, zaps: list[Zap], prefix: str, first_id: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Move the copies later intelligence condemned to quarantine; their EmailPostDeliveryEvents rows."""
    if not zaps:
        return specs, schema.EmailPostDeliveryEvents.empty()
    rows = [z.row for z in zaps]
    zapped = pl.Series(np.isin(np.arange(len(specs)), rows))
    specs = specs.with_columns(
        LatestDeliveryLocation=pl.when(zapped).then(pl.lit(DeliveryLocation.QUARANTINE.value)).otherwise("LatestDeliveryLocation"),
        LatestDeliveryAction=pl.when(zapped).then(pl.lit(LatestDeliveryAction.MOVED_TO_QUARANTINE.value)).otherwise("LatestDeliveryAction"),
    )
    copies = specs[rows]
    post = pl.DataFrame({
        "Timestamp": pl.Series([z.timestamp for z in zaps], dtype=pl.Datetime("us", "UTC")),
        "NetworkMessageId": copies["NetworkMessageId"], "InternetMessageId": copies["InternetMessageId"],
        "Action": PostDeliveryAction.MOVE_TO_QUARANTINE.value,
        "ActionType": [zap_type(z.threat).value for z in zaps],
        "ActionTrigger": ActionTrigger.SPECIAL_ACTION.value, "ActionResult": ActionResult.SUCCESS.value,
        "RecipientEmailAddress": copies["RecipientEmailAddress"], "SenderFromAddress": copies["SenderFromAddress"],
        "EmailDirection": copies["EmailDirection"], "DeliveryLocation": DeliveryLocation.QUARANTINE.value,
        "ThreatTypes": [z.threat for z in zaps], "DetectionMethods": [z.judgement.columns["DetectionMethods"] for z in zaps],
        "ReportId": [f"{prefix}{first_id + i:07d}" for i in range(len(zaps))],
    })
    return specs, schema.EmailPostDeliveryEvents.conform(post)


PART_ROWS = 120_000


def _day_parts(specs: pl.DataFrame, stories: pl.DataFrame):  # noqa: ANN202 - Iterator[tuple[DataFrame, DataFrame]]
    """(traffic part, story part) pairs covering a day, cut at timestamps between parts of about
    PART_ROWS rows; *specs* is sorted by Timestamp. A small day is one part."""
    n = len(specs)
    if n <= PART_ROWS:
        yield specs, stories
        return
    stamps = specs["Timestamp"]
    cuts = [0]
    for target in range(PART_ROWS, n, PART_ROWS):
        at = stamps.search_sorted(stamps[target], side="left")  # never split equal timestamps
        if at > cuts[-1]:
            cuts.append(at)
    cuts.append(n)
    for k, (lo, hi) in enumerate(zip(cuts, cuts[1:])):
        part = specs[lo:hi]
        first = stamps[lo] if k else None
        last = stamps[hi] if hi < n else None
        keep = pl.lit(True)
        if first is not None:
            keep = keep & (pl.col("Timestamp") >= first)
        if last is not None:
            keep = keep & (pl.col("Timestamp") < last)
        yield part, stories.filter(keep)


class _FirstContact:
    """Which (sender, recipient) pairs were seen before, for IsFirstContact."""

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def mark(self, specs: pl.DataFrame) -> pl.DataFrame:
        # Established correspondents (colleagues, partners, services, newsletters) wrote before
        # the window opened; only the others are tracked.
        tracked = ~specs["_category"].is_in(_ESTABLISHED).to_numpy()
        pairs = specs.select(pl.concat_str("SenderFromAddress", "RecipientEmailAddress").hash(seed=0)).to_series().to_numpy()
        first = tracked & ~np.isin(pairs, self.seen)
        self.seen = np.union1d(self.seen, pairs[tracked])
        return specs.with_columns(IsFirstContact=pl.Series(first))


def generate(
    name: str = tenants.DEFAULT_TENANT,
    *,
    users: int = DEFAULT_USERS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    end: date | None = None,
    base: Path | None = None,
    force: bool = False,
    raw: bool = True,
    progress: bool = False,
) -> GenerationSummary:
    """Generate a demo tenant; see the module docstring. Returns a printable summary."""
    _check(users, days)
    started = time.perf_counter()
    last_day = end or datetime.now(timezone.utc).date()
    window_end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=timezone.utc) + timedelta(days=1)
    window_start = window_end - timedelta(days=days)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    org_rng, content_rng, story_rng, noise_rng = streams

    with tenants.staging(name, force=force, base=base) as t:
        org = orgs.build(org_rng, users)
        stem = org.primary_domain.split(".")[0]
        catalog = Catalog()
        background = background_templates(content_rng, stem, last_day.year)
        for pool in background.values():
            for tpl in pool:
                catalog.add(tpl)
        noise, noise_senders = lures.commodity(noise_rng, catalog.next_id(), org.name)
        for pool in noise.values():
            for tpl in pool:
                catalog.add(tpl)
        feed = IntelFeed()
        lures.commodity_intel(noise_rng, noise, window_start, window_end, feed)
        headers = partial(header_blocks, catalog=catalog, org_domains=org.domains, edge_ip=org.edge_ip, mx_host=org.mx_host)
        identity = activity.identity_info(org, window_start)
        context = Context(org_domains=tuple(org.domains), protected_people=protected_people(identity))  # as ingest builds it
        judge = Judge(context, feed, window_end, headers, catalog.templates)
        planter = stories.Planter(org, story_rng, catalog, window_start, window_end, judge)
        truth = stories.plant(planter)
        story_specs = spec_frame(planter.specs).with_columns(_category=pl.lit("story"))
        files = FileStore(t.files_dir)  # the shared files: the planted ones and some ordinary ones
        files.fill([*benign_files(org), *planter.files])
        t.root.joinpath("intel").mkdir(exist_ok=True)
        feed.write_stix(t.root / "intel" / "demo-feed.stix.json")
        story_rows = {table: schema.table(table).from_rows(rows) for table, rows in planter.rows.items()}

        lake = Lake(t.lake_dir)
        store = EmbeddedMailStore(t.mail_dir / "store.sqlite", bulk=True) if raw else None
        if store:
            for tpl in catalog.templates.values():
                store.put_body(tpl.body)
        counts: dict[str, int] = {name: 0 for name in schema.TABLES}

        def write(table: str, frame: pl.DataFrame) -> None:
            """Append the rows that fall inside the window (nothing happens after 'now')."""
            ts = pl.col(schema.table(table).time_column)
            frame = frame.filter((ts >= window_start) & (ts < window_end))
            if len(frame):
                counts[table] += lake.append(table, frame).rows_written

        write("IdentityInfo", identity)
        traffic = Traffic(org, background, noise, noise_senders)
        first_contact = _FirstContact()
        users_by_upn = {u.upn.lower(): u for u in org.users}
        raw_messages = 0
        day_list = [window_start.date() + timedelta(days=i) for i in range(days)]
        bar = tqdm(day_list, desc=f"generating {name}", unit="day", disable=not progress, leave=False)
        for i, day in enumerate(bar):
            rng = np.random.default_rng(np.random.SeedSequence([seed, i, 1]))
            tag = f"{day:%Y%m%d}"
            specs = traffic.finish(traffic.day(rng, day, _uuid_maker(rng)), window_start, window_end, f"{tag}E")
            specs = first_contact.mark(specs).sort("Timestamp", maintain_order=True)
            todays = story_specs.filter(pl.col("Timestamp").dt.date() == day)
            posts = clicks = 0
            # A large day is generated in parts of about PART_ROWS copies (cut between timestamps,
            # so a message's copies stay together): memory follows the part, not the day.
            for part, stories_part in _day_parts(specs, todays):
                part, zaps = judge.judge(part)
                part = part.with_columns(LatestDeliveryAction=pl.col("DeliveryAction"),
                                         LatestDeliveryLocation=pl.col("DeliveryLocation"))
                part, post = _apply_zaps(part, zaps, f"{tag}P", posts)
                posts += post.height
                part = pl.concat([part.select(stories_part.columns), stories_part], how="vertical").sort(
                    "Timestamp", "NetworkMessageId", "RecipientEmailAddress")
                out = emit(part.drop("_category"), catalog, org_domains=org.domains, edge_ip=org.edge_ip,
                           mx_host=org.mx_host)
                for table, frame in out.tables.items():
                    write(table, frame)
                write("EmailPostDeliveryEvents", post)
                day_clicks = activity.day_clicks(rng, out.tables["EmailEvents"], out.tables["EmailUrlInfo"], users_by_upn,
                                                 f"{tag}K", clicks)
                clicks += day_clicks.height
                write("UrlClickEvents", day_clicks)
                if store:
                    store.put_message_frame(out.raw_headers)
                    store.place(out.placements)
                    raw_messages += len(out.raw_headers)
                del part, out, post, day_clicks
            write("AADSignInEventsBeta", activity.day_signins(rng, org, day, _uuid_maker(rng), WORK_HOURS, f"{tag}S"))
            write("CloudAppEvents", activity.day_cloud_events(rng, org, day, WORK_HOURS, f"{tag}C"))
            write("DeviceInfo", activity.device_info(org, day))
            for table, frame in story_rows.items():
                write(table, frame.filter(pl.col(schema.table(table).time_column).dt.date() == day))
            bar.set_postfix(emails=f"{counts['EmailEvents']:,}")
        bar.close()
        lake.compact()  # one file per day partition (a day's mail spills into its neighbours' partitions)
        if store:
            store.close()

        window = {"start": window_start.isoformat(), "end": window_end.isoformat()}
        t.scenarios_path.write_text(json.dumps({"tenant": name, "seed": seed, "window": window, "stories": truth},
                                               indent=2, default=str) + "\n")
        summary = GenerationSummary(
            tenant=name, root=tenants.tenants_dir(base) / name, organisation=org.name, users=users, days=days, seed=seed,
            start=window_start, end=window_end, rows=counts, stories=[s["id"] for s in truth], raw_messages=raw_messages,
            seconds=time.perf_counter() - started,
        )
        shared = len(files.list())
        tenants.write_manifest(t, {
            "name": name, "kind": "demo", "workbench_version": __version__,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "parameters": {"users": users, "days": days, "seed": seed, "end": last_day.isoformat(), "raw": raw},
            "window": window,
            "organisation": {"name": org.name, "domains": list(org.domains), "tenant_id": org.tenant_id},
            "rows": counts, "raw_messages": raw_messages, "shared_files": shared, "stories": summary.stories,
            "verdicts": {"evaluations": judge.evaluations, "intel_feed": "intel/demo-feed.stix.json",
                         "indicators": len(feed.indicators)},
        })
    return summary


__all__ = ["generate", "GenerationSummary", "DEFAULT_USERS", "DEFAULT_DAYS", "DEFAULT_SEED"]
