"""``workbench mail ...``: which mail store a tenant acts on, and Find and delete (registered on the main command).

``configure`` points the tenant at a Maildir tree (or back at its embedded store), ``show`` says
which store it uses and what it holds, ``search`` finds message copies by content (Search and
Purge role, audited) and with ``--propose`` files one pending action for them in the action center;
``download`` saves one message's raw content (content read, audited).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _table, db_option

PROPOSE = {"soft-delete": "softDelete", "hard-delete": "hardDelete", "move-junk": "moveToJunk"}
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def safe(value: Any) -> str:
    """Attacker-controlled text for a terminal: URLs defanged, control and direction characters shown as escapes."""
    from workbench.ui.render import defang

    text = "" if value is None else str(value)
    text = _URL.sub(lambda m: defang(m.group(0)), text)
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode(), text)


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _tenant(home: Path | None, tenant_name: str) -> Any:
    from workbench import tenant as tenants

    return tenants.open_tenant(tenant_name, base=home)


@click.group()
def mail() -> None:
    """The tenant's mail store (embedded or a Maildir tree) and Find and delete."""


@mail.command("configure")
@click.option("--maildir", "root", type=click.Path(path_type=Path), default=None,
              help="Root of a Dovecot/Postfix Maildir tree (e.g. /var/vmail).")
@click.option("--layout", default=None, help="Where a mailbox's Maildir is under ROOT: %d domain, %n local part, "
              "%u address (default %d/%n/Maildir).")
@click.option("--naming", type=click.Choice(["dovecot", "exchange"]), default="dovecot", show_default=True,
              help="Names of the folders the workbench creates (Junk, Trash... or Junk Email, Deleted Items...).")
@click.option("--folder-name", "folder_names", multiple=True, metavar="FOLDER=NAME",
              help='Override one folder\'s Maildir++ name, e.g. "Junk Email=Spam" (repeatable).')
@click.option("--embedded", is_flag=True, help="Use the tenant's embedded store again.")
@home_option
@tenant_option
@friendly_errors
def mail_configure(root: Path | None, layout: str | None, naming: str, folder_names: tuple[str, ...], embedded: bool,
                   home: Path | None, tenant_name: str) -> None:
    """Point the tenant's remediation and searches at a Maildir tree, or back at the embedded store."""
    from workbench.errors import InputError
    from workbench.mail import config
    from workbench.mail.maildir import DEFAULT_LAYOUT

    if embedded == (root is not None):
        raise InputError("give either --maildir ROOT or --embedded")
    if embedded and (layout or folder_names or naming != "dovecot"):
        raise InputError("--layout, --naming and --folder-name apply to --maildir only")
    tenant = _tenant(home, tenant_name)
    if embedded:
        settings = config.configure_embedded(tenant)
    else:
        overrides = {}
        for item in folder_names:
            folder, sep, name = item.partition("=")
            if not sep:
                raise InputError(f"--folder-name {item!r}: write FOLDER=NAME, e.g. \"Junk Email=Spam\"")
            overrides[folder.strip()] = name
        assert root is not None
        settings = config.configure_maildir(tenant, root, layout=layout or DEFAULT_LAYOUT,
                                            folder_names=overrides, naming=naming)
    click.echo(f"tenant {tenant.name} now acts on its {settings.describe()}")


@mail.command("show")
@click.option("--mailbox", default=None, help="Also list this mailbox's folders and their copies.")
@click.option("--list", "list_mailboxes", is_flag=True, help="Also list every mailbox.")
@home_option
@tenant_option
@friendly_errors
def mail_show(mailbox: str | None, list_mailboxes: bool, home: Path | None, tenant_name: str) -> None:
    """Which store the tenant uses, how many mailboxes it holds (and one mailbox's folder counts)."""
    from workbench.errors import NotFound
    from workbench.mail import config, open_mail_store

    tenant = _tenant(home, tenant_name)
    settings = config.load(tenant)
    store = open_mail_store(tenant)
    try:
        click.echo(f"{'store':>10}: {settings.describe()}")
        click.echo(f"{'location':>10}: {settings.root if settings.store == 'maildir' else tenant.mail_dir / 'store.sqlite'}")
        boxes = store.mailboxes()
        click.echo(f"{'mailboxes':>10}: {len(boxes):,}")
        if list_mailboxes:
            for box in boxes:
                click.echo(f"{'':>10}  {safe(box)}")
        if mailbox:
            counts = store.folder_counts(mailbox)
            if not counts:
                raise NotFound(f"mailbox {mailbox.strip().lower()!r} holds no copies in this store; "
                               "check the address (`workbench mail show --list` lists the mailboxes)")
            click.echo(_table([[f.value, n] for f, n in sorted(counts.items(), key=lambda x: -x[1])],
                              [mailbox.strip().lower(), "copies"]))
    finally:
        store.close()  # type: ignore[attr-defined]


@mail.command("search")
@click.option("--sender", default=None, help="Address, or domain (evil.test) of From / Sender / Return-Path.")
@click.option("--recipient", "recipients", multiple=True, help="Address or domain of a recipient (repeatable).")
@click.option("--subject", default=None, help="Text the subject contains (any case).")
@click.option("--body", default=None, help="Text the body contains (any case, any white space).")
@click.option("--url", default=None, help="Text a URL contains.")
@click.option("--attachment", default=None, help="Attachment file name (* and ? wildcards; archive members too).")
@click.option("--sha256", default=None, help="SHA-256 of an attachment.")
@click.option("--from", "start", default=None, metavar="DATE", help="Message date from (ISO, inclusive).")
@click.option("--to", "end", default=None, metavar="DATE", help="Message date to (ISO; a bare date includes that day).")
@click.option("--mailbox", "mailboxes", multiple=True, help="Search only this mailbox (repeatable).")
@click.option("--propose", type=click.Choice(list(PROPOSE)), default=None,
              help="File one pending action for every copy found (an approver then runs it).")
