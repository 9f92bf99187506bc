"""Scanner and bot click filtering: why a tracking-server hit should not count as a person's action.

Mail-security gateways, link scanners and chat link previews fetch every link in a message, often
seconds after delivery; counting them inflates click and compromise rates (GoPhish's most reported
problem; MDO's FAQ names third-party link scanners too). :func:`classify` returns the *reasons* a
hit is flagged — an empty tuple means it counts. Flagged hits are kept and shown with their reasons;
they are only left out of rates.

>>> from datetime import UTC, datetime, timedelta
>>> from workbench.simulator.model import Hit
>>> sent = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
>>> browser = {"Accept": "text/html,*/*;q=0.8", "Accept-Language": "en-GB,en;q=0.9"}
>>> classify(Hit(sent + timedelta(minutes=5), "198.51.100.7", "Mozilla/5.0 Firefox/140.0", "link",
...              headers=browser), sent)
()
>>> classify(Hit(sent + timedelta(seconds=2), "40.107.1.2", "python-requests/2.32", "link"), sent)
('scanner_network', 'scanner_agent', 'too_fast', 'not_a_browser')
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from workbench.simulator.model import Hit

NETWORKS_FILE = Path(__file__).with_name("scanner_networks.json")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FlagReason(StrEnum):
    """Why a hit is excluded from rates (shown to analysts next to the event)."""

    #: The address is in a published range of a mail-security service or crawler
    #: (``scanner_networks.json``): a gateway detonating the link, not the recipient.
    SCANNER_NETWORK = "scanner_network"
    #: The User-Agent is an HTTP library, command-line tool, headless browser or a crawler/bot.
    SCANNER_AGENT = "scanner_agent"
    #: The User-Agent is a chat or social link-preview fetcher (Slack, Teams, WhatsApp...):
    #: someone pasted the link somewhere, which is not a click on it.
    LINK_PREVIEW = "link_preview"
    #: The hit came within ``min_seconds`` of delivery — faster than a person reads and clicks.
    TOO_FAST = "too_fast"
    #: The request does not behave like a browser: HEAD, no User-Agent, or for a page no
    #: Accept-Language or an Accept header that names neither text/html nor */*.
    NOT_A_BROWSER = "not_a_browser"
    #: The hit came before the message was delivered (or for a message never delivered):
    #: the link was fetched in transit, or by someone who got it another way.
    BEFORE_DELIVERY = "before_delivery"
    #: The hit came after the campaign ended (set by the tracking server, not by :func:`classify`).
    CAMPAIGN_INACTIVE = "campaign_inactive"


#: Sources whose requests are page navigations (a browser sends Accept text/html and Accept-Language).
PAGE_SOURCES = frozenset({"link", "qr", "attachment", "form", "consent", "download", "report", "training",
                          "teach"})

#: Link-preview fetchers (checked first: several of them also say "bot").
LINK_PREVIEW_AGENTS: tuple[str, ...] = (
    r"Slackbot-LinkExpanding", r"Slack-ImgProxy", r"SkypeUriPreview", r"MicrosoftPreview", r"BingPreview",
    r"facebookexternalhit", r"Facebot", r"Twitterbot", r"LinkedInBot", r"WhatsApp", r"TelegramBot",
    r"Discordbot", r"Microsoft Office", r"ms-office", r"Google-Safety", r"Google-PageRenderer",
    r"GoogleImageProxy", r"Iframely", r"Embedly", r"redditbot", r"Pinterestbot", r"SignalLinkPreview",
    r"Mattermost-Bot", r"Rocket\.Chat", r"Viber", r"vkShare", r"Applebot",
)

#: HTTP libraries, tools, headless browsers, security scanners and crawlers generally.
SCANNER_AGENTS: tuple[str, ...] = (
    r"python-requests", r"python-urllib", r"python-httpx", r"aiohttp", r"\bcurl/", r"\bwget\b",
    r"Go-http-client", r"okhttp", r"\bJava/", r"Apache-HttpClient", r"libwww", r"lwp-", r"HeadlessChrome",
    r"PhantomJS", r"Puppeteer", r"Playwright", r"Selenium", r"node-fetch", r"axios/", r"undici",
    r"Scrapy", r"zgrab", r"masscan", r"Nmap", r"Nuclei", r"urlscan", r"Barracuda", r"Proofpoint",
    r"Mimecast", r"Symantec", r"Forcepoint", r"Trend ?Micro", r"Sophos", r"Cisco", r"IronPort",
    r"Bitdefender", r"Kaspersky", r"\bESET\b", r"Zscaler", r"WinHttp", r"PowerShell", r"\bRuby\b",
    r"Faraday", r"http\.rb", r"Jakarta", r"Dalvik", r"\w*bot\b", r"crawl", r"spider", r"slurp",
    r"preview", r"scanner", r"checker", r"monitor",
)

#: Fragments that look like a bot pattern but are real browsers/devices (e.g. Cubot phones).
NOT_SCANNER_AGENTS: tuple[str, ...] = (r"cubot",)

_PREVIEW = re.compile("|".join(LINK_PREVIEW_AGENTS), re.IGNORECASE)
_SCANNER = re.compile("|".join(SCANNER_AGENTS), re.IGNORECASE)
_NOT_SCANNER = re.compile("|".join(NOT_SCANNER_AGENTS), re.IGNORECASE)


@dataclass(frozen=True)
class ScannerNetwork:
    network: IPNetwork
    owner: str
    source: str

    @classmethod
    def from_dict(cls, item: Mapping[str, str]) -> ScannerNetwork:
        return cls(ipaddress.ip_network(item["cidr"], strict=False), item.get("owner", ""), item.get("source", ""))


@lru_cache(maxsize=1)
def default_networks() -> tuple[ScannerNetwork, ...]:
    """The published scanner and crawler networks shipped with the workbench."""
    return tuple(ScannerNetwork.from_dict(e) for e in json.loads(NETWORKS_FILE.read_text(encoding="utf-8")))


Networks = Iterable[ScannerNetwork | str | IPNetwork]


def load_networks(networks: Networks | None = None) -> tuple[ScannerNetwork, ...]:
    """*networks* as ScannerNetwork values (CIDR strings allowed); None: the shipped ones."""
    if networks is None:
        return default_networks()
    out = []
    for n in networks:
        if isinstance(n, ScannerNetwork):
            out.append(n)
        else:
            out.append(ScannerNetwork(ipaddress.ip_network(n, strict=False), "custom", "configured"))
    return tuple(out)


def scanner_network(ip: str, networks: Networks | None = None) -> ScannerNetwork | None:
    """The scanner network *ip* belongs to, if any (None for unparsable addresses).

    >>> scanner_network("40.107.3.4").owner
    'Microsoft Exchange Online Protection'
    """
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for n in load_networks(networks):
        if addr.version == n.network.version and addr in n.network:
            return n
    return None


def agent_reason(user_agent: str) -> FlagReason | None:
    """LINK_PREVIEW, SCANNER_AGENT or None for a User-Agent string.

    >>> agent_reason("Mozilla/5.0 (compatible; Slackbot-LinkExpanding 1.0)").value
    'link_preview'
    >>> agent_reason("curl/8.5.0").value
    'scanner_agent'
    >>> agent_reason("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/141.0 Safari/537.36")
    """
    if not user_agent:
        return None
    if _PREVIEW.search(user_agent):
        return FlagReason.LINK_PREVIEW
    if _SCANNER.search(user_agent) and not _NOT_SCANNER.search(user_agent):
        return FlagReason.SCANNER_AGENT
    return None


def _header(headers: Mapping[str, str], name: str) -> str:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v or ""
    return ""


def _not_a_browser(hit: Hit) -> bool:
    if hit.method.upper() == "HEAD" or not hit.user_agent.strip():
        return True
    if hit.source in PAGE_SOURCES:
        if not _header(hit.headers, "Accept-Language").strip():
            return True
        accept = _header(hit.headers, "Accept").lower()
        if "text/html" not in accept and "*/*" not in accept:
            return True
    return False


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def classify(hit: Hit, delivered_at: datetime | None, *, min_seconds: float = 10.0,
             networks: Networks | None = None) -> tuple[str, ...]:
    """The reasons *hit* (its own ``reasons`` ignored) should not count; ``()`` means it counts.

    Reasons come in :class:`FlagReason` order. *networks* replaces the shipped scanner networks
    (ScannerNetwork values or CIDR strings); *min_seconds* is the too-fast threshold.
    """
    reasons: list[FlagReason] = []
    if scanner_network(hit.ip, networks) is not None:
        reasons.append(FlagReason.SCANNER_NETWORK)
    agent = agent_reason(hit.user_agent)
    if agent is FlagReason.SCANNER_AGENT:
        reasons.append(agent)
    if agent is FlagReason.LINK_PREVIEW:
        reasons.append(agent)
    at = _utc(hit.at)
    delivered = _utc(delivered_at) if delivered_at is not None else None
    if delivered is not None and at >= delivered and (at - delivered).total_seconds() < min_seconds:
        reasons.append(FlagReason.TOO_FAST)
    if _not_a_browser(hit):
        reasons.append(FlagReason.NOT_A_BROWSER)
    if delivered is None or at < delivered:
        reasons.append(FlagReason.BEFORE_DELIVERY)
    return tuple(r.value for r in reasons)


def explain(reason: str) -> str:
    """A one-line explanation of a reason string, for analysts.

    >>> explain("too_fast")
    'The hit came within min_seconds of delivery — faster than a person reads and clicks.'
    """
    try:
        return _EXPLANATIONS[FlagReason(reason)]
    except ValueError:
        return reason


_EXPLANATIONS = {
    FlagReason.SCANNER_NETWORK: "The address is in a published range of a mail-security service or crawler.",
    FlagReason.SCANNER_AGENT: "The User-Agent is an HTTP library, tool, headless browser or crawler.",
    FlagReason.LINK_PREVIEW: "The User-Agent is a chat or social link-preview fetcher, not a click.",
    FlagReason.TOO_FAST: "The hit came within min_seconds of delivery — faster than a person reads and clicks.",
    FlagReason.NOT_A_BROWSER: "The request does not behave like a browser (HEAD, no User-Agent, "
                              "no Accept-Language, or no text/html in Accept).",
    FlagReason.BEFORE_DELIVERY: "The hit came before the message was delivered (or it was never delivered).",
    FlagReason.CAMPAIGN_INACTIVE: "The hit came after the campaign ended.",
}

__all__ = ["FlagReason", "ScannerNetwork", "classify", "scanner_network", "agent_reason", "default_networks", "load_networks",
           "explain", "LINK_PREVIEW_AGENTS", "SCANNER_AGENTS", "PAGE_SOURCES", "NETWORKS_FILE"]
