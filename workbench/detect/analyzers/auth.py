"""Authentication results, spoofing of the organisation's own domains, and whether the From
domain itself is vouched for (aligned SPF or DKIM), plus a Date header that contradicts the
Received chain."""

from __future__ import annotations

import re

from workbench.detect import reference
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.message import ParsedMessage

_FAIL = {"SPF": ("fail", "softfail", "permerror"), "DKIM": ("fail",), "DMARC": ("fail",), "CompAuth": ("fail",)}
_RESULT = re.compile(r"\b(spf|dkim)\s*=\s*([a-z]+)\b(?:[^;]*?\b(?:smtp\.mailfrom|header\.d|header\.i)\s*=\s*@?([a-z0-9.-]+))?",
                     re.IGNORECASE)
_DKIM_NONE = re.compile(r"\bdkim\s*=\s*none\b", re.IGNORECASE)
_DAY = 86_400
# An X-Mailer that is one random token (no name, no version): set per message by a sending
# kit to defeat fingerprinting. Real mail programs name themselves and their version.
_TOKEN_MAILER = re.compile(r"^[A-Za-z0-9]{5,}$")
_MIXED = re.compile(r"\d|[a-z][A-Z]")
# Subject and From with raw 8-bit bytes instead of MIME encoded words: mail programs encode
# them (RFC 2047); sending scripts often do not.
_RAW_HEADER = re.compile(rb"^(subject|from):([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")
_BLANK_LINE = re.compile(rb"\n\r?\n")


@analyzer("auth")
def authentication(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = []
    for method, bad in _FAIL.items():
        value = m.auth.get(method, "none")
        if value in bad:
            out.append(Evidence("auth", f"auth.{method.lower()}_fail", f"{method}={value} (Authentication-Results)"))
    if ctx.is_org(m.from_domain) and not ctx.is_org(m.mail_from and m.mail_from.rsplit("@", 1)[-1]):
        if m.auth.get("DMARC") != "pass" and m.auth.get("SPF") != "pass":
            out.append(Evidence("auth", "auth.org_spoof",
                                f"From {m.from_address} is an organisation address, sent by {m.mail_from} without passing SPF or DMARC"))
    h = reference.headers(m)
    results = h.get("authentication-results")
    # Mailing lists re-send posts: they legitimately break the poster's DKIM and SPF alignment
    # (RFC 7960), and the results inside a list post are often the list's own inbound checks.
    if results and m.from_domain and not reference.mailing_list(m):
        out += _alignment(m, results[0])
    if skew := _date_skew(m):
        out.append(Evidence("auth", "auth.date_mismatch", skew))
    for mailer in h.get("x-mailer", ()):
        mailer = mailer.strip()
        if _TOKEN_MAILER.match(mailer) and (len(mailer) >= 12 or _MIXED.search(mailer)):
            out.append(Evidence("auth", "auth.random_mailer", f"X-Mailer is a random token ({mailer[:40]!r}), not a mail program"))
            break
    if name := _unencoded_header(m.raw):
        out.append(Evidence("auth", "auth.unencoded_header",
                            f"the {name} header carries raw 8-bit characters instead of MIME encoded words, as sending scripts write it"))
    if any(v.strip() == "<>" for v in h.get("return-path", ())) and not _is_report(m):
        out.append(Evidence("auth", "auth.null_sender",
                            "empty envelope sender (Return-Path <>) on a message that is not a delivery report: bounces go nowhere"))
    return out


def _alignment(m: ParsedMessage, header: str) -> list[Evidence]:
    """The receiving server's verdicts on the From domain: no DKIM signature at all, and neither
    SPF nor DKIM passing for a domain of the same organisation as the From address."""
    out = []
    passed = []
    dkim_seen = False
    for method, value, domain in _RESULT.findall(header):
        method, value = method.lower(), value.lower()
        dkim_seen |= method == "dkim" and value != "none"
        if value == "pass" and domain:
            passed.append(f"{method}={domain.lower()}")
    if not dkim_seen and _DKIM_NONE.search(header):
        out.append(Evidence("auth", "auth.no_dkim", "the message carries no DKIM signature (dkim=none)"))
    if m.auth.get("DMARC") == "pass" or m.auth.get("CompAuth") == "pass":
        return out
    own = reference.registrable(m.from_domain)
    if not any(reference.registrable(p.split("=", 1)[1]) == own for p in passed):
        shown = ", ".join(passed[:3]) or "nothing passed"
        out.append(Evidence("auth", "auth.from_not_authenticated",
                            f"neither SPF nor DKIM vouches for the From domain {m.from_domain} ({shown})"))
    return out


def _date_skew(m: ParsedMessage) -> str | None:
    """The Date header hours in the future, or days before, the first Received hop that stamped it."""
    if not m.date or "date" not in reference.headers(m):
        return None
    stamped = [h.time for h in m.received if h.time]
    if not stamped:
        return None
    received = stamped[-1]  # the oldest hop: closest to the sender
    delta = (m.date - received).total_seconds()
    if delta > 2 * 3600:
        return f"Date header is {delta / 3600:.0f} h after the message was received ({m.date:%Y-%m-%d %H:%M} vs {received:%Y-%m-%d %H:%M} UTC)"
    if delta < -3 * _DAY:
        return f"Date header is {-delta / _DAY:.0f} days before the message was received ({m.date:%Y-%m-%d} vs {received:%Y-%m-%d})"
    return None


def _is_report(m: ParsedMessage) -> bool:
    """Delivery and read reports legitimately come from the null sender."""
    kind = " ".join(reference.headers(m).get("content-type", ())).lower()
    sender = (m.from_address or "").split("@")[0]
    return "multipart/report" in kind or sender in ("mailer-daemon", "postmaster")


def _unencoded_header(raw: bytes) -> str | None:
    blank = _BLANK_LINE.search(raw, 0, 64_000)
    head = raw[:blank.start() if blank else 64_000]
    if head.isascii():
        return None
    for match in _RAW_HEADER.finditer(head):
        if _EIGHT_BIT.search(match.group(2)):
            return match.group(1).decode().capitalize()
    return None
