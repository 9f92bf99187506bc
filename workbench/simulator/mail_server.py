"""An embedded SMTP server (aiosmtpd) on loopback: simulation mail delivered into a tenant.

:class:`EmbeddedSmtpServer` accepts mail like a receiving MTA: it stamps a ``Received:``
header (client address, HELO name, this server, time) on every message and hands the bytes
to a *deliver* callable once per DATA. :func:`tenant_delivery` is the deliver callable that
puts each recipient's copy into the tenant (the mailbox's Inbox in the mail store, rows in
EmailEvents) through the ordinary ingest, one delivery at a time.

Optional STARTTLS (``tls_context``), required AUTH (``auth``: user → password, or a
``check(user, password) -> bool``) and a per-recipient ``policy`` that can refuse at RCPT
with an SMTP reply (``"451 4.3.0 try again later"``, ``"550 5.1.1 no such user"``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from workbench.errors import ConflictError, InputError

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, str, list[str]], None]
Policy = Callable[[str, str], "str | None"]
Auth = Mapping[str, str] | Callable[[str, str], bool]

SERVER_NAME = "workbench embedded SMTP"
NMID_HEADER = "X-MS-Exchange-Organization-Network-Message-Id"
_NMID_NAMESPACE = uuid.UUID("6f1c7d2e-1b7a-4a59-9d0e-2f3c5a7b9e10")


class DeliveryRefused(Exception):
    """Raised by a deliver callable to answer DATA with a specific SMTP reply (e.g. ``550 5.6.0 ...``)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class _Handler:
    def __init__(self, deliver: Deliver, policy: Policy | None, hostname: str) -> None:
        self.deliver = deliver
        self.policy = policy
        self.hostname = hostname

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.policy is not None:
            try:
                reply = self.policy(envelope.mail_from or "", address)
            except Exception as exc:  # noqa: BLE001 - a broken policy must not kill the session
                log.warning("smtp server: policy failed for %s: %s", address, exc)
                return "451 4.3.0 recipient policy failed; try again later"
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        queue_id = uuid.uuid4().hex[:12].upper()
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        transport = getattr(server, "transport", None)
        secure = session.ssl is not None or (transport is not None and transport.get_extra_info("ssl_object") is not None)
        data = received_header(session, self.hostname, queue_id, envelope.rcpt_tos, raw, secure=secure) + raw
        recipients = list(envelope.rcpt_tos)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.deliver, data, envelope.mail_from or "", recipients)
        except DeliveryRefused as exc:
            return exc.reply
        except Exception as exc:  # noqa: BLE001 - the client is told to retry, the server keeps running
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            log.warning("smtp server: delivery of %s failed: %s", queue_id, reason)
            return f"451 4.3.0 delivery failed ({reason}); try again later"
        return f"250 2.0.0 OK queued as {queue_id}"


def received_header(session: Any, hostname: str, queue_id: str, recipients: list[str], raw: bytes, *,
                    secure: bool = False) -> bytes:
    """The ``Received:`` trace line this server adds (RFC 5321 §4.4), with the data's line ending."""
    ip, *_ = session.peer if isinstance(session.peer, tuple) else (str(session.peer),)
    helo = session.host_name or "unknown"
    proto = "ESMTP" if session.extended_smtp else "SMTP"
    proto += "S" if secure or session.ssl is not None else ""
    proto += "A" if session.authenticated else ""
    nl = "\r\n" if b"\r\n" in raw[:4096] or not raw else "\n"
    line = f"Received: from {helo} ([{ip}]){nl}\tby {hostname} ({SERVER_NAME}) with {proto} id {queue_id}"
    if len(recipients) == 1:
        line += f"{nl}\tfor <{recipients[0]}>"
    line += f"; {format_datetime(datetime.now(timezone.utc))}{nl}"
    return line.encode("utf-8", "replace")


