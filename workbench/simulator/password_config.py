"""The organisation's own sign-in endpoints that password-attack simulations may target, in
``<tenant>/password-attack.json`` (no secrets). A simulation refuses every endpoint not listed
here (:mod:`workbench.simulator.password_attacks`).

- ``own_endpoints``: ``[{"protocol": "imap", "host": ..., "port": ..., "security": ...}]``;
  *security* is ``tls`` (implicit TLS, port 993), ``starttls`` (port 143) or ``plain``, which is
  only allowed on a loopback address; ``ca_file`` optionally names a CA bundle for a private CA;
  ``login`` is what the endpoint expects as user name: the ``email`` address or its ``local`` part;
- ``lockout_threshold``: failed sign-ins after which the directory locks an account out; a
  simulation stops trying an account before it reaches it.

Only IMAP is supported: LDAP simple bind would need a third-party client (``ldap3``) that the
project does not pin.

>>> e = OwnEndpoint.from_dict({"protocol": "IMAP", "host": "Mail.Example.org", "security": "tls"})
>>> e.key, e.port
('imap://mail.example.org:993', 993)
>>> OwnEndpoint(host="mail.example.org", port=143, security="plain")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
workbench.errors.InputError: security plain for mail.example.org sends passwords in clear; use starttls or tls ...
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import InputError

CONFIG_FILE = "password-attack.json"
DEFAULT_LOCKOUT_THRESHOLD = 10  # Entra ID smart lockout / a common AD policy


class Protocol(StrEnum):
    IMAP = "imap"


class Security(StrEnum):
    TLS = "tls"  # implicit TLS
    STARTTLS = "starttls"
    PLAIN = "plain"  # loopback only


class LoginName(StrEnum):
    EMAIL = "email"
    LOCAL = "local"  # the part before @


DEFAULT_PORTS = {(Protocol.IMAP, Security.TLS): 993, (Protocol.IMAP, Security.STARTTLS): 143,
                 (Protocol.IMAP, Security.PLAIN): 143}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses.

    >>> is_loopback("127.0.0.2"), is_loopback("::1"), is_loopback("mail.example.org")
    (True, True, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _enum(kind: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        if what == "protocol" and str(value).strip().lower() == "ldap":
            raise InputError("protocol ldap is not supported (it needs an LDAP client the project does not pin); "
                             "use imap") from None
        raise InputError(f"{what} {value!r} is unknown; use one of {', '.join(k.value for k in kind)}") from None


@dataclass(frozen=True)
class OwnEndpoint:
    """One of the organisation's own sign-in endpoints."""

    host: str
    port: int = 0  # 0: the protocol's default for *security*
    security: Security | str = Security.TLS
    protocol: Protocol | str = Protocol.IMAP
    login: LoginName | str = LoginName.EMAIL
    ca_file: str = ""  # a CA bundle for a private CA (tls/starttls)

    def __post_init__(self) -> None:
        protocol = _enum(Protocol, self.protocol, "protocol")
        security = _enum(Security, self.security, "security")
        host = (self.host or "").strip().lower()
        if not host or any(c in host for c in " /@?#"):
            raise InputError(f"endpoint host {self.host!r} is not a host name or address; use e.g. mail.example.org")
        port = int(self.port or DEFAULT_PORTS[(protocol, security)])
        if not 0 < port < 65536:
            raise InputError(f"endpoint port {self.port} is out of range; use 1 to 65535")
        if security is Security.PLAIN and not is_loopback(host):
            raise InputError(f"security plain for {host} sends passwords in clear; use starttls or tls "
                             "(plain is only allowed on a loopback address)")
        for name, value in (("protocol", protocol), ("security", security), ("host", host), ("port", port),
                            ("login", _enum(LoginName, self.login, "login"))):
            object.__setattr__(self, name, value)

    @property
    def key(self) -> str:
        """``protocol://host:port``: how a simulation names the endpoint."""
        return f"{self.protocol}://{self.host}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": str(self.protocol), "host": self.host, "port": self.port,
                "security": str(self.security), "login": str(self.login), "ca_file": self.ca_file}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OwnEndpoint:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown endpoint setting {unknown[0]!r}; settings: {', '.join(sorted(known))}")
        return cls(**data)


