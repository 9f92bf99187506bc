"""``workbench actions ...``: the action center on the command line (registered on the main command).

The acting user is ``WORKBENCH_USER`` (else the OS user); approving, rejecting, running and
undoing need the action approval permission (docs/rbac.md; without role assignments, ``WORKBENCH_APPROVERS``,
see workbench/actions/permissions.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _table, _when, db_option

STATUSES = ["proposed", "pending", "approved", "rejected", "queued", "running", "completed", "partiallyCompleted",
            "failed", "expired", "requested", "undone"]


def _service(home: Path | None, tenant_name: str, db_url: str | None) -> Any:
    from workbench import tenant as tenants
    from workbench.actions import ActionService
    from workbench.identity import acting_user
    from workbench.store import open_store

    tenant = tenants.open_tenant(tenant_name, base=home)
    return ActionService.for_tenant(tenant, open_store(tenant, db_url), acting_user())


class _Progress:
    """A tqdm bar opened at the first update, so a refused run prints only its error line."""

    def __init__(self, desc: str) -> None:
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="copy", desc=self.desc, leave=False)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _summary(a: Any) -> str:
    x = a.totals
    moves = a.kind.moves_mail or a.kind.moves_files
    counts = f"; {x.render()}" if moves and x.done else (f"; {x.targets:,} copies" if x.targets else "")
    if a.kind.moves_files:
        counts = counts.replace("copies", "files").replace(" moved,", " done,")
    return f"action {a.id} ({a.kind.label}) is {a.status.value}{counts}"


def _place(folder: Any) -> str:
    """A file target's state as the CLI shows it."""
    return "quarantine" if folder else "its place"


@click.group()
def actions() -> None:
    """The action center: pending remediation, approvals, runs and undo."""


@actions.command("list")
@click.option("--status", multiple=True, type=click.Choice(STATUSES), help="Repeatable (default: all).")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_list(status: tuple[str, ...], limit: int, as_json: bool, home: Path | None, tenant_name: str,
                 db_url: str | None) -> None:
    """Actions, newest first (pending ones past 7 days are expired first)."""
    found = _service(home, tenant_name, db_url).list(status, limit=limit)
    if as_json:
        for a in found:
            click.echo(json.dumps({"id": a.id, "kind": a.kind.value, "status": a.status.value, "source": a.source.value,
                                   "sourceRef": a.source_ref, "name": a.name, "copies": a.totals.targets,
                                   "proposedBy": a.proposed_by, "decidedBy": a.decided_by,
                                   "created": a.created.isoformat(), "expires": a.expires.isoformat()}))
        return
    click.echo(_table([[a.id, a.status.value, a.kind.label, a.totals.targets or "", a.source.value, a.proposed_by,
                        a.decided_by, _when(a.created), a.name] for a in found],
                      ["id", "status", "action", "copies", "source", "proposed by", "decided by", "created", "name"]))


