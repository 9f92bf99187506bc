"""Attachment facts: true type by content, hashes, archive members (bounded), macros, links,
URLs in QR codes of images.

Nothing here executes, opens in an application or fetches anything. Archives are listed
within limits on depth, member count, total inflated size and compression ratio, so an
archive bomb is reported (``bomb``) instead of inflated. Each file keeps the bytes it was
read from (``content``, within those limits) so content scanners such as YARA see every
member without inflating the archive again.

>>> facts = inspect("invoice.pdf", b"MZ" + bytes(200))
>>> facts.true_type, facts.extension, facts.type_mismatch
('exe', 'pdf', True)
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field

import puremagic

from workbench.ingest import links, qr

MAX_DEPTH = 3
MAX_MEMBERS = 1000
MAX_INFLATED = 100 * 2**20
MAX_RATIO = 100
MAX_MEMBER_READ = 20 * 2**20

EXECUTABLE = {"exe", "dll", "scr", "com", "elf", "msi", "lnk", "jar", "bat", "cmd", "ps1", "vbs", "js", "jse", "wsf", "hta", "iso", "img"}
_NAME_JUNK = re.compile(r"[\x00-\x1f\x7f/\\]+")
_OOXML = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}
_MAGIC = (  # leading bytes → type
    (b"MZ", "exe"), (b"\x7fELF", "elf"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"), (b"%PDF", "pdf"),
    (b"{\\rtf", "rtf"), (b"\x4c\x00\x00\x00\x01\x14\x02\x00", "lnk"), (b"Rar!", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"), (b"\x1f\x8b", "gz"),
)
_SCRIPT_EXT = {"js", "jse", "vbs", "vbe", "wsf", "hta", "ps1", "bat", "cmd"}


@dataclass(frozen=True)
class FileFacts:
    """What is known about one attachment or archive member."""

    file_name: str
    extension: str
    true_type: str
    size: int
    sha256: str
    encrypted: bool = False
    macros: bool = False
    macro_keywords: tuple[str, ...] = ()  # oletools: auto-run and suspicious VBA keywords
    bomb: bool = False
    members: tuple["FileFacts", ...] = ()
    urls: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    qr_urls: tuple[str, ...] = ()  # URLs in QR codes of an image
    content: bytes = field(default=b"", repr=False, compare=False)  # the bytes read (bounded, see above)

    @property
    def type_mismatch(self) -> bool:
        """The name claims one type, the content is another (e.g. ``.pdf.exe``, a renamed archive)."""
        if not self.extension or self.true_type in ("unknown", "text"):
            return False
        return self.extension != self.true_type and not {self.extension, self.true_type} <= _EQUIVALENT

    def walk(self):
        """This file and every member below it."""
        yield self
        for member in self.members:
            yield from member.walk()


_EQUIVALENT = {"htm", "html"} | {"jpg", "jpeg"}


def clean_name(name: str | None) -> str:
    """A file name safe to store and display: no path, no control characters, bounded."""
    name = _NAME_JUNK.sub("_", (name or "").strip()).strip("._ ") or "unnamed"
    return name[-255:]


def extension_of(name: str) -> str:
    return name.rsplit(".", 1)[1].lower()[:16] if "." in name else ""


def sniff(data: bytes, name: str = "") -> str:
    """A short type name from the content (``pdf``, ``zip``, ``docx``, ``docm``, ``exe``, ``ole``...)."""
    if not data:
        return "empty"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(data)
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[32769:32774] == b"CD001":
        return "iso"
    sample = data[:4096].lower()
    if b"<html" in sample or b"<!doctype html" in sample or (b"<script" in sample and b"</" in sample):
        return "html"
    try:
        guess = puremagic.from_string(data[:65536]).lstrip(".").lower()
    except (ValueError, puremagic.PureError):
        guess = ""
    if guess:
        return {"jpeg": "jpg", "htm": "html"}.get(guess, guess)
    if _is_text(data[:4096]):
        ext = extension_of(name)
        return ext if ext in _SCRIPT_EXT else "text"
    return "unknown"


def _is_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return sum(32 <= b < 127 or b in b"\r\n\t" for b in sample) > 0.9 * len(sample)


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()[:MAX_MEMBERS]
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError):
        return "zip"
    if "[Content_Types].xml" in names:
        macro = any(n.lower().endswith("vbaproject.bin") for n in names)
        for prefix, kind in _OOXML.items():
            if any(n.startswith(prefix) for n in names):
                return kind[:-1] + "m" if macro else kind
    if "META-INF/MANIFEST.MF" in names:
        return "jar"
    if "mimetype" in names and any(n.startswith("content.xml") for n in names):
        return "odt"
    return "zip"


def _ole_macros(data: bytes) -> bool:
    sample = data[: 8 * 2**20]
    return b"_VBA_PROJECT" in sample or b"V\x00B\x00A\x00" in sample or b"Macros" in sample


def vba_keywords(name: str, data: bytes) -> tuple[bool, tuple[str, ...]]:
    """(real VBA found, auto-run/suspicious keywords) by oletools' olevba; never runs the code."""
    try:
        from oletools.olevba import VBA_Parser

        parser = VBA_Parser(name, data=data)
        try:
            if not parser.detect_vba_macros():
                return False, ()
            results = parser.analyze_macros() or []
            return True, tuple(sorted({kw for kind, kw, _ in results if kind in ("AutoExec", "Suspicious")}))[:10]
        finally:
            parser.close()
    except Exception:  # noqa: BLE001 - olevba on hostile files: fall back to the structural check
        return False, ()


