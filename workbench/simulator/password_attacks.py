"""Password-attack simulations (the Office 365 Attack Simulator's brute-force and password-spray
attacks) against the organisation's **own** sign-in endpoint, to find accounts that accept a
weak password.

- :attr:`Mode.DICTIONARY` (brute force): many passwords against one or a few accounts;
- :attr:`Mode.SPRAY`: one or a few passwords against many accounts, one round per password with
  :attr:`AttackLimits.round_delay` between rounds.

Safety rules, checked before any connection:

- only simulation administrators (*simulation management*) may run one; refusals are audited;
- the endpoint must be listed in the tenant's ``password-attack.json``
  (:mod:`~workbench.simulator.password_config`), and every account must be an enabled directory
  user (IdentityInfo) of one of the organisation's domains;
- attempts are paced (:attr:`AttackLimits.min_interval` between any two), capped per account
  (:attr:`AttackLimits.max_attempts_per_account`), and an account is left alone after
  :attr:`AttackLimits.max_failures` failed sign-ins, which must stay below the directory's
  lockout threshold (the *lockout guard*);
- no password, candidate or accepted, is ever stored, logged, audited or shown: an account's
  outcome only says it "accepted a weak password from the list".

Results go to ``<tenant>/password-attacks/<id>.json`` and the audit log
(``simulator.password_attack``, counts only). Only IMAP is implemented (``imaplib``: implicit
TLS, STARTTLS, or plain on loopback); LDAP simple bind would need an unpinned client.

>>> AttackLimits(min_interval=-1)
Traceback (most recent call last):
...
workbench.errors.InputError: min_interval -1 is negative; use 0 or more seconds between attempts
>>> repr(Candidate(3, "hunter2"))
'Candidate(entry=3)'
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from workbench.atomic import write_json
from workbench.errors import InputError, StorageError, WorkbenchError
from workbench.simulator.password_config import CONFIG_FILE, LoginName, OwnEndpoint, Security, load

log = logging.getLogger(__name__)

ACTIVITY = "simulator.password_attack"
RESULTS_DIR = "password-attacks"
MAX_DICTIONARY_ACCOUNTS = 5
MAX_SPRAY_PASSWORDS = 5
ACCEPTED_TEXT = "accepted a weak password from the list"

Progress = Callable[[int, int], None]
Attempt = Callable[[OwnEndpoint, str, str, float], bool]


class Mode(StrEnum):
    DICTIONARY = "dictionary"  # brute force: many passwords, few accounts
    SPRAY = "spray"  # few passwords, many accounts


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # a password from the list signed in
    NOT_ACCEPTED = "not accepted"  # every candidate it was tried with was refused
    LOCKOUT_GUARD = "lockout guard"  # left alone after max_failures refusals
    ATTEMPT_LIMIT = "attempt limit"  # left alone after max_attempts_per_account
    NOT_TRIED = "not tried"  # the run stopped (endpoint unreachable, interrupted) first


class Unreachable(WorkbenchError):
    """The endpoint could not be reached or broke the session (not a refused password)."""


@dataclass(frozen=True)
class Candidate:
    """A candidate password and its (1-based) entry in the list; its repr never shows it."""

    entry: int
    value: str = field(repr=False)


@dataclass(frozen=True)
class AttackLimits:
    """Pacing and lockout safety. ``max_failures`` None: two below the directory's lockout threshold."""

    min_interval: float = 2.0  # seconds between the starts of any two attempts
    max_attempts_per_account: int = 5
    max_failures: int | None = None  # per account; must stay below the lockout threshold
    round_delay: float = 60.0  # spray: seconds between rounds (one round per password)
    timeout: float = 15.0  # per connection

    def __post_init__(self) -> None:
        for name in ("min_interval", "round_delay"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} {getattr(self, name)} is negative; use 0 or more seconds between attempts")
        if self.max_attempts_per_account < 1:
            raise InputError(f"max_attempts_per_account {self.max_attempts_per_account} must be at least 1")
        if self.max_failures is not None and self.max_failures < 1:
            raise InputError(f"max_failures {self.max_failures} must be at least 1")
        if self.timeout <= 0:
            raise InputError(f"timeout {self.timeout} must be positive seconds")

    def failures_allowed(self, lockout_threshold: int) -> int:
        """The lockout guard's limit under *lockout_threshold*.

        >>> AttackLimits().failures_allowed(10), AttackLimits().failures_allowed(2)
        (8, 1)
        """
        if self.max_failures is None:
            return max(1, lockout_threshold - 2)
        if self.max_failures >= lockout_threshold:
            raise InputError(f"max_failures {self.max_failures} would lock accounts out (the directory locks after "
                             f"{lockout_threshold}); use at most {lockout_threshold - 1}")
        return self.max_failures


