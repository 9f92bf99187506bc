"""Simulation payloads: the message a technique sends, its validation, and its rendering (mdo-reference §5.4).

A payload is a frozen value; :func:`from_dict` validates every field (one-line
:class:`~workbench.errors.InputError` naming the field and the fix) and :func:`load_library`
reads the shipped ("global") payloads. :func:`render` turns a payload into the MIME message one
recipient receives: placeholders substituted (HTML-escaped in the HTML part), the open pixel,
the QR code, the attachments and the simulation header carrying the recipient's token.

Placeholders: ``{{name}} {{first_name}} {{email}} {{department}} {{title}} {{manager}}
{{company}} {{date}}`` and, in the body only, ``{{link}}`` (the tracking click address; the
tracking server decides where it leads for the technique) and ``{{qr}}`` (a QR code of the QR
address: an inline image in HTML, the address itself in text).

>>> p = load_library()[0]
>>> msg = render_preview(p)
>>> msg[SIMULATION_HEADER]
'preview'
>>> placeholders("Hi {{first_name}}, see {{ link }}")
('first_name', 'link')
"""

from __future__ import annotations

import hashlib
import html as html_lib
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import cache
from importlib import resources
from typing import Any

import segno

from workbench.errors import InputError
from workbench.simulator import attachments
from workbench.simulator.attachments import AttachmentSpec
from workbench.simulator.model import SIMULATION_HEADER, Links, Recipient, Technique

PLACEHOLDERS = ("name", "first_name", "email", "department", "title", "manager", "company", "link", "qr",
                "date")
BODY_ONLY = ("link", "qr")
COMPLEXITIES = ("Low", "Medium", "High")
SOURCES = ("global", "tenant")
#: Techniques whose message must carry {{link}} or {{qr}}: the click is the test.
NEEDS_LINK = (Technique.CREDENTIAL_HARVEST, Technique.LINK_TO_MALWARE, Technique.DRIVE_BY_URL,
              Technique.OAUTH_CONSENT_GRANT)
#: The attachment purpose each attachment technique needs.
NEEDS_ATTACHMENT = {Technique.MALWARE_ATTACHMENT: "beacon", Technique.LINK_IN_ATTACHMENT: "link",
                    Technique.LINK_TO_MALWARE: "download"}
QR_CID = "qr@workbench"
QR_IMG = f'<img src="cid:{QR_CID}" alt="QR code">'

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Z]{2})?$")
_LIBRARY = "library/payloads"


@dataclass(frozen=True)
class Payload:
    """One simulation message (see the module docstring for placeholders)."""

    id: str
    name: str
    technique: Technique
    subject: str
    sender_name: str
    sender_address: str
    html: str
    text: str
    attachments: tuple[AttachmentSpec, ...] = ()
    theme: str = "Other"
    brand: str = "Other"
    complexity: str = "Medium"
    language: str = "en"
    indicators: tuple[str, ...] = ()
    login_page: str = "generic"
    app_name: str = ""
    scopes: tuple[str, ...] = ()
    description: str = ""
    source: str = "tenant"
    author: str = ""

    @property
    def sender(self) -> str:
        """``Name <address>`` as the message shows it."""
        return str(Address(display_name=self.sender_name, addr_spec=self.sender_address))

    @property
    def uses_qr(self) -> bool:
        return "qr" in placeholders(self.html) + placeholders(self.text)

    @property
    def download(self) -> AttachmentSpec | None:
        """The harmless file a link-to-malware payload's link serves (not attached to the message)."""
        return next((a for a in self.attachments if a.purpose == "download"), None)

    @property
    def attached(self) -> tuple[AttachmentSpec, ...]:
        """The documents attached to the message itself."""
        return tuple(a for a in self.attachments if a.purpose != "download")


def is_address(text: str) -> bool:
    """Whether *text* looks like a plain email address (``name@domain.tld``).

    >>> is_address("billing@supplier.example"), is_address("billing at supplier")
    (True, False)
    """
    return bool(_ADDRESS.match(text))


def placeholders(text: str) -> tuple[str, ...]:
    """The placeholder names used in *text*, in order of first use."""
    return tuple(dict.fromkeys(m.group(1) for m in _PLACEHOLDER.finditer(text)))


