"""A tenant's simulator settings, in ``<tenant>/simulator.json`` (no secrets: the SMTP password
stays in the environment variable ``smtp.password_env`` names).

- ``smtp``: the relay simulation mail goes through (:class:`~workbench.simulator.smtp.SmtpSettings`);
- ``base_url``: the tracking server's address as recipients reach it (links, pixel, pages);
- ``organisation``: who runs the simulations (transparency page, notifications);
- ``simulation_domains``: sender domains of simulation payloads: mail from them is delivered as
  an authorised simulation (advanced delivery: ``OrgLevelPolicy`` "Phishing Simulation"), so
  detection neither blocks it nor opens incidents for reports of it;
- ``awareness_sender``: the From of training and reinforcement notifications.

>>> SimulatorConfig.from_dict({"base_url": "http://127.0.0.1:8899/"}).base_url
'http://127.0.0.1:8899'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from workbench.errors import InputError

CONFIG_FILE = "simulator.json"


@dataclass(frozen=True)
class SimulatorConfig:
    base_url: str = "http://127.0.0.1:8899"
    organisation: str = "the security team"
    smtp: dict[str, Any] | None = None  # SmtpSettings.to_dict(); None: not configured
    simulation_domains: tuple[str, ...] = ()
    awareness_sender: str = ""

    def __post_init__(self) -> None:
        url = (self.base_url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")) or " " in url:
            raise InputError(f"base_url {self.base_url!r} is not an http(s) address; use the tracking server's "
                             "address as recipients reach it, e.g. https://training.example.org")
        object.__setattr__(self, "base_url", url)
        object.__setattr__(self, "simulation_domains",
                           tuple(sorted({d.strip().lower().lstrip("@") for d in self.simulation_domains if d.strip()})))
        if self.smtp is not None:
            self.smtp_settings()  # validates

    def smtp_settings(self) -> Any:
        from workbench.simulator.smtp import SmtpSettings

        if self.smtp is None:
            raise InputError("no SMTP relay configured; run: workbench simulator configure --smtp-host HOST "
                             "[--smtp-port 587 --smtp-security starttls --smtp-user U --smtp-password-env VAR]")
        return SmtpSettings.from_dict(self.smtp)

    def to_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "organisation": self.organisation, "smtp": self.smtp,
                "simulation_domains": list(self.simulation_domains), "awareness_sender": self.awareness_sender}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulatorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown simulator setting {unknown[0]!r}; settings: {', '.join(sorted(known))}")
        return cls(**{**data, "simulation_domains": tuple(data.get("simulation_domains", ()))})


def config_path(tenant: Any) -> Path:
    return Path(tenant.root) / CONFIG_FILE


def load(tenant: Any) -> SimulatorConfig:
    """The tenant's settings (defaults when the file does not exist)."""
    path = config_path(tenant)
    if not path.is_file():
        return SimulatorConfig()
    try:
        return SimulatorConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); fix it or run workbench simulator configure") from None


def save(tenant: Any, config: SimulatorConfig) -> Path:
    """Write the settings atomically."""
    from workbench.atomic import write_json

    return write_json(config_path(tenant), config.to_dict())


__all__ = ["SimulatorConfig", "load", "save", "config_path", "CONFIG_FILE"]