@dataclass(frozen=True)
class AccountOutcome:
    """What one account did; never the password."""

    account: str
    outcome: Outcome
    attempts: int
    failures: int

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    def describe(self) -> str:
        """One line for reports.

        >>> AccountOutcome("ann@example.org", Outcome.ACCEPTED, 2, 1).describe()
        'ann@example.org: accepted a weak password from the list (2 attempts)'
        """
        what = ACCEPTED_TEXT if self.accepted else str(self.outcome)
        return f"{self.account}: {what} ({self.attempts} attempt{'s' if self.attempts != 1 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "outcome": str(self.outcome), "attempts": self.attempts,
                "failures": self.failures}


@dataclass(frozen=True)
class AttackResult:
    """One simulation's outcome: counts and per-account outcomes, no passwords."""

    id: str
    mode: Mode
    endpoint: str
    started: datetime
    duration: float  # seconds
    candidates: int  # passwords in the list (their number only)
    attempts: int
    outcomes: tuple[AccountOutcome, ...]
    error: str = ""  # why the run stopped early ("" when it ran to the end)

    @property
    def accounts_tried(self) -> int:
        return sum(1 for o in self.outcomes if o.attempts)

    @property
    def accepted(self) -> tuple[str, ...]:
        """Accounts that accepted a weak password from the list."""
        return tuple(o.account for o in self.outcomes if o.accepted)

    @property
    def lockout_guard_hits(self) -> int:
        return sum(1 for o in self.outcomes if o.outcome is Outcome.LOCKOUT_GUARD)

    def counts(self) -> dict[str, Any]:
        return {"mode": str(self.mode), "accounts": len(self.outcomes), "accounts_tried": self.accounts_tried,
                "candidates": self.candidates, "attempts": self.attempts, "accepted": len(self.accepted),
                "lockout_guard_hits": self.lockout_guard_hits, "duration_s": round(self.duration, 3),
                "stopped_early": bool(self.error)}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "mode": str(self.mode), "endpoint": self.endpoint, "started": self.started.isoformat(),
                "duration_s": round(self.duration, 3), "candidates": self.candidates, "attempts": self.attempts,
                "error": self.error, "outcomes": [o.to_dict() for o in self.outcomes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackResult:
        return cls(id=data["id"], mode=Mode(data["mode"]), endpoint=data["endpoint"],
                   started=datetime.fromisoformat(data["started"]), duration=float(data["duration_s"]),
                   candidates=int(data["candidates"]), attempts=int(data["attempts"]), error=data.get("error", ""),
                   outcomes=tuple(AccountOutcome(o["account"], Outcome(o["outcome"]), int(o["attempts"]),
                                                 int(o["failures"])) for o in data["outcomes"]))


# ------------------------------------------------------------------ the IMAP sign-in


def _ssl_context(endpoint: OwnEndpoint) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=endpoint.ca_file or None)