# --- validation ----------------------------------------------------------------------------------

_FIELDS = tuple(Payload.__dataclass_fields__)
_REQUIRED = ("id", "name", "technique", "subject", "sender_name", "sender_address", "html", "text")


def from_dict(d: Mapping[str, Any]) -> Payload:
    """A validated :class:`Payload` from its JSON form (:func:`to_dict`).

    >>> from_dict({"id": "x"})
    Traceback (most recent call last):
    ...
    workbench.errors.InputError: payload 'x': name is missing; give the payload a name
    """
    if not isinstance(d, Mapping):
        raise InputError(f"payload must be a JSON object, not {type(d).__name__}; see payloads.to_dict")
    pid = d.get("id")
    where = f"payload {pid!r}" if isinstance(pid, str) and pid else "payload"

    def fail(field: str, problem: str) -> InputError:
        return InputError(f"{where}: {field} {problem}")

    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        raise fail(unknown[0], f"is not a payload field; use only {', '.join(_FIELDS)}")
    for key in _REQUIRED:
        if key not in d or d[key] is None or (isinstance(d[key], str) and not d[key].strip()):
            raise fail(key, f"is missing; give the payload {'an' if key[0] in 'aeiou' else 'a'} "
                            f"{key.replace('_', ' ')}")

    def string(key: str, default: str = "") -> str:
        value = d.get(key, default)
        if not isinstance(value, str):
            raise fail(key, f"is a {type(value).__name__}; use a string")
        if "\n" in value and key not in ("html", "text", "description"):
            raise fail(key, "has line breaks; keep it on one line")
        return value

    def strings(key: str) -> tuple[str, ...]:
        value = d.get(key, [])
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(key, "must be a list of non-empty strings; fix or remove the empty ones")
        return tuple(v.strip() for v in value)

    if not _SLUG.match(string("id")):
        raise fail("id", "is not a slug; use lower-case letters, digits and hyphens, e.g. 'invoice-overdue'")
    try:
        technique = Technique.parse(string("technique"))
    except InputError as e:
        raise fail("technique", str(e).replace("unknown technique", "is unknown:", 1)) from None
    address = string("sender_address").strip()
    if not _ADDRESS.match(address):
        raise fail("sender_address", f"{address!r} is not an email address; use name@domain.example")
    complexity = string("complexity", "Medium")
    if complexity not in COMPLEXITIES:
        raise fail("complexity", f"{complexity!r} is unknown; use one of {', '.join(COMPLEXITIES)}")
    language = string("language", "en")
    if not _LANGUAGE.match(language):
        raise fail("language", f"{language!r} is not a language code; use e.g. en, de, fr or pt-BR")
    source = string("source", "tenant")
    if source not in SOURCES:
        raise fail("source", f"{source!r} is unknown; use global or tenant")
    login_page = string("login_page", "generic").strip() or "generic"
    if not _SLUG.match(login_page):
        raise fail("login_page", f"{login_page!r} is not a template id; use a slug, e.g. 'generic'")

    subject, html, text = string("subject"), string("html"), string("text")
    for key, value in (("subject", subject), ("html", html), ("text", text)):
        for ph in placeholders(value):
            if ph not in PLACEHOLDERS:
                raise fail(key, f"uses unknown placeholder {{{{{ph}}}}}; use one of "
                                f"{', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}")
            if key == "subject" and ph in BODY_ONLY:
                raise fail(key, f"cannot use {{{{{ph}}}}}; put links and QR codes in the body")
    used = set(placeholders(html)) | set(placeholders(text))
    if technique in NEEDS_LINK and not used & set(BODY_ONLY):
        raise fail("html", f"of a {technique.label} payload needs {{{{link}}}} or {{{{qr}}}}; "
                           "add the link the recipient is tested with")

    specs = _attachments(d.get("attachments", []), fail)
    need = NEEDS_ATTACHMENT.get(technique)
    if need and not any(a.purpose == need for a in specs):
        raise fail("attachments", f"of a {technique.label} payload need a {need!r} attachment; add one")
    if technique is not Technique.LINK_TO_MALWARE and any(a.purpose == "download" for a in specs):
        raise fail("attachments", "may hold a 'download' file only for a Link to Malware payload; remove it")

    app_name, scopes = string("app_name").strip(), strings("scopes")
    if technique is Technique.OAUTH_CONSENT_GRANT:
        if not app_name:
            raise fail("app_name", "is missing; an OAuth Consent Grant payload names the app asking for consent")
        if not scopes:
            raise fail("scopes", "are missing; list what the app asks for, e.g. 'Read your mail'")
    elif app_name or scopes:
        raise fail("app_name" if app_name else "scopes",
                   "must be empty except in OAuth Consent Grant payloads; remove it")

    return Payload(
        id=string("id"), name=string("name").strip(), technique=technique, subject=subject,
        sender_name=string("sender_name").strip(), sender_address=address, html=html, text=text,
        attachments=specs, theme=string("theme", "Other").strip() or "Other",
        brand=string("brand", "Other").strip() or "Other", complexity=complexity, language=language,
        indicators=strings("indicators"), login_page=login_page, app_name=app_name, scopes=scopes,
        description=string("description").strip(), source=source, author=string("author").strip(),
    )


