"""Harmless simulation documents, built in code: no macros, no scripts, nothing downloaded.

Each document's only "active" content is a tracking address passed in (:class:`~.model.Links`):
a beacon image that reports the opening, a link that reports the click, or nothing at all (the
harmless "malware" file of the link-to-malware technique). Output is deterministic (fixed zip
times, fixed PDF layout), so the same spec and links give the same bytes.

>>> from workbench.simulator.model import Links
>>> name, mime, data = build(AttachmentSpec("txt", "invoice.txt", "download"), Links("http://t.test", "tok"))
>>> name, mime, b"simulation" in data
('invoice.txt', 'text/plain', True)
"""

from __future__ import annotations

import html
import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from workbench.simulator.model import Links

KINDS = ("html", "docx", "pdf", "txt")
PURPOSES = ("beacon", "link", "download")
#: Which purposes each kind of document can serve.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "html": ("beacon", "link"), "docx": ("beacon", "link"), "pdf": ("link",), "txt": ("download",),
}
EXTENSIONS: dict[str, tuple[str, ...]] = {"html": (".html", ".htm"), "docx": (".docx",), "pdf": (".pdf",),
                                          "txt": (".txt",)}
MIME_TYPES = {
    "html": "text/html", "pdf": "application/pdf", "txt": "text/plain",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@dataclass(frozen=True)
class AttachmentSpec:
    """A document a payload carries: *kind* (html, docx, pdf, txt), its *file_name*, and its *purpose*:
    ``beacon`` (reports opening), ``link`` (holds the tracking link) or ``download`` (the harmless
    file a link-to-malware payload's link leads to; served by the tracking server, not attached)."""

    kind: str
    file_name: str
    purpose: str


def build(spec: AttachmentSpec, links: Links) -> tuple[str, str, bytes]:
    """The document for *spec* and *links*, as ``(file_name, mime_type, bytes)``."""
    if spec.purpose not in SUPPORTED.get(spec.kind, ()):
        raise ValueError(f"a {spec.kind} attachment cannot be a {spec.purpose}")
    title = _title(spec.file_name)
    if spec.kind == "html":
        data = _html(title, links, spec.purpose)
    elif spec.kind == "docx":
        data = _docx(title, links, spec.purpose)
    elif spec.kind == "pdf":
        data = _pdf(title, links.attachment_link)
    else:
        data = _txt(title)
    return spec.file_name, MIME_TYPES[spec.kind], data


def url_for(spec: AttachmentSpec, links: Links) -> str | None:
    """The one tracking address the document built for *spec* contains (None for a download)."""
    return {"beacon": links.attachment_beacon, "link": links.attachment_link}.get(spec.purpose)


def _title(file_name: str) -> str:
    stem = PurePosixPath(file_name).stem.replace("_", " ").replace("-", " ").strip()
    return stem or "Document"


_BODY = ("This document was shared with you. Some content could not be displayed in this view.",
         "Reference: the attached document requires review before the end of the week.")


def _html(title: str, links: Links, purpose: str) -> bytes:
    t = html.escape(title)
    if purpose == "beacon":
        active = f'<img src="{html.escape(links.attachment_beacon)}" width="1" height="1" alt="">'
    else:
        active = f'<p><a href="{html.escape(links.attachment_link)}">Open the full document</a></p>'
    paras = "".join(f"<p>{html.escape(p)}</p>" for p in _BODY)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{t}</title></head>\n'
            f"<body><h1>{t}</h1>{paras}{active}</body></html>\n").encode()


# --- docx: a minimal WordprocessingML package ----------------------------------------------------

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_PIC = "http://schemas.openxmlformats.org/drawingml/2006/picture"
_REL_IMAGE = _R + "/image"
_REL_HYPERLINK = _R + "/hyperlink"
_REL_DOCUMENT = _R + "/officeDocument"

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>")
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL_DOCUMENT}" Target="word/document.xml"/>'
    "</Relationships>")


def _para(text: str, *, bold: bool = False) -> str:
    props = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f'<w:p><w:r>{props}<w:t xml:space="preserve">{xml_escape(text)}</w:t></w:r></w:p>'


