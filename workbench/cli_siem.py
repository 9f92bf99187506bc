"""``workbench siem ...``: feed a SIEM (docs/siem.md).

A destination is a format (o365, ocsf, cef) and a target, written as one address:

    file:/var/log/workbench/events.jsonl      JSON lines (CEF: one line each)
    syslog+tcp://siem.example.org:6514        RFC 5424 over TCP, octet-counted (syslog:// is TCP too)
    syslog+udp://siem.example.org:514         RFC 5424 over UDP
    hec+https://splunk.example.org:8088       Splunk HTTP Event Collector (--token-env NAME)
    https://hooks.example.org/workbench       a JSON webhook signed with HMAC-SHA256 (--secret-env NAME)

``export`` sends what is new (or everything after ``--since``) once; ``stream`` keeps following
new events; both resume from the destination's checkpoint, so nothing is lost or skipped.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from workbench.cli_audit import _time
from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _open, _table, db_option
from workbench.cli_mail import safe
from workbench.errors import InputError


def parse_target(target: str, *, token_env: str | None = None, secret_env: str | None = None,
                 ca_file: str | None = None, facility: str | None = None) -> tuple[str, dict[str, Any]]:
    """(transport kind, settings) of a destination address (see the module docstring).

    >>> parse_target("syslog+tcp://127.0.0.1:6514")
    ('syslog-tcp', {'host': '127.0.0.1', 'port': 6514})
    >>> parse_target("file:/tmp/x.jsonl")
    ('file', {'path': '/tmp/x.jsonl'})
    """
    text = (target or "").strip()
    if text.startswith("file:"):
        path = text.removeprefix("file:").removeprefix("//")
        if not path:
            raise InputError("--to file: needs a path, e.g. file:/var/log/workbench/events.jsonl")
        return "file", {"path": path}
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    http_extra = {k: v for k, v in (("ca_file", ca_file),) if v}
    if scheme in ("syslog", "syslog+tcp", "syslog+udp"):
        if not parts.hostname:
            raise InputError(f"--to {target!r} names no host; use e.g. syslog+tcp://siem.example.org:6514")
        try:
            port = parts.port or 514
        except ValueError:
            raise InputError(f"--to {target!r} has an invalid port; use 1-65535") from None
        settings: dict[str, Any] = {"host": parts.hostname, "port": port}
        if facility:
            settings["facility"] = facility
        return ("syslog-udp" if scheme == "syslog+udp" else "syslog-tcp"), settings
    if scheme in ("hec+http", "hec+https"):
        if not token_env:
            raise InputError("a Splunk HEC destination needs --token-env NAME (the variable holding the token)")
        url = text.split("+", 1)[1]
        return "hec", {"url": url, "token_env": token_env, **http_extra}
    if scheme in ("http", "https"):
        if not secret_env:
            raise InputError("a webhook destination needs --secret-env NAME (the variable holding the HMAC secret)")
        return "webhook", {"url": text, "secret_env": secret_env, **http_extra}
    raise InputError(f"--to {target!r} is not a destination; use file:PATH, syslog+tcp://HOST:PORT, "
                     "syslog+udp://HOST:PORT, hec+https://HOST:PORT or https://WEBHOOK")


def _destination(name: str, fmt: str, target: str, **options: Any) -> Any:
    from workbench.siem.delivery import Destination

    kind, settings = parse_target(target, **options)
    return Destination(name, fmt, kind, settings)


def _report_line(rep: Any) -> str:
    return safe(rep.summary())


target_options = [
    click.option("--format", "fmt", type=click.Choice(["o365", "ocsf", "cef"]), required=True),
    click.option("--to", "target", required=True, help="file:PATH, syslog+tcp://H:P, syslog+udp://H:P, "
                                                        "hec+https://H:P or https://WEBHOOK"),
    click.option("--token-env", default=None, help="HEC: the environment variable holding the token."),
    click.option("--secret-env", default=None, help="Webhook: the variable holding the HMAC secret."),
    click.option("--ca-file", default=None, help="HTTPS: a PEM bundle of a private CA."),
    click.option("--facility", default=None, help="Syslog facility (default local0)."),
]


def with_target_options(fn: Any) -> Any:
    for option in reversed(target_options):
        fn = option(fn)
    return fn


@click.group()
def siem() -> None:
    """Send the workbench's events to a SIEM: O365 Management Activity records, OCSF or CEF."""


