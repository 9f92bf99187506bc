"""URLs in QR codes of images (attachments, archive members, inline pictures), decoded offline.

Pillow reads the image header first: anything that is not a PNG, JPEG, GIF, BMP, WebP or
TIFF, is over :data:`MAX_BYTES`, or has more than :data:`MAX_PIXELS` pixels is skipped
before a pixel is decoded (no decompression bombs). zxing-cpp (native code in its wheel)
finds the QR codes; the URLs in their text are returned, never fetched. Corrupt images
yield nothing.

>>> urls(b"not an image")
[]
"""

from __future__ import annotations

import io

from workbench.ingest import links

MAX_BYTES = 10 * 2**20
MAX_PIXELS = 4000 * 4000  # about 0.15 s of zxing at worst; a QR lure is far smaller
MAX_CODES = 10
_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def is_image(data: bytes) -> bool:
    """Whether *data* starts like one of the raster formats QR codes are decoded from."""
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def texts(data: bytes) -> list[str]:
    """The text of every QR code in the image (at most :data:`MAX_CODES`); [] when none or unreadable."""
    if not is_image(data) or len(data) > MAX_BYTES:
        return []
    try:
        import zxingcpp
        from PIL import Image

        with Image.open(io.BytesIO(data), formats=_FORMATS) as im:
            width, height = im.size
            if width * height > MAX_PIXELS or width < 21 or height < 21:  # 21 modules: the smallest QR code
                return []
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:  # transparent: on white, as shown
                grey = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA")).convert("L")
            else:
                im.draft("L", im.size)  # JPEG: decode straight to grey
                grey = im.convert("L")
        found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
    except Exception:  # noqa: BLE001 - Pillow raises many kinds of errors on hostile images; they hold no QR code
        return []
    return [code.text for code in found if code.text][:MAX_CODES]


def urls(data: bytes) -> list[str]:
    """URLs written in the image's QR codes (``https://``, ``http://``, ``www.``)."""
    out: dict[str, None] = {}
    for text in texts(data):
        for url in links.text_urls(text):
            out.setdefault(url, None)
    return list(out)
