"""The tracking and landing web server (tornado): open pixel, clicks, login/consent/download pages,
report endpoint, teaching and training pages (the URL layout is :class:`~workbench.simulator.model.Links`).

Every recorded :class:`Hit` carries the request's IP, User-Agent, method, the browser-telling
headers and the :func:`~workbench.simulator.filtering.classify` reasons. Flagged hits are recorded
too, and get exactly the response a person would (a scanner is never tipped off). Form values are
reduced to booleans at once: a submitted username or password is never stored, logged or echoed.

>>> tracker = MemoryTracker()
>>> with TrackingServer(tracker) as server:
...     server.base_url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from workbench.simulator import pages
from workbench.simulator.filtering import FlagReason, ScannerNetwork, classify, load_networks
from workbench.simulator.model import EventKind, Hit, Technique, TrackedTarget

log = logging.getLogger(__name__)

TOKEN = r"([A-Za-z0-9_-]{1,128})"
#: Request headers kept on each hit (they tell a browser from a scanner).
KEPT_HEADERS = ("Accept", "Accept-Language", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest",
                "Sec-CH-UA")
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; " \
      "frame-ancestors 'none'"
#: A 1×1 transparent PNG.
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                      "0000000d4944415478da63f8ffffff7f0009fb03fd2a86e38a0000000049454e44ae426082")
LOGIN_TECHNIQUES = frozenset({Technique.CREDENTIAL_HARVEST, Technique.LINK_IN_ATTACHMENT})
MAX_BODY = 64 * 1024


@runtime_checkable
class Tracker(Protocol):
    """What the server asks of the campaign store (called on the server's thread)."""

    def lookup(self, token: str) -> TrackedTarget | None: ...

    def record(self, token: str, kind: EventKind, hit: Hit) -> None: ...


@dataclass
class MemoryTracker:
    """An in-memory :class:`Tracker` for tests and examples: targets by token, events as recorded."""

    targets: dict[str, TrackedTarget] = field(default_factory=dict)
    events: list[tuple[str, EventKind, Hit]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, *targets: TrackedTarget) -> MemoryTracker:
        for t in targets:
            self.targets[t.token] = t
        return self

    def lookup(self, token: str) -> TrackedTarget | None:
        return self.targets.get(token)

    def record(self, token: str, kind: EventKind, hit: Hit) -> None:
        with self._lock:
            self.events.append((token, kind, hit))

    def kinds(self, token: str | None = None) -> list[EventKind]:
        with self._lock:
            return [k for tok, k, _ in self.events if token is None or tok == token]


@dataclass(frozen=True)
class _Settings:
    tracker: Tracker
    min_seconds: float
    networks: tuple[ScannerNetwork, ...] | None
    trust_forwarded: bool


def _client_ip(request: Any, trust_forwarded: bool) -> str:
    """The remote address; with *trust_forwarded*, the address the (trusted) proxy appended last."""
    if trust_forwarded:
        for candidate in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
            try:
                return str(ipaddress.ip_address(candidate.strip()))
            except ValueError:
                continue
    return request.remote_ip or ""


def _safe_url(url: str) -> str | None:
    """*url* if it is an absolute http(s) address, else None."""
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


class _Handler(tornado.web.RequestHandler):
    """Common behaviour: security headers, neutral errors, hit recording."""

    settings_: _Settings

    def initialize(self, settings: _Settings) -> None:
        self.settings_ = settings

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Robots-Tag", "noindex, nofollow, noarchive")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")

    def compute_etag(self) -> None:
        return None

    def check_xsrf_cookie(self) -> None:  # cross-site forms are the point
        return None

    def prepare(self) -> None:
        if self.request.method == "POST" and self.request.body:
            ctype = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                self._forget_body()
                raise tornado.web.HTTPError(415)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        if status_code == 404:
            self.finish(pages.not_found_page())
        elif status_code == 400:
            self.finish(pages.bad_request_page())
        else:
            self.finish(pages.error_page(status_code, self._reason))

    def _forget_body(self) -> None:
        """Drop the raw and parsed request body (form values must not outlive the check)."""
        self.request.body = b""
        for name in list(self.request.body_arguments):
            self.request.arguments.pop(name, None)
        self.request.body_arguments.clear()

    def target(self, token: str) -> TrackedTarget:
        t = self.settings_.tracker.lookup(token)
        if t is None:
            self._forget_body()
            raise tornado.web.HTTPError(404)
        return t

    def hit(self, t: TrackedTarget, source: str, details: Mapping[str, object] | None = None) -> Hit:
        req = self.request
        headers = {h: req.headers[h] for h in KEPT_HEADERS if h in req.headers}
        bare = Hit(at=datetime.now(UTC), ip=_client_ip(req, self.settings_.trust_forwarded),
                   user_agent=req.headers.get("User-Agent", ""), source=source, method=req.method or "GET",
                   headers=headers, details=dict(details or {}))
        reasons = classify(bare, t.delivered_at, min_seconds=self.settings_.min_seconds,
                           networks=self.settings_.networks)
        if not t.active:
            reasons += (FlagReason.CAMPAIGN_INACTIVE.value,)
        return Hit(bare.at, bare.ip, bare.user_agent, bare.source, bare.method, bare.headers, reasons, bare.details)

    def record(self, t: TrackedTarget, kind: EventKind, source: str,
               details: Mapping[str, object] | None = None) -> None:
        hit = self.hit(t, source, details)
        if kind is EventKind.TRAINING_COMPLETED:  # training goes on after the campaign ends
            hit = replace(hit, reasons=tuple(r for r in hit.reasons if r != FlagReason.CAMPAIGN_INACTIVE.value))
        try:
            self.settings_.tracker.record(t.token, kind, hit)
        except Exception:  # the visitor still gets the page; the store's failure is logged (no form values)
            log.exception("could not record %s for a target of campaign %s", kind.value, t.campaign_id)

    def html(self, text: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(text)

    def png(self) -> None:
        self.set_header("Content-Type", "image/png")
        self.finish(PIXEL)

    def landing(self, t: TrackedTarget, lead: str = "") -> None:
        """After a compromising action: the custom landing URL (303) or the teaching page."""
        url = _safe_url(t.landing_url)
        if url:
            self.redirect(url, status=303)
        else:
            self.html(pages.teaching_page(t, lead=lead))

    def form_csp(self, t: TrackedTarget) -> None:
        """Allow the form's post-submit redirect to the target's custom landing origin."""
        url = _safe_url(t.landing_url)
        if url:
            p = urlsplit(url)
            self.set_header("Content-Security-Policy",
                            CSP.replace("form-action 'self'", f"form-action 'self' {p.scheme}://{p.netloc}"))


class PixelHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        self.record(t, EventKind.READ, "pixel")
        self.png()


class BeaconHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        self.record(t, EventKind.ATTACHMENT_OPENED, "beacon")
        self.png()


class ClickHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        s = self.get_query_argument("s", "")
        kind = EventKind.ATTACHMENT_LINK_CLICKED if s == "attachment" else EventKind.CLICKED
        self.record(t, kind, {"attachment": "attachment", "qr": "qr"}.get(s, "link"))
        if t.technique in LOGIN_TECHNIQUES:
            self.form_csp(t)
            self.html(pages.login_page(t))
        elif t.technique is Technique.LINK_TO_MALWARE:
            self.html(pages.download_page(t))
        elif t.technique is Technique.DRIVE_BY_URL:
            self.html(pages.driveby_page(t))
        elif t.technique is Technique.OAUTH_CONSENT_GRANT:
            self.redirect(f"/consent/{quote(t.token, safe='')}")
        elif t.technique is Technique.HOW_TO_GUIDE:
            self.html(pages.training_page(t))
        else:
            self.html(pages.teaching_page(t))

    head = get


class TransparencyHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(pages.transparency_text(t))


class LoginHandler(_Handler):
    def post(self, token: str) -> None:
        t = self.target(token)
        if t.technique not in LOGIN_TECHNIQUES:
            self._forget_body()
            raise tornado.web.HTTPError(404)
        details = {"username_supplied": bool(self.get_body_argument("username", "").strip()),
                   "password_supplied": bool(self.get_body_argument("password", ""))}
        self._forget_body()
        self.record(t, EventKind.CREDENTIALS_SUPPLIED, "form", details)
        self.landing(t)


class DownloadHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        if t.technique is not Technique.LINK_TO_MALWARE:
            raise tornado.web.HTTPError(404)
        self.record(t, EventKind.FILE_DOWNLOADED, "download")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="simulation-notice.txt"')
        self.finish(pages.download_text(t))


class ConsentHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        if t.technique is not Technique.OAUTH_CONSENT_GRANT:
            raise tornado.web.HTTPError(404)
        self.form_csp(t)
        self.html(pages.consent_page(t))

    def post(self, token: str) -> None:
        t = self.target(token)
        action = self.get_body_argument("action", "")
        self._forget_body()
        if t.technique is not Technique.OAUTH_CONSENT_GRANT:
            raise tornado.web.HTTPError(404)
        if action == "accept":
            self.record(t, EventKind.CONSENT_GRANTED, "consent")
            self.landing(t)
        elif action == "cancel":
            self.html(pages.teaching_page(t, lead=pages.consent_declined_lead()))
        else:
            raise tornado.web.HTTPError(400)


class ReportHandler(_Handler):
    def get(self, token: str) -> None:
        t = self.target(token)
        self._forget_body()
        self.record(t, EventKind.REPORTED, "report")
        self.html(pages.report_page(t))

    post = get


class TeachHandler(_Handler):
    def get(self, token: str) -> None:
        self.html(pages.teaching_page(self.target(token)))


class TrainingHandler(_Handler):
    def get(self, token: str) -> None:
        self.html(pages.training_page(self.target(token)))

    def post(self, token: str) -> None:
        t = self.target(token)
        module = self.get_body_argument("module", "")
        self._forget_body()
        if module not in {m.id for m in t.training}:
            raise tornado.web.HTTPError(400)
        self.record(t, EventKind.TRAINING_COMPLETED, "training", {"module": module})
        self.html(pages.training_page(t, completed=module))


class RobotsHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(pages.ROBOTS_TXT)


class NotFoundHandler(_Handler):
    def prepare(self) -> None:
        self._forget_body()
        raise tornado.web.HTTPError(404)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log: method, path (no query string, never a body), status, time."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    req = handler.request
    tornado_log = logging.getLogger("tornado.access")
    tornado_log.log(level, "%d %s %s (%s) %.1fms", status, req.method, req.path, req.remote_ip,
                    1000.0 * req.request_time())


def make_app(tracker: Tracker, *, min_seconds: float = 10.0,
             networks: Iterable[ScannerNetwork | str] | None = None,
             trust_forwarded: bool = False) -> tornado.web.Application:
    """The tracking application. *trust_forwarded*: take the client address from X-Forwarded-For
    (only behind a proxy you run); *networks* replaces the shipped scanner networks."""
    s = _Settings(tracker, min_seconds, load_networks(networks) if networks is not None else None, trust_forwarded)
    kw = {"settings": s}
    routes = [
        (rf"/p/{TOKEN}\.png", PixelHandler, kw),
        (rf"/c/{TOKEN}\+", TransparencyHandler, kw),
        (rf"/c/{TOKEN}", ClickHandler, kw),
        (rf"/login/{TOKEN}", LoginHandler, kw),
        (rf"/a/{TOKEN}", BeaconHandler, kw),
        (rf"/d/{TOKEN}", DownloadHandler, kw),
        (rf"/consent/{TOKEN}", ConsentHandler, kw),
        (rf"/r/{TOKEN}", ReportHandler, kw),
        (rf"/teach/{TOKEN}", TeachHandler, kw),
        (rf"/training/{TOKEN}", TrainingHandler, kw),
        (r"/robots\.txt", RobotsHandler, kw),
    ]
    return tornado.web.Application(routes, default_handler_class=NotFoundHandler, default_handler_args=kw,
                                   xsrf_cookies=False, log_function=_log_request, compress_response=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TrackingServer:
    """The tracking app on its own event loop in a daemon thread (loopback unless *allow_public*).

    ``with TrackingServer(tracker) as server: ... server.base_url``
    """

    def __init__(self, tracker: Tracker, host: str = "127.0.0.1", port: int = 0, *, allow_public: bool = False,
                 **make_app_kwargs: Any) -> None:
        if not _is_loopback(host) and not allow_public:
            from workbench.errors import InputError

            raise InputError(f"binding the tracking server to {host!r} exposes it beyond this machine; "
                             "pass allow_public=True to mean it")
        self.host, self.port = host, port
        self.app = make_app(tracker, **make_app_kwargs)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _main(self) -> None:
        try:
            sockets = bind_sockets(self.port, self.host)
            server = HTTPServer(self.app, xheaders=False, max_body_size=MAX_BODY)
            server.add_sockets(sockets)
            self.port = sockets[0].getsockname()[1]
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await server.close_all_connections()

    def start(self) -> TrackingServer:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), name="tracking-server",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            self._thread = None
            raise self._error
        log.info("tracking server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread, self._loop, self._stop = None, None, None
        self._ready.clear()

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(tracker: Tracker, host: str = "127.0.0.1", port: int = 8899, *, allow_public: bool = False,
                  **make_app_kwargs: Any) -> None:
    """Run the tracking server in the foreground until interrupted (for a CLI)."""
    server = TrackingServer(tracker, host, port, allow_public=allow_public, **make_app_kwargs).start()
    print(f"tracking server on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


__all__ = ["Tracker", "MemoryTracker", "make_app", "TrackingServer", "serve_forever", "PIXEL", "KEPT_HEADERS",
           "CSP"]
