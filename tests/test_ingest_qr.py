"""QR codes in images: their URLs become URLs of the message (UrlLocation "QRCode"), bounded and crash-free."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from email.message import EmailMessage

import segno
from PIL import Image

from workbench.detect import Context, evaluate
from workbench.enums import UrlLocation
from workbench.ingest import qr
from workbench.ingest.message import parse
from workbench.ingest.rows import message_rows

URL = "https://qr-login.example.test/verify?u=ann"


def qr_png(text: str = URL, *, scale: int = 4, transparent: bool = False) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, light=None if transparent else "white")
    return buf.getvalue()


def plain_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def mail(attachments: dict[str, bytes] | None = None, inline: bytes | None = None,
         body: str = "Scan the code to continue.") -> bytes:
    msg = EmailMessage()
    msg["From"] = "IT <it@helpdesk-notice.test>"
    msg["To"] = "ann@fabrikam.test"
    msg["Subject"] = "Multi-factor enrolment"
    msg.set_content(body)
    if inline is not None:
        msg.add_alternative('<p>Scan:</p><img src="cid:qr1">', subtype="html")
        msg.get_payload()[1].add_related(inline, maintype="image", subtype="png", cid="<qr1>")
    for name, data in (attachments or {}).items():
        maintype, subtype = ("image", "png") if name.endswith(".png") else ("application", "octet-stream")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(msg)


def qr_rows(raw: bytes) -> list[dict]:
    return [r for r in message_rows(parse(raw))["EmailUrlInfo"] if r["UrlLocation"] == UrlLocation.QR_CODE.value]


def test_qr_url_in_an_image_attachment_becomes_an_email_url_info_row():
    rows = qr_rows(mail({"enrol.png": qr_png()}))
    assert [(r["Url"], r["UrlDomain"], r["UrlLocation"]) for r in rows] == [(URL, "qr-login.example.test", "QRCode")]


def test_qr_in_inline_picture_and_in_archived_image():
    assert [r["Url"] for r in qr_rows(mail(inline=qr_png()))] == [URL]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("scan/code.png", qr_png("https://zipped.example.test/a"))
    assert [r["Url"] for r in qr_rows(mail({"scan.zip": buf.getvalue()}))] == ["https://zipped.example.test/a"]


def test_transparent_background_is_read_as_shown():
    assert qr.urls(qr_png(transparent=True)) == [URL]


def test_a_url_in_body_keeps_its_body_location():
    m = parse(mail({"enrol.png": qr_png()}, body=f"Or open {URL}"))
    assert [(u.url, u.location) for u in m.urls] == [(URL, "Body")]


def test_qr_urls_reach_the_url_analyzers():
    m = parse(mail({"enrol.png": qr_png("https://bit.ly/3xQrLure")}))
    verdict = evaluate(m, Context())
    assert any(e.signal == "url.shortener" and "bit.ly" in e.detail for e in verdict.evidence)


def test_images_without_qr_codes_or_without_urls_yield_nothing():
    assert qr_rows(mail({"logo.png": plain_png()}, inline=plain_png())) == []
    assert qr.texts(qr_png("WIFI:S:guest;T:WPA;P:secret;;")) == ["WIFI:S:guest;T:WPA;P:secret;;"]
    assert qr.urls(qr_png("WIFI:S:guest;T:WPA;P:secret;;")) == []


def test_corrupt_images_do_not_crash_parsing():
    good = qr_png()
    broken = {"cut.png": good[: len(good) // 2], "junk.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
              "fake.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 50, "empty.png": b""}
    m = parse(mail(broken, inline=good[:40]))
    assert [f.file_name for f in m.attachments] == list(broken)
    assert not [u for u in m.urls if u.location == "QRCode"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas and holds almost no data (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_oversized_images_are_skipped_before_decoding(monkeypatch):
    assert qr.texts(_png_header(60_000, 60_000)) == []  # 3.6 gigapixels: refused from the header
    assert qr.texts(qr_png()) == [URL]
    monkeypatch.setattr(qr, "MAX_PIXELS", 100 * 100)
    assert qr.texts(qr_png()) == []
    monkeypatch.setattr(qr, "MAX_BYTES", 10)
    monkeypatch.setattr(qr, "MAX_PIXELS", 4000 * 4000)
    assert qr.texts(qr_png()) == []
