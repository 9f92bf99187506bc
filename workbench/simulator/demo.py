"""The demo tenant's simulation campaign, so the Simulator app has something to show.

Fifty directory users get a credential-harvest payload over real SMTP (the embedded server on a
free loopback port delivers it into their mailboxes and the lake, as an authorised simulation);
then a seeded share of them read, click, type credentials or report it, and security scanners and
a link preview fetch some links — recorded as the tracking server records them, with the reasons
:func:`workbench.simulator.filtering.classify` gives, at plausible times after delivery. Runs once
per tenant (it does nothing when a campaign exists).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from workbench.simulator.model import EventKind, Hit

PAYLOAD = "password-expiry-notice"
TARGETS = 50
BROWSERS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 "
            "Safari/537.36 Edg/131.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.1 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 "
            "Safari/537.36")
PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "en-US,en;q=0.9"}


def seed(tenant: Any, *, seed: int = 7) -> str:
    """Create, send and populate the demo campaign (once); a one-line summary."""
    from workbench.lake import Lake
    from workbench.simulator import config
    from workbench.simulator.campaigns import CampaignSettings, SimulationService
    from workbench.simulator.filtering import classify
    from workbench.simulator.mail_server import EmbeddedSmtpServer, tenant_delivery
    from workbench.simulator.payload_store import get_payload
    from workbench.simulator.recorder import StoreTracker
    from workbench.simulator.sending import send_due
    from workbench.simulator.targets import TargetFilter, select
    from workbench.store import open_store

    from workbench.identity import acting_user

    store = open_store(tenant)
    try:
        service = SimulationService(store, acting_user())  # the tenant's creator, as for its roles
        if service.list():
            return "a simulation campaign exists already"
        payload = get_payload(store, PAYLOAD)
        current = config.load(tenant)
        domain = payload.sender_address.split("@")[1]
        recipients = select(Lake.for_tenant(tenant), TargetFilter(all_users=True))
        rng = np.random.default_rng(seed)
        chosen = [recipients[i] for i in sorted(rng.choice(len(recipients), size=min(TARGETS, len(recipients)),
                                                           replace=False))]
        with EmbeddedSmtpServer(tenant_delivery_with(tenant, domain, current, config, tenant_delivery)) as smtp:
            settings = config.SimulatorConfig.from_dict({**current.to_dict(), "smtp": {"host": "127.0.0.1",
                                                                                       "port": smtp.port}})
            campaign = service.create("Password expiry (demo)", payload.id, chosen, settings=CampaignSettings(
                window_start=0, window_end=24, time_zone_aware=False, training=("spot-credential-phishing",),
                assign_training_to="compromised"))
            service.launch(campaign.id)
            sent = send_due(store, settings)
        tracker = StoreTracker(store, organisation=current.organisation)
        targets = service.targets(campaign.id)
        for target in targets:
            if target.times.get("delivered") is None:
                continue
            _behave(tracker, target, rng, classify)
        return f"simulation campaign {campaign.id}: {sent.sent} message(s) sent, user activity recorded"
    finally:
        store.dispose()


def tenant_delivery_with(tenant: Any, domain: str, current: Any, config: Any, delivery: Any) -> Any:
    """The tenant's delivery, with the payload's sender domain saved as a simulation domain first
    (advanced delivery reads it when the delivery's detection context is built)."""
    if domain not in current.simulation_domains:
        config.save(tenant, config.SimulatorConfig.from_dict(
            {**current.to_dict(), "simulation_domains": [*current.simulation_domains, domain]}))
    return delivery(tenant)


def _behave(tracker: Any, target: Any, rng: np.random.Generator, classify: Any) -> None:
    """One recipient's seeded behaviour, and the scanners that touch their link."""
    delivered: datetime = target.times["delivered"]
    agent = BROWSERS[int(rng.integers(len(BROWSERS)))]
    ip = f"203.0.113.{int(rng.integers(2, 250))}"

    def hit(kind: EventKind, minutes: float, source: str, *, user_agent: str = agent, address: str = ip,
            method: str = "GET", headers: dict[str, str] | None = None, details: dict | None = None) -> None:
        at = delivered + timedelta(minutes=minutes)
        bare = Hit(at=at, ip=address, user_agent=user_agent, source=source, method=method,
                   headers=PAGE if headers is None else headers, details=details or {})
        tracker.record(target.token, kind, Hit(at, address, user_agent, source, method, bare.headers,
                                               classify(bare, delivered), bare.details))

    draw = rng.random()
    if rng.random() < 0.2:  # the mail gateway detonates the link seconds after delivery
        hit(EventKind.CLICKED, 0.05, "link", user_agent="Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1)",
            address="40.92.10.20", headers={})
    if draw < 0.7:
        read = float(rng.uniform(5, 600))
        hit(EventKind.READ, read, "pixel", headers={})
        if draw < 0.3:
            click = read + float(rng.uniform(0.5, 20))
            hit(EventKind.CLICKED, click, "qr" if rng.random() < 0.15 else "link")
            if draw < 0.14:
                hit(EventKind.CREDENTIALS_SUPPLIED, click + float(rng.uniform(0.3, 3)), "form", method="POST",
                    details={"username_supplied": True, "password_supplied": True})
        if 0.22 < draw < 0.45:
            hit(EventKind.REPORTED, read + float(rng.uniform(1, 90)), "report")
    if rng.random() < 0.04:  # someone pasted the link in chat
        hit(EventKind.CLICKED, float(rng.uniform(30, 900)), "link", user_agent="Slackbot-LinkExpanding 1.0")


__all__ = ["seed"]
