"""CSV cells a spreadsheet will not run: untrusted text starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is prefixed with ``'`` (CSV formula injection).

>>> spreadsheet_safe('=HYPERLINK("http://x")'), spreadsheet_safe("ann"), spreadsheet_safe(None)
('\\'=HYPERLINK("http://x")', 'ann', '')
"""

from __future__ import annotations

from typing import Any


def spreadsheet_safe(value: Any) -> str:
    """*value* as CSV text that opens as text, never as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


__all__ = ["spreadsheet_safe"]
