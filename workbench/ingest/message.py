"""Parse one raw message into the facts ingestion and detection need.

``parse(raw)`` reads RFC 5322 bytes defensively (the email package's compat32 policy, which
records defects instead of raising), follows forwarded or user-reported mail into the
attached original (that is the message analysed), opens TNEF ``winmail.dat``, and collects
addresses, the Received chain and sender IP, authentication results, decoded subject, text,
HTML, URLs with their location, and attachment facts. It raises :class:`ParseError` only
for input that is not a message at all (empty, too large, no headers).

>>> m = parse(b"From: Ann <ann@contoso.test>\\r\\nTo: bob@fabrikam.test\\r\\nSubject: =?utf-8?q?Caf=C3=A9?=\\r\\n\\r\\nsee https://x.test/a\\r\\n")
>>> m.from_address, m.subject, [u.url for u in m.urls]
('ann@contoso.test', 'Café', ['https://x.test/a'])
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import quopri
import hashlib
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property, lru_cache
from email import quoprimime
from email.header import decode_header, make_header
from email.message import Message

from workbench.enums import UrlLocation
from workbench.errors import InputError
from workbench.ingest import files, headers as hdr, links, qr

MAX_BYTES = 50 * 2**20
MAX_TEXT = 500_000
MAX_PARTS = 500
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NMID_HEADER = "X-MS-Exchange-Organization-Network-Message-Id"
_NAMESPACE = uuid.UUID("6f2b1c5e-0d43-4c1a-9a51-2f7e6c0b9d10")


class ParseError(InputError):
    """The input is not a message (empty, too large, no header block)."""


@dataclass(frozen=True)
class FoundUrl:
    url: str
    location: str  # UrlLocation value


@dataclass(frozen=True)
class ParsedMessage:
    network_message_id: str
    internet_message_id: str | None
    date: datetime | None
    subject: str
    from_address: str | None
    from_display: str
    sender_address: str | None
    reply_to: tuple[str, ...]
    return_path: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    recipients: tuple[str, ...]
    received: tuple[hdr.Hop, ...]
    received_headers: tuple[str, ...]
    auth: dict[str, str]
    text: str
    html: str
    urls: tuple[FoundUrl, ...]
    attachments: tuple[files.FileFacts, ...]
    headers: tuple[tuple[str, str], ...]
    size: int
    raw: bytes = field(repr=False)
    defects: tuple[str, ...] = ()
    reported_by: str | None = None  # the wrapper's sender when the original was attached
    reported_at: datetime | None = None  # the wrapper's Date: when it was reported
    language: str | None = None

    @property
    def from_domain(self) -> str | None:
        return hdr.domain_of(self.from_address)

    @property
    def mail_from(self) -> str | None:
        """Envelope sender: Return-Path, else the From address."""
        return self.return_path or self.from_address

    def header(self, name: str) -> list[str]:
        return list(self._header_index.get(name.lower(), ()))

    @cached_property
    def _header_index(self) -> dict[str, list[str]]:
        """Header values by lower-case name, built once (analyzers ask for many headers)."""
        index: dict[str, list[str]] = {}
        for k, v in self.headers:
            index.setdefault(k.lower(), []).append(v)
        return index

    def sender_ip(self, org_domains: tuple[str, ...] = ()) -> str | None:
        return hdr.first_outside_ip(self.received, org_domains)  # the chain is parsed already


def decode(value: str | None) -> str:
    """A header value with RFC 2047 words decoded; undecodable input is kept as is."""
    if value is None:
        return ""
    value = str(value)
    if "=?" not in value:  # no encoded words: nothing to decode (most headers)
        return _valid(value)
    return _decode_words(value) if len(value) <= 4096 else _decode_words.__wrapped__(value)


@lru_cache(maxsize=1024)  # a message's From and Subject are decoded more than once
def _decode_words(value: str) -> str:
    text = _utf8_words(value)
    if text is None:
        try:
            text = str(make_header(decode_header(value)))
        except (LookupError, UnicodeError, ValueError, TypeError, AssertionError, email.errors.MessageError):
            text = str(value)
    return _valid(text)


# An encoded word in UTF-8: base64 ("B"), or quoted-printable ("Q") of printable ASCII but "?".
_UTF8_WORD = r"=\?[uU][tT][fF]-8\?(?:[bB]\?([A-Za-z0-9+/=]*)|[qQ]\?([!->@-~]*))\?="
_UTF8_WORDS = re.compile(rf"[ \t\r\n]*{_UTF8_WORD}(?:[ \t\r\n]*{_UTF8_WORD})*")
_UTF8_WORD_PARTS = re.compile(_UTF8_WORD)


def _utf8_words(value: str) -> str | None:
    """``str(make_header(decode_header(value)))`` when *value* is only UTF-8 encoded words and
    folding white space, else None. Exchange's 5 KB X-Microsoft-Antispam-Message-Info is 70 such
    words, on which the generic decoder takes 0.2 ms. Words of one charset form one run: their
    bytes are joined, then decoded (white space between encoded words is dropped)."""
    if not _UTF8_WORDS.fullmatch(value):
        return None
    try:
        return b"".join(_q_bytes(quoted) if quoted else _b_bytes(b64)
                        for b64, quoted in _UTF8_WORD_PARTS.findall(value)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _b_bytes(b64: str) -> bytes:
    """A "B" word's bytes; ``decode_header`` adds missing padding."""
    missing = len(b64) % 4
    return binascii.a2b_base64(b64 + "==="[:4 - missing] if missing else b64)


