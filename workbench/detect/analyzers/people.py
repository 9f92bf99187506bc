"""Who the message claims to be from and to whom: executives and brands in display names,
Reply-To elsewhere, free-mail senders, first contact, forged or address-less From headers,
hidden recipients and the recipient's own address pasted into the subject."""

from __future__ import annotations

import re
from functools import cache

from workbench.detect import reference
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.message import ParsedMessage

_WORD = re.compile(r"[a-z0-9]+")
# Display names of a service rather than a person: "Billing Alert", "Customer Service Team".
_ROLE = re.compile(r"\b(team|service|services|support|notification|notifications|notice|alert|alerts|billing|customer|"
                   r"security|department|center|centre|admin|administrator|helpdesk|help desk|account|accounts|payment|"
                   r"payments|noreply|no-reply|update|updates|verification|mailbox|webmail|rewards?|delivery|shipping|"
                   r"member|membership|care)\b", re.IGNORECASE)
_NAME_WORD = re.compile(r"[a-z0-9]{3,}")
_VALID_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{2,59})$")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


@cache
def _brand_spellings() -> dict[str, str]:
    """Brand name and its look-alike skeleton → brand, for brands that are not everyday words."""
    from workbench.detect.analyzers.lookalike import skeleton

    out: dict[str, str] = {}
    for brand, domains in reference.brands().items():
        if domains and len(brand) >= 3 and brand not in reference.COMMON_WORD_BRANDS:
            out[brand] = brand
            out.setdefault(skeleton(brand), brand)
    return out


def named_brand(text: str) -> str | None:
    """The brand *text* names: a word, or adjacent words joined ("Bank of America", "D/H/L"),
    also after undoing look-alike letters ("PayPa1"). Joined words count for names of five
    letters or more, or when every part is a single letter."""
    from workbench.detect.analyzers.lookalike import skeleton

    spellings = _brand_spellings()
    low = text.lower()
    for words in (_WORD.findall(low), _WORD.findall(skeleton(low))):
        for i in range(len(words)):
            joined = ""
            for n, part in enumerate(words[i:i + 3], 1):  # one, two, then three words joined
                joined += part
                brand = spellings.get(joined)
                if brand and (n == 1 or len(brand) >= 5 or all(len(p) == 1 for p in words[i:i + n])):
                    return brand
    return None


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
        brand = named_brand(display)
        if brand and not reference.in_list(sender_domain, reference.brands()[brand]):
            out.append(Evidence("people", "people.brand_display_name",
                                f"display name {display!r} names {brand}, but the sender domain is {sender_domain}"))
        if _ROLE.search(display) and sender_domain:
            joined = sender_domain.replace("-", "")
            if not any(word in joined for word in _NAME_WORD.findall(display.lower())):
                out.append(Evidence("people", "people.role_name_unrelated",
                                    f"service-like sender name {display!r} shares no word with the sending domain {sender_domain}"))
        if "@" in display:
            shown_addr = display.strip("'\" <>").lower()
            if "@" in shown_addr and shown_addr.rsplit("@", 1)[-1] != sender_domain:
                out.append(Evidence("people", "people.address_in_display_name",
                                    f"display name shows {shown_addr!r} but the message is from {m.from_address}"))
    if sender_domain and not ctx.is_org(sender_domain):
        brand = named_brand(f"{display} \n {m.subject}")
        if brand and not reference.in_list(sender_domain, reference.brands()[brand]):
            out.append(Evidence("people", "people.brand_mention",
                                f"names {brand} in the sender name or subject, but is sent from {sender_domain}"))
        _, label, suffix = reference.split(sender_domain)
        if suffix.rsplit(".", 1)[-1] in reference.hosting()["suspicious_tlds"]:
            out.append(Evidence("people", "people.sender_risky_tld", f"sender domain {sender_domain} is under .{suffix}"))
        if reference.in_list(sender_domain, reference.hosting()["free_hosting"]):
            out.append(Evidence("people", "people.sender_free_hosting",
                                f"sent from {sender_domain}, a free hosting or trial-tenant domain anybody can send from"))
        if _random_label(label):
            out.append(Evidence("people", "people.random_sender_domain", f"sender domain {sender_domain} looks machine-generated"))
    mailing_list = reference.mailing_list(m)
    for reply in () if mailing_list else m.reply_to:  # lists set Reply-To to the list: that is normal
        reply_domain = reply.rsplit("@", 1)[-1]
        if sender_domain and reference.registrable(reply_domain) != reference.registrable(sender_domain):
            out.append(Evidence("people", "people.reply_to_mismatch",
                                f"Reply-To {reply} is not at the sender's domain {sender_domain}"))
            if reference.in_list(reply_domain, reference.hosting()["freemail"]):
                out.append(Evidence("people", "people.reply_to_freemail", f"Reply-To {reply} is a free-mail address"))
            break
    raw_from = " ".join(reference.headers(m).get("from", ())).strip()
    if m.from_address is None and "@" in raw_from or (sender_domain and not _VALID_DOMAIN.match(sender_domain)):
        out.append(Evidence("people", "people.malformed_sender",
                            f"the From address is not a valid mail address ({raw_from[:80]!r}): no mail server would accept it"))
    elif m.from_address is None and raw_from:
        out.append(Evidence("people", "people.malformed_sender",
                            f"the From header names no address at all ({raw_from[:80]!r}): replies can only go to the Reply-To"))
    if reference.in_list(sender_domain, reference.hosting()["freemail"]):
        out.append(Evidence("people", "people.freemail_sender", f"sent from a free-mail address ({m.from_address})"))
        if m.html.strip() and not m.text.strip():
            out.append(Evidence("people", "people.freemail_html_only",
                                f"HTML-only mail from a free-mail account ({m.from_address}): webmail sends a text part too, bulk tools do not"))
    if m.from_address and not display:
        out.append(Evidence("people", "people.no_display_name", f"the From header is a bare address ({m.from_address})"))
    if not mailing_list:
        out += _recipients(m)
    if ctx.known_pairs and m.from_address and m.recipients:
        if not any((m.from_address, r) in ctx.known_pairs for r in m.recipients):
            out.append(Evidence("people", "people.first_contact", f"first message from {m.from_address} to these recipients"))
    return out


def _recipients(m: ParsedMessage) -> list[Evidence]:
    """How the message addresses its recipients (list mail excepted: lists address the list)."""
    out = []
    if not m.to and not m.cc and m.received:  # delivered (a Received chain) yet addressed to nobody
        to = " ".join(reference.headers(m).get("to", ())).strip()
        out.append(Evidence("people", "people.hidden_recipients",
                            f"no recipient address in To or Cc ({to[:60]!r}): delivered by blind copy" if to
                            else "no To header: delivered by blind copy"))
    elif len({reference.registrable(a.rsplit("@", 1)[-1]) for a in m.to + m.cc}) >= 5:
        out.append(Evidence("people", "people.many_recipient_domains",
                            f"{len(m.to) + len(m.cc)} visible recipients at unrelated domains: a harvested address list"))
    subject = m.subject.lower()
    for address in m.to:
        if len(address) >= 6 and address in subject:
            out.append(Evidence("people", "people.recipient_in_subject",
                                f"the recipient's own address {address} is pasted into the subject (mail merge)"))
            break
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