def _connect(endpoint: OwnEndpoint, timeout: float) -> imaplib.IMAP4:
    if endpoint.security is Security.TLS:
        return imaplib.IMAP4_SSL(endpoint.host, endpoint.port, ssl_context=_ssl_context(endpoint), timeout=timeout)
    conn = imaplib.IMAP4(endpoint.host, endpoint.port, timeout=timeout)
    if endpoint.security is Security.STARTTLS:
        try:
            conn.starttls(_ssl_context(endpoint))
        except BaseException:
            with contextlib.suppress(OSError):
                conn.shutdown()
            raise
    return conn


def imap_attempt(endpoint: OwnEndpoint, user: str, password: str, timeout: float) -> bool:
    """Sign in once over a fresh connection: True if accepted, False if refused; :class:`Unreachable`
    when the endpoint cannot be reached or breaks the session."""
    try:
        conn = _connect(endpoint, timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise Unreachable(f"cannot reach {endpoint.key}: {_reason(exc)}") from None
    try:
        conn.login(user, password)
        return True
    except imaplib.IMAP4.abort as exc:
        raise Unreachable(f"{endpoint.key} broke the session: {_reason(exc)}") from None
    except imaplib.IMAP4.error:
        return False
    except OSError as exc:
        raise Unreachable(f"{endpoint.key} broke the session: {_reason(exc)}") from None
    finally:
        with contextlib.suppress(Exception):  # the verdict is known; a failing LOGOUT changes nothing
            conn.logout()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:200]


# ------------------------------------------------------------------ checks before any connection


def _candidates(passwords: Sequence[str]) -> tuple[Candidate, ...]:
    """The distinct non-empty passwords in list order, with their entry numbers."""
    if isinstance(passwords, str):
        raise InputError("give the passwords as a list, not one string")
    seen: set[str] = set()
    out = []
    for n, value in enumerate(passwords, start=1):
        if value and value not in seen:
            seen.add(value)
            out.append(Candidate(n, value))
    if not out:
        raise InputError("the password list is empty; give at least one candidate password")
    return tuple(out)


def own_accounts(tenant: Any, accounts: Sequence[str], *, lake: Any = None) -> tuple[str, ...]:
    """*accounts* (lower-cased, distinct) if every one is an enabled directory user of the
    organisation's domains; InputError naming the first that is not."""
    from workbench.lake import Lake
    from workbench.simulator.targets import directory
    from workbench.tenant import org_domains

    wanted = tuple(dict.fromkeys(a.strip().lower() for a in accounts if a.strip()))
    if not wanted:
        raise InputError("no accounts given; name the directory users to test")
    domains = set(org_domains(tenant))
    if not domains:
        raise InputError("the organisation's domains are unknown (organisation.domains in the tenant manifest); "
                         "set them before simulating password attacks")
    for account in wanted:
        if account.rpartition("@")[2] not in domains:
            raise InputError(f"{account} is not in the organisation's domains ({', '.join(sorted(domains))}); "
                             "only the organisation's own directory users may be tested")
    users = directory(lake if lake is not None else Lake.for_tenant(tenant))
    known = set(users["email"]) if not users.is_empty() else set()
    missing = [a for a in wanted if a not in known]
    if missing:
        raise InputError(f"{missing[0]} is not an enabled directory user (IdentityInfo); choose directory users "
                         f"({len(missing)} unknown in all)")
    return wanted


def _check_shape(mode: Mode, accounts: Sequence[str], candidates: Sequence[Candidate]) -> None:
    if mode is Mode.DICTIONARY and len(accounts) > MAX_DICTIONARY_ACCOUNTS:
        raise InputError(f"a dictionary attack targets at most {MAX_DICTIONARY_ACCOUNTS} accounts ({len(accounts)} "
                         "given); use a password spray for many accounts")
    if mode is Mode.SPRAY and len(candidates) > MAX_SPRAY_PASSWORDS:
        raise InputError(f"a password spray tries at most {MAX_SPRAY_PASSWORDS} passwords ({len(candidates)} "
                         "given); use a dictionary attack against a few accounts")