def _q_bytes(quoted: str) -> bytes:
    """A "Q" word's bytes, as ``decode_header`` makes them."""
    return bytes(quoprimime.header_decode(quoted), "raw-unicode-escape")


def _valid(text: str) -> str:
    """Undo the surrogate escapes compat32 uses for raw 8-bit header bytes (as UTF-8, else U+FFFD)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _text_of(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except (AssertionError, ValueError, TypeError, LookupError):
        payload = None
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:MAX_TEXT].decode(charset, "replace")
    except (LookupError, TypeError):
        return payload[:MAX_TEXT].decode("latin-1")


def _bytes_of(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (AssertionError, ValueError, TypeError, LookupError):
        return b""
    return payload if isinstance(payload, bytes) else b""


def _message_bytes(part: Message) -> bytes | None:
    """The bytes of an attached message/rfc822 part."""
    inner = part.get_payload()
    cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte in ("base64", "quoted-printable") and isinstance(inner, list) and inner:
        # Not allowed by RFC 2046, but some clients encode attached messages anyway.
        text = inner[0].as_string() if isinstance(inner[0], Message) else str(inner[0])
        try:
            return base64.b64decode(text) if cte == "base64" else quopri.decodestring(text.encode("latin-1", "replace"))
        except (ValueError, TypeError):
            return None
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        for render in (lambda m: m.as_bytes(), lambda m: m.as_string().encode("utf-8", "surrogateescape")):
            try:
                return render(inner[0])
            except (UnicodeError, LookupError, ValueError, TypeError, KeyError, AttributeError):
                continue
    payload = _bytes_of(part)
    return payload or None


def _tnef(data: bytes) -> list[tuple[str, bytes]]:
    try:
        from tnefparse import TNEF

        tnef = TNEF(data)
        return [(a.long_filename() or a.name or "unnamed", bytes(a.data or b"")) for a in tnef.attachments]
    except Exception:  # noqa: BLE001 - a hostile winmail.dat must not stop the batch
        return []


def _walk(msg: Message, defects: list[str]):
    """Leaf parts, bounded; message/rfc822 parts are yielded, not entered."""
    stack = [msg]
    count = 0
    while stack:
        part = stack.pop()
        count += 1
        if count > MAX_PARTS:
            defects.append(f"more than {MAX_PARTS} MIME parts; the rest were skipped")
            return
        if part.get_content_maintype() == "multipart":
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, Message)]))
            continue
        yield part


def network_message_id(msg: Message, raw: bytes) -> str:
    """The Exchange NetworkMessageId when present, else a stable id derived from the bytes."""
    value = (msg.get(_NMID_HEADER) or "").strip()
    if _GUID.match(value):
        return value.lower()
    return str(uuid.uuid5(_NAMESPACE, hashlib.sha256(raw).hexdigest()))


def parse(raw: bytes, *, follow_reported: bool = True, language: bool = True) -> ParsedMessage:
    """Parse RFC 5322 bytes; see the module docstring. Raises only :class:`ParseError`."""
    try:
        return _parse(raw, follow_reported=follow_reported, language=language)
    except ParseError:
        raise
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - the contract: hostile input never escapes
        raise ParseError(f"unparseable message ({type(exc).__name__}: {str(exc)[:100]})") from None


def _parse(raw: bytes, *, follow_reported: bool, language: bool) -> ParsedMessage:
    if not raw or not raw.strip():
        raise ParseError("empty file: nothing to parse; check the export")
    if len(raw) > MAX_BYTES:
        raise ParseError(f"message of {len(raw):,} bytes is over the {MAX_BYTES // 2**20} MB limit; split or skip it")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except (RecursionError, MemoryError, ValueError, TypeError) as exc:
        raise ParseError(f"unreadable MIME structure ({type(exc).__name__}); the file is kept in dead letters") from None
    if not msg.keys():
        raise ParseError("no header block: this is not an RFC 5322 message")
    defects = [type(d).__name__ for d in msg.defects][:20]

    parts = list(_walk(msg, defects))
    if follow_reported:
        for part in parts:
            if part.get_content_type() == "message/rfc822":
                inner = _message_bytes(part)
                if inner and inner.strip() and inner != raw:
                    try:
                        reported = parse(inner, follow_reported=False, language=language)
                    except ParseError:
                        break
                    outer_from = hdr.addresses([decode(msg.get("From"))])
                    return replace(reported, reported_by=outer_from[0][1] if outer_from else None,
                                   reported_at=hdr.message_date(decode(msg.get("Date")) or None, []),
                                   defects=reported.defects + ("analysed the attached original message",))
                break

    texts, htmls, attachments, inline_qr = [], [], [], []
    for part in parts:
        ctype = part.get_content_type()
        disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        name = part.get_filename()
        name = decode(name) if name else None
        if ctype == "message/rfc822":
            inner = _message_bytes(part) or b""
            attachments.append(files.inspect(name or "attached-message.eml", inner))
            continue
        if ctype == "application/ms-tnef" or (name or "").lower() == "winmail.dat":
            for tnef_name, data in _tnef(_bytes_of(part)):
                attachments.append(files.inspect(tnef_name, data))
            continue
        if disposition != "attachment" and not name and ctype in ("text/plain", "text/html"):
            (htmls if ctype == "text/html" else texts).append(_text_of(part))
            continue
        if disposition == "attachment" or name or part.get_content_maintype() in ("application", "audio", "video"):
            attachments.append(files.inspect(name, _bytes_of(part)))
        elif part.get_content_maintype() == "image":  # an unnamed inline picture: only its QR codes matter
            inline_qr += qr.urls(_bytes_of(part))

    text, html = "\n".join(texts)[:MAX_TEXT], "\n".join(htmls)[:MAX_TEXT]
    html_links, html_text = links.html_parts(html) if html else ([], "")
    subject = decode(msg.get("Subject")).replace("\r", "").replace("\n", " ")[:2000]
    urls: dict[str, str] = {}
    for url in links.text_urls(subject):
        urls.setdefault(url, UrlLocation.SUBJECT.value)
    for url in links.text_urls(text) + html_links:
        urls.setdefault(url, UrlLocation.BODY.value)
    for facts in attachments:
        for f in facts.walk():
            for url in f.urls:
                urls.setdefault(url, UrlLocation.ATTACHMENT.value)
    for url in inline_qr + [u for facts in attachments for f in facts.walk() for u in f.qr_urls]:
        urls.setdefault(url, UrlLocation.QR_CODE.value)

    items = msg.items()
    header_pairs = tuple((k, decode(v)[:8000]) for k, v in items[:400])
    # msg.get / msg.get_all scan every header per call: index them once (same values, same order)
    fetched: dict[str, list] = {}
    for k, v in items:
        fetched.setdefault(k.lower(), []).append(v)

    def get(name: str):
        values = fetched.get(name.lower())
        return values[0] if values else None

    def get_all(name: str) -> list:
        return fetched.get(name.lower(), [])

    received_headers = tuple(v for k, v in header_pairs if k.lower() == "received")
    hops = tuple(hdr.received_chain(list(received_headers)))
    from_ = hdr.addresses([decode(get("From"))])
    sender = hdr.addresses([decode(get("Sender"))])
    to = tuple(a for _, a in hdr.addresses([decode(v) for v in get_all("To")]))
    cc = tuple(a for _, a in hdr.addresses([decode(v) for v in get_all("Cc")]))
    delivered = tuple(a for _, a in hdr.addresses([decode(v) for v in get_all("Delivered-To") + get_all("X-Original-To")]))
    return_path = hdr.addresses([decode(get("Return-Path"))])
    auth = hdr.auth_results(
        [decode(v) for v in get_all("Authentication-Results") + get_all("ARC-Authentication-Results")],
        [decode(v) for v in get_all("Received-SPF")],
    )
    body_for_language = (subject + "\n" + (text or html_text))[:500]
    return ParsedMessage(
        network_message_id=network_message_id(msg, raw),
        internet_message_id=(decode(get("Message-ID")).strip() or None),
        date=hdr.message_date(decode(get("Date")) or None, list(hops)),
        subject=subject,
        from_address=from_[0][1] if from_ else None,
        from_display=from_[0][0] if from_ else "",
        sender_address=sender[0][1] if sender else None,
        reply_to=tuple(a for _, a in hdr.addresses([decode(get("Reply-To"))])),
        return_path=return_path[0][1] if return_path else None,
        to=to,
        cc=cc,
        recipients=tuple(dict.fromkeys(to + cc + delivered)),
        received=hops,
        received_headers=received_headers,
        auth=auth,
        text=text,
        html=html,
        urls=tuple(FoundUrl(u, loc) for u, loc in urls.items()),
        attachments=tuple(attachments),
        headers=header_pairs,
        size=len(raw),
        raw=raw,
        defects=tuple(defects),
        language=detect_language(body_for_language) if language else None,
    )


_LANGID = None
# English function words no other common mail language writes as words of its own.
_ENGLISH = frozenset("the and to of you your for this that it with from have please by not can or if been our "
                     "are would which there they these should".split())
_ASCII_WORD = re.compile(r"[a-z']+")


def _plainly_english(text: str) -> bool:
    """At least 15 % of the words, and five distinct ones, are English function words: English
    without asking the model (on the external corpus: half the messages, no disagreement)."""
    words = _ASCII_WORD.findall(text.lower())
    if len(words) < 12:
        return False
    hits = sum(w in _ENGLISH for w in words)
    return hits >= 0.15 * len(words) and len(_ENGLISH.intersection(words)) >= 5


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of *text* (py3langid, bundled model), or None for too little text.

    >>> detect_language("Please confirm that you have received the invoice for this month and let us know.")
    'en'
    """
    global _LANGID
    letters = 0
    for ch in text:  # at least 20 letters; stop counting there
        if ch.isalpha():
            letters += 1
            if letters == 20:
                break
    else:
        return None
    if _plainly_english(text):
        return "en"
    if _LANGID is None:
        import py3langid

        _LANGID = py3langid
    return _LANGID.classify(text)[0]
