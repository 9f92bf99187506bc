"""A user's devices and the endpoint alerts on them.

**User → device rule** (:func:`devices_of`). A device is the user's when, from ``LOOKBACK``
before *at* to a day after it (or at any time when *at* is None):

1. a DeviceInfo snapshot lists the user in ``LoggedOnUsers``: an entry whose ``UserName``
   (or ``AccountName``) is the UPN, or the UPN's local part (the NetBIOS ``DomainName`` of
   an inventory entry cannot be compared with a UPN suffix, so it is not); or
2. a successful sign-in of the user (AADSignInEventsBeta, ErrorCode 0) names the device:
   its ``AadDeviceId`` starts the inventory's DeviceId, or its ``DeviceName`` is the
   inventory's name (case-insensitive, also without the DNS suffix). A device only sign-ins
   know is kept with what the sign-in says (no DeviceId when it gives none).

Sign-ins without a device (a browser on an unmanaged machine, an attacker's) name none.

An **endpoint alert** (:func:`endpoint_alerts`) is an AlertInfo row from Defender for
Endpoint (``ServiceSource``) or an endpoint detector (``DetectionSource`` in
:data:`ENDPOINT_DETECTIONS`) whose AlertEvidence names one of the devices (DeviceId or
DeviceName), or, given a user, a User evidence row with the user's UPN.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from workbench.enums import AlertServiceSource
from workbench.lake import Lake

LOOKBACK = timedelta(days=30)
AFTER = timedelta(days=1)
ENDPOINT_SOURCES = (AlertServiceSource.DEFENDER_FOR_ENDPOINT.value,)
ENDPOINT_DETECTIONS = ("EDR", "Antivirus", "SmartScreen", "Custom TI", "Automated investigation",
                       "Microsoft Defender for Endpoint", "WindowsDefenderAtp", "WindowsDefenderAv")
INVENTORY = "logged on (DeviceInfo)"
SIGN_IN = "signed in from it (AADSignInEventsBeta)"
EVIDENCE_COLUMNS = ["Timestamp", "AlertId", "EntityType", "EvidenceRole", "FileName", "FolderPath", "SHA256",
                    "RemoteIP", "RemoteUrl", "AccountUpn", "AccountName", "DeviceId", "DeviceName"]


@dataclass(frozen=True)
class Device:
    """One device of a user, from the inventory's latest snapshot (or a sign-in)."""

    device_id: str  # "" when only a sign-in without a device id knows it
    name: str
    os_platform: str = ""
    os_version: str = ""
    public_ip: str = ""
    machine_group: str = ""
    last_seen: datetime | None = None
    how: tuple[str, ...] = ()  # which rule linked it (INVENTORY, SIGN_IN)

    @property
    def key(self) -> str:
        """What an incident or investigation names the device by: its DeviceId, else its name."""
        return self.device_id or self.name

    @property
    def label(self) -> str:
        return self.name or self.device_id


@dataclass(frozen=True)
class EndpointAlert:
    """An endpoint alert with the device it is on and its evidence."""

    alert_id: str
    title: str
    severity: str
    category: str
    service_source: str
    detection_source: str
    time: datetime
    device_id: str
    device_name: str
    users: tuple[str, ...] = ()  # UPNs (or account names) of its User evidence
    techniques: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (file name, SHA256)
    urls: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    @property
    def device(self) -> str:
        return self.device_id or self.device_name

    @property
    def summary(self) -> str:
        return (f"{self.severity or 'unknown'} endpoint alert {self.alert_id!r}: {self.title} "
                f"({self.detection_source or self.service_source}, {self.time:%Y-%m-%d %H:%M} UTC)")


def _window(at: datetime | None, lookback: timedelta) -> tuple[datetime | None, datetime | None]:
    return (at - lookback, at + AFTER) if at is not None else (None, None)


def _names(entry: dict) -> list[str]:
    return [str(entry.get(k) or "").strip().lower() for k in ("UserName", "AccountName", "accountName", "userName")]


def _logged_on(text: str | None, upn: str) -> bool:
    try:
        entries = json.loads(text or "[]")
    except ValueError:
        return False
    local = upn.split("@", 1)[0]
    return isinstance(entries, list) and any(
        isinstance(e, dict) and (upn in _names(e) or local in _names(e)) for e in entries)


def _short(name: str | None) -> str:
    return (name or "").lower().split(".", 1)[0]


