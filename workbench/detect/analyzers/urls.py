"""Link features: raw IP hosts, shorteners, free hosting and file sharing, risky TLDs,
credential forms, link text that shows another domain, open redirects, user@host URLs and
links hidden in QR codes."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from workbench.detect import reference
from workbench.detect.evidence import Context, Evidence, Findings, analyzer
from workbench.ingest.links import host_of
from workbench.ingest.message import ParsedMessage

_PASSWORD = re.compile(r"<input[^>]+type\s*=\s*[\"']?password", re.IGNORECASE)
_ANCHOR = re.compile(r"<a\s[^>]*href\s*=\s*[\"']([^\"']+)[\"'][^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_SHOWN_URL = re.compile(r"(?:https?://|www\.)([a-z0-9.-]+\.[a-z]{2,})", re.IGNORECASE)
# A parameter that carries a whole second URL: an open redirect through a trusted host.
_REDIRECT = re.compile(r"[?&][a-z_]*(?:url|redirect|redir|next|target|dest|destination|goto|link|return|continue|to|u|r|q)"
                       r"=(?:https?(?::|%3a)|%2f%2f|//)", re.IGNORECASE)


def _may_be_ip(host: str) -> bool:
    """Whether ``ipaddress.ip_address`` could accept *host*: IPv6 has a colon, IPv4 ends in a
    digit (testing first is cheaper than a raised ValueError for every host name)."""
    return ":" in host or host[-1:].isdigit()


def _host_features(host: str, url: str, ctx: Context, add: Callable[[str, str], None]) -> None:
    """Signals of the link's host alone (*url* is the first link to it, named in details)."""
    lists = reference.hosting()
    bare = host.strip("[]")
    if _may_be_ip(bare):
        try:
            ipaddress.ip_address(bare)
            add("url.ip_host", f"link to a raw IP address: {url[:120]}")
        except ValueError:
            pass
    if reference.in_list(host, lists["shorteners"]):
        add("url.shortener", f"shortened link hides its target: {url[:120]}")
    if reference.in_list(host, lists["free_hosting"]):
        add("url.free_hosting", f"link to a free hosting or form service: {host}")
    if reference.in_list(host, lists["file_sharing"]):
        add("url.file_sharing", f"link to a file-sharing service: {host}")
    suffix = reference.split(host)[2].rsplit(".", 1)[-1]
    if suffix in lists["suspicious_tlds"] and not reference.in_list(host, ctx.allow_domains):
        add("url.suspicious_tld", f"link to a .{suffix} domain: {host}")


@analyzer("url")
def link_features(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = Findings("url")
    add = out.add
    hosts: set[str] = set()  # a host seen before can only raise signals already raised: check it once

    for u in m.urls:
        host = host_of(u.url)
        if not host or ctx.is_org(host):
            continue
        if host not in hosts:
            hosts.add(host)
            _host_features(host, u.url, ctx, add)
        if u.location == "QRCode":
            add("url.qr_code", f"link hidden in a QR code image, out of reach of link scanning: {u.url[:120]}")
        if u.url.lower().startswith("http://") and u.location != "Attachment":
            add("url.plain_http", f"unencrypted link: {u.url[:120]}")
        authority = u.url.split("//", 1)[-1].split("/", 1)[0]
        if "@" in authority:
            add("url.userinfo", f"link hides its real host after an '@': {u.url[:120]}")
        if (redirect := _REDIRECT.search(u.url)) and not reference.in_list(host, ctx.allow_domains):
            add("url.redirect", f"link passes another URL through {host} ({redirect.group(0)[:30]}...): {u.url[:120]}")
    if _PASSWORD.search(m.html or ""):
        add("url.credential_form", "the message body contains a password field")
    for href, text in _ANCHOR.findall((m.html or "")[:300_000]):
        shown = _SHOWN_URL.search(re.sub(r"<[^>]+>", " ", text))
        target = host_of(href)
        if shown and target and reference.registrable(shown.group(1).lower()) != reference.registrable(target):
            add("url.text_mismatch", f"link text shows {shown.group(1)} but goes to {target}")
    return out
