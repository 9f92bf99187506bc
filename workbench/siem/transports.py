"""Where formatted SIEM records go: a JSON-lines file, syslog (RFC 5424) over UDP or TCP, a Splunk
HEC-compatible collector, or a signed JSON webhook.

Every :class:`Transport` takes a batch of :class:`Payload` and returns only once the receiver
has it (as far as the protocol can tell); otherwise it raises

* :class:`TemporaryFailure`: try the same batch again later (refused or reset connection,
  timeout, DNS failure, HTTP 408/429/5xx);
* :class:`PermanentFailure`: the receiver rejected the batch (HTTP 4xx such as 400/413/422);
  the batch goes to the dead-letter file;
* :class:`ConfigurationFailure` (a PermanentFailure): the destination itself is wrong (HTTP
  401/403/404, TLS verification, missing secret); nothing is dead-lettered, delivery stops.

Messages are one line naming the fix. Secrets are never stored: HEC tokens and webhook keys
are read at send time from the environment variable the settings *name*.

Framing: syslog messages are RFC 5424 (``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
[workbench@32473 id=".." source=".."] MSG``, no BOM). TCP uses RFC 6587 octet counting
(``LEN SP MSG``) on one connection per batch, half-closed after the batch: the batch counts as
delivered once the receiver has read up to that end (it closes its side). UDP sends one
datagram per message, truncated at a UTF-8 boundary below 64 KB; UDP cannot confirm receipt.

>>> syslog_message(Payload("e1", "mail", "2026-11-20T10:00:00Z", {"a": 1}, severity=4), facility="local0",
...                hostname="wb", procid="7")
'<132>1 2026-11-20T10:00:00Z wb workbench 7 mail [workbench@32473 id="e1" source="mail"] {"a":1}'
>>> octet_frame(b"<13>1 - - - - - - hi")
b'20 <13>1 - - - - - - hi'
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from workbench.errors import InputError, WorkbenchError

APP_NAME = "workbench"
SD_ID = "workbench@32473"  # 32473: the private enterprise number reserved for examples (RFC 5612)
UDP_MAX = 65_000  # bytes per datagram, safely below the 65,507-byte IPv4 UDP limit
HEC_PATH = "/services/collector/event"
SIGNATURE_HEADER = "X-Workbench-Signature"
TIMESTAMP_HEADER = "X-Workbench-Timestamp"


# ------------------------------------------------------------------ outcomes


class TransportFailure(WorkbenchError):
    """A batch was not delivered (one-line message)."""


class TemporaryFailure(TransportFailure):
    """Try the same batch again later."""


class PermanentFailure(TransportFailure):
    """The receiver rejected the batch: dead-letter it and move on."""


class ConfigurationFailure(PermanentFailure):
    """The destination is misconfigured: stop without dead-lettering (nothing advances)."""


# ------------------------------------------------------------------ payloads


class Severity(IntEnum):
    """RFC 5424 severities."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFORMATIONAL = 6
    DEBUG = 7


FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14, "solaris-cron": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}


@dataclass(frozen=True)
class Payload:
    """One formatted record: the event's deterministic id, source and time, and the record
    (a JSON object for o365/ocsf, a line for CEF)."""

    id: str
    source: str
    time: datetime | str
    record: Mapping[str, Any] | str
    severity: Severity = Severity.INFORMATIONAL

    def text(self) -> str:
        """The record as one line: compact JSON, or the CEF line as is."""
        if isinstance(self.record, str):
            return self.record.replace("\r", " ").replace("\n", " ")
        return json.dumps(self.record, separators=(",", ":"), ensure_ascii=False, default=str)

    def iso_time(self) -> str:
        return iso(self.time)

    def envelope(self) -> dict[str, Any]:
        """The record with its id, source and time (file, webhook and dead-letter lines)."""
        return {"id": self.id, "source": self.source, "time": self.iso_time(),
                "record": self.record if isinstance(self.record, str) else dict(self.record)}


