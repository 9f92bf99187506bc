"""Where raw messages come from: .eml files, Outlook .msg, mbox files, Maildir folders.

Each reader yields :class:`RawItem`s and never raises for one bad file: an unreadable item
carries its error instead of bytes, and the batch sends it to dead letters.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from workbench.errors import NotFound

EML_SUFFIXES = {".eml", ".txt", ""}
# Maildir++ folder names → the folder a copy sits in.
MAILDIR_FOLDERS = {"": "Inbox/folder", "junk": "Junk folder", "spam": "Junk folder", "junk email": "Junk folder",
                   "trash": "Deleted items", "deleted items": "Deleted items", "deleted messages": "Deleted items",
                   "quarantine": "Quarantine"}


@dataclass(frozen=True)
class RawItem:
    source: str
    data: bytes | None = None
    error: str | None = None
    location: str | None = None  # DeliveryLocation when the source knows it (Maildir folders)
    mailbox: str | None = None


def _files(paths: Iterable[Path | str], suffixes: set[str]) -> Iterator[Path]:
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                              and not p.name.startswith("."))
        elif path.is_file():
            yield path
        else:
            raise NotFound(f"no such file or folder: {path}; check the path")


def _read(path: Path) -> RawItem:
    try:
        return RawItem(str(path), path.read_bytes())
    except OSError as exc:
        return RawItem(str(path), error=f"cannot read file: {exc.strerror or exc}")


def eml_items(paths: Iterable[Path | str]) -> Iterator[RawItem]:
    """RFC 5322 files (.eml, or any file given by name; folders: .eml/.txt/extensionless files)."""
    for path in _files(paths, EML_SUFFIXES):
        yield _read(path)


def msg_items(paths: Iterable[Path | str]) -> Iterator[RawItem]:
    """Outlook .msg files, converted to RFC 5322 (transport headers, bodies, attachments)."""
    for path in _files(paths, {".msg"}):
        try:
            yield RawItem(str(path), msg_to_rfc822(path.read_bytes()))
        except Exception as exc:  # noqa: BLE001 - extract-msg raises many types on hostile files
            yield RawItem(str(path), error=f"not a readable Outlook message ({type(exc).__name__}: {str(exc)[:120]})")


def msg_to_rfc822(data: bytes) -> bytes:
    import extract_msg

    msg = extract_msg.openMsg(data, delayAttachments=False)
    try:
        out = EmailMessage()
        transport = msg.headerDict if getattr(msg, "headerDict", None) else {}
        skip = {"content-type", "content-transfer-encoding", "mime-version"}
        for name, value in transport.items():
            if name.lower() not in skip and value is not None:
                out[name] = str(value).replace("\r", " ").replace("\n", " ")
        for name, value in (("From", msg.sender), ("To", msg.to), ("Cc", msg.cc), ("Subject", msg.subject)):
            if value and name not in out:
                out[name] = str(value).replace("\r", " ").replace("\n", " ")
        if "Date" not in out and msg.date:
            out["Date"] = format_datetime(msg.date)
        if "Message-ID" not in out and getattr(msg, "messageId", None):
            out["Message-ID"] = msg.messageId
        out.set_content(msg.body or "")
        html = msg.htmlBody
        if html:
            out.add_alternative(html.decode("utf-8", "replace") if isinstance(html, bytes) else str(html), subtype="html")
        for att in msg.attachments:
            payload = getattr(att, "data", None)
            if isinstance(payload, bytes):
                name = att.getFilename() if hasattr(att, "getFilename") else (att.longFilename or att.shortFilename or "attachment")
                out.add_attachment(payload, maintype="application", subtype="octet-stream", filename=name)
        return bytes(out)
    finally:
        msg.close()


def mbox_items(paths: Iterable[Path | str]) -> Iterator[RawItem]:
    """Every message of mbox files (folders: *.mbox and *.mbx)."""
    for path in _files(paths, {".mbox", ".mbx", ""}):
        try:
            box = mailbox.mbox(path, create=False)
            keys = list(box.keys())
        except Exception as exc:  # noqa: BLE001
            yield RawItem(str(path), error=f"not a readable mbox ({type(exc).__name__})")
            continue
        for i, key in enumerate(keys):
            try:
                yield RawItem(f"{path}#{i}", box.get_bytes(key))
            except Exception as exc:  # noqa: BLE001
                yield RawItem(f"{path}#{i}", error=f"unreadable mbox entry ({type(exc).__name__})")
        box.close()


def maildir_items(paths: Iterable[Path | str], mailbox_address: str | None = None) -> Iterator[RawItem]:
    """Messages of Maildir trees (Dovecot/Postfix layout; Maildir++ subfolders such as .Junk)."""
    for root in map(Path, paths):
        if not (root / "cur").is_dir() and not (root / "new").is_dir():
            raise NotFound(f"{root} is not a Maildir (no cur/ or new/ folder); point at the mailbox's Maildir")
        folders = [("", root)] + sorted((p.name.lstrip("."), p) for p in root.iterdir() if p.is_dir() and p.name.startswith("."))
        for name, folder in folders:
            location = MAILDIR_FOLDERS.get(name.lower().split(".")[-1], "Inbox/folder" if name else "Inbox/folder")
            for sub in ("new", "cur"):
                for path in sorted((folder / sub).glob("*")) if (folder / sub).is_dir() else []:
                    item = _read(path)
                    yield RawItem(item.source, item.data, item.error, location, mailbox_address)