@actions.command("show")
@click.argument("action_id", type=int)
@click.option("--copies", "show_copies", is_flag=True, help="List every copy with its result.")
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_show(action_id: int, show_copies: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """One action: fields, totals, history (and with --copies, per-copy results)."""
    service = _service(home, tenant_name, db_url)
    a = service.get(action_id)
    for k, v in [("id", a.id), ("name", a.name), ("action", a.kind.label), ("status", a.status.value),
                 ("source", f"{a.source.value} {a.source_ref}".strip()), ("target", f"{a.target_kind} {a.target}"),
                 ("reason", a.reason), ("proposed by", a.proposed_by), ("created", _when(a.created)),
                 ("expires", _when(a.expires) if a.status.decidable else ""), ("decided by", a.decided_by),
                 ("comment", a.comment), ("undo of", a.undo_of), ("results", a.totals.render() if a.totals.done else "")]:
        if v not in (None, ""):
            click.echo(f"{k:>12}: {v}")
    for e in service.history(action_id):
        click.echo(f"{'history':>12}: {_when(e.at)}  {e.actor}  {e.event}" + (f"  {e.comment}" if e.comment else ""))
    if show_copies:
        rows = service.results(action_id)
        if a.kind.moves_files:
            click.echo(_table([[r.seq, r.network_message_id, r.mailbox, _place(r.source_folder) if r.state != "pending"
                                else "", _place(r.destination), r.outcome or r.state, r.reason] for r in rows],
                              ["#", "SHA256", "place", "from", "to", "result", "reason"]))
            return
        click.echo(_table([[r.seq, r.network_message_id, r.mailbox, r.source_folder or "", r.destination or "",
                            r.outcome or r.state, r.reason] for r in rows],
                          ["#", "NetworkMessageId", "mailbox", "from", "to", "result", "reason"]))


@actions.command("approve")
@click.argument("action_ids", type=int, nargs=-1, required=True)
@click.option("--comment", default="", help="Why (kept in the action's history).")
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_approve(action_ids: tuple[int, ...], comment: str, home: Path | None, tenant_name: str,
                    db_url: str | None) -> None:
    """Approve pending actions (several at once when they are of one type)."""
    for a in _service(home, tenant_name, db_url).approve(list(action_ids), comment):
        click.echo(f"{_summary(a)}; run it with: workbench actions run {a.id}")


@actions.command("reject")
@click.argument("action_id", type=int)
@click.option("--comment", required=True, help="Why it is rejected (required).")
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_reject(action_id: int, comment: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Reject a pending action."""
    click.echo(_summary(_service(home, tenant_name, db_url).reject(action_id, comment)))


@actions.command("run")
@click.argument("action_id", type=int)
@click.option("--dry-run", is_flag=True, help="List each copy, its folder now and where it would go; move nothing.")
@click.option("--confirm", is_flag=True, help="Confirm a hard delete or an action over the blast-radius limits.")
@click.option("--batch-size", type=int, default=None, help="Copies per batch (default 500, at most 5,000).")
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_run(action_id: int, dry_run: bool, confirm: bool, batch_size: int | None, home: Path | None,
                tenant_name: str, db_url: str | None) -> None:
    """Carry out an approved action (or resume one whose run was killed)."""
    service = _service(home, tenant_name, db_url)
    if dry_run:
        rows = service.dry_run(action_id)
        if service.get(action_id).kind.moves_files:
            click.echo(_table([[r.network_message_id, r.mailbox, "(none)" if r.would.value == "NotFound" else _place(r.current),
                                _place(r.destination), r.would.value] for r in rows],
                              ["SHA256", "place", "now", "would go to", "would be"]))
        else:
                click.echo(_table([[r.network_message_id, r.mailbox, r.current or "(none)", r.destination, r.would.value]
                               for r in rows], ["NetworkMessageId", "mailbox", "now in", "would go to", "would be"]))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.would.value] = counts.get(r.would.value, 0) + 1
        said = ", ".join(f"{n:,} {k}" for k, n in counts.items()) or "nothing to do"
        click.echo(f"dry run of action {action_id}: {said}")
        return
    with _Progress(f"action {action_id}") as update:
        a = service.run(action_id, confirm=confirm, batch_size=batch_size, progress=update)
    click.echo(_summary(a))


@actions.command("undo")
@click.argument("action_id", type=int)
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_undo(action_id: int, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Move every copy the action moved back to its original folder (not for hard deletes)."""
    with _Progress(f"undo {action_id}") as update:
        a = _service(home, tenant_name, db_url).undo(action_id, progress=update)
    click.echo(f"{_summary(a)} (undo of action {action_id})")


@actions.command("import")
@click.option("--investigation", "investigation_id", type=int, default=None,
              help="Only this investigation (default: every investigation waiting for action).")
@home_option
@tenant_option
@db_option
@friendly_errors
def actions_import(investigation_id: int | None, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Make AIR's proposed actions (and content-malware alerts' file blocks) pending actions (idempotent)."""
    from workbench.actions import import_all, import_proposals
    from workbench.actions.service import import_file_alerts

    service = _service(home, tenant_name, db_url)
    found = (import_proposals(service.store, investigation_id) if investigation_id is not None
             else [*import_all(service.store), *import_file_alerts(service)])
    click.echo(f"{len(found)} action(s) from AIR proposals; pending: "
               f"{sum(a.status.value == 'pending' for a in found)}")


__all__ = ["actions"]
