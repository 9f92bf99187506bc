"""Lookalike domains of the organisation and of brands: edit distance, homoglyphs, punycode,
brand names with added words."""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from workbench.detect import reference
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.links import host_of
from workbench.ingest.message import ParsedMessage

_DIGITS = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"})


@lru_cache(maxsize=65_536)  # bounded: display names and subjects pass through here too
def skeleton(label: str) -> str:
    """A label with common visual substitutions undone (rn→m, vv→w, digits→letters, confusables→Latin)."""
    from confusable_homoglyphs import confusables

    out = []
    for ch in label.lower():
        if ord(ch) > 127:
            found = confusables.is_confusable(ch, preferred_aliases=["latin"], greedy=False)
            if found:
                latin = [h["c"] for h in found[0]["homoglyphs"] if h["c"].isascii()]
                ch = latin[0] if latin else ch
        out.append(ch)
    text = "".join(out).translate(_DIGITS)
    return text.replace("rn", "m").replace("vv", "w").replace("cl", "d")


def _decode(label: str) -> str:
    if label.startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            return label
    return label


def resemblance(host: str, ctx: Context) -> str | None:
    """What *host* imitates ("the organisation's fabrikam.com", "the brand docusign"), or None."""
    registrable = reference.registrable(host) or host
    if ctx.is_org(host) or reference.in_list(host, ctx.allow_domains):
        return None
    label = _decode(reference.split(host)[1] or registrable)
    skel = skeleton(label)
    for org in ctx.org_domains:
        org_label = reference.split(org)[1] or org
        if label == org_label:
            return f"the organisation's domain {org} (same name, other suffix)"
        if len(org_label) >= 5 and (skel == skeleton(org_label) or Levenshtein.distance(label, org_label) == 1
                                    or (org_label in label and len(label) > len(org_label))):
            return f"the organisation's domain {org}"
    return _brand_resemblance(host, label, skel)


def imitates(host: str, target: str) -> bool:
    """True when *host* looks like the domain *target* without being it (or its subdomain):
    same name under another suffix, homoglyphs, one character off, or the name with words added.

    >>> imitates("rnicrosoft.com", "microsoft.com"), imitates("microsoft-login.net", "microsoft.com")
    (True, True)
    >>> imitates("login.microsoft.com", "microsoft.com"), imitates("contoso.com", "microsoft.com")
    (False, False)
    """
    host, target = host.lower().strip("."), target.lower().strip(".")
    if not host or not target or host == target or host.endswith("." + target):
        return False
    label = _decode(reference.split(host)[1] or (reference.registrable(host) or host))
    wanted = reference.split(target)[1] or target
    if label == wanted:
        return True
    skel = skeleton(label)
    return skel == skeleton(wanted) or (len(wanted) >= 5 and (Levenshtein.distance(label, wanted) == 1
                                                              or wanted in skel))


@lru_cache(maxsize=65_536)
def _brand_resemblance(host: str, label: str, skel: str) -> str | None:
    """The brand part of :func:`resemblance` (independent of the organisation, so cached)."""
    if reference.in_list(host, reference.brand_domains()):
        return None
    for brand, domains in reference.brands().items():
        if len(brand) < 4 or not domains:
            continue
        if skel == brand and label != brand:
            return f"the brand {brand} (homoglyphs)"
        if label != brand and len(brand) >= 6 and Levenshtein.distance(skel, brand) == 1:
            return f"the brand {brand} (one character off)"
        if brand in skel and skel != brand and len(brand) >= 5 and brand not in reference.COMMON_WORD_BRANDS:
            return f"the brand {brand} (brand name with added words)"
    return None


@analyzer("lookalike")
def lookalikes(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = []
    for what, host in (("sender", m.from_domain), ("envelope sender", m.mail_from and m.mail_from.rsplit("@", 1)[-1])):
        if host and (why := resemblance(host, ctx)):
            out.append(Evidence("lookalike", "lookalike.sender_domain", f"{what} domain {host} imitates {why}"))
            break
    seen = set()
    for u in m.urls:
        host = host_of(u.url)
        if not host or host in seen:
            continue
        seen.add(host)
        if host.startswith("xn--") or ".xn--" in host:
            out.append(Evidence("lookalike", "lookalike.punycode", f"link host {host} is an internationalised (punycode) name"))
        if why := resemblance(host, ctx):
            out.append(Evidence("lookalike", "lookalike.url_domain", f"link to {host} imitates {why}"))
    return out