def parse_key(text: str) -> tuple[str, str, int]:
    """(protocol, host, port) of ``imap://host:port`` (the port may be left out: any port matches).

    >>> parse_key("IMAP://Mail.Example.org:993")
    ('imap', 'mail.example.org', 993)
    """
    try:
        parts = urlsplit(text.strip())
        port = parts.port or 0
    except ValueError:
        parts, port = None, 0
    if parts is None or not parts.scheme or not parts.hostname or parts.path.strip("/"):
        raise InputError(f"endpoint {text!r} is not protocol://host:port; use e.g. imap://mail.example.org:993")
    return parts.scheme.lower(), parts.hostname.lower(), port


@dataclass(frozen=True)
class PasswordAttackConfig:
    """The tenant's password-attack settings."""

    own_endpoints: tuple[OwnEndpoint, ...] = ()
    lockout_threshold: int = DEFAULT_LOCKOUT_THRESHOLD

    def __post_init__(self) -> None:
        if not isinstance(self.lockout_threshold, int) or self.lockout_threshold < 2:
            raise InputError(f"lockout_threshold {self.lockout_threshold!r} is too small; use the directory's "
                             "account lockout threshold (2 or more failed sign-ins)")
        keys = [e.key for e in self.own_endpoints]
        if len(set(keys)) != len(keys):
            raise InputError(f"endpoint {sorted(k for k in keys if keys.count(k) > 1)[0]} is listed twice; keep one")

    def endpoint(self, key: str | None = None) -> OwnEndpoint:
        """The configured endpoint *key* names (the only one when *key* is None); InputError otherwise."""
        if not self.own_endpoints:
            raise InputError(f"no own endpoint is configured; list the organisation's IMAP server in {CONFIG_FILE} "
                             "(own_endpoints) before simulating password attacks")
        if key is None:
            if len(self.own_endpoints) > 1:
                raise InputError(f"several own endpoints are configured; name one of "
                                 f"{', '.join(e.key for e in self.own_endpoints)}")
            return self.own_endpoints[0]
        protocol, host, port = parse_key(key)
        found = [e for e in self.own_endpoints
                 if str(e.protocol) == protocol and e.host == host and (port == 0 or e.port == port)]
        if len(found) != 1:
            raise InputError(f"{key} is not configured as the organisation's own endpoint; add it to {CONFIG_FILE} "
                             f"(own_endpoints) or use one of {', '.join(e.key for e in self.own_endpoints)}")
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {"own_endpoints": [e.to_dict() for e in self.own_endpoints],
                "lockout_threshold": self.lockout_threshold}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PasswordAttackConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown password-attack setting {unknown[0]!r}; settings: {', '.join(sorted(known))}")
        endpoints = data.get("own_endpoints") or []
        if not isinstance(endpoints, list) or not all(isinstance(e, dict) for e in endpoints):
            raise InputError(f"own_endpoints in {CONFIG_FILE} must be a list of objects with protocol, host, port "
                             "and security")
        return cls(own_endpoints=tuple(OwnEndpoint.from_dict(e) for e in endpoints),
                   lockout_threshold=data.get("lockout_threshold", DEFAULT_LOCKOUT_THRESHOLD))


def config_path(tenant: Any) -> Path:
    return Path(tenant.root) / CONFIG_FILE


def load(tenant: Any) -> PasswordAttackConfig:
    """The tenant's settings (none configured when the file does not exist)."""
    path = config_path(tenant)
    if not path.is_file():
        return PasswordAttackConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix it or write it again") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a JSON object with own_endpoints and lockout_threshold")
    return PasswordAttackConfig.from_dict(data)


def save(tenant: Any, config: PasswordAttackConfig) -> Path:
    """Write the settings atomically."""
    from workbench.atomic import write_json

    return write_json(config_path(tenant), config.to_dict())


def configure(tenant: Any, store: Any, actor: str, config: PasswordAttackConfig) -> Path:
    """*actor* (who needs simulation management) saves *config*; audited."""
    from workbench import audit, rbac

    rbac.require(store, actor, rbac.Permission.SIMULATION_MANAGEMENT, activity="simulator.password_attack.configure",
                 target=CONFIG_FILE)
    path = save(tenant, config)
    audit.record(store, actor=actor, activity="simulator.password_attack.configure", target=CONFIG_FILE,
                 details={"endpoints": [e.key for e in config.own_endpoints],
                          "lockout_threshold": config.lockout_threshold})
    return path


__all__ = ["OwnEndpoint", "PasswordAttackConfig", "Protocol", "Security", "LoginName", "load", "save", "configure",
           "config_path", "parse_key", "is_loopback", "CONFIG_FILE", "DEFAULT_LOCKOUT_THRESHOLD"]