def _attachments(value: Any, fail: Callable[[str, str], InputError]) -> tuple[AttachmentSpec, ...]:
    if not isinstance(value, list | tuple):
        raise fail("attachments", "is not a list; use a list of {kind, file_name, purpose} objects")
    specs = []
    for i, a in enumerate(value):
        field = f"attachments[{i}]"
        if not isinstance(a, Mapping) or set(a) - {"kind", "file_name", "purpose"}:
            raise fail(field, "is not a valid attachment; use an object with only kind, file_name and purpose")
        kind, name, purpose = a.get("kind"), a.get("file_name"), a.get("purpose")
        if kind not in attachments.KINDS:
            raise fail(field, f"kind {kind!r} is unknown; use one of {', '.join(attachments.KINDS)}")
        if purpose not in attachments.PURPOSES:
            raise fail(field, f"purpose {purpose!r} is unknown; use one of {', '.join(attachments.PURPOSES)}")
        if purpose not in attachments.SUPPORTED[kind]:
            raise fail(field, f"a {kind} file cannot be a {purpose}; use {' or '.join(attachments.SUPPORTED[kind])}")
        if not isinstance(name, str) or not name.strip() or any(c in name for c in '/\\\r\n"'):
            raise fail(field, "file_name is not a plain file name; use e.g. 'Invoice 2291.pdf' (no folders or quotes)")
        if not name.lower().endswith(attachments.EXTENSIONS[kind]):
            ends = " or ".join(attachments.EXTENSIONS[kind])
            raise fail(field, f"file_name {name!r} does not match the kind; end it with {ends}")
        specs.append(AttachmentSpec(kind, name.strip(), purpose))
    return tuple(specs)


def to_dict(p: Payload) -> dict[str, Any]:
    """The JSON form of *p* (``from_dict(to_dict(p)) == p``)."""
    return {
        "id": p.id, "name": p.name, "technique": p.technique.value, "subject": p.subject,
        "sender_name": p.sender_name, "sender_address": p.sender_address, "html": p.html, "text": p.text,
        "attachments": [{"kind": a.kind, "file_name": a.file_name, "purpose": a.purpose} for a in p.attachments],
        "theme": p.theme, "brand": p.brand, "complexity": p.complexity, "language": p.language,
        "indicators": list(p.indicators), "login_page": p.login_page, "app_name": p.app_name,
        "scopes": list(p.scopes), "description": p.description, "source": p.source, "author": p.author,
    }


@cache
def load_library() -> tuple[Payload, ...]:
    """The shipped payloads (``library/payloads/*.json``), sorted by id."""
    folder = resources.files(__package__).joinpath(_LIBRARY)
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            try:
                found.append(from_dict(json.loads(entry.read_text(encoding="utf-8"))))
            except (InputError, ValueError) as e:
                raise InputError(f"{_LIBRARY}/{entry.name}: {e}") from None
    return tuple(sorted(found, key=lambda p: p.id))


def by_id(payload_id: str) -> Payload:
    """The library payload *payload_id*."""
    from workbench.errors import NotFound

    for p in load_library():
        if p.id == payload_id:
            return p
    raise NotFound(f"unknown payload {payload_id!r}; see payloads.load_library() for the ids")