def devices_of(lake: Lake, user: str, *, at: datetime | None = None, lookback: timedelta = LOOKBACK) -> list[Device]:
    """*user*'s devices around *at* (see the module's rule), most recently seen first."""
    upn = user.strip().lower()
    start, end = _window(at, lookback)
    inventory = (lake.scan("DeviceInfo", start, end).sort("Timestamp").group_by("DeviceId").last().collect())
    how: dict[str, list[str]] = {}
    for device, users in inventory.select("DeviceId", "LoggedOnUsers").iter_rows():
        if _logged_on(users, upn):
            how.setdefault(device, []).append(INVENTORY)
    signins = (lake.scan("AADSignInEventsBeta", start, end,
                         columns=["Timestamp", "AccountUpn", "ErrorCode", "DeviceName", "AadDeviceId", "OSPlatform"])
               .filter((pl.col("AccountUpn").str.to_lowercase() == upn) & (pl.col("ErrorCode") == 0)
                       & (pl.col("DeviceName").is_not_null() | pl.col("AadDeviceId").is_not_null()))
               .group_by("DeviceName", "AadDeviceId").agg(pl.col("Timestamp").max(), pl.col("OSPlatform").last())
               .collect())
    by_name = {_short(n): i for i, n in inventory.select("DeviceId", "DeviceName").iter_rows() if n}
    extra: list[Device] = []
    for name, aad, last, platform in signins.select("DeviceName", "AadDeviceId", "Timestamp", "OSPlatform").iter_rows():
        device = next((i for i in inventory["DeviceId"] if aad and i.startswith(aad)), None) or by_name.get(_short(name))
        if device is not None:
            how.setdefault(device, []).append(SIGN_IN)
        elif not any(d.name == name and d.device_id == (aad or "") for d in extra):
            extra.append(Device(aad or "", name or "", os_platform=platform or "", last_seen=last, how=(SIGN_IN,)))
    found = [Device(r["DeviceId"], r["DeviceName"] or "", r["OSPlatform"] or "", r["OSVersion"] or "", r["PublicIP"] or "",
                    r["MachineGroup"] or "", r["Timestamp"], tuple(dict.fromkeys(how[r["DeviceId"]])))
             for r in inventory.filter(pl.col("DeviceId").is_in(list(how))).iter_rows(named=True)]
    return sorted(found + extra, key=lambda d: (d.last_seen is None, -(d.last_seen.timestamp() if d.last_seen else 0), d.label))


def users_devices(lake: Lake, users: Iterable[str], *, at: datetime | None = None) -> dict[str, list[Device]]:
    """:func:`devices_of` for each of *users* (those with none are left out)."""
    out = {}
    for user in dict.fromkeys(u.strip().lower() for u in users if u and u.strip()):
        found = devices_of(lake, user, at=at)
        if found:
            out[user] = found
    return out


def _is_endpoint() -> pl.Expr:
    return (pl.col("ServiceSource").is_in(list(ENDPOINT_SOURCES))
            | pl.col("DetectionSource").is_in(list(ENDPOINT_DETECTIONS)))


def _list(text: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return (text,) if text else ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def endpoint_alerts(lake: Lake, user_or_devices: str | Sequence[Device], start: datetime | None,
                    end: datetime | None) -> list[EndpointAlert]:
    """Endpoint alerts in ``[start, end)`` on *user_or_devices* (a user's devices in the window,
    found with :func:`devices_of` at *end*, and alerts naming the user; or the given devices),
    oldest first."""
    user = user_or_devices.strip().lower() if isinstance(user_or_devices, str) else ""
    span = max(LOOKBACK, end - start) if start is not None and end is not None else LOOKBACK
    devices = devices_of(lake, user, at=end, lookback=span) if user else list(user_or_devices)
    ids = {d.device_id for d in devices if d.device_id}
    names = {_short(d.name) for d in devices if d.name}
    if not ids and not names and not user:
        return []
    alerts = lake.scan("AlertInfo", start, end).filter(_is_endpoint()).collect()
    if not alerts.height:
        return []
    lo = alerts["Timestamp"].min() - timedelta(hours=1)
    evidence = (lake.scan("AlertEvidence", lo, None, columns=EVIDENCE_COLUMNS)
                .filter(pl.col("AlertId").is_in(alerts["AlertId"].implode())).collect())
    local = user.split("@", 1)[0]
    out = []
    for a in alerts.sort("Timestamp").iter_rows(named=True):
        ev = evidence.filter(pl.col("AlertId") == a["AlertId"])
        machines = [(i or "", n or "") for i, n in ev.select("DeviceId", "DeviceName").unique(maintain_order=True).iter_rows()
                    if i or n]
        on = [(i, n) for i, n in machines if i in ids or (n and _short(n) in names)]
        people = ev.filter(pl.col("EntityType") == "User")
        accounts = tuple(dict.fromkeys((u or n or "").lower() for u, n in people.select("AccountUpn", "AccountName").iter_rows()
                                       if u or n))
        named = bool(user) and any(x == user or (x == local and "@" not in x) for x in accounts)
        if not on and not named:
            continue
        device_id, device_name = (on or machines or [("", "")])[0]
        out.append(EndpointAlert(
            a["AlertId"], a["Title"] or "", a["Severity"] or "", a["Category"] or "", a["ServiceSource"] or "",
            a["DetectionSource"] or "", a["Timestamp"], device_id, device_name, accounts, _list(a["AttackTechniques"]),
            tuple(dict.fromkeys((f or "", s.lower()) for f, s in ev.select("FileName", "SHA256").iter_rows() if s)),
            tuple(ev["RemoteUrl"].drop_nulls().unique(maintain_order=True)),
            tuple(ev["RemoteIP"].drop_nulls().unique(maintain_order=True))))
    return out


__all__ = ["Device", "EndpointAlert", "devices_of", "users_devices", "endpoint_alerts", "LOOKBACK",
           "ENDPOINT_SOURCES", "ENDPOINT_DETECTIONS", "INVENTORY", "SIGN_IN"]