def iso(value: datetime | str) -> str:
    """RFC 3339 UTC (``...Z``) for datetimes (naive ones are taken as UTC); strings unchanged."""
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def epoch(value: datetime | str) -> float | None:
    """Seconds since the epoch, or None when the time cannot be read."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return round(value.timestamp(), 6)


@runtime_checkable
class Transport(Protocol):
    """Delivers a batch or raises a :class:`TransportFailure`."""

    def send(self, batch: Sequence[Payload]) -> None: ...

    def check(self) -> None:
        """Raise InputError for what only the environment can tell (secrets, folders)."""


# ------------------------------------------------------------------ validation helpers


def _host(value: object, what: str) -> str:
    host = value.strip() if isinstance(value, str) else ""
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise InputError(f"{what} host {value!r} is not a host name; set host to the receiver's name or address")
    return host


def _port(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InputError(f"{what} port {value!r} is out of range; use 1-65535 (syslog: 514, or 6514 for TLS)")
    return value


def _timeout(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InputError(f"{what} timeout {value!r} must be a positive number of seconds; e.g. 10")
    return float(value)


def _env_name(value: object, key: str, what: str) -> str:
    name = value if isinstance(value, str) else ""
    if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
        raise InputError(f"{what} {key} {value!r} is not an environment variable name; give the variable's "
                         "name (e.g. WORKBENCH_SIEM_TOKEN), never the secret itself")
    return name


def _secret(name: str, key: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise InputError(f"environment variable {name} ({what} {key}) is not set; export it before delivering")
    return value


def validate_url(url: object, what: str) -> str:
    """*url* if it is ``http(s)://host[:port]/...``; else an InputError naming the fix."""
    text = url.strip() if isinstance(url, str) else ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"{what} url {url!r} has a bad port; use e.g. https://collector.example.org:8088") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"{what} url {url!r} must start with http:// or https://; "
                         "e.g. https://collector.example.org:8088")
    if not parts.hostname:
        raise InputError(f"{what} url {url!r} has no host; e.g. https://collector.example.org:8088")
    if any(c.isspace() for c in text):
        raise InputError(f"{what} url {url!r} contains spaces; percent-encode them or fix the url")
    return text


