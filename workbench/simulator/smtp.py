"""Sending simulation messages over real SMTP (stdlib :mod:`smtplib`).

:class:`SmtpSettings` say where and how to connect; the password is never part of them, only
the *name* of the environment variable that holds it (``password_env``). An
:class:`SmtpSession` keeps one connection for many messages and turns every per-message
failure into a :class:`SendResult` instead of an exception: 4xx replies, refused or reset
connections, timeouts and DNS failures are *temporary* (try again later, see
:class:`Backoff`); 5xx replies, failed authentication and TLS verification failures are
*permanent*. Only bad settings raise (:class:`~workbench.errors.InputError`).

>>> SmtpSettings.from_dict({"host": "mail.example.org", "port": 587, "security": "starttls"}).port
587
>>> Backoff().delay(1), Backoff().delay(3), Backoff(max_seconds=100).delay(5)
(60.0, 240.0, 100.0)
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from workbench.errors import InputError

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class Security(StrEnum):
    NONE = "none"  # plain SMTP (loopback relays, tests)
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (port 587/25)
    SSL = "ssl"  # TLS from the first byte (port 465)


class SendOutcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"  # try again later
    PERMANENT = "permanent"  # do not retry: the target failed


@dataclass(frozen=True)
class SendResult:
    """What became of one message: the outcome, the SMTP reply code when there was one, one line of detail."""

    outcome: SendOutcome
    code: int | None = None
    detail: str = ""

    @property
    def sent(self) -> bool:
        return self.outcome is SendOutcome.SENT


@dataclass(frozen=True)
class SmtpSettings:
    """Where to relay simulation mail; see the module docstring. ``password_env`` names a variable."""

    host: str
    port: int = 25
    security: Security = Security.NONE
    username: str = ""
    password_env: str = ""
    timeout: float = 30.0
    helo_name: str | None = None
    verify_tls: bool = True
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip() or any(c.isspace() for c in self.host.strip()):
            raise InputError(f"smtp host {self.host!r} is not a host name; set host to the relay's name or address")
        object.__setattr__(self, "host", self.host.strip())
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise InputError(f"smtp port {self.port!r} is out of range; use 1-65535 (25, 465 or 587)")
        try:
            object.__setattr__(self, "security", Security(str(self.security).lower()))
        except ValueError:
            raise InputError(f"unknown smtp security {self.security!r}; use one of none, starttls, ssl") from None
        if self.username and not self.password_env:
            raise InputError("smtp username is set but password_env is empty; name the environment variable "
                             "that holds the password in password_env")
        if self.password_env and not _env_name(self.password_env):
            raise InputError(f"smtp password_env {self.password_env!r} is not an environment variable name; "
                             "give the variable's name (e.g. WORKBENCH_SMTP_PASSWORD), never the password")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise InputError(f"smtp timeout {self.timeout!r} must be a positive number of seconds; e.g. 30")
        object.__setattr__(self, "timeout", float(self.timeout))
        if not isinstance(self.verify_tls, bool):
            raise InputError(f"smtp verify_tls {self.verify_tls!r} must be true or false")
        if self.ca_file is not None:
            object.__setattr__(self, "ca_file", str(self.ca_file))

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SmtpSettings:
        """Settings from a mapping (JSON/YAML); unknown keys and any ``password`` key are refused."""
        if "password" in data:
            raise InputError("smtp settings never hold the password; put it in an environment variable "
                             "and give that variable's name in password_env")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown smtp setting(s) {', '.join(unknown)}; use {', '.join(sorted(known))}")
        if "host" not in data:
            raise InputError("smtp settings need a host; set host to the relay's name or address")
        return cls(**data)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["security"] = self.security.value
        return out

    def password(self) -> str:
        """The password from ``password_env`` ('' without a username); raises when the variable is unset."""
        if not self.username:
            return ""
        value = os.environ.get(self.password_env)
        if not value:
            raise InputError(f"environment variable {self.password_env} (smtp password_env) is not set; "
                             "export it with the relay password before sending")
        return value

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context: the system store, or ``ca_file``; no checks when verify_tls is false."""
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise InputError(f"smtp ca_file {self.ca_file} does not exist; give the PEM file of the "
                             "relay's CA (or leave ca_file empty for the system store)")
        if not self.verify_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except ssl.SSLError as exc:
            raise InputError(f"smtp ca_file {self.ca_file} is not a PEM certificate file ({exc.reason}); "
                             "give the relay CA's PEM file") from None

    def check(self) -> None:
        """Fail early (InputError) on what only the environment can tell: the password variable, the CA file."""
        self.password()
        if self.security is not Security.NONE:
            self.tls_context()


