"""Untrusted values → safe HTML. Every value that reaches an HTML widget goes through here:
escaped (attributes too), URLs defanged, control characters made visible.

>>> esc('<img src=x onerror="alert(1)">')
'&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
>>> defang("https://login.micros0ft.com/a?b=1")
'hxxps[://]login[.]micros0ft[.]com/a?b=1'
>>> "<script>" in table_html(__import__("polars").DataFrame({"Subject": ["<script>x</script>"]}))
False
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")  # incl. bidi overrides
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
URL_COLUMNS = frozenset({"Url", "UrlChain", "Details", "SiteUrl", "FolderPath"})
MAX_CELL = 300


def esc(value: Any, limit: int | None = None) -> str:
    """Escaped text for HTML content or attribute values; control and direction characters
    are shown as escapes rather than obeyed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), text)
    return html.escape(text, quote=True)


def defang(url: Any) -> str:
    """A URL that cannot be clicked or auto-linked: hxxp(s)[://]host[.]name/path."""
    if url is None:
        return ""
    text = str(url)
    match = _SCHEME.match(text)
    scheme, rest = (match.group(1), text[match.end():]) if match else ("", text)
    host, sep, tail = rest.partition("/")
    host = host.replace(".", "[.]")
    scheme = scheme.lower().replace("http", "hxxp").replace("ftp", "fxp")
    return (f"{scheme}[://]" if scheme else "") + host + sep + tail


def _defang_text(text: str) -> str:
    """Defang every URL-looking run inside free text (e.g. a JSON list of URLs)."""
    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+", lambda m: defang(m.group(0)), text)


def cell(column: str, value: Any, limit: int = MAX_CELL) -> str:
    if value is not None and column in URL_COLUMNS:
        return esc(_defang_text(str(value)), limit)
    return esc(value, limit)


def table_html(frame: pl.DataFrame, columns: Sequence[str] | None = None, *, labels: dict[str, str] | None = None,
               numbered_from: int | None = None, css_class: str = "wb-table") -> str:
    """An escaped HTML table of *frame* (a page: keep it to a few hundred rows)."""
    columns = list(columns or frame.columns)
    labels = labels or {}
    head = "".join(f"<th>{esc(labels.get(c, c))}</th>" for c in columns)
    if numbered_from is not None:
        head = "<th>#</th>" + head
    body = []
    for i, row in enumerate(frame.select(columns).iter_rows()):
        cells = "".join(f"<td>{cell(c, v)}</td>" for c, v in zip(columns, row))
        if numbered_from is not None:
            cells = f"<td>{numbered_from + i}</td>" + cells
        body.append(f"<tr>{cells}</tr>")
    if not body:
        span = len(columns) + (numbered_from is not None)
        body.append(f'<tr><td colspan="{span}" class="wb-empty">No rows match.</td></tr>')
    return f'<table class="{esc(css_class)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def when(value: datetime | None) -> str:
    """A time as shown in tables: UTC, to the minute ("" for none)."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def rows_table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: Sequence[int] | bool = (),
               attrs: Sequence[str] = (), css: str = "", empty: str = "None.", limit: int | None = None) -> str:
    """A table of *rows* under the column titles *head*. Every cell is escaped (cut at *limit*)
    except the columns in *raw*, or all of them with ``raw=True``, which hold already-escaped HTML;
    *attrs* are already-escaped attributes per row. An empty table says *empty*.

    >>> rows_table(["Subject"], [["<b>x</b>"]])
    '<table class="wb-table"><thead><tr><th>Subject</th></tr></thead><tbody><tr ><td>&lt;b&gt;x&lt;/b&gt;</td></tr></tbody></table>'
    """
    def td(j: int, c: Any) -> str:
        return str(c) if raw is True or (raw is not False and j in raw) else esc(c, limit)
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = [f"<tr {attrs[i] if i < len(attrs) else ''}>" + "".join(f"<td>{td(j, c)}</td>" for j, c in enumerate(r))
            + "</tr>" for i, r in enumerate(rows)]
    if not body:
        body = [f'<tr><td colspan="{len(head)}" class="wb-empty">{esc(empty)}</td></tr>']
    classes = f"wb-table {css}".strip()
    return f'<table class="{classes}"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def definitions(pairs: Iterable[tuple[str, Any]]) -> str:
    """An escaped definition list (label: value) for detail panes."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{cell(k, v)}</dd>" for k, v in pairs if v not in (None, ""))
    return f'<dl class="wb-dl">{items}</dl>'


def pre(text: str | None, limit: int = 200_000) -> str:
    """Preformatted, escaped text (headers, plain-text bodies)."""
    return f'<pre class="wb-pre">{esc(text or "", limit)}</pre>'


STYLE = """<style>
.wb-table {border-collapse: collapse; font-size: 12px; width: 100%;}
.wb-table th, .wb-table td {border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top;
  max-width: 28em; overflow-wrap: anywhere;}
.wb-table th {background: #f3f3f3; position: sticky; top: 0;}
.wb-table td:first-child {white-space: nowrap;}
.wb-empty {color: #777; font-style: italic;}
.wb-dl {display: grid; grid-template-columns: max-content auto; gap: 2px 12px; font-size: 12px; margin: 0;}
.wb-dl dt {font-weight: 600; color: #444;} .wb-dl dd {margin: 0; overflow-wrap: anywhere;}
.wb-pre {font-size: 11px; max-height: 30em; overflow: auto; white-space: pre-wrap; background: #fafafa; padding: 6px;}
.wb-note {color: #555; font-size: 12px;}
.wb-scroll {max-height: 460px; overflow: auto; border: 1px solid #eee;}
</style>"""

__all__ = ["rows_table", "when", "esc", "defang", "cell", "table_html", "definitions", "pre", "STYLE", "URL_COLUMNS"]
