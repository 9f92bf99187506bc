"""SIEM destinations and at-least-once delivery.

A :class:`Destination` (name, format, transport kind, settings without secrets) lives in
``siem_destinations``; configuring or removing one needs *SIEM configuration* and is audited.

:func:`deliver` sends events in their order, in batches, and advances the destination's
checkpoint (``siem_checkpoints``: per source the last delivered ``(time, id)``) only after the
transport confirmed a batch:

* a :class:`~workbench.siem.transports.TemporaryFailure` is retried with the backoff; once the
  attempts are spent delivery stops where it is: the checkpoint stays at the last confirmed
  batch and the report counts the events still *pending* (the next run sends them again);
* a :class:`~workbench.siem.transports.PermanentFailure` splits the batch in halves until the
  rejected events are isolated; those go to the dead-letter file
  (``<dead_letter_dir>/<destination>.jsonl``, one JSON line per event with the reason) and the
  checkpoint moves past them, so one poison event cannot block the stream; an event the
  formatter cannot render is dead-lettered the same way;
* a :class:`~workbench.siem.transports.ConfigurationFailure` (bad credentials, wrong path)
  stops delivery like an exhausted retry, nothing dead-lettered.

Events already at or before the checkpoint are skipped, and every record carries the event's
deterministic id, so a receiver can drop the duplicates a re-send may cause.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from workbench.errors import ConflictError, InputError, NotFound, StorageError
from workbench.rbac import Permission, require
from workbench.simulator.smtp import Backoff
from workbench.siem.transports import (ConfigurationFailure, Kind, Payload, PermanentFailure, Severity,
                                       TemporaryFailure, Transport, build, iso, kind_of)
from workbench.store import tables as t
from workbench.store.engine import Store

DEFAULT_BACKOFF = Backoff(base_seconds=2.0, factor=2.0, max_seconds=300.0, max_attempts=5)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SOURCETYPES = {"o365": "o365:management:activity", "ocsf": "ocsf", "cef": "cef"}
SEVERITIES = {"critical": Severity.CRITICAL, "high": Severity.ERROR, "medium": Severity.WARNING,
              "low": Severity.NOTICE, "informational": Severity.INFORMATIONAL, "info": Severity.INFORMATIONAL}

OCSF_SEVERITIES = {1: Severity.INFORMATIONAL, 2: Severity.NOTICE, 3: Severity.WARNING, 4: Severity.ERROR,
                   5: Severity.CRITICAL, 6: Severity.ALERT}
Formatter = Callable[[Any], "Mapping[str, Any] | str | None"]
Position = dict[str, tuple[datetime | str, str]]


class Format(StrEnum):
    O365 = "o365"
    OCSF = "ocsf"
    CEF = "cef"


@dataclass(frozen=True)
class Destination:
    """Where events go: a record *format*, a *transport* kind and its *settings* (secrets only by
    environment variable name). Construction validates everything but the environment."""

    name: str
    format: Format
    transport: Kind
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise InputError(f"destination name {self.name!r} is invalid; use 1-100 letters, digits, '.', '_' "
                             "or '-', e.g. splunk-prod")
        try:
            object.__setattr__(self, "format", Format(str(self.format).lower()))
        except ValueError:
            raise InputError(f"unknown format {self.format!r}; use one of o365, ocsf, cef") from None
        object.__setattr__(self, "transport", kind_of(self.transport))
        object.__setattr__(self, "settings", dict(self.settings or {}))
        self.open()  # validates the settings

    def open(self) -> Transport:
        """The configured transport (HEC's sourcetype defaults to the format's)."""
        settings = dict(self.settings)
        if self.transport is Kind.HEC:
            settings.setdefault("sourcetype", SOURCETYPES[self.format.value])
        return build(self.transport, settings)


@dataclass(frozen=True)
class DeliveryReport:
    """What one :func:`deliver` run did. ``pending``: events not delivered (sent again next run);
    ``error``: why it stopped early (None when everything was handled)."""

    destination: str
    delivered: int = 0
    dead_lettered: int = 0
    skipped: int = 0  # at or before the checkpoint, or not representable in the format
    pending: int = 0
    batches: int = 0
    retries: int = 0
    error: str | None = None
    fatal: bool = False  # stopped by a configuration failure: fix the destination before retrying
    checkpoint: Mapping[str, tuple[str, str]] = field(default_factory=dict, hash=False)
    dead_letter_file: Path | None = None

    @property
    def complete(self) -> bool:
        return self.pending == 0 and self.error is None

    def summary(self) -> str:
        line = (f"{self.destination}: {self.delivered} delivered, {self.dead_lettered} dead-lettered, "
                f"{self.skipped} skipped, {self.pending} pending")
        return line + (f"; stopped: {self.error}" if self.error else "")


# ------------------------------------------------------------------ destinations


def _row_to_destination(r: Any) -> Destination:
    return Destination(r.name, r.format, r.transport, json.loads(r.settings or "{}"))


def configure(store: Store, actor: str, dest: Destination, *, replace_existing: bool = False) -> Destination:
    """Add (or with *replace_existing* change) *dest*; needs SIEM configuration; audited."""
    require(store, actor, Permission.SIEM_CONFIGURATION, activity="siem.configure", target=dest.name)
    from workbench import audit

    def do(conn: sa.Connection) -> None:
        d = t.siem_destinations
        exists = conn.execute(sa.select(d.c.name).where(d.c.name == dest.name)).first() is not None
        if exists and not replace_existing:
            raise ConflictError(f"SIEM destination {dest.name} already exists; use --force to replace it "
                                "or pick another name")
        values = {"format": dest.format.value, "transport": dest.transport.value,
                  "settings": json.dumps(dict(dest.settings), sort_keys=True), "created_by": actor or ""}
        if exists:
            conn.execute(d.update().where(d.c.name == dest.name).values(**values))
        else:
            conn.execute(d.insert().values(name=dest.name, created=datetime.now(UTC), **values))
        audit.append(conn, actor=actor or "", activity="siem.configure", target=dest.name,
                     details={"format": dest.format.value, "transport": dest.transport.value,
                              "settings": dict(dest.settings), "replaced": exists})

    store.run(do)
    return dest


def list_destinations(store: Store) -> list[Destination]:
    """Every configured destination, by name."""
    with store.read() as conn:
        rows = conn.execute(sa.select(t.siem_destinations).order_by(t.siem_destinations.c.name)).all()
    return [_row_to_destination(r) for r in rows]


def get(store: Store, name: str) -> Destination:
    with store.read() as conn:
        row = conn.execute(sa.select(t.siem_destinations).where(t.siem_destinations.c.name == name)).first()
    if row is None:
        raise NotFound(f"no SIEM destination {name!r}; see workbench siem list")
    return _row_to_destination(row)


def remove(store: Store, actor: str, name: str) -> None:
    """Delete destination *name* and its checkpoint; needs SIEM configuration; audited."""
    require(store, actor, Permission.SIEM_CONFIGURATION, activity="siem.remove", target=name)
    from workbench import audit

    def do(conn: sa.Connection) -> None:
        gone = conn.execute(t.siem_destinations.delete().where(t.siem_destinations.c.name == name)).rowcount
        if not gone:
            raise NotFound(f"no SIEM destination {name!r}; see workbench siem list")
        conn.execute(t.siem_checkpoints.delete().where(t.siem_checkpoints.c.destination == name))
        audit.append(conn, actor=actor or "", activity="siem.remove", target=name)

    store.run(do)


# ------------------------------------------------------------------ checkpoints


def _time_key(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return _time_key(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    return value


def checkpoint(store: Store, name: str) -> Position:
    """Per source the last delivered ``(time, id)`` (times as UTC datetimes when readable)."""
    with store.read() as conn:
        raw = conn.execute(sa.select(t.siem_checkpoints.c.position)
                           .where(t.siem_checkpoints.c.destination == name)).scalar_one_or_none()
    data = json.loads(raw) if raw else {}
    return {source: (_time_key(v["time"]), str(v["id"])) for source, v in data.items()}


def _save_checkpoint(store: Store, name: str, position: Position) -> None:
    text = json.dumps({s: {"time": iso(tm), "id": i} for s, (tm, i) in sorted(position.items())}, sort_keys=True)

    def do(conn: sa.Connection) -> None:
        c = t.siem_checkpoints
        now = datetime.now(UTC)
        if not conn.execute(c.update().where(c.c.destination == name).values(position=text, updated=now)).rowcount:
            conn.execute(c.insert().values(destination=name, position=text, updated=now))

    store.run(do)


def _delivered_already(position: Position, ev: Any) -> bool:
    done = position.get(str(ev.source))
    if done is None:
        return False
    try:
        return (_time_key(ev.time), str(ev.id)) <= (done[0], done[1])
    except TypeError:
        return False


# ------------------------------------------------------------------ delivery


def severity_of(ev: Any, record: Mapping[str, Any] | str | None = None) -> Severity:
    """The event's syslog severity: its ``severity`` attribute or data field (a name such as
    ``high``, or 0-7), else the OCSF record's ``severity_id``; informational otherwise."""
    value = getattr(ev, "severity", None)
    data = getattr(ev, "data", None)
    if value is None and isinstance(data, Mapping):
        value = data.get("severity", data.get("Severity"))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return Severity(value)
    if value is None and isinstance(record, Mapping) and record.get("severity_id") in OCSF_SEVERITIES:
        return OCSF_SEVERITIES[record["severity_id"]]
    return SEVERITIES.get(str(value or "").strip().lower(), Severity.INFORMATIONAL)


