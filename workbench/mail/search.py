"""Find and delete (Search and Purge): find every copy of a suspicious message in every mailbox.

A content search reads the mail itself, not the telemetry, so it also finds copies the lake
does not describe (mail delivered before ingest started, a server the workbench does not log).
:class:`SearchCriteria` are AND-ed; each hit is a copy (:class:`~workbench.mail.base.CopyRef`)
that the action center can move, soft- or hard-delete like any other.

Only users holding the remediation permission (Search and Purge) may search (:func:`authorize`),
and every search — allowed, denied or failed — is audited once: to the tenant's audit log
(:mod:`workbench.audit`, activity ``mail.search``) for a tenant's mail
(:func:`workbench.mail.config.search_tenant`), else to a store's own JSON-lines audit file
(``audit_path``; who, when, criteria, copies scanned, hits).

Messages are parsed with :func:`workbench.ingest.message.parse` (the same URLs, attachment
names and SHA-256 hashes as the lake's), once per NetworkMessageId; a message over *max_bytes*
is not parsed and is listed in :attr:`SearchResult.skipped`.

>>> import tempfile
>>> from workbench.mail.maildir import MaildirMailStore
>>> store = MaildirMailStore(tempfile.mkdtemp())
>>> ref = store.deliver("ann@contoso.test", b"From: x@evil.test\\r\\nSubject: Invoice 42\\r\\n\\r\\npay https://evil.test/pay\\r\\n")
>>> result = search(store, SearchCriteria(url="evil.test/pay", subject="invoice"), actor="ana")
>>> [(h.ref.mailbox, h.folder.value, h.subject) for h in result]
[('ann@contoso.test', 'Inbox', 'Invoice 42')]
>>> result.hits[0].matched
('subject', 'url: https://evil.test/pay')
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any

from workbench.enums import Folder
from workbench.errors import InputError, WorkbenchError
from workbench.identity import acting_user
from workbench.ingest import links
from workbench.ingest.message import ParseError, ParsedMessage, parse
from workbench.mail.base import CopyRef, MailStore

DEFAULT_MAX_BYTES = 25 * 2**20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Progress = Callable[[int, int], None]  # (copies done, copies in all)


def _utc(value: datetime | date | str | None, *, end: bool = False) -> datetime | None:
    """A bound as an aware UTC datetime; a bare date as an end bound means the end of that day."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value.strip() else date.fromisoformat(value)
        except ValueError:
            raise InputError(f"date {value!r} is not an ISO date; write it like 2026-11-01 or 2026-11-01T09:30") from None
    if not isinstance(value, datetime):
        value = datetime.combine(value + timedelta(days=1) if end else value, dtime(), tzinfo=timezone.utc)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass(frozen=True)
