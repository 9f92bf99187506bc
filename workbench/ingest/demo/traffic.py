"""Ordinary mail traffic, drawn a day at a time with vectorised numpy sampling.

Volumes follow working hours in each person's office time zone and the working week;
categories (colleagues, partners, SaaS notifications, newsletters, spam, outside people,
outbound mail, and the steady trickle of commodity phish and malware) have their own
senders, recipients and authentication results. Verdicts are not drawn here: the judge
(:mod:`workbench.ingest.demo.judge`) runs the detection analyzers over each message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
import polars as pl

from workbench.enums import EmailDirection as ED
from workbench.ingest.demo.content import Template
from workbench.ingest.demo.emit import SPEC
from workbench.ingest.demo.org import ExternalSender, Organisation

# Messages per user per working day, weekend factor, mean extra recipients.
RATES = {
    "internal": (3.2, 0.08, 1.4),
    "partner": (2.2, 0.10, 0.25),
    "saas": (3.0, 0.35, 0.0),
    "newsletter": (4.0, 0.60, 0.0),
    "spam": (2.0, 1.00, 0.0),
    "person": (0.8, 0.30, 0.0),
    "outbound": (1.8, 0.08, 0.3),
    "phish": (0.12, 0.80, 0.05),
    "compromised": (0.05, 0.50, 0.0),
    "malware": (0.04, 0.80, 0.0),
}

# Local-time hour profiles.
_WORK = np.array([1, 1, 1, 1, 1, 2, 4, 10, 22, 30, 30, 26, 16, 22, 28, 28, 24, 16, 8, 5, 4, 3, 2, 1], float)
_FLAT = np.array([3, 3, 3, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7, 7, 6, 5, 4, 4, 3], float)
WORK_HOURS, FLAT_HOURS = _WORK / _WORK.sum(), _FLAT / _FLAT.sum()

# Spammers mostly send from domains they registered and set up themselves: SPF and DKIM
# pass for those, DMARC often has no record. Phishers spoof or borrow: results fail more.
_BULK_SENDER_AUTH = [  # spf, dkim, dmarc, compauth
    ("pass", "pass", "none", "softpass"),
    ("pass", "pass", "pass", "pass"),
    ("pass", "none", "none", "softpass"),
    ("softfail", "none", "none", "none"),
]
_SPAMMY_AUTH = [  # spf, dkim, dmarc, compauth
    ("softfail", "none", "fail", "fail"),
    ("none", "none", "none", "none"),
    ("fail", "fail", "fail", "fail"),
    ("pass", "none", "none", "softpass"),
]
TEMPLATES_PER_SENDER = 3  # a sender writes about a few things (its newsletter, its campaign, its topics)


@dataclass
class SenderPool:
    """External senders as parallel columns for vectorised gathers."""

    address: pl.Series
    display: pl.Series
    ip_a: pl.Series
    ip_b: pl.Series
    host: pl.Series
    auth: list[tuple[str, str, str, str]]  # spf, dkim, dmarc, compauth per sender

    @classmethod
    def of(cls, senders: tuple[ExternalSender, ...], auth) -> "SenderPool":
        return cls(
            pl.Series([s.address for s in senders]),
            pl.Series([s.display_name for s in senders]),
            pl.Series([s.ips[0] for s in senders]),
            pl.Series([s.ips[-1] for s in senders]),
            pl.Series([f"mail-{s.domain.replace('.', '-')}.outbound.protection.outlook.com" for s in senders]),
            [auth(s) for s in senders],
        )

    def __len__(self) -> int:
        return len(self.address)


class Traffic:
    """Background mail for one organisation."""

    def __init__(self, org: Organisation, templates: dict[str, list[Template]], noise: dict[str, list[Template]],
                 noise_senders: dict[str, tuple[ExternalSender, ...]]) -> None:
        self.org = org
        users = org.users
        self.n = len(users)
        self.upn = pl.Series([u.upn for u in users])
        self.display = pl.Series([u.display_name for u in users])
        self.oid = pl.Series([u.object_id for u in users])
        self.offset = np.array([u.office.utc_offset for u in users])
        depts = sorted({u.department for u in users})
        self.dept = np.array([depts.index(u.department) for u in users])
        self.dept_order = np.argsort(self.dept, kind="stable")
        counts = np.bincount(self.dept, minlength=len(depts))
        self.dept_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.dept_size = counts
        self.user_ip = pl.Series([f"{u.office.ip_prefix}.{10 + u.index % 200}.{20 + u.index % 37}" for u in users])
        weight = {"Sales": 1.6, "Finance": 1.4, "Procurement": 1.5, "Operations": 1.2, "Legal": 1.1, "Executive": 1.8}
        w = np.array([weight.get(u.department, 1.0) for u in users])
        self.inbound_w = w / w.sum()
        act = np.array([1.3 if u.department in ("Engineering", "Sales", "Executive") else 1.0 for u in users])
        self.activity_w = act / act.sum()
        self.template_ids = {k: np.array([t.id for t in v]) for k, v in {**templates, **noise}.items()}
        self.template_subjects = {t.id: t.subject for v in {**templates, **noise}.values() for t in v}

        def legit(s: ExternalSender):
            return ("pass", "pass", "pass", "pass")

        def spammy(s: ExternalSender):
            return _SPAMMY_AUTH[sum(map(ord, s.domain)) % len(_SPAMMY_AUTH)]

        def bulk_sender(s: ExternalSender):
            return _BULK_SENDER_AUTH[sum(map(ord, s.domain)) % len(_BULK_SENDER_AUTH)]

        self.pools = {
            "partner": SenderPool.of(org.partners, legit),
            "saas": SenderPool.of(org.saas, legit),
            "newsletter": SenderPool.of(org.newsletters, legit),
            "spam": SenderPool.of(org.spammers, bulk_sender),
            "person": SenderPool.of(org.people, legit),
            "phish": SenderPool.of(noise_senders["phish"], spammy),
            "compromised": SenderPool.of(noise_senders["compromised"], legit),
            "malware": SenderPool.of(noise_senders["malware"], spammy),
        }
        self._external_rcpt = pl.Series([s.address for s in org.partners])
        self._external_display = pl.Series([s.display_name for s in org.partners])

    # ------------------------------------------------------------------ helpers

    def _times(self, rng, day_start: datetime, n: int, offsets: np.ndarray, profile: np.ndarray) -> pl.Series:
        hours = rng.choice(24, size=n, p=profile)
        seconds = hours * 3600 + rng.integers(0, 3600, size=n) - offsets * 3600
        base = int(day_start.timestamp() * 1_000_000)
        return pl.Series("Timestamp", base + seconds.astype(np.int64) * 1_000_000 + rng.integers(0, 1_000_000, n)).cast(
            pl.Datetime("us", "UTC")
        )

    def _colleagues(self, rng, senders: np.ndarray, extra_mean: float) -> tuple[np.ndarray, np.ndarray]:
        """(message index, recipient user index) pairs; mostly the sender's own department."""
        k = np.minimum(1 + rng.poisson(extra_mean, len(senders)), 8)
        msg = np.repeat(np.arange(len(senders)), k)
        sd = self.dept[senders[msg]]
        within = self.dept_order[self.dept_start[sd] + (rng.random(len(msg)) * self.dept_size[sd]).astype(np.int64)]
        rcpt = np.where(rng.random(len(msg)) < 0.7, within, rng.integers(self.n, size=len(msg)))
        keep = rcpt != senders[msg]
        msg, rcpt = msg[keep], rcpt[keep]
        pairs = np.unique(msg.astype(np.int64) * self.n + rcpt)
        return pairs // self.n, pairs % self.n

    # ------------------------------------------------------------------ one day

    def day(self, rng: np.random.Generator, day: date, uuid_bytes) -> pl.DataFrame:
        """Spec rows for ordinary traffic on *day* (UTC midnight to midnight, before clipping)."""
        day_start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        weekend = day.weekday() >= 5
        frames, offset = [], 0
        for category, (rate, weekend_factor, extra) in RATES.items():
            n_msgs = int(rng.poisson(self.n * rate * (weekend_factor if weekend else 1.0)))
            if n_msgs == 0:
                continue
            frame = self._category(rng, category, n_msgs, extra, day_start)
            frames.append(frame.with_columns(pl.col("_msg") + offset))
            offset += n_msgs
        specs = pl.concat(frames, how="vertical")
        ids = uuid_bytes(offset)
        specs = specs.with_columns(NetworkMessageId=pl.Series(ids).gather(specs["_msg"]))
        specs = specs.with_columns(
            InternetMessageId=pl.format("<{}@{}>", pl.col("NetworkMessageId").str.replace_all("-", "").str.slice(0, 20).str.to_uppercase(),
                                        pl.col("_mid_host")),
        )
        return specs

    def _category(self, rng, category: str, n_msgs: int, extra: float, day_start: datetime) -> pl.DataFrame:
        org = self.org
        if category in ("internal", "outbound"):
            senders = rng.choice(self.n, size=n_msgs, p=self.activity_w)
            s_addr, s_disp, s_oid = self.upn.gather(senders), self.display.gather(senders), self.oid.gather(senders)
            s_ip = self.user_ip.gather(senders)
            s_host = pl.Series([f"{org.primary_domain.split('.')[0]}-mbx"] * n_msgs)
            auth = [("pass", "pass", "pass", "pass")] * n_msgs
        else:
            pool = self.pools[category]
            sidx = rng.integers(len(pool), size=n_msgs)
            s_addr, s_disp, s_oid = pool.address.gather(sidx), pool.display.gather(sidx), pl.Series([None] * n_msgs, dtype=pl.String)
            s_ip = pl.select(pl.when(pl.Series(rng.random(n_msgs) < 0.5)).then(pool.ip_a.gather(sidx)).otherwise(pool.ip_b.gather(sidx))).to_series()
            s_host = pool.host.gather(sidx)
            auth = [pool.auth[i] for i in sidx]
            senders = sidx

        # Each sender writes from a few templates of its category (verdicts are per content and sender).
        tids = self.template_ids[category]
        template = tids[(senders * 7919 + rng.integers(TEMPLATES_PER_SENDER, size=n_msgs)) % len(tids)]
        subjects = pl.Series([self.template_subjects[int(t)] for t in template])
        reply = rng.random(n_msgs) < (0.35 if category in ("internal", "partner", "outbound") else 0.0)
        subjects = pl.select(pl.when(pl.Series(reply)).then(pl.lit("Re: ") + subjects).otherwise(subjects)).to_series()

        if category == "internal":
            msg, rcpt = self._colleagues(rng, senders, extra)
            r_addr, r_oid = self.upn.gather(rcpt), self.oid.gather(rcpt)
            direction = ED.INTRA_ORG.value
        elif category == "outbound":
            k = 1 + (rng.random(n_msgs) < extra)
            msg = np.repeat(np.arange(n_msgs), k)
            ext = rng.integers(len(self._external_rcpt), size=len(msg))
            r_addr, r_oid = self._external_rcpt.gather(ext), pl.Series([None] * len(msg), dtype=pl.String)
            direction = ED.OUTBOUND.value
        else:
            k = 1 + rng.poisson(extra, n_msgs) if extra else np.ones(n_msgs, dtype=np.int64)
            msg = np.repeat(np.arange(n_msgs), k)
            rcpt = rng.choice(self.n, size=len(msg), p=self.inbound_w)
            pairs = np.unique(msg.astype(np.int64) * self.n + rcpt)
            msg, rcpt = pairs // self.n, pairs % self.n
            r_addr, r_oid = self.upn.gather(rcpt), self.oid.gather(rcpt)
            direction = ED.INBOUND.value

        # Message time follows the office hours of the internal party (sender, else first recipient).
        if direction == ED.INBOUND.value:
            offsets = self.offset[rcpt[np.searchsorted(msg, np.arange(n_msgs))]]
        else:
            offsets = self.offset[senders]
        profile = FLAT_HOURS if category in ("spam", "phish", "compromised", "malware", "newsletter") else WORK_HOURS
        times = self._times(rng, day_start, n_msgs, offsets, profile)

        mid_host = s_addr.str.split("@").list.last()
        msg_frame = pl.DataFrame(
            {
                "_msg": np.arange(n_msgs),
                "Timestamp": times,
                "SenderFromAddress": s_addr,
                "SenderDisplayName": s_disp,
                "SenderMailFromAddress": s_addr,
                "SenderObjectId": s_oid,
                "SenderIPv4": s_ip,
                "SenderHost": s_host,
                "TemplateId": template.astype(np.int64),
                "Subject": subjects,
                "Spf": [a[0] for a in auth],
                "Dkim": [a[1] for a in auth],
                "Dmarc": [a[2] for a in auth],
                "CompAuth": [a[3] for a in auth],
                "_mid_host": mid_host,
                "_category": [category] * n_msgs,
            }
        )
        rows = pl.DataFrame({"_msg": msg, "RecipientEmailAddress": r_addr, "RecipientObjectId": r_oid})
        out = rows.join(msg_frame, on="_msg", how="left").with_columns(EmailDirection=pl.lit(direction))
        return out

    def finish(self, specs: pl.DataFrame, start: datetime, end: datetime, report_prefix: str) -> pl.DataFrame:
        """Clip to the window, give each row a ReportId and keep the spec columns (+ category)."""
        specs = specs.filter((pl.col("Timestamp") >= start) & (pl.col("Timestamp") < end)).sort(
            "Timestamp", "NetworkMessageId", "RecipientEmailAddress"
        )
        specs = specs.with_columns(ReportId=pl.lit(report_prefix) + pl.int_range(pl.len()).cast(pl.String).str.zfill(7))
        missing = [c for c in SPEC if c not in specs.columns]
        specs = specs.with_columns([pl.lit(None, SPEC[c]).alias(c) for c in missing])
        return specs.select([pl.col(c).cast(SPEC[c]) for c in SPEC] + ["_category"])