def formatter_for(fmt: Format) -> Formatter:
    """The record formatter of *fmt* (workbench.siem.formats)."""
    from workbench.siem import formats

    return {Format.O365: formats.to_o365, Format.OCSF: formats.to_ocsf, Format.CEF: formats.to_cef}[fmt]


def default_dead_letter_dir(store: Store) -> Path:
    """``siem-dead-letter`` next to a SQLite store, else in the working directory."""
    url = sa.make_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database:
        return Path(url.database).parent / "siem-dead-letter"
    return Path.cwd() / "siem-dead-letter"


def _dead_letter(path: Path, destination: str, reason: str, items: list[tuple[Any, Payload | None]]) -> None:
    at = iso(datetime.now(UTC))
    lines = []
    for ev, payload in items:
        body = payload.envelope() if payload is not None else {
            "id": str(ev.id), "source": str(ev.source), "time": iso(ev.time), "data": getattr(ev, "data", None)}
        lines.append(json.dumps({"destination": destination, "at": at, "reason": reason, **body},
                                ensure_ascii=False, default=str) + "\n")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise StorageError(f"cannot write the dead-letter file {path}: {exc.strerror or exc}; "
                           "free space or pass another dead-letter folder") from None


class _Run:
    """One delivery run's state (see :func:`deliver`)."""

    def __init__(self, store: Store, dest: Destination, transport: Transport, formatter: Formatter,
                 backoff: Backoff, dead_letters: Path, progress: Callable[[DeliveryReport], None] | None,
                 stop: threading.Event | None) -> None:
        self.store, self.dest, self.transport, self.formatter = store, dest, transport, formatter
        self.backoff, self.dead_letters, self.progress, self.stop = backoff, dead_letters, progress, stop
        self.position = checkpoint(store, dest.name)
        self.report = DeliveryReport(dest.name, dead_letter_file=dead_letters)

    def count(self, **add: int) -> None:
        self.report = replace(self.report, **{k: getattr(self.report, k) + v for k, v in add.items()})

    def render(self, ev: Any) -> tuple[Payload | None, str | None]:
        """The payload (None: not in this format), or the reason it cannot be formatted."""
        try:
            record = self.formatter(ev)
        except Exception as exc:  # noqa: BLE001 - a poison event must not block the stream
            return None, f"cannot format as {self.dest.format.value}: {type(exc).__name__}: {exc}"
        if record is None:
            return None, None
        return Payload(str(ev.id), str(ev.source), ev.time, record, severity_of(ev, record)), None

    def advance(self, items: list[tuple[Any, Payload | None]]) -> None:
        for ev, _ in items:
            self.position[str(ev.source)] = (_time_key(ev.time), str(ev.id))
        _save_checkpoint(self.store, self.dest.name, self.position)

    def send(self, items: list[tuple[Any, Payload | None]]) -> bool:
        """Deliver *items* (bisecting on rejection); False when delivery must stop (nothing advanced
        past the first undelivered item; ``report.error`` says why)."""
        queue = [items]
        while queue:
            part = queue.pop(0)
            payloads = [p for _, p in part if p is not None]
            attempt = 0
            while True:
                try:
                    if payloads:
                        self.transport.send(payloads)
                    self.count(delivered=len(payloads), skipped=len(part) - len(payloads))
                    break
                except ConfigurationFailure as exc:
                    self.report = replace(self.report, fatal=True)
                    return self.stopped(str(exc), sum(map(len, [part, *queue])))
                except PermanentFailure as exc:
                    if len(payloads) > 1:
                        half = len(part) // 2
                        queue[:0] = [part[:half], part[half:]]
                        part = []
                    else:
                        _dead_letter(self.dead_letters, self.dest.name, str(exc), [i for i in part if i[1]])
                        self.count(dead_lettered=len(payloads), skipped=len(part) - len(payloads))
                    break
                except TemporaryFailure as exc:
                    attempt += 1
                    if self.backoff.exhausted(attempt) or self.wait(self.backoff.delay(attempt)):
                        return self.stopped(str(exc), sum(map(len, [part, *queue])))
                    self.count(retries=1)
            if part:
                self.advance(part)
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep *seconds*; True when asked to stop meanwhile."""
        if self.stop is not None:
            return self.stop.wait(seconds)
        _time.sleep(seconds)
        return False

    def stopped(self, error: str, pending: int) -> bool:
        self.report = replace(self.report, error=error, pending=self.report.pending + pending)
        return False

    def batch(self, events: list[Any]) -> bool:
        items: list[tuple[Any, Payload | None]] = []
        for n, ev in enumerate(events):
            payload, problem = self.render(ev)
            if problem is None:
                items.append((ev, payload))
                continue
            # everything before the poison event first, then dead-letter it and move past it
            if items and not self.send(items):
                self.count(pending=len(events) - n)
                return False
            _dead_letter(self.dead_letters, self.dest.name, problem, [(ev, None)])
            self.count(dead_lettered=1)
            self.advance([(ev, None)])
            items = []
        ok = self.send(items) if items else True
        if ok:
            self.count(batches=1)
            if self.progress is not None:
                self.progress(self.finish())
        return ok

    def finish(self) -> DeliveryReport:
        cp = {s: (iso(tm), i) for s, (tm, i) in sorted(self.position.items())}
        return replace(self.report, checkpoint=cp)


def deliver(store: Store, destination: Destination, events: Iterable[Any], *, batch_size: int = 100,
            backoff: Backoff = DEFAULT_BACKOFF, dead_letter_dir: Path | str | None = None,
            progress: Callable[[DeliveryReport], None] | None = None, transport: Transport | None = None,
            formatter: Formatter | None = None, stop: threading.Event | None = None) -> DeliveryReport:
    """Deliver *events* (objects with ``source``, ``id``, ``time``, ordered by (time, id) per
    source) at least once; see the module docstring. *progress* gets a report after every
    confirmed batch; *transport*/*formatter* override the destination's (tests, previews)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch size {batch_size!r} must be a positive whole number; e.g. 100")
    transport = transport if transport is not None else destination.open()
    transport.check()
    folder = Path(dead_letter_dir) if dead_letter_dir is not None else default_dead_letter_dir(store)
    run = _Run(store, destination, transport, formatter or formatter_for(destination.format), backoff,
               folder / f"{destination.name}.jsonl", progress, stop)
    it = iter(events)
    batch: list[Any] = []
    for ev in it:
        if _delivered_already(run.position, ev):
            run.count(skipped=1)
            continue
        batch.append(ev)
        if len(batch) >= batch_size:
            if not run.batch(batch):
                run.count(pending=sum(1 for ev in it if not _delivered_already(run.position, ev)))
                return run.finish()
            batch = []
        if stop is not None and stop.is_set():
            run.count(pending=len(batch) + sum(1 for _ in it))
            return run.finish()
    if batch:
        run.batch(batch)
    return run.finish()


def stream(store: Store, destination: Destination, source: Callable[[Position], Iterable[Any]], *,
           poll_seconds: float = 5.0, stop: threading.Event | None = None, max_rounds: int | None = None,
           on_round: Callable[[DeliveryReport], None] | None = None, **options: Any) -> DeliveryReport:
    """Keep delivering: every *poll_seconds* ask ``source(checkpoint)`` for events after the
    checkpoint and :func:`deliver` them, until *stop* is set (or *max_rounds* rounds ran).
    Temporary trouble is retried next round; a configuration failure ends the stream.
    Returns the totals."""
    stop = stop or threading.Event()
    total = DeliveryReport(destination.name)
    rounds = 0
    while not stop.is_set() and (max_rounds is None or rounds < max_rounds):
        rounds += 1
        rep = deliver(store, destination, source(checkpoint(store, destination.name)), stop=stop, **options)
        total = replace(total, delivered=total.delivered + rep.delivered,
                        dead_lettered=total.dead_lettered + rep.dead_lettered, skipped=total.skipped + rep.skipped,
                        batches=total.batches + rep.batches, retries=total.retries + rep.retries,
                        pending=rep.pending, error=rep.error, fatal=rep.fatal, checkpoint=rep.checkpoint,
                        dead_letter_file=rep.dead_letter_file)
        if on_round is not None:
            on_round(rep)
        if rep.fatal:
            break
        if not (max_rounds is not None and rounds >= max_rounds):
            stop.wait(poll_seconds)
    return total


def lake_source(lake: Any, store: Store, **collect_options: Any) -> Callable[[Position], Iterable[Any]]:
    """``source`` for :func:`stream`: the workbench's events after a checkpoint (siem.events.collect)."""
    from workbench.siem import events

    return lambda since: events.collect(lake, store, since=since or None, **collect_options)


__all__ = ["DEFAULT_BACKOFF", "DeliveryReport", "Destination", "Format", "checkpoint", "configure",
           "default_dead_letter_dir", "deliver", "formatter_for", "get", "lake_source", "list_destinations",
           "remove", "severity_of", "stream"]