class SearchCriteria:
    """What to look for; every given criterion must match (AND), at least one is required.

    - ``sender``: an address (From, Sender or Return-Path), or a domain (``evil.test`` / ``@evil.test``);
    - ``recipients``: addresses or domains, any of which is a recipient (To, Cc, Delivered-To) or the mailbox;
    - ``subject``, ``body``, ``url``: text the subject, the body (plain or visible HTML text), a URL contains (any case);
    - ``attachment_name``: a file name (any case; ``*`` and ``?`` wildcards), archive members included;
    - ``attachment_sha256``: the SHA-256 of an attachment or archive member;
    - ``start`` / ``end``: the message date, from ``start`` (inclusive) to ``end`` (exclusive; a bare
      date as ``end`` means to the end of that day);
    - ``mailboxes``: search only these mailboxes (all when empty) — a scope, not a match by itself.

    >>> SearchCriteria(sender="@Evil.test", recipients="ann@contoso.test").recipients
    ('ann@contoso.test',)
    >>> SearchCriteria()
    Traceback (most recent call last):
    ...
    workbench.errors.InputError: a search needs at least one criterion (sender, recipients, subject, body, attachment name or SHA-256, URL, dates); add one
    """

    sender: str | None = None
    recipients: tuple[str, ...] = ()
    subject: str | None = None
    body: str | None = None
    attachment_name: str | None = None
    attachment_sha256: str | None = None
    url: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    mailboxes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in ("recipients", "mailboxes"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, str) else tuple(value or ())
            put(name, tuple(dict.fromkeys(v.strip().lower() for v in value if v and v.strip())))
        for name in ("sender", "subject", "body", "attachment_name", "url"):
            value = getattr(self, name)
            put(name, value.strip() if isinstance(value, str) and value.strip() else None)
        if self.sender:
            put("sender", self.sender.lower())
        if self.attachment_sha256:
            sha = self.attachment_sha256.strip().lower()
            if not _SHA256.match(sha):
                raise InputError(f"attachment SHA-256 {self.attachment_sha256!r} is not 64 hex digits; "
                                 "copy it from EmailAttachmentInfo")
            put("attachment_sha256", sha)
        else:
            put("attachment_sha256", None)
        put("start", _utc(self.start))
        put("end", _utc(self.end, end=True))
        if self.start and self.end and self.start >= self.end:
            raise InputError(f"the date range is empty ({self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}); "
                             "put the start first")
        if not any(getattr(self, f.name) for f in fields(self) if f.name != "mailboxes"):
            raise InputError("a search needs at least one criterion (sender, recipients, subject, body, "
                             "attachment name or SHA-256, URL, dates); add one")

    @property
    def needs_content(self) -> bool:
        """Whether a criterion needs the body or attachments (not only the header block)."""
        return bool(self.body or self.attachment_name or self.attachment_sha256 or self.url)

    def to_dict(self) -> dict[str, Any]:
        """The given criteria, JSON-ready (for the audit log and saved searches)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value:
                out[f.name] = (value.isoformat() if isinstance(value, datetime)
                               else list(value) if isinstance(value, tuple) else value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchCriteria:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(f"unknown search criteria {sorted(unknown)}; use {[f.name for f in fields(cls)]}")
        return cls(**data)


@dataclass(frozen=True)
class SearchHit:
    """One copy that matched, with what matched (e.g. ``"url: https://evil.test/pay"``)."""

    ref: CopyRef
    folder: Folder
    subject: str
    date: datetime | None
    sender: str | None
    matched: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search (iterate it), and what could not be searched."""

    criteria: SearchCriteria
    hits: tuple[SearchHit, ...]
    scanned: int  # copies looked at
    messages: int  # distinct messages read (each once, whatever its number of copies)
    skipped: tuple[str, ...] = ()  # one note per message not searched (too large, unparseable, gone)
    seconds: float = 0.0
    actor: str = ""

    def __iter__(self) -> Iterator[SearchHit]:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def refs(self) -> list[CopyRef]:
        """The copies found: what a move, soft or hard delete acts on."""
        return [h.ref for h in self.hits]

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per hit (for a table or a CSV export)."""
        return [dict(NetworkMessageId=h.ref.network_message_id, Mailbox=h.ref.mailbox, Folder=h.folder.value,
                     Subject=h.subject, Date=h.date, Sender=h.sender, Matched="; ".join(h.matched)) for h in self.hits]


@dataclass(frozen=True)
class _Message:
    """What one message contributes to every copy of it: its facts, and which criteria matched."""

    subject: str
    date: datetime | None
    sender: str | None
    recipients: tuple[str, ...]
    matched: tuple[str, ...] | None  # None: a content criterion failed


def _address_matches(pattern: str, address: str) -> bool:
    """``ann@x.test`` matches that address; ``x.test`` or ``@x.test`` any address of the domain."""
    address = address.lower()
    if "@" in pattern.lstrip("@"):
        return address == pattern
    return address.rpartition("@")[2] == pattern.lstrip("@")


def _words(text: str) -> str:
    return " ".join(text.casefold().split())


def _match_content(m: ParsedMessage, c: SearchCriteria, *, content: bool = True) -> tuple[str, ...] | None:
    """What matched (None: a criterion failed); *content* False checks only sender, subject and dates."""
    matched: list[str] = []
    if c.sender:
        found = next((a for a in (m.from_address, m.sender_address, m.return_path) if a and _address_matches(c.sender, a)), None)
        if found is None:
            return None
        matched.append(f"sender: {found}")
    if c.subject:
        if c.subject.casefold() not in m.subject.casefold():
            return None
        matched.append("subject")
    if c.start or c.end:
        if m.date is None or (c.start and m.date < c.start) or (c.end and m.date >= c.end):
            return None
        matched.append(f"date: {m.date:%Y-%m-%d %H:%M}")
    if not content:
        return tuple(matched)
    if c.body:  # any case, any run of white space (HTML text is full of line breaks and tags' spaces)
        needle = _words(c.body)
        if needle not in _words(m.text) and not (m.html and needle in _words(links.html_parts(m.html)[1])):
            return None
        matched.append("body")
    files = [f for a in m.attachments for f in a.walk()]
    if c.attachment_name:
        pattern = c.attachment_name.casefold()
        name = next((f.file_name for f in files if f.file_name and fnmatch.fnmatchcase(f.file_name.casefold(), pattern)), None)
        if name is None:
            return None
        matched.append(f"attachment: {name}")
    if c.attachment_sha256:
        name = next((f.file_name or "(unnamed)" for f in files if f.sha256.lower() == c.attachment_sha256), None)
        if name is None:
            return None
        matched.append(f"attachment SHA-256: {name}")
    if c.url:
        url = next((u.url for u in m.urls if c.url.casefold() in u.url.casefold()), None)
        if url is None:
            return None
        matched.append(f"url: {url}")
    return tuple(matched)


def _header_block(raw: bytes) -> bytes:
    """The header block of a message (up to its first empty line)."""
    cuts = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return raw[:min(cuts) + 2] + b"\r\n" if cuts else raw


def _facts(m: ParsedMessage, matched: tuple[str, ...] | None) -> _Message:
    return _Message(m.subject, m.date, m.from_address, tuple(a.lower() for a in m.recipients), matched)


def _read(store: MailStore, nmid: str, c: SearchCriteria, max_bytes: int) -> _Message | str:
    """The message's facts, or a note saying why it was not searched.

    Sender, subject and dates are checked on the header block first (parsed by the same
    :func:`parse`): most messages fail there and their bodies are never decoded. A message
    that may carry a reported original (``message/rfc822``) is always parsed whole, since
    :func:`parse` then describes the original."""
    try:
        raw = store.raw(nmid)
    except WorkbenchError as exc:
        return f"{nmid}: not readable ({exc})"
    too_big = len(raw) > max_bytes
    wrapper = b"message/rfc822" in raw[:max_bytes].lower()
    try:
        if too_big or not wrapper:
            head = parse(_header_block(raw), follow_reported=False, language=False)
            matched = _match_content(head, c, content=False)
            if matched is None or not c.needs_content:
                return _facts(head, matched)
        if too_big:
            return (f"{nmid}: {len(raw) / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB search limit; "
                    "check it by hand or raise max_bytes")
        m = parse(raw, language=False)
    except ParseError as exc:
        return f"{nmid}: not parseable ({exc})"
    return _facts(m, _match_content(m, c))


def authorize(actor: str, roles: Any = None) -> None:
    """Raise :class:`~workbench.errors.PermissionDenied` unless *actor* may search and purge: the
    RBAC *remediation* permission when *roles* (the tenant's :class:`~workbench.store.Store`) holds
    role assignments, else ``WORKBENCH_APPROVERS`` (:mod:`workbench.actions.permissions`)."""
    from workbench import rbac
    from workbench.actions.permissions import Permission, require

    if roles is not None and rbac.has_assignments(roles):
        if not rbac.has(roles, actor, rbac.Permission.REMEDIATION):
            raise rbac.denied(actor, rbac.Permission.REMEDIATION)  # the search audits the refusal, once
        return
    require(actor, Permission.SEARCH_AND_PURGE)


def audit(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to the audit file (one ``write`` of an ``O_APPEND`` file: lines never interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def search(store: MailStore, criteria: SearchCriteria, *, actor: str | None = None,
           audit_path: Path | None = None, progress: Progress | None = None,
           max_bytes: int = DEFAULT_MAX_BYTES, roles: Any = None, audit_store: Any = None) -> SearchResult:
    """Every copy in *store* matching *criteria* (see the module docstring).

    *actor* defaults to the acting user and must hold the Search and Purge role (checked against
    the role assignments in *roles*, the tenant's store, when given); the search is
    audited to *audit_path* (default: the store's ``audit_path``), or to the audit log
    (:mod:`workbench.audit`, activity ``mail.search``) when *audit_store* (a
    :class:`~workbench.store.Store`) is given. *progress* is called with
    (copies done, copies in all) — :func:`progress_bar` gives a tqdm or notebook bar."""
    actor = actor or acting_user()
    path = audit_path or getattr(store, "audit_path", None)
    if path is None and audit_store is None:
        raise InputError(f"{type(store).__name__} has no audit_path; pass audit_path= (a JSON-lines file) to search it")
    record: dict[str, Any] = dict(at=datetime.now(timezone.utc).isoformat(timespec="seconds"), actor=actor,
                                  action="mail search", store=type(store).__name__, criteria=criteria.to_dict())

    def log(**outcome: Any) -> None:
        if audit_store is None:
            audit(Path(path), {**record, **outcome})
            return
        from workbench import audit as audit_log

        result = {"denied": "denied", "failed": "failed"}.get(outcome["outcome"], "ok")
        target = json.dumps(record["criteria"], sort_keys=True, ensure_ascii=False, default=str)[:1000]
        audit_log.record(audit_store, actor=actor, activity="mail.search", target=target, result=result,
                         details={"store": record["store"], **outcome})
    started = time.perf_counter()
    try:
        authorize(actor, roles)
    except WorkbenchError as exc:
        log(outcome="denied", reason=str(exc))
        raise
    hits: list[SearchHit] = []
    cache: dict[str, _Message | str] = {}
    scanned = 0
    try:
        scope = [mb for mb in store.mailboxes() if not criteria.mailboxes or mb in criteria.mailboxes]
        plan = [(mb, folder, n) for mb in scope for folder, n in store.folder_counts(mb).items()]
        total = sum(n for *_, n in plan)
        for mailbox, folder, _ in plan:
            for nmid in store.messages_in(mailbox, folder):
                scanned += 1
                if nmid not in cache:
                    cache[nmid] = _read(store, nmid, criteria, max_bytes)
                m = cache[nmid]
                if isinstance(m, _Message) and m.matched is not None:
                    matched = m.matched
                    if criteria.recipients:
                        who = next((r for r in criteria.recipients
                                    if any(_address_matches(r, a) for a in (mailbox, *m.recipients))), None)
                        matched = (*matched, f"recipient: {who}") if who else None
                    if matched is not None:
                        hits.append(SearchHit(CopyRef.of(nmid, mailbox), folder, m.subject, m.date, m.sender, matched))
                if progress and scanned % 200 == 0:
                    progress(scanned, total)
        if progress:
            progress(scanned, max(total, scanned))
    except BaseException as exc:
        log(outcome="failed", reason=f"{type(exc).__name__}: {exc}"[:300], copies_scanned=scanned, hits=len(hits))
        raise
    skipped = tuple(dict.fromkeys(m for m in cache.values() if isinstance(m, str)))
    result = SearchResult(criteria, tuple(hits), scanned, len(cache), skipped, time.perf_counter() - started, actor)
    log(outcome="completed", copies_scanned=scanned, messages=len(cache), hits=len(hits), skipped=len(skipped),
        seconds=round(result.seconds, 3))
    return result


def progress_bar(desc: str = "searching mail") -> Progress:
    """A progress callback drawing a tqdm bar (an ipywidgets bar in a notebook)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=0, desc=desc, unit="copy", leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


__all__ = ["SearchCriteria", "SearchHit", "SearchResult", "search", "authorize", "audit", "progress_bar", "DEFAULT_MAX_BYTES"]
