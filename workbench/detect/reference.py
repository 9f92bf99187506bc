"""Reference lists shipped with the package (brands, hosting services, free mail) and the
registrable-domain helper (tldextract with its bundled suffix list; never fetches)."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"


COMMON_WORD_BRANDS = frozenset({"apple", "chase", "outlook", "mailbox", "webmail", "ledger", "norton", "zoom", "booking",
                                "visa", "steam", "hermes", "kraken", "disney", "stripe", "venmo", "ups", "ameli", "uber"})


@cache
def brands() -> dict[str, frozenset[str]]:
    data = yaml.safe_load((DATA / "brands.yaml").read_text())
    return {name: frozenset(domains or []) for name, domains in data.items() if name != "common_words"}


@cache
def brand_domains() -> frozenset[str]:
    """Every domain any brand really uses."""
    return frozenset().union(*brands().values())


@cache
def hosting() -> dict[str, frozenset[str]]:
    data = yaml.safe_load((DATA / "hosting.yaml").read_text())
    return {name: frozenset(values) for name, values in data.items()}


@cache
def _extractor():
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled snapshot only


@lru_cache(maxsize=131_072)  # bounded: every link and sender host passes through here
def split(host: str) -> tuple[str, str, str]:
    """(subdomain, registrable label, public suffix) of a host name."""
    host = host.lower().strip(".")
    parts = _extractor()(host)
    if not parts.suffix and "." in host:  # a TLD the suffix list does not know (.test, .local, ...)
        head, _, suffix = host.rpartition(".")
        sub, _, label = head.rpartition(".")
        return sub, label, suffix
    return parts.subdomain, parts.domain, parts.suffix


def registrable(host: str | None) -> str | None:
    """``login.micros0ft.co.uk`` → ``micros0ft.co.uk``."""
    if not host:
        return None
    _, label, suffix = split(host)
    if not label:
        return host.lower()
    return f"{label}.{suffix}" if suffix else label


def in_list(host: str | None, names: frozenset[str]) -> bool:
    """True when *host* is one of *names* or a subdomain of one."""
    if not host:
        return False
    labels = host.lower().strip(".").split(".")
    return any(".".join(labels[i:]) in names for i in range(len(labels)))


_LIST_DOMAIN = re.compile(r"([a-z0-9-]+(?:\.[a-z0-9-]+)+)\s*>?\s*$", re.IGNORECASE)
_ADDRESS_DOMAIN = re.compile(r"@([a-z0-9.-]+)", re.IGNORECASE)


_LAST_INDEX: tuple = (None, {})


def headers(m) -> dict[str, list[str]]:
    """Lower-case header name → values of a parsed message, built once per message and shared
    by the analyzers (``ParsedMessage.header`` walks every header on each call)."""
    global _LAST_INDEX
    last = _LAST_INDEX
    if last[0] is m:
        return last[1]
    index: dict[str, list[str]] = {}
    for name, value in m.headers:
        index.setdefault(name.lower(), []).append(value)
    _LAST_INDEX = (m, index)
    return index


def mailing_list(m) -> bool:
    """True for a message re-sent by a mailing list: List-Id (or List-Post, X-BeenThere) names
    the list's domain, and the envelope sender, Sender or From is on that same domain. Bulk
    mailers and phishing kits often add a List-Id too, but one naming no domain of theirs."""
    h = headers(m)
    names = [match.group(1) for v in h.get("list-id", ()) if (match := _LIST_DOMAIN.search(v.strip()))]
    names += [match.group(1) for name in ("list-post", "x-beenthere") for v in h.get(name, ())
              if (match := _ADDRESS_DOMAIN.search(v))]
    if not names:
        return False
    lists = {registrable(n.lower()) for n in names}
    senders = [m.return_path, m.sender_address, m.from_address]
    return any(a and registrable(a.rsplit("@", 1)[-1]) in lists for a in senders)
