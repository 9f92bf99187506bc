"""Retro-hunt: find the past mail, clicks and files that new indicators match, over the whole lake.

:func:`hunt` matches indicators against every partition (no 30-day horizon) in a few lazy
polars passes: each table is scanned once per matched column with only the columns it needs,
and indicator values are matched with ``is_in`` (domains by their suffixes, so a subdomain
of an indicator domain matches). Only the matching rows are collected.

=================  ==========================================================================
indicator          matched against
=================  ==========================================================================
URL                EmailUrlInfo.Url, UrlClickEvents.Url (normalised as the indicator)
domain             EmailUrlInfo.UrlDomain, the host of UrlClickEvents.Url, EmailEvents
                   SenderFromDomain / SenderMailFromDomain (subdomains count)
sender domain      EmailEvents SenderFromDomain / SenderMailFromDomain (subdomains count)
IP                 EmailEvents SenderIPv4 / SenderIPv6
SHA-256            EmailAttachmentInfo.SHA256, FileMaliciousContentInfo.SHA256
sender             EmailEvents SenderFromAddress / SenderMailFromAddress
=================  ==========================================================================

Clicks on mail matched by a sender, IP, sender-domain or file indicator count as that
indicator's clicks. :func:`retro_hunt` hunts the indicators stored since it last ran and files
one alert per matched indicator (policy ``threat_intel_retro_hunt``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from workbench.intel.model import Indicator, IndicatorType
from workbench.lake import Lake
from workbench.store import tables as t
from workbench.store.engine import Store

T = IndicatorType
POLICY_ID = "threat_intel_retro_hunt"
ACTOR = "retro-hunt"
#: Latest delivery locations where a copy is still in a mailbox.
IN_MAILBOX = ("Inbox/folder", "Junk folder", "Deleted items")
SAMPLE = 25  # EMAIL entities of a match none of whose copies is still in a mailbox
_HIT = {"type": pl.String, "value": pl.String, "NetworkMessageId": pl.String}
_COPY_COLUMNS = ["Timestamp", "NetworkMessageId", "RecipientEmailAddress", "SenderFromAddress", "SenderFromDomain",
                 "SenderIPv4", "Subject", "DeliveryAction", "DeliveryLocation", "LatestDeliveryLocation"]
_CLICK_COLUMNS = ["Timestamp", "Url", "AccountUpn", "NetworkMessageId", "ActionType", "IsClickedThrough", "Workload"]
_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/:?#]+)"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class MessageCopy:
    """One matched message copy (EmailEvents row)."""

    network_message_id: str
    recipient: str
    timestamp: datetime
    sender: str
    sender_domain: str
    sender_ip: str
    subject: str
    delivery_action: str
    location: str  # the latest delivery location

    @property
    def in_mailbox(self) -> bool:
        return self.location in IN_MAILBOX


@dataclass(frozen=True)
class Click:
    timestamp: datetime
    user: str
    url: str
    network_message_id: str
    action: str  # ClickAllowed, ClickBlocked...
    clicked_through: bool
    workload: str


@dataclass(frozen=True)
class FileSighting:
    """A matched file: an attachment (``where`` is the recipient) or a file at rest (the site or folder)."""

    table: str
    timestamp: datetime
    sha256: str
    file_name: str
    where: str
    network_message_id: str = ""
    action: str = ""  # LatestFileAction of a file at rest


@dataclass(frozen=True)
class Match:
    """What one indicator matched."""

    type: IndicatorType
    value: str
    copies: tuple[MessageCopy, ...] = ()
    clicks: tuple[Click, ...] = ()
    files: tuple[FileSighting, ...] = ()

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.network_message_id for c in self.copies))

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.recipient for c in self.copies))

    @property
    def in_mailbox(self) -> int:
        """Copies still in a mailbox (inbox, junk or deleted items)."""
        return sum(c.in_mailbox for c in self.copies)

    @property
    def clickers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.user for c in self.clicks if c.user))

    @property
    def first_seen(self) -> datetime:
        return min(x.timestamp for x in (*self.copies, *self.clicks, *self.files))

    @property
    def last_seen(self) -> datetime:
        return max(x.timestamp for x in (*self.copies, *self.clicks, *self.files))

    def render(self) -> str:
        return (f"{self.type.value} {self.value}: {len(self.copies)} copies of {len(self.messages)} message(s) to "
                f"{len(self.recipients)} recipient(s), {self.in_mailbox} still in mailboxes, {len(self.clicks)} click(s) "
                f"by {len(self.clickers)} user(s), {len(self.files)} file(s); "
                f"{self.first_seen:%Y-%m-%d %H:%M} to {self.last_seen:%Y-%m-%d %H:%M} UTC")


@dataclass(frozen=True)
class HuntResult:
    """The matches of a hunt over ``[start, end)`` (None: the whole lake), one per matched indicator."""

    hunted: int
    matches: tuple[Match, ...]
    start: datetime | None = None
    end: datetime | None = None
    seconds: float = 0.0

    def get(self, kind: IndicatorType | str, value: str) -> Match | None:
        from workbench.intel.model import normalise

        kind = IndicatorType(kind)
        value = normalise(kind, value)
        return next((m for m in self.matches if m.type is kind and m.value == value), None)

    def render(self) -> str:
        head = (f"hunted {self.hunted:,} indicator(s) over "
                f"{'the whole lake' if self.start is None and self.end is None else f'{self.start} to {self.end}'}"
                f" in {self.seconds:.2f}s: {len(self.matches)} matched")
        return "\n".join([head, *(f"  {m.render()}" for m in self.matches)])


# --------------------------------------------------------------------------- matching


def _by_type(indicators: Iterable[Indicator]) -> dict[IndicatorType, list[str]]:
    out: dict[IndicatorType, set[str]] = {}
    for ind in indicators:
        out.setdefault(ind.type, set()).add(ind.value)
    return {k: sorted(v) for k, v in out.items()}


def _url(column: str) -> pl.Expr:
    """A lake URL normalised as :func:`~workbench.intel.model.normalise` normalises a URL indicator."""
    url = pl.col(column).str.strip_chars()
    return pl.when(url.str.contains("://", literal=True)).then(url).otherwise(pl.lit("http://") + url)


def _exact(lf: pl.LazyFrame, value: pl.Expr, kind: IndicatorType, values: Sequence[str],
           keep: Sequence[str | pl.Expr] = ("NetworkMessageId",)) -> pl.LazyFrame:
    return (lf.select(pl.lit(kind.value).alias("type"), value.alias("value"), *keep)
            .filter(pl.col("value").is_in(pl.Series(values, dtype=pl.String).implode())))


def _suffixes(lf: pl.LazyFrame, domain: pl.Expr, kind: IndicatorType, values: Sequence[str],
              keep: Sequence[str | pl.Expr] = ("NetworkMessageId",)) -> list[pl.LazyFrame]:
    """Rows whose *domain* is one of *values* or a subdomain of one: its last n labels are an
    n-label indicator (one pass per label count)."""
    labels: dict[int, list[str]] = {}
    for v in values:
        labels.setdefault(v.count(".") + 1, []).append(v)
    parts = domain.str.to_lowercase().str.strip_chars(".").str.split(".")
    return [_exact(lf, parts.list.tail(n).list.join("."), kind, vs, keep) for n, vs in sorted(labels.items())]


def _mail_hits(lake: Lake, want: Mapping[IndicatorType, list[str]], start: Any, end: Any) -> pl.DataFrame:
    """(type, value, NetworkMessageId) of every message an indicator matches."""
    frames: list[pl.LazyFrame] = []
    cols = ["NetworkMessageId", "SenderFromAddress", "SenderMailFromAddress", "SenderFromDomain",
            "SenderMailFromDomain", "SenderIPv4", "SenderIPv6"]
    mail = lake.scan("EmailEvents", start, end, cols)
    for column in ("SenderFromAddress", "SenderMailFromAddress"):
        if want.get(T.SENDER):
            frames.append(_exact(mail, pl.col(column).str.to_lowercase(), T.SENDER, want[T.SENDER]))
        for kind in (T.DOMAIN, T.SENDER_DOMAIN):
            if want.get(kind):
                domain = pl.col(column.replace("Address", "Domain"))
                frames += _suffixes(mail, pl.coalesce(domain, pl.col(column).str.split("@").list.last()), kind, want[kind])
    if want.get(T.IP):
        frames += [_exact(mail, pl.col(c).str.to_lowercase(), T.IP, want[T.IP]) for c in ("SenderIPv4", "SenderIPv6")]
    if want.get(T.URL) or want.get(T.DOMAIN):
        urls = lake.scan("EmailUrlInfo", start, end, ["NetworkMessageId", "Url", "UrlDomain"])
        if want.get(T.URL):
            frames.append(_exact(urls, _url("Url"), T.URL, want[T.URL]))
        if want.get(T.DOMAIN):
            frames += _suffixes(urls, pl.coalesce("UrlDomain", pl.col("Url").str.extract(_HOST, 1)), T.DOMAIN, want[T.DOMAIN])
    if want.get(T.SHA256):
        files = lake.scan("EmailAttachmentInfo", start, end, ["NetworkMessageId", "SHA256"])
        frames.append(_exact(files, pl.col("SHA256").str.to_lowercase(), T.SHA256, want[T.SHA256]))
    if not frames:
        return pl.DataFrame(schema=_HIT)
    return pl.concat(frames).drop_nulls().unique().collect()


def _copies(lake: Lake, hits: pl.DataFrame, start: Any, end: Any) -> pl.DataFrame:
    """The EmailEvents copies of the hit messages, with their indicator (type, value)."""
    ids = hits["NetworkMessageId"].unique().implode()
    rows = (lake.scan("EmailEvents", start, end, _COPY_COLUMNS)
            .filter(pl.col("NetworkMessageId").is_in(ids))
            .with_columns(pl.col("RecipientEmailAddress").str.to_lowercase(),
                          pl.coalesce("LatestDeliveryLocation", "DeliveryLocation").alias("location"))
            .unique(["NetworkMessageId", "RecipientEmailAddress"], keep="first"))
    return rows.join(hits.lazy(), on="NetworkMessageId").sort("Timestamp").collect()


def _clicks(lake: Lake, want: Mapping[IndicatorType, list[str]], hits: pl.DataFrame, start: Any, end: Any) -> pl.DataFrame:
    """Clicks on indicator URLs and domains, and on the messages other indicators matched."""
    clicks = lake.scan("UrlClickEvents", start, end, _CLICK_COLUMNS)
    frames = []
    if want.get(T.URL):
        frames.append(_exact(clicks, _url("Url"), T.URL, want[T.URL], _CLICK_COLUMNS))
    if want.get(T.DOMAIN):
        frames += _suffixes(clicks, pl.col("Url").str.extract(_HOST, 1), T.DOMAIN, want[T.DOMAIN], _CLICK_COLUMNS)
    by_message = hits.filter(~pl.col("type").is_in([T.URL.value, T.DOMAIN.value]))
    if by_message.height:
        frames.append(clicks.join(by_message.lazy(), on="NetworkMessageId").select("type", "value", *_CLICK_COLUMNS))
    if not frames:
        return pl.DataFrame(schema={**_HIT, "Timestamp": pl.Datetime("us", "UTC")})
    return pl.concat(frames).unique().sort("Timestamp").collect()


def _files(lake: Lake, values: Sequence[str], start: Any, end: Any) -> pl.DataFrame:
    """Attachments and files at rest with an indicator hash."""
    sha = pl.col("SHA256").str.to_lowercase()
    mail = _exact(lake.scan("EmailAttachmentInfo", start, end), sha, T.SHA256, values,
                  ["Timestamp", "FileName", pl.col("RecipientEmailAddress").str.to_lowercase().alias("where"),
                   "NetworkMessageId", pl.lit("").alias("action"), pl.lit("EmailAttachmentInfo").alias("table")])
    rest = _exact(lake.scan("FileMaliciousContentInfo", start, end), sha, T.SHA256, values,
                  ["Timestamp", "FileName", pl.coalesce("SiteUrl", "FolderPath", pl.lit("")).alias("where"),
                   pl.lit("").alias("NetworkMessageId"), pl.coalesce("LatestFileAction", pl.lit("")).alias("action"),
                   pl.lit("FileMaliciousContentInfo").alias("table")])
    return pl.concat([mail, rest]).unique(["type", "value", "table", "where", "NetworkMessageId", "FileName"],
                                          keep="first").sort("Timestamp").collect()


def _rows(frame: pl.DataFrame | None, columns: Sequence[str | pl.Expr]) -> list[tuple[Any, ...]]:
    """*columns* of *frame* as tuples, missing strings as ''."""
    if frame is None:
        return []
    return frame.select(columns).with_columns(pl.col(pl.String).fill_null("")).rows()


def _groups(frame: pl.DataFrame) -> dict[tuple[str, str], pl.DataFrame]:
    return frame.partition_by(["type", "value"], as_dict=True) if frame.height else {}


def _match(kind: str, value: str, copies: pl.DataFrame | None, clicks: pl.DataFrame | None,
           files: pl.DataFrame | None) -> Match:
    mc = tuple(MessageCopy(*r) for r in _rows(copies, [
        "NetworkMessageId", "RecipientEmailAddress", "Timestamp", "SenderFromAddress", "SenderFromDomain", "SenderIPv4",
        "Subject", "DeliveryAction", "location"]))
    cl = tuple(Click(*r) for r in _rows(clicks, [
        "Timestamp", pl.col("AccountUpn").str.to_lowercase(), "Url", "NetworkMessageId", "ActionType",
        pl.col("IsClickedThrough").fill_null(False), "Workload"]))
    fs = tuple(FileSighting(*r) for r in _rows(files, [
        "table", "Timestamp", "value", "FileName", "where", "NetworkMessageId", "action"]))
    return Match(IndicatorType(kind), value, mc, cl, fs)


def hunt(lake: Lake, indicators: Iterable[Indicator], *, start: datetime | None = None,
         end: datetime | None = None) -> HuntResult:
    """Every message, click and file in ``[start, end)`` (default: the whole lake) that one of
    *indicators* matches. Indicators are hunted as given: drop expired and allow-listed ones first."""
    started = time.perf_counter()
    indicators = list(indicators)
    want = _by_type(indicators)
    hits = _mail_hits(lake, want, start, end)
    copies = _copies(lake, hits, start, end) if hits.height else None
    clicks = _clicks(lake, want, hits, start, end)
    files = _files(lake, want[T.SHA256], start, end) if want.get(T.SHA256) else pl.DataFrame()
    by_copy, by_click, by_file = _groups(copies) if copies is not None else {}, _groups(clicks), _groups(files)
    keys = sorted({*by_copy, *by_click, *by_file})
    matches = tuple(_match(k, v, by_copy.get((k, v)), by_click.get((k, v)), by_file.get((k, v))) for k, v in keys)
    matches = tuple(m for m in matches if m.copies or m.clicks or m.files)
    return HuntResult(len({(i.type, i.value) for i in indicators}), matches, start, end, time.perf_counter() - started)


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class RetroHuntRun:
    """What :func:`retro_hunt` did: the indicators added after ``since`` it hunted, the alerts it filed."""

    since: datetime | None
    watermark: datetime | None
    result: HuntResult
    found: int  # alerts drafted (new or already filed)
    new_alerts: tuple[str, ...] = ()
    incidents_created: tuple[int, ...] = ()
    incidents_extended: tuple[int, ...] = ()
    enabled: bool = True

    def render(self) -> str:
        if not self.enabled:
            return f"policy {POLICY_ID} is disabled: nothing hunted"
        return (f"retro-hunt of indicators added after {self.since or 'the beginning'}: {self.result.render()}\n"
                f"{self.found} alert(s), {len(self.new_alerts)} new; incidents {len(self.incidents_created)} created, "
                f"{len(self.incidents_extended)} extended")


def _watermark(store: Store) -> datetime | None:
    with store.read() as conn:
        return conn.execute(sa.select(t.policy_watermarks.c.watermark)
                            .where(t.policy_watermarks.c.policy_id == POLICY_ID)).scalar()


def _save_watermark(store: Store, watermark: datetime | None, alerts: int) -> None:
    w = t.policy_watermarks

    def do(conn: sa.Connection) -> None:
        values = dict(watermark=watermark, last_run=datetime.now(UTC), alerts=alerts)
        if conn.execute(w.update().where(w.c.policy_id == POLICY_ID).values(**values)).rowcount == 0:
            conn.execute(w.insert().values(policy_id=POLICY_ID, **values))
    store.run(do)


def _newest_added(store: Store, since: datetime | None) -> datetime | None:
    """When the newest block indicator after *since* was stored: the next watermark."""
    i = t.intel_indicators.c
    stmt = sa.select(sa.func.max(i.added)).where(i.allow.is_(False))
    if since is not None:
        stmt = stmt.where(i.added > since)
    with store.read() as conn:
        return conn.execute(stmt).scalar()


def _allowed(ind: Indicator, allow: Mapping[IndicatorType, frozenset[str]]) -> bool:
    """An allow-list entry of the same value (a domain also under an allowed domain) suppresses it."""
    if ind.value in allow.get(ind.type, ()):
        return True
    if ind.type in (T.DOMAIN, T.SENDER_DOMAIN):
        domains = allow.get(T.DOMAIN, frozenset()) | allow.get(T.SENDER_DOMAIN, frozenset())
        labels = ind.value.split(".")
        return any(".".join(labels[k:]) in domains for k in range(len(labels)))
    return False


def retro_hunt(store: Store, lake: Lake, *, since: datetime | None = None, now: datetime | None = None,
               actor: str = ACTOR) -> RetroHuntRun:
    """Hunt the block indicators stored after *since* (default: after this policy's watermark),
    unexpired at *now* and not allow-listed, over the whole lake; file one alert per matched
    indicator and move the watermark to the newest indicator hunted. Re-running files nothing
    twice (one dedup key per indicator type and value)."""
    from workbench.incidents import alerting
    from workbench.incidents.service import IncidentService
    from workbench.intel.store import added_since, allowed

    now = now or datetime.now(UTC)
    settings = alerting.settings(store)[POLICY_ID]
    since = _watermark(store) if since is None else since
    if not settings.enabled:
        return RetroHuntRun(since, since, HuntResult(0, ()), 0, enabled=False)
    mark = _newest_added(store, since)
    if mark is None:
        return RetroHuntRun(since, since, HuntResult(0, ()), 0)
    allow = allowed(store)
    fresh = [i for i in added_since(store, since) if i.active(now) and not _allowed(i, allow)]
    result = hunt(lake, fresh)
    drafts = alert_drafts(lake, result, fresh, settings=settings)
    added = IncidentService(store, actor).add_alerts(drafts)
    _save_watermark(store, max(mark, since) if since else mark, len(added.new))  # after the alerts are stored
    return RetroHuntRun(since, mark, result, len(drafts), added.new, added.incidents_created, added.incidents_extended)


# --------------------------------------------------------------------------- drafts


_KIND = {T.URL: "URL", T.DOMAIN: "domain", T.IP: "IP", T.SHA256: "file", T.SENDER: "sender",
         T.SENDER_DOMAIN: "sender domain"}


def severity(confidence: int, match: Match, base: Any) -> Any:
    """High for a confident indicator whose mail was clicked or is still in mailboxes; medium
    when only one of those holds; low when everything was blocked or removed (informational
    for a low-confidence indicator)."""
    from workbench.incidents.model import Severity

    exposed = bool(match.clicks) or match.in_mailbox > 0 or any(f.action != "Blocked" for f in match.files
                                                                 if f.table != "EmailAttachmentInfo")
    if not exposed:
        return Severity.LOW if confidence >= 50 else Severity.INFORMATIONAL
    if confidence >= 80 or (match.clickers and confidence >= 50):
        return max(Severity.HIGH, base)
    return Severity.MEDIUM if confidence >= 50 else Severity.LOW


def _entities(match: Match) -> list[Any]:
    from workbench.incidents.model import Entity, EntityKind as K

    kind = {T.URL: K.URL, T.DOMAIN: K.DOMAIN, T.IP: K.IP, T.SHA256: K.FILE, T.SENDER: K.MAILBOX,
            T.SENDER_DOMAIN: K.DOMAIN}[match.type]
    out = [Entity.of(kind, match.value, "indicator")]
    out += [Entity.of(K.USER, u, "clicked") for u in match.clickers]
    out += [Entity.of(K.FILE, f.sha256, "attachment" if f.network_message_id else "file") for f in match.files]
    return out


def _copies_frame(match: Match, *, exposed_only: bool = False) -> pl.DataFrame:
    """The match's copies (only those still in mailboxes with *exposed_only*) as EmailEvents-like rows."""
    rows = [(c.timestamp, c.network_message_id, c.recipient, c.sender, c.sender_domain, c.sender_ip)
            for c in match.copies if c.in_mailbox or not exposed_only]
    return pl.DataFrame(rows, schema={"Timestamp": pl.Datetime("us", "UTC"), "NetworkMessageId": pl.String,
                                      "RecipientEmailAddress": pl.String, "SenderFromAddress": pl.String,
                                      "SenderFromDomain": pl.String, "SenderIPv4": pl.String}, orient="row")


def _detail(match: Match, sources: Sequence[Indicator]) -> str:
    best = max(sources, key=lambda i: i.confidence)
    family = next((i.family for i in sources if i.family), "")
    feeds = ", ".join(sorted({i.source for i in sources}))
    lines = [f"Indicator {_KIND[match.type]} {match.value} from {feeds} (confidence {best.confidence}, "
             f"TLP:{best.tlp.value.upper()}{f', {family}' if family else ''}).", f"Retro-hunt: {match.render()}."]
    if match.clickers:
        lines.append("Clicked by " + ", ".join(f"{c.user} at {c.timestamp:%Y-%m-%d %H:%M}" for c in match.clicks[:10]
                                               if c.user) + (" ..." if len(match.clicks) > 10 else ""))
    return "\n".join(lines)


def alert_drafts(lake: Lake, result: HuntResult, indicators: Iterable[Indicator], *, settings: Any = None) -> list[Any]:
    """One draft of policy ``threat_intel_retro_hunt`` per matched indicator: its copies still in
    mailboxes (the first :data:`SAMPLE` copies when none is) as EMAIL entities, the Explorer query
    listing every copy, the indicator, senders, clickers and files."""
    from workbench.detect.policies import PolicySettings, get_policy
    from workbench.detect.policies.base import Run, email_entities
    from workbench.incidents.model import EntityKind, Verdict

    policy, settings = get_policy(POLICY_ID), settings or PolicySettings()
    run = Run(lake, policy, None, None, settings.severity or policy.severity, {}, severity_set=settings.severity is not None)
    by_key: dict[tuple[IndicatorType, str], list[Indicator]] = {}
    for ind in indicators:
        by_key.setdefault((ind.type, ind.value), []).append(ind)
    drafts = []
    for m in result.matches:
        sources = by_key.get((m.type, m.value)) or [Indicator(m.type, m.value, "hunt")]
        confidence = max(i.confidence for i in sources)
        copies = _copies_frame(m)
        # the copies still in mailboxes are what an investigation must act on; when none is, a sample
        # is evidence enough (the alert's Explorer query lists every copy)
        exposed = _copies_frame(m, exposed_only=True) if m.in_mailbox else copies.sort("Timestamp").head(SAMPLE)
        entities = [*_entities(m), *email_entities(exposed, "matched"), *run.sender_entities(copies)]
        verdict = Verdict.MALICIOUS if confidence >= 80 else Verdict.SUSPICIOUS
        verdicts = [(e, verdict) for e in entities if e.role == "indicator" or e.kind is EntityKind.EMAIL]
        key = m.value if len(m.value) <= 300 else hashlib.sha256(m.value.encode()).hexdigest()
        state = "".join([f", {m.in_mailbox} still in mailboxes" if m.in_mailbox else "",
                         f", clicked by {len(m.clickers)}" if m.clickers else ""])
        drafts.append(run.draft(
            f"{m.type.value}:{key}", {"kind": _KIND[m.type], "indicator": m.value, "count": len(m.copies), "state": state},
            m.first_seen, m.last_seen, entities, copies=copies if copies.height else None,
            severity=settings.severity or severity(confidence, m, policy.severity), verdicts=verdicts,
            detail=_detail(m, sources), threat_family=next((i.family for i in sources if i.family), ""),
            detection_source="threatIntelligence"))
    return drafts


__all__ = ["hunt", "retro_hunt", "alert_drafts", "severity", "HuntResult", "Match", "MessageCopy", "Click", "FileSighting",
           "RetroHuntRun", "POLICY_ID", "IN_MAILBOX"]