def inspect(name: str | None, data: bytes, *, depth: int = 0, budget: list[int] | None = None) -> FileFacts:
    """Facts about one file; archives are opened (in memory, bounded) down to :data:`MAX_DEPTH`."""
    budget = budget if budget is not None else [MAX_INFLATED]
    file_name = clean_name(name)
    kind = sniff(data, file_name)
    notes: list[str] = []
    members: list[FileFacts] = []
    encrypted = bomb = False
    urls: list[str] = []
    macros = kind in ("docm", "xlsm", "pptm") or (kind == "ole" and _ole_macros(data))
    keywords: tuple[str, ...] = ()
    if macros:
        found, keywords = vba_keywords(file_name, data)
        macros = macros or found
    if kind == "pdf":
        urls = links.pdf_urls(data)
        encrypted = b"/Encrypt" in data[-65536:] or b"/Encrypt" in data[:65536]
    elif kind in ("docx", "xlsx", "pptx", "docm", "xlsm", "pptm"):
        urls = links.office_urls(data)
    elif kind == "html":
        urls = links.html_urls(data[: 5 * 2**20].decode("utf-8", "replace"))
    if kind in ("zip", "jar"):
        members, encrypted, bomb, member_notes = _zip_members(data, depth, budget)
        notes += member_notes
    qr_urls = qr.urls(data) if qr.is_image(data) else []
    return FileFacts(
        file_name=file_name,
        extension=extension_of(file_name),
        true_type=kind,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        encrypted=encrypted,
        macros=macros,
        macro_keywords=keywords,
        bomb=bomb,
        members=tuple(members),
        urls=tuple(urls),
        notes=tuple(notes),
        qr_urls=tuple(qr_urls),
        content=data,
    )


def _zip_members(data: bytes, depth: int, budget: list[int]) -> tuple[list[FileFacts], bool, bool, list[str]]:
    members: list[FileFacts] = []
    notes: list[str] = []
    encrypted = bomb = False
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError):
        return [], False, False, ["unreadable archive"]
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            notes.append(f"{len(infos)} members, listed {MAX_MEMBERS}")
            infos = infos[:MAX_MEMBERS]
        for info in infos:
            if info.is_dir():
                continue
            member_name = clean_name(info.filename.rsplit("/", 1)[-1])
            if info.flag_bits & 0x1:
                encrypted = True
                members.append(FileFacts(member_name, extension_of(member_name), "encrypted", info.file_size, "", encrypted=True))
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > MAX_RATIO or info.file_size > MAX_MEMBER_READ or info.file_size > budget[0] or depth >= MAX_DEPTH:
                reason = "depth" if depth >= MAX_DEPTH else "size or ratio"
                if reason != "depth":
                    bomb = bomb or ratio > MAX_RATIO or info.file_size > budget[0]
                members.append(FileFacts(member_name, extension_of(member_name), "unread", info.file_size, "",
                                         notes=(f"not inflated ({reason})",)))
                continue
            try:
                with zf.open(info) as fh:
                    content = fh.read(MAX_MEMBER_READ + 1)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError, zlib.error):
                members.append(FileFacts(member_name, extension_of(member_name), "unreadable", info.file_size, ""))
                continue
            budget[0] -= len(content)
            members.append(inspect(member_name, content, depth=depth + 1, budget=budget))
    return members, encrypted, bomb, notes
