"""``workbench audit ...``: list, verify and export the audit log (registered on the main command).

``verify`` exits 1 with one line naming the first bad record when the chain is broken.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _open, _table, db_option
from workbench.errors import InputError


def _time(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it says otherwise)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--{name} {value!r} is not a date or time; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _filters(user: str | None, activity: str | None, target: str | None, since: str | None,
             until: str | None, result: str | None) -> dict[str, Any]:
    return {"user": user, "activity": activity, "target": target, "since": _time(since, "since"),
            "until": _time(until, "until"), "result": result}


def filter_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--user", default=None, help="Only this actor."),
        click.option("--activity", default=None, help="Exact activity, or a prefix ending in '.' or '*'."),
        click.option("--target", default=None, help="Targets containing this text."),
        click.option("--since", default=None, help="From this UTC date/time (inclusive)."),
        click.option("--until", default=None, help="Before this UTC date/time."),
        click.option("--result", type=click.Choice(["allowed", "denied", "ok", "failed"]), default=None),
    ]):
        fn = option(fn)
    return fn


@click.group()
def audit() -> None:
    """The audit log: who did what, to what, when, and how it went (hash-chained)."""


@audit.command("list")
@filter_options
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def audit_list(user: str | None, activity: str | None, target: str | None, since: str | None, until: str | None,
               result: str | None, limit: int, as_json: bool, home: Path | None, tenant_name: str,
               db_url: str | None) -> None:
    """Audit records, newest first."""
    from workbench.audit import query, require_reader
    from workbench.identity import acting_user

    _, store = _open(home, tenant_name, db_url)
    require_reader(store, acting_user())
    found = query(store, **_filters(user, activity, target, since, until, result), limit=limit)
    if as_json:
        for r in found:
            click.echo(json.dumps(r.to_json(), ensure_ascii=False))
        return
    click.echo(_table([[r.seq, r.at.strftime("%Y-%m-%d %H:%M:%S"), r.actor, r.activity, r.target, r.result.value,
                        r.request_id[:12]] for r in found],
                      ["seq", "at (UTC)", "actor", "activity", "target", "result", "request"]))


@audit.command("verify")
@click.option("--known", default=None, metavar="SEQ:HASH",
              help="A record's seq and hash kept outside the database (from an export); it must still be there.")
@home_option
@tenant_option
@db_option
@friendly_errors
def audit_verify(known: str | None, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Check every record's hash and link and the anchor; exit 1 naming the first bad record."""
    from workbench.audit import verify

    pair = None
    if known:
        seq, _, digest = known.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise InputError(f"--known {known!r} is not SEQ:HASH; use e.g. 42:<64 hex digits> from an export")
        pair = (int(seq), digest.lower())
    _, store = _open(home, tenant_name, db_url)
    outcome = verify(store, known=pair)
    click.echo(outcome.render(), err=not outcome.ok)
    if not outcome.ok:
        sys.exit(1)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
@filter_options
@home_option
@tenant_option
@db_option
@friendly_errors
def audit_export(fmt: str, out: Path, user: str | None, activity: str | None, target: str | None,
                 since: str | None, until: str | None, result: str | None, home: Path | None, tenant_name: str,
                 db_url: str | None) -> None:
    """Write the (filtered) audit log, oldest first, as JSON lines or CSV (atomically); the export is audited."""
    from workbench.audit import export
    from workbench.identity import acting_user

    _, store = _open(home, tenant_name, db_url)
    n = export(store, out, fmt, actor=acting_user(), **_filters(user, activity, target, since, until, result))
    click.echo(f"{n:,} audit record(s) written to {out}")


__all__ = ["audit"]