@click.option("--reason", default="", help="Why (kept with the proposed action).")
@click.option("--limit", type=int, default=200, show_default=True, help="Hits printed (all are proposed).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def mail_search(sender: str | None, recipients: tuple[str, ...], subject: str | None, body: str | None,
                url: str | None, attachment: str | None, sha256: str | None, start: str | None, end: str | None,
                mailboxes: tuple[str, ...], propose: str | None, reason: str, limit: int, as_json: bool,
                home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Find every copy of a message by content in the tenant's mail store (Find and delete)."""
    from workbench.cli_actions import _Progress
    from workbench.identity import acting_user
    from workbench.mail.config import search_tenant
    from workbench.mail.search import SearchCriteria

    criteria = SearchCriteria(sender=sender, recipients=recipients, subject=subject, body=body, url=url,
                              attachment_name=attachment, attachment_sha256=sha256, start=start, end=end,
                              mailboxes=mailboxes)
    tenant = _tenant(home, tenant_name)
    actor = acting_user()
    from workbench.store import open_store

    roles = open_store(tenant, db_url)  # role assignments and the audit log
    try:
        with _Progress("searching mail") as update:
            result = search_tenant(tenant, criteria, actor=actor, progress=update, roles=roles)
    finally:
        roles.dispose()
    shown = result.hits[:max(limit, 0)]
    if as_json:
        for h in shown:
            click.echo(json.dumps({"networkMessageId": h.ref.network_message_id, "mailbox": h.ref.mailbox,
                                   "folder": h.folder.value, "date": h.date.isoformat() if h.date else None,
                                   "sender": safe(h.sender), "subject": safe(h.subject),
                                   "matched": [safe(m) for m in h.matched]}, ensure_ascii=False))
    else:
        click.echo(_table([[h.ref.network_message_id, h.ref.mailbox, h.folder.value,
                            f"{h.date:%Y-%m-%d %H:%M}" if h.date else "", safe(h.sender), safe(h.subject),
                            safe("; ".join(h.matched))] for h in shown],
                          ["NetworkMessageId", "mailbox", "folder", "date", "sender", "subject", "matched"]))
    messages = len({h.ref.network_message_id for h in result.hits})
    more = f" (first {len(shown):,} shown; raise --limit)" if len(shown) < len(result.hits) else ""
    skipped = f"; {len(result.skipped):,} messages not searched: {safe(result.skipped[0])}" if result.skipped else ""
    click.echo(f"{_n(len(result.hits), 'copy', 'copies')} of {_n(messages, 'message')} match{more}; "
               f"{result.scanned:,} copies scanned in {result.seconds:.1f} s{skipped}", err=as_json)
    if propose:
        _propose(tenant, db_url, actor, PROPOSE[propose], result, reason)


@mail.command("download")
@click.argument("network_message_id")
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to write <id>.eml.txt into.")
@home_option
@tenant_option
@db_option
@friendly_errors
def mail_download(network_message_id: str, folder: Path, home: Path | None, tenant_name: str,
                  db_url: str | None) -> None:
    """Save one message's raw content (needs content read: Preview or Global Administrator; audited)."""
    from workbench.identity import acting_user
    from workbench.mail import open_mail_store
    from workbench.mail.download import download
    from workbench.store import open_store

    tenant = _tenant(home, tenant_name)
    roles, store = open_store(tenant, db_url), open_mail_store(tenant)
    try:
        path = download(store, network_message_id.strip(), folder, roles=roles, actor=acting_user())
    finally:
        store.close()  # type: ignore[attr-defined]
        roles.dispose()
    click.echo(f"saved {path} ({path.stat().st_size:,} bytes); open it as text, never in a mail client")


def _propose(tenant: Any, db_url: str | None, actor: str, kind: str, result: Any, reason: str) -> None:
    """One pending action for every copy found, through the action center (joins an identical open one)."""
    from workbench.actions import ActionKind, ActionService
    from workbench.store import open_store

    if not result.hits:
        click.echo("no copies found: nothing proposed")
        return
    criteria = ", ".join(f"{k}={v}" for k, v in result.criteria.to_dict().items())
    store = open_store(tenant, db_url)
    try:
        service = ActionService(store, actor)  # proposing reads no mail
        label = ActionKind(kind).label
        action = service.propose(kind, copies=result.refs, source="cli", source_ref=f"mail search: {criteria}"[:300],
                                 target=f"{len(result.refs):,} email copies found by mail search",
                                 name=f"{label}: {len(result.refs):,} copies found by mail search ({criteria})"[:1000],
                                 reason=reason or f"mail search: {criteria}")
    finally:
        store.dispose()
    then = (f"an approver approves it with: workbench actions approve {action.id}" if action.status.decidable
            else f"follow it with: workbench actions show {action.id}")
    click.echo(f"action {action.id} ({action.kind.label}, {action.totals.targets:,} copies) is {action.status.value}; "
               f"{then}")


__all__ = ["mail", "safe"]