def _linked_image() -> str:
    """An inline picture whose image is fetched from relationship rId1 (external: the beacon)."""
    cx = cy = 9525  # one pixel, in EMU
    return (
        "<w:p><w:r><w:drawing>"
        f'<wp:inline distT="0" distB="0" distL="0" distR="0"><wp:extent cx="{cx}" cy="{cy}"/>'
        '<wp:docPr id="1" name="Picture 1"/>'
        f'<wp:cNvGraphicFramePr><a:graphicFrameLocks xmlns:a="{_A}" noChangeAspect="1"/></wp:cNvGraphicFramePr>'
        f'<a:graphic xmlns:a="{_A}"><a:graphicData uri="{_PIC}">'
        f'<pic:pic xmlns:pic="{_PIC}">'
        '<pic:nvPicPr><pic:cNvPr id="0" name="image"/><pic:cNvPicPr/></pic:nvPicPr>'
        '<pic:blipFill><a:blip r:link="rId1"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>'
        f'<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="{cx}" cy="{cy}"/></a:xfrm>'
        '<a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr>'
        "</pic:pic></a:graphicData></a:graphic></wp:inline>"
        "</w:drawing></w:r></w:p>")


def _hyperlink(text: str) -> str:
    return ('<w:p><w:hyperlink r:id="rId1" w:history="1"><w:r>'
            '<w:rPr><w:color w:val="0563C1"/><w:u w:val="single"/></w:rPr>'
            f'<w:t xml:space="preserve">{xml_escape(text)}</w:t></w:r></w:hyperlink></w:p>')


def _docx(title: str, links: Links, purpose: str) -> bytes:
    if purpose == "beacon":
        rel_type, target, active = _REL_IMAGE, links.attachment_beacon, _linked_image()
    else:
        rel_type, target, active = _REL_HYPERLINK, links.attachment_link, _hyperlink("Open the full document")
    body = _para(title, bold=True) + "".join(_para(p) for p in _BODY) + active
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document xmlns:w="{_W}" xmlns:r="{_R}" xmlns:wp="{_WP}">'
        f'<w:body>{body}<w:sectPr><w:pgSz w:w="11906" w:h="16838"/>'
        '<w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="708" w:footer="708" '
        'w:gutter="0"/></w:sectPr></w:body></w:document>')
    doc_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{rel_type}" Target={quoteattr(target)} TargetMode="External"/>'
        "</Relationships>")
    parts = [("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _ROOT_RELS),
             ("word/document.xml", document), ("word/_rels/document.xml.rels", doc_rels)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))
    return buf.getvalue()


# --- pdf: one page, one URI link annotation ------------------------------------------------------

def _pdf_str(text: str) -> str:
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return "(" + safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _pdf(title: str, url: str) -> bytes:
    lines = [(18, title), (11, _BODY[0]), (11, _BODY[1]), (12, "Open the full document")]
    ops, y = ["BT"], 760
    for size, text in lines:
        y -= 30
        ops.append(f"/F1 {size} Tf 1 0 0 1 72 {y} Tm {_pdf_str(text)} Tj")
    ops.append("ET")
    link_y = y  # the last line is the link's visible text
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R /Annots [6 0 R] >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        (f"<< /Type /Annot /Subtype /Link /Rect [70 {link_y - 4} 330 {link_y + 14}] /Border [0 0 0] "
         f"/A << /Type /Action /S /URI /URI {_pdf_str(url)} >> >>").encode("latin-1"),
    ]
    from workbench.minipdf import HEADER, assemble

    return assemble(objects, header=HEADER + b"%\xe2\xe3\xcf\xd3\n")  # the binary-marker comment line


def _txt(title: str) -> bytes:
    return (
        f"{title}\n\n"
        "This file is part of a phishing simulation run by your organisation's security team.\n"
        "It is harmless: it contains no program, no macro and no link.\n\n"
        "In a real attack, a file downloaded from a link in an unexpected message could have\n"
        "installed malware on your device. Next time, check who sent the message, hover over\n"
        "links before clicking, and report suspicious messages with the Report button.\n"
    ).encode()


__all__ = ["AttachmentSpec", "build", "url_for", "KINDS", "PURPOSES", "SUPPORTED", "EXTENSIONS", "MIME_TYPES"]
