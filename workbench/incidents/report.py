"""An incident as a report for people outside the workbench: self-contained HTML (inline
style, no script, nothing fetched) and Markdown.

Every value from the store is untrusted (alert titles and entities come from mail): HTML
escapes it with ``workbench.ui.render`` (URLs defanged); Markdown escapes its punctuation
and angle brackets so a renderer cannot turn it into links, images or tags.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError, StorageError
from workbench.incidents.model import EntityKind
from workbench.incidents.repo import IncidentPage
from workbench.ui.render import defang, esc

if TYPE_CHECKING:
    from workbench.endpoint.incident import UserDevice

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:16px;margin-top:22px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border-bottom:1px solid #e3e3e3;padding:3px 6px;
text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f3f3f3}dl{display:grid;
grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}dt{font-weight:600;color:#444}dd{margin:0}
.sev-high{color:#c92a2a;font-weight:600}.sev-medium{color:#e67700;font-weight:600}.note{color:#666;font-size:12px}
pre{white-space:pre-wrap;background:#fafafa;padding:6px;font-size:12px}"""


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _shown(kind: EntityKind | str, value: str) -> str:
    """An entity value as displayed: URLs (and URL-like domains) defanged."""
    if EntityKind(kind) in (EntityKind.URL, EntityKind.DOMAIN) or "://" in value:
        return defang(value) if "://" in value else value.replace(".", "[.]")
    return value


def _summary(p: IncidentPage) -> list[tuple[str, str]]:
    i = p.incident
    rows = [("Status", i.status.value), ("Severity", i.severity.value), ("Assigned to", i.assigned_to or "unassigned"),
            ("Classification", i.classification.value), ("Determination", i.determination.value),
            ("Created", _when(i.created)), ("Last update", _when(i.last_update)),
            ("First activity", _when(i.first_activity)), ("Last activity", _when(i.last_activity)),
            ("Alerts", str(len(p.alerts))), ("Evidence", str(len(p.evidence))),
            ("Tags", ", ".join(i.tags + i.system_tags))]
    if i.redirect_id:
        rows.append(("Merged into", f"incident {i.redirect_id}"))
    if p.merged_from:
        rows.append(("Merged from", ", ".join(f"incident {m}" for m in p.merged_from)))
    if i.resolution_note:
        rows.append(("Resolution note", i.resolution_note))
    return rows


def _timeline(p: IncidentPage) -> list[tuple[datetime, str, str]]:
    events = [(a.first_activity, "alert", f"{a.title} ({a.severity.value})") for a in p.alerts]
    events += [(a.at, a.actor, f"{a.action}: {a.old} → {a.new}" if a.old else f"{a.action}: {a.new}")
               for a in p.activity]
    return sorted(events, key=lambda e: e[0])


def _device_head() -> list[str]:
    from workbench.endpoint.incident import HEADINGS

    return HEADINGS


def html(p: IncidentPage, *, generated_by: str = "", devices: Sequence[UserDevice] | None = None) -> str:
    """The report as one HTML document (no script, no external resource). *devices* (the
    users' devices, :func:`workbench.endpoint.incident.incident_devices`) adds a section."""
    i = p.incident

    def table(head: list[str], rows: list[list[Any]]) -> str:
        if not rows:
            return '<p class="note">None.</p>'
        th = "".join(f"<th>{esc(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    summary = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _summary(p) if v)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
        f"<title>Incident {i.id}: {esc(i.name)}</title><style>{_CSS}</style></head><body>",
        f'<h1>Incident {i.id}: {esc(i.name)}</h1><p class="note">Report generated {esc(_when(datetime.now(UTC)))}'
        + (f" by {esc(generated_by)}" if generated_by else "") + "</p>",
        f'<h2>Summary</h2><dl>{summary}</dl>',
        f"<pre>{esc(i.description)}</pre>" if i.description else "",
        "<h2>Alerts</h2>" + table(["Id", "Title", "Severity", "Status", "Category", "Policy", "First activity",
                                   "Messages"],
                                  [[a.id, a.title, a.severity.value, a.status.value, a.category, a.policy_id,
                                    _when(a.first_activity), a.message_count] for a in p.alerts]),
        "<h2>Evidence</h2>" + table(["Kind", "Entity", "Verdict", "Remediation", "Source", "Added"],
                                    [[e.entity.kind.value, _shown(e.entity.kind, e.entity.value), e.verdict.value,
                                      e.remediation.value, e.source, _when(e.added)] for e in p.evidence]),
        "<h2>User devices</h2>" + table(_device_head(), [d.row for d in devices]) if devices is not None else "",
        "<h2>Timeline</h2>" + table(["Time", "Who", "What"], [[_when(t), who, what] for t, who, what in _timeline(p)]),
        "<h2>Comments</h2>" + ("".join(f'<p><b>{esc(c.author)}</b> <span class="note">{esc(_when(c.created))}</span>'
                                       f"<br>{esc(c.text)}</p>" for c in p.comments) or '<p class="note">None.</p>'),
        "</body></html>",
    ]
    return "\n".join(x for x in parts if x)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_text(value: Any) -> str:
    """Untrusted text made inert in Markdown: punctuation escaped, tags shown, one line."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"[\r\n]+", " ", text)


def markdown(p: IncidentPage, *, generated_by: str = "", devices: Sequence[UserDevice] | None = None) -> str:
    """The report as Markdown (tables in GitHub style); *devices* as for :func:`html`."""
    i = p.incident

    def table(head: list[str], rows: list[list[Any]]) -> list[str]:
        if not rows:
            return ["None.", ""]
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                *("| " + " | ".join(md_text(c) for c in r) + " |" for r in rows), ""]

    out = [f"# Incident {i.id}: {md_text(i.name)}", "",
           f"Report generated {_when(datetime.now(UTC))}" + (f" by {md_text(generated_by)}" if generated_by else ""),
           "", "## Summary", ""]
    out += [f"- **{k}**: {md_text(v)}" for k, v in _summary(p) if v] + [""]
    out += ["## Alerts", ""] + table(
        ["Id", "Title", "Severity", "Status", "Category", "Policy", "First activity", "Messages"],
        [[a.id, a.title, a.severity.value, a.status.value, a.category, a.policy_id, _when(a.first_activity),
          a.message_count] for a in p.alerts])
    out += ["## Evidence", ""] + table(
        ["Kind", "Entity", "Verdict", "Remediation", "Source"],
        [[e.entity.kind.value, _shown(e.entity.kind, e.entity.value), e.verdict.value, e.remediation.value,
          e.source] for e in p.evidence])
    if devices is not None:
        out += ["## User devices", ""] + table(_device_head(), [d.row for d in devices])
    out += ["## Timeline", ""] + table(["Time", "Who", "What"],
                                       [[_when(t), who, what] for t, who, what in _timeline(p)])
    out += ["## Comments", ""]
    out += [f"- **{md_text(c.author)}** ({_when(c.created)}): {md_text(c.text)}" for c in p.comments] or ["None."]
    return "\n".join(out) + "\n"


def write(p: IncidentPage, path: Path | str, *, generated_by: str = "",
          devices: Sequence[UserDevice] | None = None) -> Path:
    """Write the report; ``.html``/``.htm`` or ``.md`` decides the format. Atomic: a failed
    write leaves no partial file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        text = html(p, generated_by=generated_by, devices=devices)
    elif suffix in (".md", ".markdown"):
        text = markdown(p, generated_by=generated_by, devices=devices)
    else:
        raise InputError(f"cannot write an incident report as {path.name!r}; end the name in .html or .md")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {exc.strerror}; choose a writable folder") from None
    return path
