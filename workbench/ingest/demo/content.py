"""Message content for the demo tenant: MIME bodies, harmless attachments, templates.

A :class:`Template` is one piece of content (subject, body, links, attachments) that many
messages share, as a campaign or a newsletter does in real mail. Its body is stored once in
the mail store. Attachments are harmless stand-ins: the "malicious" ones only carry the
markers detection looks for (macro names, an executable header, a smuggling script) and
never contain working code.
"""

from __future__ import annotations

import hashlib
import html
import io
import quopri
import struct
import zipfile
import zlib
from base64 import encodebytes
from dataclasses import dataclass, field

import numpy as np

from workbench.ingest.demo import vocab
from workbench.ingest.links import host_of

ZIP_DATE = (2026, 1, 1, 0, 0, 0)  # fixed member timestamps: same seed, same bytes


@dataclass(frozen=True)
class Attachment:
    file_name: str
    file_type: str
    mime_type: str
    content: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Template:
    id: int
    category: str
    subject: str
    content_type: str
    body: bytes = field(repr=False)
    urls: tuple[tuple[str, str], ...]  # (url, UrlLocation value)
    attachments: tuple[Attachment, ...]
    language: str

    @property
    def body_id(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def cluster_id(self) -> int:
        """EmailClusterId: messages with the same content share it."""
        return int.from_bytes(hashlib.sha256(self.body).digest()[:7], "big")


def url_domain(url: str) -> str:
    return host_of(url) or ""


# ---------------------------------------------------------------------------- files

def pdf(text: str) -> bytes:
    """A small valid PDF showing *text*."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text.replace('(', '[').replace(')', ']')}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    from workbench.minipdf import assemble

    return assemble(objects)


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, ZIP_DATE), data)
    return buf.getvalue()


_OOXML = {
    "docx": ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "docm": ("word/document.xml", "application/vnd.ms-word.document.macroEnabled.12"),
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": ("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
}


def office(kind: str, text: str, macro: str | None = None) -> bytes:
    """A minimal Office Open XML package; *macro* adds a (non-functional) vbaProject part."""
    part, ctype = _OOXML[kind]
    members = [
        ("[Content_Types].xml", f'<?xml version="1.0"?><Types><Override PartName="/{part}" ContentType="{ctype}"/></Types>'.encode()),
        (part, f"<document><body><p>{html.escape(text)}</p></body></document>".encode()),
    ]
    if macro:
        members.append(("word/vbaProject.bin", macro.encode()))
    return _zip(members)


def png(seed: int) -> bytes:
    """A tiny valid 4x4 PNG whose pixels depend on *seed*."""
    rng = np.random.default_rng(seed)
    raw = b"".join(b"\x00" + rng.integers(0, 255, 12, dtype=np.uint8).tobytes() for _ in range(4))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) + chunk(
        b"IDAT", zlib.compress(raw)
    ) + chunk(b"IEND", b"")


MIME_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "zip": "application/zip",
    "html": "text/html",
    **{k: v[1] for k, v in _OOXML.items()},
}


def attachment_for(name: str, kind: str, text: str) -> Attachment:
    if kind == "pdf":
        content = pdf(text)
    elif kind in _OOXML:
        content = office(kind, text)
    elif kind == "png":
        content = png(zlib.crc32(name.encode()))
    else:
        raise ValueError(kind)
    return Attachment(name, kind, MIME_TYPES[kind], content)


# ---------------------------------------------------------------------------- MIME

def _qp(text: str) -> bytes:
    return quopri.encodestring(text.replace("\n", "\r\n").encode("utf-8")).replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def mime_body(template_id: int, text: str, html_body: str, attachments: tuple[Attachment, ...]) -> tuple[str, bytes]:
    """Build a MIME body; return (Content-Type header value, body bytes after the header block)."""
    alt = f"_000_alt{template_id:08x}_"
    parts = [
        f"--{alt}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        + _qp(text) + b"\r\n",
        f"--{alt}\r\nContent-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        + _qp(html_body) + b"\r\n",
        f"--{alt}--\r\n".encode(),
    ]
    alternative = b"".join(parts)
    if not attachments:
        return f'multipart/alternative; boundary="{alt}"', alternative
    mixed = f"_000_mix{template_id:08x}_"
    out = [f"--{mixed}\r\nContent-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n".encode(), alternative]
    for a in attachments:
        out.append(
            f"--{mixed}\r\nContent-Type: {a.mime_type}; name=\"{a.file_name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{a.file_name}\"; size={a.size}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
            + encodebytes(a.content).replace(b"\n", b"\r\n")
        )
    out.append(f"--{mixed}--\r\n".encode())
    return f'multipart/mixed; boundary="{mixed}"', b"".join(out)


def html_from(paragraphs: list[str], links: list[tuple[str, str]]) -> str:
    """Escaped HTML paragraphs plus anchor links (label, href)."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    body += "".join(f'<p><a href="{html.escape(href, quote=True)}">{html.escape(label)}</a></p>' for label, href in links)
    return f"<html><head><meta charset=\"utf-8\"></head><body>{body}</body></html>"


def make_template(
    template_id: int,
    category: str,
    subject: str,
    paragraphs: list[str],
    links: list[tuple[str, str]] = (),  # type: ignore[assignment]
    attachments: tuple[Attachment, ...] = (),
    language: str = "en",
    html_override: str | None = None,
) -> Template:
    text = "\n\n".join(paragraphs + [f"{label}: {href}" for label, href in links]) + "\n"
    html_body = html_override if html_override is not None else html_from(paragraphs, list(links))
    content_type, body = mime_body(template_id, text, html_body, attachments)
    urls = tuple((href, "Body") for _, href in links)
    return Template(template_id, category, subject, content_type, body, urls, attachments, language)


# ---------------------------------------------------------------------------- background

class Filler:
    """Fills '{n4}'-style placeholders in subjects, URLs and file names from a generator."""

    def __init__(self, rng: np.random.Generator, stem: str, year: int) -> None:
        self.rng, self.stem, self.year = rng, stem, year

    def _pick(self, items: list[str]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def __call__(self, pattern: str, **extra: str) -> str:
        r = self.rng
        values = {
            "n": str(int(r.integers(2, 53))),
            "n4": str(int(r.integers(1000, 9999))),
            "n5": str(int(r.integers(10000, 99999))),
            "year": str(self.year),
            "quarter": f"Q{int(r.integers(1, 5))}",
            "month": self._pick(vocab.MONTHS),
            "weekday": self._pick(vocab.WEEKDAYS),
            "hour": str(int(r.integers(9, 17))),
            "proj": self._pick(vocab.PROJECTS),
            "product": self._pick(vocab.PRODUCTS),
            "task": self._pick(vocab.TASKS),
            "channel": self._pick(vocab.CHANNELS),
            "partner": self._pick([p for p, _ in vocab.PARTNERS]),
            "partner_domain": self._pick([d for _, d in vocab.PARTNERS]),
            "name": f"{self._pick(vocab.GIVEN_NAMES)} {self._pick(vocab.SURNAMES)}",
            "title": self._pick(vocab.TITLES["Engineering"]),
            "city": self._pick([o[0] for o in vocab.OFFICES]),
            "stem": self.stem,
        }
        values.update(extra)
        return pattern.format_map(values)


_PARAGRAPHS = {
    "partner": ["Please find the details below and let us know if anything needs to change.",
                "As discussed, we can confirm the schedule on our side.",
                "Attached is the document for your records. Payment terms are net 30.",
                "Kind regards,\n{name}"],
    "saas": ["This is an automated notification. You are receiving it because you are watching this item.",
             "Manage your notification settings in your profile."],
    "newsletter": ["Here are this week's highlights, hand-picked for you.",
                   "You are receiving this email because you subscribed. Unsubscribe at any time."],
    "spam": ["Congratulations! You have been selected for an exclusive offer.",
             "Act now, this offer expires in 24 hours. No credit card required!!!"],
    "internal": ["Hi all, sharing the latest version ahead of our meeting.",
                 "Let me know if you have comments by end of day.",
                 "Thanks,\n{name}"],
    "person": ["Hello, I found your company online and would like to ask a few questions.",
               "Looking forward to hearing from you."],
    "outbound": ["Thank you for your time today. As promised, here is the information we discussed.",
                 "Best regards"],
}

_SUBJECTS = {
    "partner": vocab.PARTNER_SUBJECTS,
    "saas": vocab.SAAS_SUBJECTS,
    "newsletter": vocab.NEWSLETTER_SUBJECTS,
    "spam": vocab.SPAM_SUBJECTS,
    "internal": vocab.INTERNAL_SUBJECTS,
    "person": vocab.PERSON_SUBJECTS,
    "outbound": vocab.OUTBOUND_SUBJECTS,
}

#: Template variants per background category, and the share of variants with an attachment.
VARIANTS = {"partner": 200, "saas": 120, "newsletter": 60, "spam": 80, "internal": 400, "person": 40, "outbound": 150}
ATTACH_SHARE = {"partner": 0.35, "internal": 0.25, "outbound": 0.3}


def background_templates(rng: np.random.Generator, stem: str, year: int, first_id: int = 1) -> dict[str, list[Template]]:
    """Template pools for ordinary traffic, per category."""
    fill = Filler(rng, stem, year)
    pools: dict[str, list[Template]] = {}
    next_id = first_id
    for category, count in VARIANTS.items():
        pool = []
        for _ in range(count):
            subject = fill(_SUBJECTS[category][int(rng.integers(len(_SUBJECTS[category])))])
            language = "de" if "Besprechung" in subject else "fr" if "Réunion" in subject else "en"
            paragraphs = [fill(p) for p in _PARAGRAPHS[category]]
            links = []
            patterns = vocab.LEGIT_URLS[category]
            if patterns and rng.random() < (0.9 if category in ("saas", "newsletter", "spam") else 0.4):
                for _ in range(1 + int(rng.integers(2 if category == "newsletter" else 1))):
                    url = fill(
                        patterns[int(rng.integers(len(patterns)))],
                        saas_host=url_domain("https://" + vocab.SAAS_SENDERS[int(rng.integers(len(vocab.SAAS_SENDERS)))][0].split("@")[1]),
                        news_host=vocab.NEWSLETTERS[int(rng.integers(len(vocab.NEWSLETTERS)))][0].split("@")[1],
                        spam_domain=f"{vocab.SPAM_WORDS[int(rng.integers(len(vocab.SPAM_WORDS)))]}.{vocab.SPAM_TLDS[int(rng.integers(len(vocab.SPAM_TLDS)))]}",
                    )
                    links.append(("Open" if category != "newsletter" else "Read more", url))
            attachments: tuple[Attachment, ...] = ()
            if rng.random() < ATTACH_SHARE.get(category, 0.0):
                choices = vocab.ATTACHMENT_NAMES[category]
                name_pattern, kind = choices[int(rng.integers(len(choices)))]
                attachments = (attachment_for(fill(name_pattern), kind, subject),)
            pool.append(make_template(next_id, category, subject, paragraphs, links, attachments, language))
            next_id += 1
        pools[category] = pool
    return pools