def _facility(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 23:
        return value
    if isinstance(value, str) and value.lower() in FACILITIES:
        return FACILITIES[value.lower()]
    raise InputError(f"unknown syslog facility {value!r}; use 0-23 or one of {', '.join(FACILITIES)}")


# ------------------------------------------------------------------ file


@dataclass(frozen=True)
class FileTransport:
    """Appends one JSON line per record (:meth:`Payload.envelope`) and fsyncs after each batch."""

    path: Path

    def __post_init__(self) -> None:
        if not str(self.path).strip():
            raise InputError("file destination needs a path; set path to a .jsonl file")
        object.__setattr__(self, "path", Path(self.path).expanduser())

    def check(self) -> None:
        if not self.path.parent.is_dir():
            raise InputError(f"folder {self.path.parent} does not exist; create it or change the file path")

    def send(self, batch: Sequence[Payload]) -> None:
        data = "".join(json.dumps(p.envelope(), ensure_ascii=False, default=str) + "\n" for p in batch)
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except FileNotFoundError:
            raise ConfigurationFailure(f"folder {self.path.parent} does not exist; create it or change the "
                                       "file path") from None
        except OSError as exc:
            raise TemporaryFailure(f"cannot append to {self.path}: {exc.strerror or exc}; free space or fix "
                                   "permissions") from None


# ------------------------------------------------------------------ syslog


def _printable(value: str, limit: int) -> str:
    text = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return text or "-"


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(p: Payload, *, facility: int | str = "local0", hostname: str | None = None,
                   app_name: str = APP_NAME, procid: str | None = None) -> str:
    """The RFC 5424 message for *p* (no BOM; the event's id and source in structured data)."""
    pri = _facility(facility) * 8 + int(p.severity)
    ts = p.iso_time() if isinstance(p.time, datetime) else _printable(str(p.time), 64)
    host = _printable(hostname or socket.gethostname(), 255)
    proc = _printable(procid if procid is not None else str(os.getpid()), 128)
    sd = f'[{SD_ID} id="{_sd_value(p.id)}" source="{_sd_value(p.source)}"]'
    return f"<{pri}>1 {ts} {host} {_printable(app_name, 48)} {proc} {_printable(p.source, 32)} {sd} {p.text()}"


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet-counting frame: ``LEN SP MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """*data* cut to at most *limit* bytes without splitting a UTF-8 character."""
    if len(data) <= limit:
        return data
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # continuation byte: back up to the lead byte
        cut -= 1
    return data[:cut]


def _network_failure(exc: OSError, what: str) -> TransportFailure:
    if isinstance(exc, ConnectionRefusedError):
        return TemporaryFailure(f"{what} refused the connection; start the receiver or fix host/port (will retry)")
    if isinstance(exc, TimeoutError | socket.timeout):
        return TemporaryFailure(f"{what} timed out; check the receiver and the network (will retry)")
    if isinstance(exc, socket.gaierror):
        return TemporaryFailure(f"{what}: cannot resolve the host ({exc.strerror}); check the name or DNS "
                                "(will retry)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigurationFailure(f"{what}: TLS certificate not trusted ({exc.verify_message}); set ca_file "
                                    "to the receiver's CA")
    if isinstance(exc, ConnectionError) or exc.errno == errno.ENOTCONN:
        return TemporaryFailure(f"{what} dropped the connection before confirming the batch; check the receiver "
                                "(will retry)")
    reason = exc.strerror or type(exc).__name__
    return TemporaryFailure(f"{what}: {reason}; check the receiver (will retry)")


@dataclass(frozen=True)
class _Syslog:
    host: str
    port: int = 514
    facility: int | str = "local0"
    hostname: str | None = None
    app_name: str = APP_NAME
    timeout: float = 10.0

    kind = "syslog"

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", _host(self.host, self.kind))
        object.__setattr__(self, "port", _port(self.port, self.kind))
        object.__setattr__(self, "facility", _facility(self.facility))
        object.__setattr__(self, "timeout", _timeout(self.timeout, self.kind))

    def check(self) -> None:
        return None

    @property
    def where(self) -> str:
        return f"{self.kind} {self.host}:{self.port}"

    def messages(self, batch: Sequence[Payload]) -> list[bytes]:
        return [syslog_message(p, facility=self.facility, hostname=self.hostname,
                               app_name=self.app_name).encode("utf-8") for p in batch]


@dataclass(frozen=True)
class SyslogUdp(_Syslog):
    """RFC 5424 over UDP (RFC 5426): one message per datagram; fire and forget."""

    kind = "syslog-udp"

    def send(self, batch: Sequence[Payload]) -> None:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
            family, _, _, _, addr = infos[0]
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(addr)  # connected: an ICMP port-unreachable surfaces as ConnectionRefusedError
                for message in self.messages(batch):
                    sock.send(truncate_utf8(message, UDP_MAX))
        except OSError as exc:
            raise _network_failure(exc, self.where) from None


@dataclass(frozen=True)
class SyslogTcp(_Syslog):
    """RFC 5424 over TCP with RFC 6587 octet counting; one connection per batch, confirmed when the
    receiver closes its side after reading the whole batch (see the module docstring)."""

    kind = "syslog-tcp"

    def send(self, batch: Sequence[Payload]) -> None:
        data = b"".join(octet_frame(m) for m in self.messages(batch))
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)  # EOF after the batch: the receiver reads it all, then closes
                deadline = _time.monotonic() + self.timeout
                while sock.recv(4096):
                    if _time.monotonic() > deadline:
                        raise TimeoutError
        except OSError as exc:
            raise _network_failure(exc, self.where) from None


# ------------------------------------------------------------------ HTTP