def login_name(endpoint: OwnEndpoint, account: str) -> str:
    """The user name *endpoint* expects for *account*.

    >>> login_name(OwnEndpoint("127.0.0.1", 143, "plain", login="local"), "ann@example.org")
    'ann'
    """
    return account.partition("@")[0] if endpoint.login is LoginName.LOCAL else account


# ------------------------------------------------------------------ the run


class _Pacer:
    """At least *interval* seconds between the starts of two attempts."""

    def __init__(self, interval: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self.last: float | None = None

    def wait(self, at_least: float = 0.0) -> None:
        if self.last is not None:
            remaining = self.last + max(self.interval, at_least) - self.clock()
            if remaining > 0:
                self.sleep(remaining)
        self.last = self.clock()


@dataclass
class _State:
    attempts: int = 0
    failures: int = 0
    outcome: Outcome | None = None


def _schedule(mode: Mode, accounts: Sequence[str], candidates: Sequence[Candidate],
              per_account: int) -> Iterator[tuple[bool, str, Candidate]]:
    """(starts a new spray round, account, candidate) in attack order."""
    if mode is Mode.DICTIONARY:
        for account in accounts:
            for cand in candidates[:per_account]:
                yield False, account, cand
    else:
        for n, cand in enumerate(candidates[:per_account]):
            for i, account in enumerate(accounts):
                yield n > 0 and i == 0, account, cand


def _run(endpoint: OwnEndpoint, mode: Mode, accounts: Sequence[str], candidates: Sequence[Candidate],
         limits: AttackLimits, max_failures: int, attempt: Attempt, progress: Progress | None,
         clock: Callable[[], float], sleep: Callable[[float], None]) -> tuple[dict[str, _State], int, str]:
    per_account = min(len(candidates), limits.max_attempts_per_account)
    total = len(accounts) * per_account
    states = {a: _State() for a in accounts}
    pacer, attempts, done, error, round_pending = _Pacer(limits.min_interval, clock, sleep), 0, 0, "", False
    for new_round, account, cand in _schedule(mode, accounts, candidates, per_account):
        done += 1
        round_pending = round_pending or new_round
        st = states[account]
        if st.outcome is None and st.failures >= max_failures:
            st.outcome = Outcome.LOCKOUT_GUARD
            log.info("lockout guard: leaving %s alone after %d refused sign-ins", account, st.failures)
        if st.outcome is None:
            pacer.wait(limits.round_delay if round_pending else 0.0)
            round_pending = False
            try:
                ok = attempt(endpoint, login_name(endpoint, account), cand.value, limits.timeout)
            except Unreachable as exc:
                error = str(exc)
            except KeyboardInterrupt:  # stop cleanly: what ran so far is still stored and audited
                error = "interrupted"
            if error:
                log.warning("password attack stopped: %s", error)
                break
            attempts += 1
            st.attempts += 1
            if ok:
                st.outcome = Outcome.ACCEPTED
            else:
                st.failures += 1
            log.debug("attempt %d on %s: %s", attempts, account, "accepted" if ok else "refused")
        if progress:
            progress(done, total)
    for st in states.values():
        if st.outcome is None:
            st.outcome = (Outcome.NOT_TRIED if not st.attempts
                          else Outcome.ATTEMPT_LIMIT if not error and len(candidates) > per_account
                          else Outcome.NOT_ACCEPTED)
    return states, attempts, error


def results_dir(tenant: Any) -> Path:
    return Path(tenant.root) / RESULTS_DIR


def _save(tenant: Any, result: AttackResult) -> Path:
    folder = results_dir(tenant)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return write_json(folder / f"{result.id}.json", result.to_dict())


def load_results(tenant: Any) -> list[AttackResult]:
    """The tenant's stored simulations, newest first."""
    folder = results_dir(tenant)
    found = [AttackResult.from_dict(json.loads(p.read_text(encoding="utf-8"))) for p in folder.glob("*.json")] \
        if folder.is_dir() else []
    return sorted(found, key=lambda r: r.started, reverse=True)


def simulate(tenant: Any, store: Any, actor: str, *, mode: Mode | str, accounts: Sequence[str],
             passwords: Sequence[str], endpoint: str | None = None, limits: AttackLimits | None = None,
             progress: Progress | None = None, lake: Any = None, attempt: Attempt = imap_attempt,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> AttackResult:
    """Run a password-attack simulation as *actor* against the configured own *endpoint*
    (``imap://host:port``; None: the only one configured). *progress(done, total)* after each
    planned attempt (tried or skipped). Stored and audited; returns the result."""
    from workbench import audit, rbac

    target = endpoint or "(the configured endpoint)"
    rbac.require(store, actor, rbac.Permission.SIMULATION_MANAGEMENT, activity=ACTIVITY, target=target)
    try:
        mode = Mode(str(mode).strip().lower())
    except ValueError:
        raise InputError(f"mode {mode!r} is unknown; use {Mode.DICTIONARY} or {Mode.SPRAY}") from None
    limits = limits or AttackLimits()
    try:
        config = load(tenant)
        own = config.endpoint(endpoint)
        candidates = _candidates(passwords)
        chosen = own_accounts(tenant, accounts, lake=lake)
        _check_shape(mode, chosen, candidates)
        max_failures = limits.failures_allowed(config.lockout_threshold)
    except InputError as exc:
        audit.record(store, actor=actor, activity=ACTIVITY, target=target, result="failed",
                     details={"mode": str(mode), "refused": str(exc)[:300]})
        raise
    started, t0 = datetime.now(UTC), clock()
    log.info("password %s against %s: %d accounts, %d candidates", mode, own.key, len(chosen), len(candidates))
    states, attempts, error = _run(own, mode, chosen, candidates, limits, max_failures, attempt, progress, clock, sleep)
    result = AttackResult(
        id=f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}", mode=mode, endpoint=own.key, started=started,
        duration=clock() - t0, candidates=len(candidates), attempts=attempts, error=error,
        outcomes=tuple(AccountOutcome(a, s.outcome or Outcome.NOT_TRIED, s.attempts, s.failures)
                       for a, s in states.items()))
    _save(tenant, result)
    audit.record(store, actor=actor, activity=ACTIVITY, target=own.key, result="failed" if error else "ok",
                 details={"id": result.id, **result.counts()})
    log.info("password %s against %s: %d of %d accounts accepted a weak password (%d attempts)", mode, own.key,
             len(result.accepted), len(chosen), attempts)
    return result


def dictionary_attack(tenant: Any, store: Any, actor: str, accounts: Sequence[str], passwords: Sequence[str],
                      **kwargs: Any) -> AttackResult:
    """Many passwords against one or a few accounts (:func:`simulate` with :attr:`Mode.DICTIONARY`)."""
    return simulate(tenant, store, actor, mode=Mode.DICTIONARY, accounts=accounts, passwords=passwords, **kwargs)


def password_spray(tenant: Any, store: Any, actor: str, accounts: Sequence[str], passwords: Sequence[str],
                   **kwargs: Any) -> AttackResult:
    """One or a few passwords against many accounts (:func:`simulate` with :attr:`Mode.SPRAY`)."""
    return simulate(tenant, store, actor, mode=Mode.SPRAY, accounts=accounts, passwords=passwords, **kwargs)


__all__ = ["Mode", "Outcome", "AttackLimits", "AccountOutcome", "AttackResult", "Candidate", "Unreachable",
           "simulate", "dictionary_attack", "password_spray", "imap_attempt", "own_accounts", "login_name",
           "load_results", "results_dir", "ACTIVITY", "ACCEPTED_TEXT", "CONFIG_FILE", "MAX_DICTIONARY_ACCOUNTS",
           "MAX_SPRAY_PASSWORDS"]
