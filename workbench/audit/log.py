"""The audit log: append-only, hash-chained records of who did what, to what, when, and how it went.

Every record carries the SHA-256 of the previous one (``prev_hash``; 64 zeros for the first)
and its own hash over a canonical JSON of (seq, at, actor, activity, target, result,
request_id, details, prev_hash). Appends are serialized (SQLite ``BEGIN IMMEDIATE``; a
transaction-level advisory lock on PostgreSQL), so concurrent writers never fork the chain.
Each append also rewrites the anchor (``audit_anchor``: the latest seq and hash) in the
same transaction.

:func:`verify` detects, and names the first bad record of:

- an edited record (its hash no longer matches its content);
- a deleted record (a gap in seq; the next record's prev_hash no longer links);
- an inserted or replaced record (a prev_hash that does not link, seq out of order);
- a deleted or forged tail (the last record is not the anchor's).

It does not detect, on its own, a rewrite by someone who recomputes every hash after the
change *and* rewrites the anchor (the hashes carry no secret): keep a record's (seq, hash)
outside the database (an export, a ticket, a SIEM) and pass it as ``known=``, which catches
any rewrite at or before that record.

>>> import tempfile, pathlib
>>> from workbench.store import open_store
>>> store = open_store(url=f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 'wb.sqlite'}")
>>> record(store, actor="ana", activity="mail.preview", target="<id@x>").seq
1
>>> verify(store).ok
True
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from workbench.errors import InputError
from workbench.store import tables as t

GENESIS = "0" * 64
ANONYMOUS = "(unknown)"  # the actor of a record whose caller could not say who acted
_LOCK_ID = 7_202_612  # PostgreSQL advisory lock key for audit appends
_PROCESS_REQUEST_ID = uuid.uuid4().hex
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_audit_request_id", default=None)


class AuditResult(StrEnum):
    """How the audited attempt ended: a permission decision (allowed / denied) or an outcome."""

    ALLOWED = "allowed"
    DENIED = "denied"
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditRecord:
    """One audit record as stored."""

    seq: int
    at: datetime
    actor: str
    activity: str
    target: str
    result: AuditResult
    request_id: str
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (what the JSON lines export writes)."""
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "activity": self.activity,
                "target": self.target, "result": self.result.value, "request_id": self.request_id,
                "details": self.details, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`: ``first_bad_seq`` and ``reason`` are set when ``ok`` is False."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""

    def render(self) -> str:
        """One line for the command line."""
        if self.ok:
            return f"audit log intact: {self.checked:,} record(s) verified"
        return f"audit log broken at record {self.first_bad_seq}: {self.reason} ({self.checked:,} checked)"


# ------------------------------------------------------------------ request ids


def new_request_id() -> str:
    """A fresh request id (uuid4 hex) for one user request."""
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The request id of the current :func:`request_scope`, else this process's id.

    >>> current_request_id() == current_request_id()
    True
    """
    return _request_id.get() or _PROCESS_REQUEST_ID


@contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Records written inside share one request id (a new one unless given).

    >>> with request_scope("r1") as rid: current_request_id()
    'r1'
    """
    rid = request_id or new_request_id()
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


# ------------------------------------------------------------------ hashing and appending


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def compute_hash(seq: int, at: datetime, actor: str, activity: str, target: str, result: str, request_id: str,
                 details: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of a record's canonical JSON."""
    body = _canonical([seq, at.astimezone(UTC).isoformat(), actor, activity, target, str(result), request_id,
                       details, prev_hash])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _result(value: AuditResult | str) -> AuditResult:
    try:
        return AuditResult(value)
    except ValueError:
        raise InputError(f"unknown audit result {value!r}; use one of {', '.join(r.value for r in AuditResult)}") \
            from None


def append(conn: sa.Connection, *, actor: str, activity: str, target: str = "", result: AuditResult | str = "ok",
           request_id: str | None = None, details: dict[str, Any] | None = None) -> AuditRecord:
    """Append one record inside the caller's transaction *conn* (so it commits with the change it audits).

    Use :func:`record` unless you are already in ``Store.run``.
    """
    if not activity:
        raise InputError("an audit record needs an activity (e.g. mail.preview)")
    actor = actor or ANONYMOUS  # a refused attempt by an unknown user is still recorded
    res = _result(result)
    details = json.loads(_canonical(details or {}))  # what is stored is what is hashed
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    last = conn.execute(sa.select(t.audit_log.c.seq, t.audit_log.c.hash)
                        .order_by(t.audit_log.c.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = datetime.now(UTC)
    rid = request_id or current_request_id()
    digest = compute_hash(seq, at, actor, activity, target, res.value, rid, details, prev)
    conn.execute(t.audit_log.insert().values(seq=seq, at=at, actor=actor, activity=activity, target=target,
                                             result=res.value, request_id=rid, details=_canonical(details),
                                             prev_hash=prev, hash=digest))
    if conn.execute(t.audit_anchor.update().where(t.audit_anchor.c.id == 1)
                    .values(seq=seq, hash=digest)).rowcount == 0:
        conn.execute(t.audit_anchor.insert().values(id=1, seq=seq, hash=digest))
    return AuditRecord(seq, at, actor, activity, target, res, rid, details, prev, digest)


def record(store: Any, *, actor: str, activity: str, target: str = "", result: AuditResult | str = "ok",
           request_id: str | None = None, details: dict[str, Any] | None = None) -> AuditRecord:
    """Append one record in its own transaction; returns it.

    *activity* is a dotted name (``mail.preview``, ``action.approve``, ``role.grant``...);
    *result* is ``allowed``/``denied`` for permission decisions, ``ok``/``failed`` for outcomes.
    """
    return store.run(lambda conn: append(conn, actor=actor, activity=activity, target=target, result=result,
                                         request_id=request_id, details=details))


# ------------------------------------------------------------------ reading


def _row(r: Any) -> AuditRecord:
    try:
        details = json.loads(r.details) if r.details else {}
    except ValueError:
        details = {"_unparsable": r.details}
    try:
        res = AuditResult(r.result)
    except ValueError:
        res = AuditResult.FAILED
    return AuditRecord(r.seq, r.at, r.actor, r.activity, r.target, res, r.request_id, details, r.prev_hash, r.hash)


def query(store: Any, *, user: str | None = None, activity: str | None = None, target: str | None = None,
          since: datetime | None = None, until: datetime | None = None, result: str | None = None,
          limit: int | None = 200, newest_first: bool = True) -> list[AuditRecord]:
    """Records matching every given filter: *user* exact, *activity* exact or a prefix ending in ``.``
    or ``*`` (``action.``), *target* a substring, *since* inclusive, *until* exclusive."""
    c = t.audit_log.c
    stmt = sa.select(t.audit_log)
    if user:
        stmt = stmt.where(c.actor == user)
    if activity:
        if activity.endswith(("*", ".")):
            stmt = stmt.where(c.activity.startswith(activity.rstrip("*"), autoescape=True))
        else:
            stmt = stmt.where(c.activity == activity)
    if target:
        stmt = stmt.where(c.target.contains(target, autoescape=True))
    if since is not None:
        stmt = stmt.where(c.at >= since)
    if until is not None:
        stmt = stmt.where(c.at < until)
    if result:
        stmt = stmt.where(c.result == _result(result).value)
    stmt = stmt.order_by(c.seq.desc() if newest_first else c.seq)
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.read() as conn:
        return [_row(r) for r in conn.execute(stmt)]


# ------------------------------------------------------------------ verifying


def verify(store: Any, *, known: tuple[int, str] | None = None, batch: int = 5_000) -> VerifyResult:
    """Walk the chain in seq order and check every link and hash, then the anchor (see module doc);
    *known* is a (seq, hash) kept outside the database that the chain must still contain."""
    c = t.audit_log.c
    if known is not None:
        with store.read() as conn:
            have = conn.execute(sa.select(c.hash).where(c.seq == known[0])).scalar_one_or_none()
        if have != known[1]:
            return VerifyResult(False, 0, known[0], f"record {known[0]} is not the one kept outside the database "
                                + ("(deleted)" if have is None else "(rewritten)"))
    checked, expected_seq, prev = 0, 1, GENESIS
    with store.read() as conn:
        anchor = conn.execute(sa.select(t.audit_anchor.c.seq, t.audit_anchor.c.hash)
                              .where(t.audit_anchor.c.id == 1)).first()
        after = 0
        while True:
            rows = conn.execute(sa.select(t.audit_log).where(c.seq > after).order_by(c.seq).limit(batch)).all()
            if not rows:
                break
            for r in rows:
                if r.seq != expected_seq:
                    missing = f"record {expected_seq}" if r.seq == expected_seq + 1 else \
                        f"records {expected_seq}-{r.seq - 1}"
                    return VerifyResult(False, checked, expected_seq, f"{missing} missing (deleted) before {r.seq}")
                if r.prev_hash != prev:
                    return VerifyResult(False, checked, r.seq, f"record {r.seq} does not link to record {r.seq - 1} "
                                        f"(prev_hash mismatch: inserted, replaced or reordered)")
                rec = _row(r)
                if compute_hash(r.seq, r.at, r.actor, r.activity, r.target, r.result, r.request_id, rec.details,
                                r.prev_hash) != r.hash:
                    return VerifyResult(False, checked, r.seq, f"record {r.seq} was edited (hash mismatch)")
                checked += 1
                expected_seq, prev = r.seq + 1, r.hash
            after = rows[-1].seq
    last = expected_seq - 1
    if anchor is None:
        if last:
            return VerifyResult(False, checked, last, "the anchor is missing (deleted)")
        return VerifyResult(True, 0)
    if anchor.seq > last:
        return VerifyResult(False, checked, last + 1, f"records {last + 1}-{anchor.seq} missing at the end (deleted)"
                            if anchor.seq > last + 1 else f"record {last + 1} missing at the end (deleted)")
    if anchor.seq < last:
        return VerifyResult(False, checked, anchor.seq + 1,
                            f"record {anchor.seq + 1} was added after the last append (inserted)")
    if anchor.hash != prev:
        return VerifyResult(False, checked, last, f"record {last} does not match the anchor (replaced)")
    return VerifyResult(True, checked)


__all__ = ["ANONYMOUS", "GENESIS", "AuditRecord", "AuditResult", "VerifyResult", "append", "compute_hash",
           "current_request_id", "new_request_id", "query", "record", "request_scope", "verify"]
