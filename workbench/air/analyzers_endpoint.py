"""The endpoint analyzer of an automated investigation: the investigated users' devices
(:func:`workbench.endpoint.correlate.devices_of`) and the endpoint alerts raised on them in the
window. Each device is evidence (malicious with a high-severity alert, suspicious with any
other alert, else no threats found), and so are the alerts' files and URLs; an alert is the
"endpoint alert" signal of the compromise verdict. Nothing is proposed (the workbench has no
device actions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from workbench.air.records import EvidenceItem
from workbench.endpoint.correlate import Device, EndpointAlert, devices_of, endpoint_alerts
from workbench.incidents.model import Entity, EntityKind, RemediationStatus, Verdict
from workbench.lake import Lake

ANALYZER = "endpoint_alerts"
CLICK_MARGIN = timedelta(hours=1)  # alerts this long before the first click still count (clocks differ)


@dataclass(frozen=True)
class EndpointFindings:
    users: tuple[str, ...]
    devices: tuple[Device, ...]
    alerts: tuple[EndpointAlert, ...]
    evidence: tuple[EvidenceItem, ...]
    proposals: tuple = ()  # none: the workbench has no device actions

    @property
    def user(self) -> str:
        return self.users[0] if len(self.users) == 1 else ", ".join(self.users)

    @property
    def summary(self) -> str:
        devices = ", ".join(d.label for d in self.devices) or "no known device"
        alerts = "; ".join(a.summary for a in self.alerts) or "no endpoint alerts"
        return f"{self.user or 'nobody'}: {devices}; {alerts}"


def _verdict(alerts: Sequence[EndpointAlert]) -> Verdict:
    if any(a.severity.lower() == "high" for a in alerts):
        return Verdict.MALICIOUS
    return Verdict.SUSPICIOUS if alerts else Verdict.NO_THREATS_FOUND


def _evidence(user_devices: dict[str, list[Device]], alerts: Sequence[EndpointAlert]) -> list[EvidenceItem]:
    out = []
    listed = set()
    for user, devices in user_devices.items():
        for d in devices:
            on = [a for a in alerts if a.device and a.device in (d.device_id, d.name)]
            verdict = _verdict(on)
            detail = (f"{d.label} ({d.os_platform or 'unknown OS'}) of {user}: {'; '.join(d.how)}"
                      + (f"; {'; '.join(a.summary for a in on)}" if on else "; no endpoint alerts"))
            out.append(EvidenceItem(Entity.of(EntityKind.DEVICE, d.key, "user device"), verdict, RemediationStatus.NONE,
                                    ANALYZER, detail))
            listed |= {d.device_id, d.name}
    for a in alerts:
        verdict = _verdict([a])
        if a.device and a.device not in listed:  # an alert naming the user on a device not linked to them
            listed.add(a.device)
            out.append(EvidenceItem(Entity.of(EntityKind.DEVICE, a.device, "alert device"), verdict,
                                    RemediationStatus.NONE, ANALYZER, f"{a.device_name or a.device_id}: {a.summary}"))
        out += [EvidenceItem(Entity.of(EntityKind.FILE, sha, "endpoint alert"), verdict, RemediationStatus.NONE, ANALYZER,
                             f"{name or sha} in {a.summary}") for name, sha in a.files]
        out += [EvidenceItem(Entity.of(EntityKind.URL, url, "endpoint alert"), verdict, RemediationStatus.NONE, ANALYZER,
                             f"in {a.summary}") for url in a.urls]
    return out


def user_endpoint_alerts(lake: Lake, user: str, start: datetime, end: datetime) -> EndpointFindings:
    """*user*'s devices (as of *end*) and the endpoint alerts on them or naming the user in the window."""
    user = user.strip().lower()
    devices = devices_of(lake, user, at=end)
    alerts = endpoint_alerts(lake, user, start, end)
    return EndpointFindings((user,), tuple(devices), tuple(alerts), tuple(_evidence({user: devices}, alerts)))


def clicker_endpoint_alerts(lake: Lake, messages: Sequence[str], start: datetime, end: datetime) -> EndpointFindings:
    """The devices of the users who clicked a URL of *messages* (UrlClickEvents), as of their
    first click, and the endpoint alerts on their devices (or naming them) from an hour before
    that click to *end*."""
    clicks = (lake.scan("UrlClickEvents", start, end, columns=["Timestamp", "AccountUpn", "NetworkMessageId"])
              .filter(pl.col("NetworkMessageId").is_in(pl.Series(list(messages), dtype=pl.String).implode())
                      & pl.col("AccountUpn").is_not_null())
              .group_by(pl.col("AccountUpn").str.to_lowercase()).agg(pl.col("Timestamp").min())
              .sort("AccountUpn").collect())
    user_devices: dict[str, list[Device]] = {}
    alerts: list[EndpointAlert] = []
    for user, first in clicks.iter_rows():
        devices = devices_of(lake, user, at=first)
        user_devices[user] = devices
        alerts += [a for a in endpoint_alerts(lake, user, first - CLICK_MARGIN, end)
                   if a.alert_id not in {x.alert_id for x in alerts}]
    devices = tuple(d for ds in user_devices.values() for d in ds)
    return EndpointFindings(tuple(user_devices), devices, tuple(alerts), tuple(_evidence(user_devices, alerts)))


__all__ = ["EndpointFindings", "user_endpoint_alerts", "clicker_endpoint_alerts", "ANALYZER"]