# --- rendering -----------------------------------------------------------------------------------

SAMPLE_RECIPIENT = Recipient(
    email="alex.morgan@contoso.example", display_name="Alex Morgan", given_name="Alex", department="Finance",
    title="Accounts Payable Specialist", manager="Jordan Lee", company="Contoso", city="Lyon", country="FR")
SAMPLE_LINKS = Links(base="http://127.0.0.1:8899", token="preview")


def values(recipient: Recipient, links: Links, when: datetime) -> dict[str, str]:
    """What each placeholder stands for (``qr`` is the QR address; HTML replaces it by the image)."""
    name = recipient.display_name.strip() or recipient.email.split("@")[0]
    first = recipient.given_name.strip() or (name.split() or [name])[0]
    return {"name": name, "first_name": first, "email": recipient.email, "department": recipient.department,
            "title": recipient.title, "manager": recipient.manager, "company": recipient.company,
            "link": links.click, "qr": links.qr, "date": when.date().isoformat()}


def substitute(template: str, vals: Mapping[str, str], *, html: bool) -> str:
    """*template* with its placeholders replaced (HTML-escaped when *html*; ``{{qr}}`` the inline image).

    >>> substitute("Hi {{name}}", {"name": "<b>Al</b>"}, html=True)
    'Hi &lt;b&gt;Al&lt;/b&gt;'
    """
    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        if html and key == "qr":
            return QR_IMG
        value = vals[key]
        return html_lib.escape(value, quote=True) if html else value

    return _PLACEHOLDER.sub(one, template)


def qr_png(url: str) -> bytes:
    """A PNG of the QR code for *url* (segno, error correction M)."""
    buf = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
    return buf.getvalue()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def render(payload: Payload, recipient: Recipient, links: Links, *, when: datetime | None = None) -> EmailMessage:
    """The message *recipient* receives for *payload* (see the module docstring)."""
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    vals = values(recipient, links, when)
    msg = EmailMessage()
    msg["From"] = Address(display_name=payload.sender_name, addr_spec=payload.sender_address)
    msg["To"] = Address(display_name=_one_line(recipient.display_name), addr_spec=recipient.email)
    msg["Subject"] = _one_line(substitute(payload.subject, {k: _one_line(v) for k, v in vals.items()}, html=False))
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain=payload.sender_address.rsplit("@", 1)[1])
    msg[SIMULATION_HEADER] = links.token
    msg.set_content(substitute(payload.text, vals, html=False))
    body = substitute(payload.html, vals, html=True)
    pixel = f'<img src="{html_lib.escape(links.pixel)}" width="1" height="1" alt="">'
    close = body.lower().rfind("</body>")
    body = body[:close] + pixel + body[close:] if close >= 0 else body + pixel
    msg.add_alternative(body, subtype="html")
    if "qr" in placeholders(payload.html):
        html_part = msg.get_payload()[1]
        html_part.add_related(qr_png(links.qr), "image", "png", cid=f"<{QR_CID}>", disposition="inline",
                              filename="qr.png")
    for spec in payload.attached:
        name, mime, data = attachments.build(spec, links)
        maintype, subtype = mime.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    _fix_boundaries(msg, f"{payload.id}/{links.token}")
    return msg


def _fix_boundaries(msg: EmailMessage, seed: str) -> None:
    """Deterministic MIME boundaries, so the same inputs give the same bytes (but Message-ID)."""
    for i, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary("=_wb_" + hashlib.sha256(f"{seed}#{i}".encode()).hexdigest()[:32])


def render_preview(payload: Payload, *, when: datetime | None = None) -> EmailMessage:
    """*payload* rendered for a sample recipient and sample links (previews, "send a test")."""
    return render(payload, SAMPLE_RECIPIENT, SAMPLE_LINKS, when=when)


__all__ = ["AttachmentSpec", "Payload", "PLACEHOLDERS", "from_dict", "to_dict", "load_library", "by_id",
           "is_address", "placeholders", "substitute", "values", "qr_png", "render", "render_preview",
           "SAMPLE_RECIPIENT", "SAMPLE_LINKS", "SIMULATION_HEADER"]