def _env_name(name: str) -> bool:
    return name.replace("_", "a").isalnum() and not name[0].isdigit()


@dataclass(frozen=True)
class Backoff:
    """How long to wait before retrying a temporary failure.

    >>> b = Backoff(base_seconds=10, factor=3, max_seconds=60, max_attempts=3)
    >>> [b.delay(n) for n in (1, 2, 3, 4)], b.exhausted(2), b.exhausted(3)
    ([10.0, 30.0, 60.0, 60.0], False, True)
    """

    base_seconds: float = 60.0
    factor: float = 2.0
    max_seconds: float = 3600.0
    max_attempts: int = 6

    def __post_init__(self) -> None:
        if self.base_seconds < 0 or self.max_seconds < self.base_seconds:
            raise InputError("backoff needs 0 <= base_seconds <= max_seconds; e.g. base 60, max 3600")
        if self.factor < 1:
            raise InputError(f"backoff factor {self.factor} must be at least 1; e.g. 2")
        if self.max_attempts < 1:
            raise InputError(f"backoff max_attempts {self.max_attempts} must be at least 1; e.g. 6")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number *attempt* (1: the first)."""
        if attempt < 1:
            raise InputError(f"attempt {attempt} must be 1 or more")
        return float(min(self.max_seconds, self.base_seconds * self.factor ** (attempt - 1)))

    def exhausted(self, attempts: int) -> bool:
        """True once *attempts* attempts were made: give up and mark the target failed."""
        return attempts >= self.max_attempts


class SmtpSession:
    """One SMTP connection for many messages; see the module docstring.

    Use as a context manager. A failure to connect, authenticate or secure the connection is
    remembered: later :meth:`send` calls return it at once rather than reconnecting per message.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._broken: SendResult | None = None
        self._secret = ""
        self._ready = False

    def __enter__(self) -> SmtpSession:
        self.open()
        return self

    def open(self) -> None:
        """Check the settings against the environment (InputError); the connection opens on the first send."""
        self.settings.check()  # settings errors raise here, before any message
        self._secret = self.settings.password()
        self._ready = True
        if self.settings.username and self.settings.security is Security.NONE and self.settings.host not in LOOPBACK:
            log.warning("smtp: sending the password for %s to %s without TLS; set security to starttls or ssl",
                        self.settings.username, self.settings.host)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def broken(self) -> SendResult | None:
        """The connection-level failure every further send will return (None: usable)."""
        return self._broken

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> SendResult:
        """Relay *message* to one *recipient*; never raises for an SMTP or network failure."""
        if not self._ready:
            self.open()
        if self._broken is not None:
            return self._broken
        for attempt in (1, 2):
            reused = self._smtp is not None
            if self._smtp is None:
                failure = self._connect()
                if failure is not None:
                    self._broken = failure
                    return failure
            assert self._smtp is not None
            try:
                self._smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()), (None, b""))
                return self._reply(code, reply, f"recipient {recipient} refused")
            except smtplib.SMTPSenderRefused as exc:
                return self._reply(exc.smtp_code, exc.smtp_error, f"sender {envelope_from} refused")
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if attempt == 1 and reused:
                    continue  # the server closed an idle connection: reconnect once
                return self._result(SendOutcome.TEMPORARY, None, f"server closed the connection: {exc}")
            except smtplib.SMTPResponseException as exc:  # DATA refused, and the rest
                if exc.smtp_code in (421,):
                    self._drop()
                return self._reply(exc.smtp_code, exc.smtp_error, "message refused")
            except smtplib.SMTPNotSupportedError as exc:
                return self._result(SendOutcome.PERMANENT, None, f"server cannot take this message: {exc}")
            except (ConnectionError, TimeoutError, socket.timeout) as exc:
                self._drop()
                if attempt == 1 and reused and isinstance(exc, ConnectionError):
                    continue
                return self._result(SendOutcome.TEMPORARY, None, f"connection lost while sending: {_describe(exc)}")
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                return self._result(SendOutcome.TEMPORARY, None, f"sending failed: {_describe(exc)}")
            return self._result(SendOutcome.SENT, 250, f"accepted by {self._where()} for {recipient}")
        return self._result(SendOutcome.TEMPORARY, None, "server kept closing the connection")  # pragma: no cover

    # -- connection ---------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connect(self) -> SendResult | None:
        """Connect, EHLO, secure and log in; a SendResult on failure."""
        s = self.settings
        where = self._where()
        smtp: smtplib.SMTP | None = None
        try:
            if s.security is Security.SSL:  # the constructors connect (and close again on failure)
                smtp = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.helo_name, timeout=s.timeout,
                                        context=s.tls_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.helo_name, timeout=s.timeout)
            smtp.ehlo_or_helo_if_needed()
            if s.security is Security.STARTTLS:
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    return self._result(SendOutcome.PERMANENT, None, f"{where} does not offer STARTTLS; "
                                        "set security to ssl or none, or use a relay that supports it")
                smtp.starttls(context=s.tls_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, self._secret)
        except smtplib.SMTPAuthenticationError as exc:
            _close(smtp)
            outcome = SendOutcome.TEMPORARY if 400 <= exc.smtp_code < 500 else SendOutcome.PERMANENT
            return self._result(outcome, exc.smtp_code, f"authentication as {s.username} failed at {where} "
                                f"({exc.smtp_code} {_text(exc.smtp_error)}); check username and the "
                                f"password in ${s.password_env} (password_env)")
        except smtplib.SMTPNotSupportedError as exc:
            _close(smtp)
            return self._result(SendOutcome.PERMANENT, None, f"{where}: {exc}; check security and username")
        except ssl.SSLCertVerificationError as exc:
            _close(smtp)
            return self._result(SendOutcome.PERMANENT, None, f"TLS certificate of {where} not trusted "
                                f"({exc.verify_message or exc.reason}); set ca_file to the relay CA's PEM file "
                                "(or verify_tls false on a test relay)")
        except ssl.SSLError as exc:
            _close(smtp)
            return self._result(SendOutcome.PERMANENT, None, f"TLS handshake with {where} failed ({exc.reason}); "
                                "check security (ssl for port 465, starttls for 587) and port")
        except smtplib.SMTPResponseException as exc:  # 421 on connect, 5xx to EHLO/STARTTLS
            _close(smtp)
            return self._reply(exc.smtp_code, exc.smtp_error, f"{where} refused the session")
        except socket.gaierror as exc:
            _close(smtp)
            return self._result(SendOutcome.TEMPORARY, None, f"cannot resolve {s.host} ({exc.strerror}); "
                                "check host and DNS")
        except smtplib.SMTPServerDisconnected as exc:
            _close(smtp)
            if "timed out" not in str(exc):
                return self._result(SendOutcome.TEMPORARY, None, f"{where} closed the connection ({exc}); "
                                    "check that the relay is running and host/port/security")
            return self._result(SendOutcome.TEMPORARY, None, f"no answer from {where} within {s.timeout:g} s; "
                                "check host, port and firewall")
        except (TimeoutError, socket.timeout):
            _close(smtp)
            return self._result(SendOutcome.TEMPORARY, None, f"no answer from {where} within {s.timeout:g} s; "
                                "check host, port and firewall")
        except (smtplib.SMTPException, OSError) as exc:
            _close(smtp)
            return self._result(SendOutcome.TEMPORARY, None, f"cannot connect to {where} ({_describe(exc)}); "
                                "check that the relay is running and host/port")
        self._smtp = smtp
        return None

    # -- results ------------------------------------------------------------------------------

    def _reply(self, code: int | None, reply: bytes | str, what: str) -> SendResult:
        outcome = SendOutcome.TEMPORARY if code is None or code < 500 else SendOutcome.PERMANENT
        return self._result(outcome, code, f"{what}: {code} {_text(reply)}".rstrip())

    def _result(self, outcome: SendOutcome, code: int | None, detail: str) -> SendResult:
        detail = " ".join(detail.split())[:300]
        if self._secret:
            detail = detail.replace(self._secret, "***")
        result = SendResult(outcome, code, detail)
        if outcome is not SendOutcome.SENT:
            log.info("smtp %s: %s", outcome.value, detail)
        return result


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


__all__ = ["Security", "SendOutcome", "SendResult", "SmtpSettings", "SmtpSession", "Backoff"]
