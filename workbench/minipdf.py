"""A valid PDF from its objects: numbered in order (1 is the catalog), a cross-reference table
with their byte offsets, and the trailer. Enough for the harmless documents the workbench writes
(demo attachments, simulation payloads); nothing here parses PDF.

>>> assemble([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])[:8]
b'%PDF-1.4'
"""

from __future__ import annotations

from collections.abc import Sequence

HEADER = b"%PDF-1.4\n"


def assemble(objects: Sequence[bytes], *, header: bytes = HEADER) -> bytes:
    """The document whose objects are *objects* (object n is ``objects[n - 1]``; 1 the catalog)."""
    out = bytearray(header)
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


__all__ = ["assemble", "HEADER"]
