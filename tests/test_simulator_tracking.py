"""The tracking server against a real loopback server (httpx), its pages, and scanner filtering."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from workbench.errors import InputError
from workbench.simulator import pages
from workbench.simulator.filtering import FlagReason, agent_reason, classify, scanner_network
from workbench.simulator.model import (EventKind, Hit, Links, Recipient, Technique, TrackedTarget,
                                       TrainingModule)
from workbench.simulator.tracking import PIXEL, MemoryTracker, TrackingServer

BROWSER = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/141.0.0.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.9",
    "Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
}
PIXEL_HEADERS = {**BROWSER, "Accept": "image/avif,image/webp,image/*,*/*;q=0.8"}
XSS = ("<img src=x onerror=window.__xss=1>", '"><script>alert(1)</script>')
PASSWORD = "Tr0ub4dor&3-SECRET-do-not-keep"
USERNAME = "typed.user@example.com"
HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
MODULES = (TrainingModule("m1", "Spotting phishing", 5, "Look at the sender."),
           TrainingModule("m2", "Reporting", 3, "Use the Report button."))


def target(token: str, technique: Technique, **kw) -> TrackedTarget:
    base = dict(campaign_id=1, campaign_name="Q1 awareness", recipient=Recipient("alice@example.com", "Alice"),
                delivered_at=HOUR_AGO, payload_name="Payroll update", payload_subject="Your payslip",
                payload_sender="Payroll <payroll@example.net>", indicators=("Urgent tone", "Lookalike domain"),
                app_name="Doc Viewer", scopes=("Read your mail", "Send mail as you"), training=MODULES,
                organisation="Example Ltd")
    base.update(kw)
    return TrackedTarget(token=token, technique=technique, **base)


TOKENS = {t: f"tok-{t.value}" for t in Technique}


@pytest.fixture()
def tracker() -> MemoryTracker:
    tr = MemoryTracker()
    tr.add(*(target(tok, t) for t, tok in TOKENS.items()))
    tr.add(target("fresh", Technique.CREDENTIAL_HARVEST, delivered_at=datetime.now(UTC)))
    tr.add(target("notyet", Technique.CREDENTIAL_HARVEST, delivered_at=None))
    tr.add(target("landing", Technique.CREDENTIAL_HARVEST, landing_url="https://training.example.org/done"))
    tr.add(target("evil", Technique.OAUTH_CONSENT_GRANT, recipient=Recipient(XSS[1] + "@x", XSS[0]),
                  payload_name=XSS[0], payload_subject=XSS[1], payload_sender=XSS[0], indicators=XSS,
                  app_name=XSS[1], scopes=XSS, campaign_name=XSS[0], organisation=XSS[1],
                  training=(TrainingModule("x", XSS[0], 1, XSS[1]),)))
    return tr


@pytest.fixture()
def server(tracker: MemoryTracker) -> Iterator[TrackingServer]:
    with TrackingServer(tracker, trust_forwarded=True) as s:
        yield s


@pytest.fixture()
def client(server: TrackingServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=BROWSER, follow_redirects=False, timeout=10) as c:
        yield c


def only(tracker: MemoryTracker) -> tuple[str, EventKind, Hit]:
    assert len(tracker.events) == 1, tracker.events
    return tracker.events[0]


# --- routes -------------------------------------------------------------------------------------------

def test_pixel_records_read(client: httpx.Client, tracker: MemoryTracker) -> None:
    r = client.get(f"/p/{TOKENS[Technique.CREDENTIAL_HARVEST]}.png", headers=PIXEL_HEADERS)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == PIXEL
    tok, kind, hit = only(tracker)
    assert (tok, kind, hit.source, hit.counted) == (TOKENS[Technique.CREDENTIAL_HARVEST], EventKind.READ, "pixel",
                                                     True)
    assert hit.ip == "127.0.0.1" and hit.user_agent == BROWSER["User-Agent"] and hit.method == "GET"
    assert hit.headers["Accept-Language"] == "en-GB,en;q=0.9" and hit.headers["Sec-Fetch-Mode"] == "navigate"
    assert hit.at.tzinfo is not None


@pytest.mark.parametrize(("technique", "marker"), [
    (Technique.CREDENTIAL_HARVEST, 'name="password"'),
    (Technique.LINK_IN_ATTACHMENT, 'name="password"'),
    (Technique.LINK_TO_MALWARE, '/d/tok-linkToMalware"'),
    (Technique.DRIVE_BY_URL, "ran code in the background"),
    (Technique.HOW_TO_GUIDE, "Mark complete"),
    (Technique.MALWARE_ATTACHMENT, "This was a phishing simulation"),
])
def test_click_records_and_shows_the_technique_page(client: httpx.Client, tracker: MemoryTracker,
                                                    technique: Technique, marker: str) -> None:
    r = client.get(f"/c/{TOKENS[technique]}")
    assert r.status_code == 200 and marker in r.text
    tok, kind, hit = only(tracker)
    assert (kind, hit.source, hit.reasons) == (EventKind.CLICKED, "link", ())


def test_login_page_prefills_username_and_posts_to_login(client: httpx.Client) -> None:
    text = client.get("/c/tok-credentialHarvest").text
    assert 'action="/login/tok-credentialHarvest"' in text and 'method="post"' in text
    assert 'value="alice@example.com"' in text


def test_document_login_template(client: httpx.Client, tracker: MemoryTracker) -> None:
    tracker.add(target("doc", Technique.CREDENTIAL_HARVEST, login_page="document"))
    text = client.get("/c/doc").text
    assert "Sign in to view the shared document" in text and 'action="/login/doc"' in text


def test_oauth_click_redirects_to_consent(client: httpx.Client, tracker: MemoryTracker) -> None:
    r = client.get("/c/tok-oAuthConsentGrant")
    assert r.status_code == 302 and r.headers["location"] == "/consent/tok-oAuthConsentGrant"
    assert only(tracker)[1] is EventKind.CLICKED


def test_click_sources(client: httpx.Client, tracker: MemoryTracker) -> None:
    client.get("/c/tok-linkInAttachment", params={"s": "attachment"})
    client.get("/c/tok-credentialHarvest", params={"s": "qr"})
    assert [(k, h.source) for _, k, h in tracker.events] == [(EventKind.ATTACHMENT_LINK_CLICKED, "attachment"),
                                                             (EventKind.CLICKED, "qr")]


def test_links_layout_matches_routes(server: TrackingServer, tracker: MemoryTracker) -> None:
    links = Links(server.base_url, "tok-credentialHarvest")
    with httpx.Client(headers=BROWSER, follow_redirects=False) as c:
        for url in (links.click, links.qr, links.pixel, links.attachment_beacon, links.attachment_link,
                    links.report, links.teaching, links.training):
            assert c.get(url).status_code == 200, url
        assert c.get(Links(server.base_url, "tok-linkToMalware").download).status_code == 200
        assert c.get(Links(server.base_url, "tok-oAuthConsentGrant").consent).status_code == 200


def test_credentials_record_only_booleans(server: TrackingServer, client: httpx.Client, tracker: MemoryTracker,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = client.post("/login/tok-credentialHarvest", data={"username": USERNAME, "password": PASSWORD})
    assert r.status_code == 200 and "This was a phishing simulation" in r.text
    tok, kind, hit = only(tracker)
    assert kind is EventKind.CREDENTIALS_SUPPLIED and hit.source == "form" and hit.method == "POST"
    assert dict(hit.details) == {"username_supplied": True, "password_supplied": True}
    for haystack in (repr(tracker.events), repr(tracker), caplog.text, r.text, str(r.headers)):
        assert PASSWORD not in haystack and USERNAME not in haystack
    assert "/login/tok-credentialHarvest" in caplog.text  # the access log did run
    client.get("/login/tok-credentialHarvest", params={"password": PASSWORD})  # a GET: 405, query not logged
    client.get("/c/tok-credentialHarvest", params={"password": PASSWORD})
    assert PASSWORD not in caplog.text


def test_credentials_with_empty_fields(client: httpx.Client, tracker: MemoryTracker) -> None:
    client.post("/login/tok-linkInAttachment", data={"username": "alice@example.com", "password": ""})
    assert dict(only(tracker)[2].details) == {"username_supplied": True, "password_supplied": False}


def test_login_redirects_to_custom_landing(client: httpx.Client, tracker: MemoryTracker) -> None:
    page = client.get("/c/landing")
    assert "form-action 'self' https://training.example.org" in page.headers["content-security-policy"]
    r = client.post("/login/landing", data={"username": "a", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "https://training.example.org/done"
    assert PASSWORD not in r.text


def test_login_rejects_other_content_types(client: httpx.Client, tracker: MemoryTracker) -> None:
    r = client.post("/login/tok-credentialHarvest", json={"username": "a", "password": PASSWORD})
    assert r.status_code == 415 and PASSWORD not in r.text
    r = client.post("/login/tok-credentialHarvest", files={"password": ("p", PASSWORD.encode())})
    assert r.status_code == 415
    assert tracker.events == []


def test_login_for_a_technique_without_login_page_is_404(client: httpx.Client, tracker: MemoryTracker) -> None:
    assert client.post("/login/tok-driveByUrl", data={"password": PASSWORD}).status_code == 404
    assert tracker.events == []


def test_attachment_beacon_and_download(client: httpx.Client, tracker: MemoryTracker) -> None:
    r = client.get("/a/tok-malwareAttachment", headers=PIXEL_HEADERS)
    assert r.status_code == 200 and r.content == PIXEL
    r = client.get("/d/tok-linkToMalware")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "attachment" in r.headers["content-disposition"] and "simulation" in r.text
    assert [(k, h.source) for _, k, h in tracker.events] == [(EventKind.ATTACHMENT_OPENED, "beacon"),
                                                             (EventKind.FILE_DOWNLOADED, "download")]
    assert all(h.counted for _, _, h in tracker.events)


def test_consent_accept_and_cancel(client: httpx.Client, tracker: MemoryTracker) -> None:
    page = client.get("/consent/tok-oAuthConsentGrant").text
    assert "Doc Viewer" in page and "<li>Send mail as you</li>" in page
    assert 'action="/consent/tok-oAuthConsentGrant"' in page and 'value="accept"' in page
    assert tracker.events == []
    r = client.post("/consent/tok-oAuthConsentGrant", data={"action": "cancel"})
    assert r.status_code == 200 and tracker.events == []
    r = client.post("/consent/tok-oAuthConsentGrant", data={"action": "accept"})
    assert r.status_code == 200 and "This was a phishing simulation" in r.text
    assert only(tracker)[1] is EventKind.CONSENT_GRANTED


def test_report_endpoint(client: httpx.Client, tracker: MemoryTracker) -> None:
    assert "report was received" in client.get("/r/tok-credentialHarvest").text
    assert client.post("/r/tok-credentialHarvest").status_code == 200
    assert [(k, h.method) for _, k, h in tracker.events] == [(EventKind.REPORTED, "GET"), (EventKind.REPORTED, "POST")]


def test_teaching_page_records_nothing(client: httpx.Client, tracker: MemoryTracker) -> None:
    text = client.get("/teach/tok-credentialHarvest").text
    for s in ("This was a phishing simulation", "Payroll update", "Your payslip", "payroll@example.net",
              "<mark>Urgent tone</mark>", "Report", 'href="/training/tok-credentialHarvest"'):
        assert s in text
    assert tracker.events == []


def test_training_completion(client: httpx.Client, tracker: MemoryTracker) -> None:
    page = client.get("/training/tok-howToGuide").text
    assert "Spotting phishing" in page and "5 minutes" in page and 'name="module" value="m2"' in page
    r = client.post("/training/tok-howToGuide", data={"module": "m2"})
    assert r.status_code == 200 and "Marked complete: Reporting" in r.text
    tok, kind, hit = only(tracker)
    assert kind is EventKind.TRAINING_COMPLETED and dict(hit.details) == {"module": "m2"}


def test_training_for_unassigned_module_is_400(client: httpx.Client, tracker: MemoryTracker) -> None:
    assert client.post("/training/tok-howToGuide", data={"module": "nope"}).status_code == 400
    assert client.post("/training/tok-howToGuide", data={}).status_code == 400
    assert tracker.events == []


def test_unknown_token_is_a_neutral_404(client: httpx.Client, tracker: MemoryTracker) -> None:
    for method, url in [("GET", "/c/unknown"), ("GET", "/p/unknown.png"), ("POST", "/login/unknown"),
                        ("GET", "/a/unknown"), ("GET", "/d/unknown"), ("GET", "/consent/unknown"),
                        ("POST", "/r/unknown"), ("GET", "/teach/unknown"), ("GET", "/training/unknown"),
                        ("GET", "/c/unknown+"), ("GET", "/"), ("GET", "/c/bad%20token"), ("GET", "/admin")]:
        r = client.request(method, url, data={"password": PASSWORD} if method == "POST" else None)
        assert r.status_code == 404, url
        assert "Not Found" in r.text and "simulation" not in r.text.lower() and "tornado" not in r.text.lower()
        assert "server" not in r.headers
    assert tracker.events == []


def test_transparency_and_robots(client: httpx.Client, tracker: MemoryTracker) -> None:
    r = client.get("/c/tok-credentialHarvest+")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "phishing simulation" in r.text and "Example Ltd" in r.text
    r = client.get("/robots.txt")
    assert r.text == "User-agent: *\nDisallow: /\n"
    assert tracker.events == []


def test_security_headers_everywhere(client: httpx.Client) -> None:
    for r in (client.get("/c/tok-credentialHarvest"), client.get("/p/tok-credentialHarvest.png"),
              client.get("/nope"), client.get("/robots.txt"), client.get("/c/tok-credentialHarvest+"),
              client.post("/training/tok-howToGuide", data={"module": "nope"})):
        csp = r.headers["content-security-policy"]
        for part in ("default-src 'none'", "style-src 'unsafe-inline'", "img-src 'self'", "form-action 'self'"):
            assert part in csp
        assert "noindex" in r.headers["x-robots-tag"]
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
        assert "set-cookie" not in r.headers


def test_pages_have_no_external_resources(client: httpx.Client) -> None:
    for url in ("/c/tok-credentialHarvest", "/c/tok-linkToMalware", "/consent/tok-oAuthConsentGrant",
                "/teach/tok-driveByUrl", "/training/tok-howToGuide", "/r/tok-howToGuide", "/nope"):
        text = client.get(url).text.lower()
        assert "<script" not in text and "http://" not in text and "https://" not in text and "<link" not in text


def test_hostile_values_are_escaped_on_every_page(client: httpx.Client, tracker: MemoryTracker) -> None:
    tracker.add(replace(tracker.lookup("evil"), technique=Technique.CREDENTIAL_HARVEST, token="evil-login",
                        login_page="document"),
                replace(tracker.lookup("evil"), technique=Technique.LINK_TO_MALWARE, token="evil-dl"))
    bodies = [client.get("/consent/evil").text, client.get("/teach/evil").text, client.get("/training/evil").text,
              client.get("/r/evil").text, client.get("/c/evil-login").text, client.get("/c/evil-dl").text,
              client.post("/consent/evil", data={"action": "accept"}).text,
              client.post("/training/evil", data={"module": "x"}).text]
    bodies += [pages.login_page(replace(tracker.lookup("evil-login"), login_page="generic")),
               pages.driveby_page(tracker.lookup("evil"))]
    for body in bodies:
        for bad in XSS:
            assert bad not in body
        assert "<script" not in body and "<img" not in body
    assert "&lt;img src=x onerror=window.__xss=1&gt;" in bodies[1]  # shown, as text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in bodies[0]


# --- scanner traffic through the server -------------------------------------------------------------

def reasons_of(tracker: MemoryTracker) -> tuple[str, ...]:
    return only(tracker)[2].reasons


def test_scanner_agent_is_recorded_flagged_with_the_same_response(client: httpx.Client,
                                                                  tracker: MemoryTracker) -> None:
    user = client.get("/c/tok-credentialHarvest")
    tracker.events.clear()
    bot = client.get("/c/tok-credentialHarvest", headers={"User-Agent": "python-requests/2.32.3"})
    assert (bot.status_code, bot.text) == (user.status_code, user.text)
    assert FlagReason.SCANNER_AGENT in reasons_of(tracker)


def test_scanner_network_via_forwarded_for(client: httpx.Client, tracker: MemoryTracker) -> None:
    client.get("/c/tok-credentialHarvest", headers={"X-Forwarded-For": "203.0.113.9, 40.107.22.5"})
    _, _, hit = only(tracker)
    assert hit.ip == "40.107.22.5" and hit.reasons == (FlagReason.SCANNER_NETWORK,)


def test_forwarded_for_ignored_unless_trusted(tracker: MemoryTracker) -> None:
    with TrackingServer(tracker) as s, httpx.Client(base_url=s.base_url, headers=BROWSER) as c:
        c.get("/c/tok-credentialHarvest", headers={"X-Forwarded-For": "40.107.22.5"})
    _, _, hit = only(tracker)
    assert hit.ip == "127.0.0.1" and hit.counted


def test_head_request_is_not_a_browser(client: httpx.Client, tracker: MemoryTracker) -> None:
    r = client.head("/c/tok-credentialHarvest")
    assert r.status_code == 200 and r.content == b""
    _, kind, hit = only(tracker)
    assert kind is EventKind.CLICKED and hit.method == "HEAD" and hit.reasons == (FlagReason.NOT_A_BROWSER,)


def test_missing_accept_language_is_not_a_browser(client: httpx.Client, tracker: MemoryTracker) -> None:
    headers = {k: v for k, v in BROWSER.items() if k != "Accept-Language"}
    with httpx.Client(base_url=str(client.base_url), headers=headers) as c:
        c.get("/c/tok-credentialHarvest")
    assert reasons_of(tracker) == (FlagReason.NOT_A_BROWSER,)


def test_too_fast_and_before_delivery(client: httpx.Client, tracker: MemoryTracker) -> None:
    client.get("/c/fresh")
    assert reasons_of(tracker) == (FlagReason.TOO_FAST,)
    tracker.events.clear()
    client.get("/c/notyet")
    assert reasons_of(tracker) == (FlagReason.BEFORE_DELIVERY,)


def test_link_preview_agent(client: httpx.Client, tracker: MemoryTracker) -> None:
    ua = "Mozilla/5.0 (compatible; Slackbot-LinkExpanding 1.0; +https://api.slack.com/robots)"
    client.get("/c/tok-credentialHarvest", headers={"User-Agent": ua})
    assert reasons_of(tracker) == (FlagReason.LINK_PREVIEW,)


def test_inactive_campaign_is_flagged(client: httpx.Client, tracker: MemoryTracker) -> None:
    tracker.add(target("ended", Technique.DRIVE_BY_URL, active=False))
    client.get("/c/ended")
    assert reasons_of(tracker) == (FlagReason.CAMPAIGN_INACTIVE,)


def test_public_bind_must_be_explicit(tracker: MemoryTracker) -> None:
    with pytest.raises(InputError):
        TrackingServer(tracker, host="0.0.0.0")
    TrackingServer(tracker, host="0.0.0.0", allow_public=True)  # constructed, not started


# --- filtering.classify ------------------------------------------------------------------------------

SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAGE = {"Accept": "text/html,*/*;q=0.8", "Accept-Language": "de-DE"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def h(ua: str = FIREFOX, *, ip: str = "198.51.100.20", after: float = 600, source: str = "link",
      method: str = "GET", headers: dict | None = None) -> Hit:
    return Hit(SENT + timedelta(seconds=after), ip, ua, source, method, PAGE if headers is None else headers)


def test_classify_counts_a_person() -> None:
    assert classify(h(), SENT) == ()
    assert classify(h(source="pixel", headers={}), SENT) == ()  # mail clients need not send Accept-Language


@pytest.mark.parametrize("ua", ["python-requests/2.32.3", "curl/8.5.0", "Wget/1.21.4", "Go-http-client/1.1",
                                "okhttp/4.12.0", "Java/17.0.2", "libwww-perl/6.72",
                                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
                                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                                "Mozilla/5.0 (compatible; SomeCrawler/1.0)", "Baiduspider"])
def test_classify_scanner_agents(ua: str) -> None:
    assert classify(h(ua), SENT) == (FlagReason.SCANNER_AGENT,)


@pytest.mark.parametrize("ua", ["Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                                "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
                                "facebookexternalhit/1.1", "Twitterbot/1.0", "LinkedInBot/1.0", "WhatsApp/2.23.20.0",
                                "TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Discordbot/2.0)",
                                "Microsoft Office Existence Discovery", "Google-Safety"])
def test_classify_link_previews(ua: str) -> None:
    assert classify(h(ua), SENT) == (FlagReason.LINK_PREVIEW,)


def test_classify_browser_agents_are_not_bots() -> None:
    for ua in (FIREFOX, "Mozilla/5.0 (Linux; Android 13; CUBOT KINGKONG 9) AppleWebKit/537.36 Chrome/120 Mobile",
               "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Safari"):
        assert agent_reason(ua) is None, ua


def test_classify_networks() -> None:
    assert classify(h(ip="40.92.10.1"), SENT) == (FlagReason.SCANNER_NETWORK,)
    assert classify(h(ip="66.249.66.1"), SENT) == (FlagReason.SCANNER_NETWORK,)
    assert classify(h(ip="2a01:111:f400:fe00::1"), SENT) == (FlagReason.SCANNER_NETWORK,)
    assert classify(h(ip="::ffff:40.107.1.1"), SENT) == (FlagReason.SCANNER_NETWORK,)
    assert classify(h(ip="not-an-ip"), SENT) == ()
    assert classify(h(ip="10.1.2.3"), SENT, networks=["10.0.0.0/8"]) == (FlagReason.SCANNER_NETWORK,)
    assert classify(h(ip="40.92.10.1"), SENT, networks=[]) == ()
    assert scanner_network("40.92.10.1").source.startswith("Microsoft public documentation")


def test_classify_timing() -> None:
    assert classify(h(after=3), SENT) == (FlagReason.TOO_FAST,)
    assert classify(h(after=3), SENT, min_seconds=1) == ()
    assert classify(h(after=-60), SENT) == (FlagReason.BEFORE_DELIVERY,)
    assert classify(h(), None) == (FlagReason.BEFORE_DELIVERY,)
    assert classify(h(after=3), SENT.replace(tzinfo=None)) == (FlagReason.TOO_FAST,)  # naive = UTC


def test_classify_browser_behaviour() -> None:
    assert classify(h(method="HEAD"), SENT) == (FlagReason.NOT_A_BROWSER,)
    assert classify(h(""), SENT) == (FlagReason.NOT_A_BROWSER,)
    assert classify(h(headers={"Accept": "text/html"}), SENT) == (FlagReason.NOT_A_BROWSER,)
    assert classify(h(headers={"Accept": "application/json", "Accept-Language": "en"}), SENT) == (
        FlagReason.NOT_A_BROWSER,)
    assert classify(h(headers={"accept": "*/*", "accept-language": "en"}), SENT) == ()


def test_classify_combines_reasons_in_order() -> None:
    hit = h("curl/8.5.0", ip="104.47.1.1", after=1, method="HEAD", headers={})
    assert classify(hit, SENT) == ("scanner_network", "scanner_agent", "too_fast", "not_a_browser")
    assert all(isinstance(r, str) for r in classify(hit, SENT))


@pytest.mark.parametrize("module", ["filtering", "pages", "tracking"])
def test_doctests(module: str) -> None:
    import doctest
    import importlib

    assert doctest.testmod(importlib.import_module(f"workbench.simulator.{module}")).failed == 0


def test_a_failing_store_still_serves_the_page(tracker: MemoryTracker, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(MemoryTracker):
        def record(self, token, kind, hit):
            raise RuntimeError("database is down")

    broken = Broken(targets=dict(tracker.targets))
    with TrackingServer(broken) as s, httpx.Client(base_url=s.base_url, headers=BROWSER) as c:
        r = c.post("/login/tok-credentialHarvest", data={"username": USERNAME, "password": PASSWORD})
    assert r.status_code == 200 and "This was a phishing simulation" in r.text
    assert "could not record credentialsSupplied" in caplog.text and PASSWORD not in caplog.text
