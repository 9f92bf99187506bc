"""Reference lists shipped with the package (brands, hosting services, free mail) and the
registrable-domain helper (tldextract with its bundled suffix list; never fetches)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "data"


COMMON_WORD_BRANDS = frozenset({"apple", "chase", "outlook", "mailbox", "webmail", "ledger", "norton", "zoom", "booking",
                                "visa", "steam", "hermes", "kraken", "disney", "stripe", "venmo"})


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


@cache
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
