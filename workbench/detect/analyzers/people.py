"""Who the message claims to be from: executives and brands in display names, Reply-To
elsewhere, free-mail senders, first contact."""

from __future__ import annotations

import re

from workbench.detect import reference
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.message import ParsedMessage

_WORD = re.compile(r"[a-z0-9]+")
_VALID_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{2,59})$")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


@analyzer("people")
def impersonation(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = []
    sender_domain = m.from_domain
    display = (m.from_display or "").strip()
    if display and not ctx.is_org(sender_domain):
        shown = _words(display)
        for person in ctx.protected_people:
            name = _words(person.display_name)
            if len(name) >= 2 and name <= shown:
                out.append(Evidence("people", "people.exec_display_name",
                                    f"display name {display!r} is {person.display_name} ({person.address}), sent from {m.from_address}"))
                break
        for brand, domains in reference.brands().items():
            if (len(brand) >= 4 and domains and brand in shown and brand not in reference.COMMON_WORD_BRANDS
                    and not reference.in_list(sender_domain, domains)):
                out.append(Evidence("people", "people.brand_display_name",
                                    f"display name {display!r} names {brand}, but the sender domain is {sender_domain}"))
                break
        if "@" in display:
            shown_addr = display.strip("'\" <>").lower()
            if "@" in shown_addr and shown_addr.rsplit("@", 1)[-1] != sender_domain:
                out.append(Evidence("people", "people.address_in_display_name",
                                    f"display name shows {shown_addr!r} but the message is from {m.from_address}"))
    if sender_domain and not ctx.is_org(sender_domain):
        from workbench.detect.analyzers.lookalike import skeleton

        said = skeleton(f"{display} {m.subject}".lower())
        for brand, domains in reference.brands().items():
            if len(brand) >= 5 and domains and brand not in reference.COMMON_WORD_BRANDS \
                    and re.search(rf"(?<![a-z]){brand}(?![a-z])", said) \
                    and not reference.in_list(sender_domain, domains):
                out.append(Evidence("people", "people.brand_mention",
                                    f"names {brand} in the sender name or subject, but is sent from {sender_domain}"))
                break
        _, label, suffix = reference.split(sender_domain)
        if suffix.rsplit(".", 1)[-1] in reference.hosting()["suspicious_tlds"]:
            out.append(Evidence("people", "people.sender_risky_tld", f"sender domain {sender_domain} is under .{suffix}"))
        if _random_label(label):
            out.append(Evidence("people", "people.random_sender_domain", f"sender domain {sender_domain} looks machine-generated"))
    mailing_list = bool(m.header("List-Id") or m.header("List-Post"))
    for reply in () if mailing_list else m.reply_to:  # lists set Reply-To to the list: that is normal
        reply_domain = reply.rsplit("@", 1)[-1]
        if sender_domain and reference.registrable(reply_domain) != reference.registrable(sender_domain):
            out.append(Evidence("people", "people.reply_to_mismatch",
                                f"Reply-To {reply} is not at the sender's domain {sender_domain}"))
            if reference.in_list(reply_domain, reference.hosting()["freemail"]):
                out.append(Evidence("people", "people.reply_to_freemail", f"Reply-To {reply} is a free-mail address"))
            break
    raw_from = " ".join(m.header("From"))
    if m.from_address is None and "@" in raw_from or (sender_domain and not _VALID_DOMAIN.match(sender_domain)):
        out.append(Evidence("people", "people.malformed_sender",
                            f"the From address is not a valid mail address ({raw_from.strip()[:80]!r}): no mail server would accept it"))
    if reference.in_list(sender_domain, reference.hosting()["freemail"]):
        out.append(Evidence("people", "people.freemail_sender", f"sent from a free-mail address ({m.from_address})"))
    if ctx.known_pairs and m.from_address and m.recipients:
        if not any((m.from_address, r) in ctx.known_pairs for r in m.recipients):
            out.append(Evidence("people", "people.first_contact", f"first message from {m.from_address} to these recipients"))
    return out


def _random_label(label: str) -> bool:
    """Labels like ``r96yj7pejg``: long, digits mixed into letters, few vowels."""
    if len(label) < 8 or "-" in label:
        return False
    digits = sum(c.isdigit() for c in label)
    letters = [c for c in label if c.isalpha()]
    vowels = sum(c in "aeiouy" for c in letters)
    switches = sum(a.isdigit() != b.isdigit() for a, b in zip(label, label[1:]))
    return (digits >= 2 and switches >= 3) or (len(letters) >= 8 and vowels / len(letters) < 0.2)
