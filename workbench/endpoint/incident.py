"""The devices of an incident's users, for the incident page and report.

The users are the incident's USER evidence (and MAILBOX evidence that is a directory
account); their devices are :func:`workbench.endpoint.correlate.devices_of` as of the
incident's last activity. Each row also names the endpoint alerts on the device from a day
before the first activity to a day after the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from workbench.endpoint.correlate import Device, EndpointAlert, devices_of, endpoint_alerts
from workbench.incidents.model import EntityKind
from workbench.incidents.repo import IncidentPage
from workbench.lake import Lake

MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class UserDevice:
    """One row of the incident's "User devices" section."""

    user: str
    device: Device
    alerts: tuple[EndpointAlert, ...] = ()

    @property
    def row(self) -> list[str]:
        d = self.device
        return [self.user, d.label, d.device_id, " ".join(x for x in (d.os_platform, d.os_version) if x),
                "" if d.last_seen is None else f"{d.last_seen:%Y-%m-%d %H:%M} UTC", "; ".join(d.how),
                "; ".join(f"{a.alert_id}: {a.title} ({a.severity})" for a in self.alerts)]


HEADINGS = ["User", "Device", "DeviceId", "OS", "Last seen", "Linked by", "Endpoint alerts"]


def _directory(lake: Lake) -> set[str]:
    d = lake.scan("IdentityInfo", columns=["AccountUpn"]).select(pl.col("AccountUpn").str.to_lowercase()).collect()
    return set(d["AccountUpn"].drop_nulls())


def incident_devices(lake: Lake, page: IncidentPage) -> tuple[UserDevice, ...]:
    """The devices of *page*'s users with the endpoint alerts on them around the incident."""
    users = [e.entity.value.lower() for e in page.evidence if e.entity.kind is EntityKind.USER]
    mailboxes = [e.entity.value.lower() for e in page.evidence if e.entity.kind is EntityKind.MAILBOX]
    if mailboxes:
        known = _directory(lake)
        users += [m for m in mailboxes if m in known]
    i = page.incident
    at = i.last_activity or i.first_activity or i.created
    lo = (i.first_activity or at) - MARGIN if at else None
    out = []
    for user in dict.fromkeys(users):
        devices = devices_of(lake, user, at=at)
        alerts = endpoint_alerts(lake, devices, lo, at + MARGIN if at else None) if devices else []
        out += [UserDevice(user, d, tuple(a for a in alerts if a.device in (d.device_id, d.name))) for d in devices]
    return tuple(out)


__all__ = ["UserDevice", "incident_devices", "HEADINGS"]