@dataclass(frozen=True)
class _Http:
    url: str
    verify_tls: bool = True
    ca_file: str | None = None
    timeout: float = 30.0

    kind = "http"

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", validate_url(self.url, self.kind))
        object.__setattr__(self, "timeout", _timeout(self.timeout, self.kind))
        if not isinstance(self.verify_tls, bool):
            raise InputError(f"{self.kind} verify_tls {self.verify_tls!r} must be true or false")

    def check(self) -> None:
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise InputError(f"{self.kind} ca_file {self.ca_file} does not exist; give the collector CA's PEM file")

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> None:
        """POST *body*; return on 2xx, else raise the failure the status calls for."""
        parts = urlsplit(self.url)
        where = f"{self.kind} {parts.scheme}://{parts.netloc}{path}"
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout,
                                               context=self._context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                           "User-Agent": APP_NAME, **headers})
            resp = conn.getresponse()
            detail = resp.read(2000).decode("utf-8", "replace")
        except http.client.HTTPException as exc:
            raise TemporaryFailure(f"{where}: {type(exc).__name__}; check the collector (will retry)") from None
        except OSError as exc:
            raise _network_failure(exc, where) from None
        finally:
            conn.close()
        raise_for_status(resp.status, where, detail, resp.getheader("Location"))


def raise_for_status(status: int, where: str, detail: str = "", location: str | None = None) -> None:
    """Map an HTTP status to success or a :class:`TransportFailure`."""
    if 200 <= status < 300:
        return
    said = " ".join(detail.split())[:200]
    said = f" ({said})" if said else ""
    if status in (408, 425, 429) or status >= 500:
        raise TemporaryFailure(f"{where} answered {status}{said}; the collector is busy or down (will retry)")
    if 300 <= status < 400:
        raise ConfigurationFailure(f"{where} redirected ({status}) to {location or '?'}; use that url")
    if status in (401, 403):
        raise ConfigurationFailure(f"{where} refused the credentials ({status}){said}; check the token/secret "
                                   "in the named environment variable")
    if status in (404, 405):
        raise ConfigurationFailure(f"{where} answered {status}{said}; check the url's path")
    raise PermanentFailure(f"{where} rejected the batch ({status}){said}")


def _request_path(url: str, default: str) -> str:
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else default
    return path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class HttpHec(_Http):
    """Splunk HTTP Event Collector: ``POST /services/collector/event`` (when the url has no path),
    ``Authorization: Splunk <token>``, body of concatenated ``{"time", "event", "sourcetype", ...}``
    objects; the event id rides in ``fields.workbench_id`` for deduplication."""

    token_env: str = ""
    sourcetype: str = "workbench"
    index: str | None = None
    source: str = APP_NAME

    kind = "hec"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "token_env", _env_name(self.token_env, "token_env", self.kind))

    def check(self) -> None:
        super().check()
        _secret(self.token_env, "token_env", self.kind)

    def body(self, batch: Sequence[Payload]) -> bytes:
        parts = []
        for p in batch:
            obj: dict[str, Any] = {"time": epoch(p.time), "host": socket.gethostname(), "source": self.source,
                                   "sourcetype": self.sourcetype, "event": p.record if isinstance(p.record, str)
                                   else dict(p.record), "fields": {"workbench_id": p.id,
                                                                   "workbench_source": p.source}}
            if obj["time"] is None:
                del obj["time"]
            if self.index:
                obj["index"] = self.index
            parts.append(json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str))
        return "".join(parts).encode("utf-8")

    def send(self, batch: Sequence[Payload]) -> None:
        try:
            token = _secret(self.token_env, "token_env", self.kind)
        except InputError as exc:
            raise ConfigurationFailure(str(exc)) from None
        self.post(_request_path(self.url, HEC_PATH), self.body(batch), {"Authorization": f"Splunk {token}"})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature header value: ``sha256=`` HMAC-SHA256 over ``TIMESTAMP.`` + body."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class HttpWebhook(_Http):
    """Generic JSON batch ``POST`` (``{"events": [envelope...]}``) signed with HMAC-SHA256:
    ``X-Workbench-Timestamp: <unix seconds>`` and ``X-Workbench-Signature: sha256=<hex>`` over
    ``<timestamp>.<exact body>`` (receivers should refuse stale timestamps)."""

    secret_env: str = ""
    clock: Any = field(default=_time.time, repr=False, compare=False)

    kind = "webhook"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "secret_env", _env_name(self.secret_env, "secret_env", self.kind))

    def check(self) -> None:
        super().check()
        _secret(self.secret_env, "secret_env", self.kind)

    def send(self, batch: Sequence[Payload]) -> None:
        try:
            secret = _secret(self.secret_env, "secret_env", self.kind)
        except InputError as exc:
            raise ConfigurationFailure(str(exc)) from None
        body = json.dumps({"events": [p.envelope() for p in batch]}, separators=(",", ":"),
                          ensure_ascii=False, default=str).encode("utf-8")
        stamp = str(int(self.clock()))
        self.post(_request_path(self.url, "/"), body, {TIMESTAMP_HEADER: stamp,
                                                       SIGNATURE_HEADER: sign(secret, stamp, body)})


