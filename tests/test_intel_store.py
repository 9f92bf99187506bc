"""The indicator store feeds detection and AIR: a domain stored as an indicator makes new mail
linking to it a threat at ingest, and AIR's indicator list includes the store's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from workbench.intel import store as intel
from workbench.intel.model import Indicator, IndicatorType, Tlp
from workbench.store import open_store


def message(url: str) -> bytes:
    return (f"From: Billing <billing@invoices-portal.example>\r\nTo: ann@contoso.test\r\n"
            f"Subject: Your invoice\r\nDate: Thu, 19 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{url[-6:]}@x.example>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nPay now: {url}\r\n").encode()


def test_stored_indicators_reach_detection_and_air(tmp_path):
    from workbench.air.email_investigation import tenant_indicators
    from workbench.ingest.batch import ingest
    from workbench.ingest.sources import RawItem
    from workbench.lake import Lake
    from workbench.tenant import ensure

    tenant = ensure("intel", base=tmp_path, org_domains=("contoso.test",))
    store = open_store(tenant)
    try:
        now = datetime.now(UTC)
        intel.upsert(store, [Indicator(IndicatorType.DOMAIN, "pay-here.example", "feed", confidence=90),
                             Indicator(IndicatorType.DOMAIN, "old-campaign.example", "feed",
                                       expires=now - timedelta(days=1)),
                             Indicator(IndicatorType.DOMAIN, "partner.example", "warninglist", allow=True),
                             Indicator(IndicatorType.URL, "https://secret.example/x", "sharing-group", tlp=Tlp.RED)])
        assert intel.counts(store) == {"domain": 2, "url": 1, "allow domain": 1}
        assert intel.active(store)[IndicatorType.DOMAIN] == {"pay-here.example"}
        assert intel.allowed(store)[IndicatorType.DOMAIN] == {"partner.example"}
        assert [i.value for i in intel.search(store, text="PAY-HERE")] == ["pay-here.example"]
        feed = {(i.kind, i.value) for i in tenant_indicators(Lake.for_tenant(tenant), store)}
        assert ("domain", "pay-here.example") in feed and ("allow-domain", "partner.example") in feed
        assert ("domain", "old-campaign.example") not in feed  # expired
    finally:
        store.dispose()
    ingest(tenant, [RawItem("a.eml", message("https://pay-here.example/invoice/4471"), location="Inbox/folder",
                            mailbox="ann@contoso.test"),
                    RawItem("b.eml", message("https://old-campaign.example/invoice/4472"), location="Inbox/folder",
                            mailbox="ann@contoso.test")])
    rows = Lake.for_tenant(tenant).scan("EmailEvents").collect().sort("InternetMessageId")
    threats = dict(zip(rows["InternetMessageId"].str.strip_chars("<>").str.slice(0, 6), rows["ThreatTypes"]))
    assert threats["e/4471"] and "Phish" in threats["e/4471"]  # the stored indicator made it a threat
    assert not threats["e/4472"]  # an expired one does not
    assert rows.filter(pl.col("ThreatTypes").is_not_null()).height == 1
