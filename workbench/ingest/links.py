"""URLs from message text, HTML, PDF and Office attachments — read, never fetched.

>>> html_urls('<a href="https://a.test/x">x</a><form action="http://b.test/p"></form>'
...           '<meta http-equiv="refresh" content="0; url=https://c.test/">')
['https://a.test/x', 'http://b.test/p', 'https://c.test/']
>>> text_urls("see www.d.test/page, or https://e.test/a?b=1).")
['http://www.d.test/page', 'https://e.test/a?b=1']
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urlsplit

MAX_URL = 2048
MAX_URLS = 500  # per part: a message with more is a list, not a lure
_TEXT_URL = re.compile(r"(?:(?:https?|hxxps?)://|www\.)[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
# The same pattern without IGNORECASE, run over lower-cased text (several times faster: the
# engine can skip to an "h" or a "w"). Matches have the same spans as _TEXT_URL's when the
# lower-cased text has the same length and "ſ" (which IGNORECASE matches as "s") is mapped to "s".
_TEXT_URL_LOWER = re.compile(r"(?:h(?:tt|xx)ps?://|www\.)[^\s<>\"'`{}|\\^\[\]]+")
# For bytes read as Latin-1 (PDF content): str \s there also matches \x1c-\x1f, \x85 and \xa0.
_LATIN1_SPACE = bytes(i for i in range(256) if chr(i).isspace())
_BYTES_URL_LOWER = re.compile(rb"(?:h(?:tt|xx)ps?://|www\.)[^" + re.escape(_LATIN1_SPACE) + rb"<>\"'`{}|\\^\[\]]+")
_TRAILING = ".,;:!?)]}'\">"
_PDF_URI = re.compile(rb"/URI\s*\(((?:[^()\\]|\\.){1,2048})\)")
_STREAM_START = re.compile(rb"stream\r?\n")
_STREAM_END = b"\nendstream"
_OOXML_TARGET = re.compile(rb'Target="(https?://[^"]{1,2048})"', re.IGNORECASE)
_REFRESH = re.compile(r"url\s*=\s*['\"]?([^'\";]+)", re.IGNORECASE)


def _clean(url: str) -> str | None:
    url = url.strip().strip(_TRAILING)
    while url and url[-1] in _TRAILING:
        url = url[:-1]
    if not url or len(url) > MAX_URL:
        return None
    low = url.lower()
    if low.startswith("www."):
        url = "http://" + url
    elif low.startswith("hxxp"):
        url = "http" + url[4:]
    elif not low.startswith(("http://", "https://")):
        return None
    return url


def _unique(urls) -> list[str]:
    seen: dict[str, None] = {}
    for url in urls:
        url = _clean(url)
        if url and url not in seen:
            seen[url] = None
            if len(seen) >= MAX_URLS:
                break
    return list(seen)


@lru_cache(maxsize=8192)  # ingestion, rows and several analyzers ask for the same URLs' hosts
def host_of(url: str) -> str | None:
    """The lower-case host of a URL, or None when it has none or cannot be read."""
    try:
        return (urlsplit(url).hostname or "").lower() or None
    except ValueError:
        return None


def _text_matches(text: str) -> list[str]:
    """What ``_TEXT_URL.finditer(text)`` matches, found over the lower-cased text."""
    low = text.lower()
    if len(low) != len(text):  # "İ" lowers to two characters: spans would not line up
        return [m.group(0) for m in _TEXT_URL.finditer(text)]
    if "ſ" in low:
        low = low.replace("ſ", "s")
    return [text[m.start():m.end()] for m in _TEXT_URL_LOWER.finditer(low)]


def text_urls(text: str) -> list[str]:
    return _unique(_text_matches(text or ""))


def _latin1_urls(data: bytes) -> list[str]:
    """``text_urls(data.decode("latin-1"))`` without decoding: most PDF streams hold no URL."""
    low = data.lower()
    if b"http" not in low and b"hxxp" not in low and b"www." not in low:
        return []
    return _unique(data[m.start():m.end()].decode("latin-1") for m in _BYTES_URL_LOWER.finditer(low))


_TAG_ATTRS = {"a": "href", "area": "href", "img": "src", "iframe": "src", "frame": "src", "script": "src",
              "embed": "src", "form": "action", "link": "href", "base": "href", "object": "data",
              "button": "formaction"}
_SELECTOR = ", ".join(f"{tag}[{attr}]" for tag, attr in _TAG_ATTRS.items()) + ", meta[http-equiv]"


def html_parts(html: str) -> tuple[list[str], str]:
    """(URLs from tags and visible text, visible text) of an HTML document; never raises.

    Parsed with lexbor (selectolax), an HTML5 parser that copes with any input. The last few
    documents are remembered: parsing and then judging a message reads the same HTML twice.
    """
    html = html or ""
    urls, text = (_html_parts if len(html) <= 1_000_000 else _html_parts.__wrapped__)(html)
    return list(urls), text


@lru_cache(maxsize=4)
def _html_parts(html: str) -> tuple[tuple[str, ...], str]:
    from selectolax.lexbor import LexborHTMLParser

    try:
        tree = LexborHTMLParser(html or "")
        urls = []
        for node in tree.css(_SELECTOR):
            attrs = node.attributes
            if node.tag == "meta":
                if (attrs.get("http-equiv") or "").lower() == "refresh":
                    match = _REFRESH.search(attrs.get("content") or "")
                    if match:
                        urls.append(match.group(1))
            elif attrs.get(_TAG_ATTRS[node.tag]):
                urls.append(attrs[_TAG_ATTRS[node.tag]] or "")
        for node in tree.css("script, style"):
            node.decompose()
        root = tree.body or tree.root
        text = root.text(separator=" ") if root is not None else ""
    except Exception:  # noqa: BLE001 - hostile markup: keep nothing rather than stop the batch
        return (), ""
    return tuple(_unique(urls + text_urls(text))), text


def html_urls(html: str) -> list[str]:
    return html_parts(html)[0]


def _pdf_streams(data: bytes) -> Iterator[bytes]:
    """The bodies ``re.finditer(rb"stream\\r?\\n(.*?)\\r?\\nendstream", data, re.DOTALL)`` yields,
    found with ``bytes.find`` (the lazy ``.*?`` tries the end marker at every byte)."""
    pos = 0
    while start := _STREAM_START.search(data, pos):
        end = data.find(_STREAM_END, start.end())
        if end < 0:
            return  # a later start would need an end marker after it too
        cut = end - 1 if end > start.end() and data[end - 1] == 0x0D else end  # "\r\n" ends it when there
        yield data[start.end():cut]
        pos = end + len(_STREAM_END)


def pdf_urls(data: bytes, *, max_inflated: int = 20_000_000) -> list[str]:
    """Link annotations (/URI) and URLs written in the text of a PDF, including compressed
    streams (inflated up to *max_inflated* bytes in all)."""
    chunks = [data[:5_000_000]]
    budget = max_inflated
    for body in _pdf_streams(data):
        if budget <= 0:
            break
        try:
            inflated = zlib.decompressobj().decompress(body, budget)
        except zlib.error:
            continue
        budget -= len(inflated)
        chunks.append(inflated)
    found = [m.group(1).replace(b"\\(", b"(").replace(b"\\)", b")").decode("latin-1")
             for chunk in chunks for m in _PDF_URI.finditer(chunk)]
    for chunk in chunks:
        found += _latin1_urls(chunk)
    return _unique(found)


def office_urls(data: bytes, *, max_member: int = 5_000_000) -> list[str]:
    """External hyperlink targets of an Office Open XML package (relationship parts)."""
    found: list[bytes] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist()[:2000]:
                if info.filename.endswith(".rels") and info.file_size <= max_member:
                    found += _OOXML_TARGET.findall(zf.read(info))
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError):
        return []
    return _unique(f.decode("utf-8", "replace") for f in found)