# ------------------------------------------------------------------ from settings


class Kind(StrEnum):
    FILE = "file"
    SYSLOG_UDP = "syslog-udp"
    SYSLOG_TCP = "syslog-tcp"
    HEC = "hec"
    WEBHOOK = "webhook"


_CLASSES: dict[Kind, type] = {Kind.FILE: FileTransport, Kind.SYSLOG_UDP: SyslogUdp, Kind.SYSLOG_TCP: SyslogTcp,
                              Kind.HEC: HttpHec, Kind.WEBHOOK: HttpWebhook}
_SECRET_KEYS = {"token", "secret", "password", "key"}


def kind_of(value: object) -> Kind:
    try:
        return Kind(str(value).lower())
    except ValueError:
        raise InputError(f"unknown transport {value!r}; use one of {', '.join(k.value for k in Kind)}") from None


def settings_keys(kind: Kind) -> list[str]:
    return sorted(f for f in _CLASSES[kind].__dataclass_fields__ if f != "clock")


def build(kind: Kind | str, settings: Mapping[str, Any]) -> Transport:
    """The transport for *kind* from JSON *settings*; InputError on unknown, missing or secret keys."""
    kind = kind_of(kind)
    if not isinstance(settings, Mapping):
        raise InputError(f"{kind} settings must be a JSON object; e.g. {{\"host\": \"127.0.0.1\"}}")
    secrets = sorted(_SECRET_KEYS & set(settings))
    if secrets:
        raise InputError(f"{kind} settings never hold secrets ({', '.join(secrets)}); put the secret in an "
                         "environment variable and give its name (token_env / secret_env)")
    allowed = settings_keys(kind)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise InputError(f"unknown {kind} setting(s) {', '.join(unknown)}; use {', '.join(allowed)}")
    required = {Kind.FILE: "path", Kind.SYSLOG_UDP: "host", Kind.SYSLOG_TCP: "host", Kind.HEC: "url",
                Kind.WEBHOOK: "url"}[kind]
    needed = [required] + (["token_env"] if kind is Kind.HEC else ["secret_env"] if kind is Kind.WEBHOOK else [])
    missing = [k for k in needed if k not in settings]
    if missing:
        raise InputError(f"{kind} settings need {', '.join(missing)}; e.g. " + {
            Kind.FILE: '{"path": "siem.jsonl"}', Kind.SYSLOG_UDP: '{"host": "127.0.0.1", "port": 514}',
            Kind.SYSLOG_TCP: '{"host": "127.0.0.1", "port": 514}',
            Kind.HEC: '{"url": "https://splunk:8088", "token_env": "SPLUNK_HEC_TOKEN"}',
            Kind.WEBHOOK: '{"url": "https://hooks.example.org/siem", "secret_env": "WEBHOOK_SECRET"}'}[kind])
    try:
        return _CLASSES[kind](**settings)
    except TypeError as exc:
        raise InputError(f"bad {kind} settings ({exc}); use {', '.join(allowed)}") from None


__all__ = ["APP_NAME", "ConfigurationFailure", "FACILITIES", "FileTransport", "HttpHec", "HttpWebhook", "Kind",
           "Payload", "PermanentFailure", "SIGNATURE_HEADER", "Severity", "SyslogTcp", "SyslogUdp",
           "TIMESTAMP_HEADER", "TemporaryFailure", "Transport", "TransportFailure", "build", "epoch", "iso",
           "kind_of", "octet_frame", "raise_for_status", "sign", "syslog_message", "truncate_utf8", "validate_url"]
