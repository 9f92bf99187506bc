"""Attachment features: executables (also inside archives), macros, double extensions,
types that do not match their names, HTML smuggling and credential pages, encrypted archives."""

from __future__ import annotations

import re

from workbench.detect.evidence import Context, Evidence, Findings, analyzer
from workbench.ingest.files import EXECUTABLE
from workbench.ingest.message import ParsedMessage

_SMUGGLING = re.compile(rb"(atob\s*\(|msSaveOrOpenBlob|createObjectURL|new\s+Blob\s*\(|\.download\s*=)", re.IGNORECASE)
_PASSWORD = re.compile(rb"type\s*=\s*[\"']?password", re.IGNORECASE)
_DOUBLE = re.compile(r"\.(pdf|docx?|xlsx?|txt|jpg|png|html?)\.(exe|scr|js|vbs|bat|cmd|com|hta|lnk|iso|img)$", re.IGNORECASE)
_DISK = {"iso", "img", "vhd", "vhdx"}
# A name/content mismatch matters when either side is a type that runs or hides code.
_RISKY = EXECUTABLE | _DISK | {"zip", "rar", "7z", "gz", "html", "htm", "ole", "docm", "xlsm", "pptm", "rtf"}


@analyzer("attachment")
def attachment_features(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = Findings("attachment")
    add = out.add

    for top in m.attachments:
        for f in top.walk():
            inside = f is not top
            where = f"{f.file_name} (in {top.file_name})" if inside else f.file_name
            if f.true_type in EXECUTABLE or f.extension in EXECUTABLE:
                add("attachment.archive_executable" if inside else "attachment.executable",
                    f"executable content: {where} ({f.true_type})")
            if f.true_type in _DISK or f.extension in _DISK:
                add("attachment.disk_image", f"disk image: {where}")
            if f.macros:
                keywords = f" ({', '.join(f.macro_keywords)})" if f.macro_keywords else ""
                add("attachment.macro", f"Office document with macros: {where}{keywords}")
            if _DOUBLE.search(f.file_name):
                add("attachment.double_extension", f"double extension hides the real type: {where}")
            if f.type_mismatch and (f.true_type in _RISKY or f.extension in _RISKY):
                add("attachment.type_mismatch", f"{where} claims .{f.extension} but is {f.true_type}")
            if f.encrypted and f.true_type in ("zip", "encrypted", "7z", "rar"):
                add("attachment.encrypted_archive", f"password-protected archive: {where}")
            if f.bomb:
                add("attachment.archive_bomb", f"archive expands beyond safe limits: {where}")
    for part in _html_attachments(m):
        name, data = part
        if _SMUGGLING.search(data):
            add("attachment.html_smuggling", f"HTML attachment {name} assembles a download in script")
        if _PASSWORD.search(data):
            add("attachment.html_credential_form", f"HTML attachment {name} contains a password field")
    return out


def _html_attachments(m: ParsedMessage):
    """(name, bytes) of HTML attachments, re-read from the raw message (bounded)."""
    if not any(f.true_type == "html" for top in m.attachments for f in top.walk()):
        return []
    import email
    import email.policy

    out = []
    msg = email.message_from_bytes(m.raw, policy=email.policy.compat32)
    for part in msg.walk():
        name = part.get_filename() or ""
        if part.get_content_type() == "text/html" and (name or "attachment" in str(part.get("Content-Disposition", ""))):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                out.append((name or "attachment.html", data[:2_000_000]))
        elif name.lower().endswith((".htm", ".html", ".shtml", ".xhtml")):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                out.append((name, data[:2_000_000]))
    return out