def _authenticator(auth: Auth) -> Callable[..., AuthResult]:
    def check(user: str, password: str) -> bool:
        if callable(auth):
            return bool(auth(user, password))
        expected = auth.get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = check(user, auth_data.password.decode("utf-8", "replace"))
        if not ok:
            log.info("smtp server: authentication failed for %s", user)
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    return authenticator


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to bind port 0 (the kernel picks a free port)."""

    def _create_server(self):  # type: ignore[override]
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(self._factory_invoker, host=self.hostname,
                                                   port=self.port, ssl=self.ssl_context)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class EmbeddedSmtpServer:
    """An SMTP server on *host*:*port* (0: any free port) in a background thread; see the module docstring.

    With *tls_context* (a server-side :class:`ssl.SSLContext`) it offers STARTTLS; with
    *ssl_context* it speaks TLS from the first byte (like port 465, ``security="ssl"``); with
    *auth* it requires AUTH (PLAIN/LOGIN), over TLS when STARTTLS is offered.
    """

    def __init__(self, deliver: Deliver, *, host: str = "127.0.0.1", port: int = 0,
                 tls_context: ssl.SSLContext | None = None, ssl_context: ssl.SSLContext | None = None,
                 auth: Auth | None = None,
                 policy: Policy | None = None, hostname: str | None = None,
                 data_size_limit: int = 25 * 1024 * 1024) -> None:
        if not 0 <= port <= 65535:
            raise InputError(f"smtp server port {port} is out of range; use 0 (any free port) to 65535")
        self.host = host
        self.hostname = hostname or socket.gethostname() or "localhost"
        kwargs: dict[str, Any] = dict(server_hostname=self.hostname, ident=SERVER_NAME, decode_data=False,
                                      data_size_limit=data_size_limit, enable_SMTPUTF8=True)
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        if auth is not None:
            kwargs.update(authenticator=_authenticator(auth), auth_required=True,
                          auth_require_tls=tls_context is not None)
        self._controller = _Controller(_Handler(deliver, policy, self.hostname), hostname=host, port=port,
                                       ssl_context=ssl_context, **kwargs)
        self._running = False

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> EmbeddedSmtpServer:
        if self._running:
            return self
        try:
            self._controller.start()
        except OSError as exc:
            self._controller._thread = None
            raise ConflictError(f"cannot listen on {self.host}:{self._controller.port} ({exc.strerror or exc}); "
                                "choose another port or stop what is using it") from None
        self._running = True
        log.info("smtp server listening on %s:%d", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> EmbeddedSmtpServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- delivery into a tenant -----------------------------------------------------------------

_TENANT_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _tenant_lock(root: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _TENANT_LOCKS.setdefault(Path(root).resolve(), threading.Lock())


def _network_message_id(data: bytes, mail_from: str) -> str:
    """One id per message for all its recipients, stable across retries: from the Message-ID, else the bytes."""
    from email.parser import BytesHeaderParser

    try:
        message_id = " ".join(str(BytesHeaderParser().parsebytes(data).get("Message-ID") or "").split())
    except Exception:  # noqa: BLE001 - hostile headers: fall back to the bytes
        message_id = ""
    seed = f"{mail_from.lower()} {message_id}" if message_id else hashlib.sha256(data).hexdigest()
    return str(uuid.uuid5(_NMID_NAMESPACE, seed))


def _split_received(data: bytes) -> tuple[bytes, bytes]:
    """This server's Received header (first, possibly folded) and the message as the client sent it."""
    end = 0
    while True:
        nl = data.find(b"\n", end)
        if nl < 0:
            return b"", data
        end = nl + 1
        if data[end:end + 1] not in (b"\t", b" "):
            break
    return (data[:end], data[end:]) if data.startswith(b"Received:") else (b"", data)


def tenant_delivery(tenant: Any) -> Deliver:
    """A deliver callable that ingests every recipient's copy into *tenant*'s Inbox and lake.

    Each copy gets ``Return-Path`` (the envelope sender), ``Delivered-To`` (the recipient) and
    the NetworkMessageId header shared by all copies of the message (derived from the envelope
    sender and Message-ID), so EmailEvents has one row per recipient and a retry of the same
    message adds nothing. Deliveries are serialised
    per tenant (the lake is appended to). A message the parser rejects is refused (550 5.6.0);
    any other failure raises, which the server answers with 451.
    """
    from workbench.enums import DeliveryLocation
    from workbench.ingest.batch import ingest, tenant_context
    from workbench.ingest.sources import RawItem
    from workbench.tenant import org_domains

    lock = _tenant_lock(tenant.root)
    domains = org_domains(tenant)
    context: list[Any] = []

    def deliver(data: bytes, mail_from: str, recipients: list[str]) -> None:
        received, original = _split_received(data)
        nl = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
        nmid = _network_message_id(original, mail_from).encode()
        items = []
        for rcpt in recipients:
            trace = (b"Return-Path: <" + mail_from.encode("utf-8", "replace") + b">" + nl
                     + b"Delivered-To: " + rcpt.encode("utf-8", "replace") + nl
                     + NMID_HEADER.encode() + b": " + nmid + nl)
            items.append(RawItem(source=f"smtp:{rcpt}", data=trace + received + original,
                                 location=DeliveryLocation.INBOX.value, mailbox=rcpt.lower()))
        with lock:
            if not context:
                context.append(tenant_context(tenant, domains))
            summary = ingest(tenant, items, org_domains=domains, context=context[0])
        if summary.rejected:
            reason = " ".join(summary.rejected[0][1].split())[:200]
            raise DeliveryRefused(f"550 5.6.0 message not accepted: {reason}")
        log.info("smtp server: delivered %s to %d mailbox(es) of %s", nmid.decode(), len(items), tenant.name)

    return deliver


def serve_forever(deliver: Deliver, *, host: str = "127.0.0.1", port: int = 2525, out: TextIO | None = None,
                  stop: threading.Event | None = None, **options: Any) -> None:
    """Run a server until Ctrl-C (or *stop* is set), printing where it listens; for the CLI."""
    import sys

    out = out or sys.stdout
    stop = stop or threading.Event()
    with EmbeddedSmtpServer(deliver, host=host, port=port, **options) as server:
        tls = " (STARTTLS)" if options.get("tls_context") else ""
        print(f"SMTP server listening on {host}:{server.port}{tls}; press Ctrl-C to stop", file=out, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("SMTP server stopped", file=out, flush=True)


__all__ = ["EmbeddedSmtpServer", "DeliveryRefused", "tenant_delivery", "received_header", "serve_forever",
           "Deliver", "Policy"]