@siem.command("add")
@click.argument("name")
@with_target_options
@click.option("--replace", "replace_existing", is_flag=True, help="Replace a destination of that name.")
@home_option
@tenant_option
@db_option
@friendly_errors
def add(name: str, fmt: str, target: str, token_env: str | None, secret_env: str | None, ca_file: str | None,
        facility: str | None, replace_existing: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Add a named destination (needs SIEM configuration; audited)."""
    from workbench.identity import acting_user
    from workbench.siem.delivery import configure

    dest = _destination(name, fmt, target, token_env=token_env, secret_env=secret_env, ca_file=ca_file,
                        facility=facility)
    _, store = _open(home, tenant_name, db_url)
    configure(store, acting_user(), dest, replace_existing=replace_existing)
    click.echo(f"destination {dest.name}: {dest.format.value} over {dest.transport.value}")


@siem.command("list")
@home_option
@tenant_option
@db_option
@friendly_errors
def list_cmd(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Destinations and how far each has been delivered."""
    from workbench.siem.delivery import checkpoint, list_destinations

    _, store = _open(home, tenant_name, db_url)
    rows = []
    for d in list_destinations(store):
        position = checkpoint(store, d.name)
        last = max((t for t, _ in position.values()), default=None)
        rows.append([d.name, d.format.value, d.transport.value, safe(str(dict(d.settings)))[:70],
                     f"{last:%Y-%m-%d %H:%M:%S}" if last else "nothing yet"])
    click.echo(_table(rows, ["name", "format", "transport", "settings", "delivered up to (UTC)"]))


@siem.command("remove")
@click.argument("name")
@home_option
@tenant_option
@db_option
@friendly_errors
def remove_cmd(name: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Remove a destination and its checkpoint (needs SIEM configuration; audited)."""
    from workbench.identity import acting_user
    from workbench.siem.delivery import remove

    _, store = _open(home, tenant_name, db_url)
    remove(store, acting_user(), name)
    click.echo(f"destination {name} removed")


def _since(value: str | None, sources: tuple[str, ...]) -> dict[str, tuple[datetime, str]] | None:
    from workbench.siem.events import SOURCES

    when = _time(value, "since")
    return None if when is None else {s: (when, "") for s in (sources or SOURCES)}


def _deliver(tenant: Any, store: Any, dest: Any, since: Any, sources: tuple[str, ...], batch_size: int) -> Any:
    from workbench.lake import Lake
    from workbench.siem import events
    from workbench.siem.delivery import checkpoint, deliver

    position = {**checkpoint(store, dest.name), **(since or {})}
    stream = events.collect(Lake.for_tenant(tenant), store, since=position or None,
                            **({"sources": sources} if sources else {}))
    from tqdm import tqdm

    with tqdm(desc="delivered", unit="event", leave=False) as bar:  # the total is unknown until the end

        def progress(rep: Any) -> None:
            bar.n = rep.delivered
            bar.refresh()
        return deliver(store, dest, stream, batch_size=batch_size, progress=progress)


@siem.command("export")
@click.option("--destination", "name", default=None, help="A destination added with `workbench siem add`.")
@click.option("--format", "fmt", type=click.Choice(["o365", "ocsf", "cef"]), default=None)
@click.option("--to", "target", default=None, help="An address instead of a named destination (see --help of add).")
@click.option("--token-env", default=None)
@click.option("--secret-env", default=None)
@click.option("--ca-file", default=None)
@click.option("--since", default=None, help="Only events after this UTC date/time.")
@click.option("--source", "sources", multiple=True,
              type=click.Choice(["email", "click", "file", "investigation", "simulation", "alert", "incident"]))
@click.option("--batch-size", type=int, default=100, show_default=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def export(name: str | None, fmt: str | None, target: str | None, token_env: str | None, secret_env: str | None,
           ca_file: str | None, since: str | None, sources: tuple[str, ...], batch_size: int, home: Path | None,
           tenant_name: str, db_url: str | None) -> None:
    """Deliver what is new since the last export (or after --since) once; exit 1 if some stays pending."""
    from workbench.identity import acting_user
    from workbench.siem.delivery import configure, get, list_destinations

    tenant, store = _open(home, tenant_name, db_url)
    if name:
        dest = get(store, name)
    elif fmt and target:  # an ad-hoc address becomes a destination, so its checkpoint persists
        adhoc = _destination("export-" + fmt + "-" + "".join(c if c.isalnum() else "-" for c in target)[-80:].strip("-"),
                             fmt, target, token_env=token_env, secret_env=secret_env, ca_file=ca_file)
        known = {d.name for d in list_destinations(store)}
        dest = adhoc if adhoc.name in known else configure(store, acting_user(), adhoc)
    else:
        raise InputError("give --destination NAME, or --format and --to ADDRESS")
    rep = _deliver(tenant, store, dest, _since(since, sources), sources, batch_size)
    click.echo(_report_line(rep))
    if rep.pending or rep.fatal:
        raise SystemExit(1)


@siem.command("stream")
@click.option("--destination", "name", required=True)
@click.option("--poll", type=float, default=10.0, show_default=True, help="Seconds between rounds.")
@click.option("--batch-size", type=int, default=100, show_default=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def stream_cmd(name: str, poll: float, batch_size: int, home: Path | None, tenant_name: str,
               db_url: str | None) -> None:
    """Keep delivering new events to a destination until Ctrl-C (temporary failures retry next round)."""
    from workbench.lake import Lake
    from workbench.siem.delivery import get, lake_source, stream

    tenant, store = _open(home, tenant_name, db_url)
    dest = get(store, name)
    stop = threading.Event()
    click.echo(f"streaming to {dest.name} every {poll:g} s (Ctrl-C to stop)", err=True)
    try:
        total = stream(store, dest, lake_source(Lake.for_tenant(tenant), store), poll_seconds=poll, stop=stop,
                       batch_size=batch_size, on_round=lambda rep: click.echo(_report_line(rep)))
    except KeyboardInterrupt:
        stop.set()
        click.echo("stopped; the checkpoint is at the last confirmed batch", err=True)
        return
    if total.fatal:
        raise InputError(total.error or "the destination refused the configuration")


__all__ = ["siem", "parse_target"]
