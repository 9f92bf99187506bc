"""``workbench alerts ...`` and ``workbench incidents ...`` (registered on the main command).

The database is the tenant's SQLite file unless ``--db URL`` or ``WORKBENCH_DB_URL`` names
another (PostgreSQL for teams). The acting user is ``WORKBENCH_USER`` (else the OS user).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option

db_option = click.option("--db", "db_url", default=None, metavar="URL",
                         help="Database URL (default: $WORKBENCH_DB_URL, else the tenant's workbench.sqlite).")


def _open(home: Path | None, tenant_name: str, db_url: str | None) -> tuple[Any, Any]:
    from workbench import tenant as tenants
    from workbench.store import open_store

    tenant = tenants.open_tenant(tenant_name, base=home)
    return tenant, open_store(tenant, db_url)


def _service(store: Any) -> Any:
    from workbench.identity import acting_user
    from workbench.incidents.service import IncidentService

    return IncidentService(store, acting_user())


def _devices(tenant: Any, page: Any) -> Any:
    """The incident's users' devices from the tenant's lake (the report's "User devices")."""
    from workbench.endpoint.incident import incident_devices
    from workbench.lake import Lake

    return incident_devices(Lake.for_tenant(tenant), page)


def _when(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _table(rows: list[list[Any]], head: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    widths = [min(w, 70) for w in widths]
    line = lambda r: "  ".join(str(x)[:70].ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# --------------------------------------------------------------------------- alerts


@click.group()
def alerts() -> None:
    """Alert policies over the lake, and the alerts they raised."""


@alerts.command("run")
@click.option("--policy", "only", multiple=True, help="Only this policy (repeatable; default: every enabled one).")
@click.option("--reset", is_flag=True, help="Forget the watermarks first: re-read all data (alerts are not duplicated).")
@home_option
@tenant_option
@db_option
@friendly_errors
def alerts_run(only: tuple[str, ...], reset: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Evaluate the alert policies on data newer than their watermarks; correlate into incidents."""
    from tqdm import tqdm

    from workbench.incidents import alerting
    from workbench.lake import Lake

    tenant, store = _open(home, tenant_name, db_url)
    if reset:
        alerting.reset(store, only)
    with tqdm(total=len(only) or None, unit="policy", desc="alert policies", leave=False) as bar:
        result = alerting.run(store, Lake.for_tenant(tenant), only=only, progress=lambda _p: bar.update())
    rows = [[r.policy_id, "on" if r.enabled else "off", r.found, r.new, _when(r.since) or "start",
             _when(r.watermark), f"{r.seconds:.2f}"] for r in result.runs]
    click.echo(_table(rows, ["policy", "enabled", "found", "new", "read after", "watermark", "seconds"]))
    click.echo(f"{len(result.new_alerts)} new alert(s); {len(result.incidents_created)} incident(s) created, "
               f"{len(result.incidents_extended)} extended")


@alerts.command("list")
@click.option("--status", multiple=True, type=click.Choice(["new", "inProgress", "resolved"]), help="Repeatable.")
@click.option("--severity", multiple=True, type=click.Choice(["informational", "low", "medium", "high"]))
@click.option("--policy", multiple=True, help="Only alerts of this policy (repeatable).")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def alerts_list(status: tuple[str, ...], severity: tuple[str, ...], policy: tuple[str, ...], limit: int,
                as_json: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Stored alerts, oldest first."""
    _, store = _open(home, tenant_name, db_url)
    found = _service(store).alerts(status=status, severity=severity, policy=policy, limit=limit)
    if as_json:
        for a in found:
            click.echo(json.dumps({"id": a.id, "title": a.title, "severity": a.severity.value, "status": a.status.value,
                                   "policy": a.policy_id, "category": a.category, "incident": a.incident_id,
                                   "firstActivity": a.first_activity.isoformat()}))
        return
    click.echo(_table([[a.id, a.severity.value, a.status.value, a.incident_id or "", a.policy_id,
                        _when(a.first_activity), a.title] for a in found],
                      ["id", "severity", "status", "incident", "policy", "first activity", "title"]))


@alerts.command("show")
@click.argument("alert_id")
@home_option
@tenant_option
@db_option
@friendly_errors
def alerts_show(alert_id: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """One alert: fields, entities and the Explorer link that lists its messages."""
    from workbench.explorer.query import Query

    _, store = _open(home, tenant_name, db_url)
    a = _service(store).alert(alert_id)
    for k, v in [("id", a.id), ("title", a.title), ("severity", a.severity.value), ("status", a.status.value),
                 ("category", a.category), ("policy", a.policy_id), ("incident", a.incident_id),
                 ("first activity", _when(a.first_activity)), ("last activity", _when(a.last_activity)),
                 ("messages", a.message_count), ("MITRE", ", ".join(a.mitre_techniques)),
                 ("description", a.description)]:
        if v not in (None, ""):
            click.echo(f"{k:>15}: {v}")
    for e in a.entities:
        click.echo(f"{'entity':>15}: {e.kind.value:<8} {e.value}" + (f"  ({e.role})" if e.role else ""))
    if a.explorer_query:
        click.echo(f"{'Explorer':>15}: {Query.from_json(a.explorer_query).to_link('Explorer.ipynb')}")


@alerts.command("policies")
@home_option
@tenant_option
@db_option
@friendly_errors
def alerts_policies(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """The alert policies with their settings and watermarks."""
    from workbench.detect import policies as pol
    from workbench.incidents import alerting

    _, store = _open(home, tenant_name, db_url)
    cfg, marks = alerting.settings(store), alerting.watermarks(store)
    rows = []
    for p in pol.load_policies():
        s = cfg[p.id]
        thresholds = dict(p.thresholds) | dict(s.thresholds)
        rows.append([p.id, "on" if s.enabled else "off", (s.severity or p.severity).value,
                     ", ".join(f"{k}={v:g}" for k, v in thresholds.items()), _when(marks.get(p.id, (None,))[0]),
                     p.name])
    click.echo(_table(rows, ["policy", "enabled", "severity", "thresholds", "watermark", "name"]))


@alerts.command("configure")
@click.argument("policy_id")
@click.option("--enable/--disable", "enabled", default=None, help="Turn the policy on or off.")
@click.option("--severity", type=click.Choice(["informational", "low", "medium", "high"]), default=None)
@click.option("--threshold", "thresholds", multiple=True, metavar="NAME=VALUE", help="Repeatable.")
@home_option
@tenant_option
@db_option
@friendly_errors
def alerts_configure(policy_id: str, enabled: bool | None, severity: str | None, thresholds: tuple[str, ...],
                     home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Enable or disable a policy, change its severity or a threshold."""
    from workbench.errors import InputError
    from workbench.identity import acting_user
    from workbench.incidents import alerting

    values = {}
    for item in thresholds:
        name, sep, value = item.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--threshold {item!r} is not NAME=NUMBER, e.g. messages_per_hour=80") from None
        if not sep:
            raise InputError(f"--threshold {item!r} is not NAME=NUMBER, e.g. messages_per_hour=80")
    _, store = _open(home, tenant_name, db_url)
    s = alerting.configure(store, policy_id, acting_user(), enabled=enabled, severity=severity, thresholds=values)
    click.echo(f"{policy_id}: {'enabled' if s.enabled else 'disabled'}"
               + (f", severity {s.severity.value}" if s.severity else "")
               + "".join(f", {k}={v:g}" for k, v in sorted(s.thresholds.items())))


# --------------------------------------------------------------------------- incidents


@click.group()
def incidents() -> None:
    """Incidents: alerts correlated by shared entities, with evidence and an activity log."""


@incidents.command("list")
@click.option("--status", multiple=True, type=click.Choice(["active", "inProgress", "resolved", "redirected"]),
              help="Repeatable (default: active and inProgress).")
@click.option("--all", "everything", is_flag=True, help="Every status.")
@click.option("--severity", multiple=True, type=click.Choice(["informational", "low", "medium", "high"]))
@click.option("--assigned-to", multiple=True, help="User name, or (unassigned). Repeatable.")
@click.option("--search", default="", help="Incident name or number, or an entity (user, URL, IP, device...).")
@click.option("--sort", type=click.Choice(["last_update", "created", "severity", "id", "name"]), default="last_update",
              show_default=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def incidents_list(status: tuple[str, ...], everything: bool, severity: tuple[str, ...], assigned_to: tuple[str, ...],
                   search: str, sort: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """The incident queue."""
    from workbench.incidents.repo import IncidentFilter

    _, store = _open(home, tenant_name, db_url)
    kw: dict[str, Any] = {"severity": severity, "assigned_to": assigned_to, "search": search, "sort": sort}
    if everything or status:
        kw["status"] = () if everything else status
    found = _service(store).list(IncidentFilter(**kw))
    click.echo(_table([[i.id, i.severity.value, i.status.value, i.alert_count, i.assigned_to, _when(i.last_update),
                        i.name] for i in found],
                      ["id", "severity", "status", "alerts", "assigned to", "last update", "name"]))


@incidents.command("show")
@click.argument("incident_id", type=int)
@home_option
@tenant_option
@db_option
@friendly_errors
def incidents_show(incident_id: int, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """One incident as Markdown (summary, alerts, evidence, timeline, comments)."""
    from workbench.incidents import report

    tenant, store = _open(home, tenant_name, db_url)
    page = _service(store).page(incident_id)
    click.echo(report.markdown(page, devices=_devices(tenant, page)))


@incidents.command("report")
@click.argument("incident_id", type=int)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .html (self-contained) or .md.")
@home_option
@tenant_option
@db_option
@friendly_errors
def incidents_report(incident_id: int, out: Path, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Export an incident report (HTML or Markdown, by the --out extension)."""
    from workbench.identity import acting_user
    from workbench.incidents import report

    tenant, store = _open(home, tenant_name, db_url)
    page = _service(store).page(incident_id)
    path = report.write(page, out, generated_by=acting_user(), devices=_devices(tenant, page))
    click.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")


@incidents.command("update")
@click.argument("incident_id", type=int)
@click.option("--status", type=click.Choice(["active", "inProgress", "resolved"]), default=None)
@click.option("--note", default="", help="Resolution note (required with --status resolved).")
@click.option("--assign", "assign_to", default=None, help="Assign to this user ('' to unassign).")
@click.option("--severity", type=click.Choice(["informational", "low", "medium", "high"]), default=None)
@click.option("--classification", default=None, help="truePositive, falsePositive, informationalExpectedActivity.")
@click.option("--determination", default="unknown", show_default=True, help="With --classification, e.g. phishing.")
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--comment", default=None, help="Add a comment.")
@home_option
@tenant_option
@db_option
@friendly_errors
def incidents_update(incident_id: int, status: str | None, note: str, assign_to: str | None, severity: str | None,
                     classification: str | None, determination: str, tags: tuple[str, ...], comment: str | None,
                     home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Change an incident: status (resolving needs --note), assignment, severity, classification, tags, comment."""
    from workbench.incidents.model import Classification, Determination
    from workbench.incidents.repo import parse_enum

    _, store = _open(home, tenant_name, db_url)
    svc = _service(store)
    svc.get(incident_id)  # everything is checked before the first change: an error writes nothing
    if status:
        svc.check_status(incident_id, status, note=note)
    if classification:
        parse_enum(Classification, classification, "classification")
        parse_enum(Determination, determination, "determination")
    if comment is not None and not comment.strip():
        svc.comment(incident_id, comment)  # raises: an empty comment
    if assign_to is not None:
        svc.assign(incident_id, assign_to)
    if severity:
        svc.set_severity(incident_id, severity)
    if classification:
        svc.classify(incident_id, classification, determination)
    if tags:
        svc.tag(incident_id, *tags)
    if comment:
        svc.comment(incident_id, comment)
    if status:
        svc.set_status(incident_id, status, note=note)
    i = svc.get(incident_id)
    click.echo(f"incident {i.id}: {i.status.value}, {i.severity.value}, assigned to {i.assigned_to or 'nobody'}")


@incidents.command("merge")
@click.argument("into", type=int)
@click.argument("others", type=int, nargs=-1, required=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def incidents_merge(into: int, others: tuple[int, ...], home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Merge OTHERS into INTO (the others are left redirected to it)."""
    _, store = _open(home, tenant_name, db_url)
    i = _service(store).merge(list(others), into)
    click.echo(f"incident {i.id} now has {i.alert_count} alert(s); merged {', '.join(map(str, others))}")


# --------------------------------------------------------------------------- air


@click.group()
def air() -> None:
    """Automated investigation: run playbooks (papermill) and read their records."""


@air.command("run")
@click.argument("playbook")
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A playbook parameter (repeatable); VALUE is YAML, e.g. -p messages '[\"id1\", \"id2\"]'.")
@home_option
@tenant_option
@db_option
@friendly_errors
def air_run(playbook: str, parameters: tuple[tuple[str, str], ...], home: Path | None, tenant_name: str,
            db_url: str | None) -> None:
    """Run PLAYBOOK headless; the executed notebook is kept in <tenant>/investigations/."""
    import papermill
    import yaml

    from workbench.air import dispatch
    from workbench.air.playbook import PLAYBOOKS_DIR
    from workbench.errors import InputError, NotFound
    from workbench.identity import acting_user

    path = PLAYBOOKS_DIR / f"{playbook}.ipynb"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PLAYBOOKS_DIR.glob("*.ipynb"))) or "none"
        raise NotFound(f"no playbook {playbook!r}; playbooks: {known}")
    declared = papermill.inspect_notebook(str(path))
    values: dict[str, Any] = {}
    for name, text in parameters:
        if name not in declared:
            raise InputError(f"playbook {playbook} has no parameter {name!r}; its parameters: {', '.join(declared)}")
        try:
            values[name] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputError(f"-p {name} {text!r} is not valid YAML; quote strings and write lists as '[\"a\", \"b\"]'") from None
    if values.get("investigation_id"):
        raise InputError("air run starts an investigation; show one with `workbench air show ID`")
    tenant, store = _open(home, tenant_name, db_url)  # fail here, before a kernel starts, when the database is unreachable
    with dispatch.PapermillRunner(tenant, db_url, timeout=3600, share_kernels=False, progress_bar=True) as runner:
        outcome = dispatch.start(store, runner, playbook, values, started_by=str(values.get("started_by") or acting_user()))
    _echo_outcome(store, outcome)


def _echo_outcome(store: Any, outcome: Any) -> None:
    """One line for a finished run; a failed one exits non-zero with its error and the fix."""
    from workbench.air import records
    from workbench.errors import InputError

    inv = records.load(store, outcome.investigation_id).investigation
    notebook = f"; notebook {inv.notebook}" if inv.notebook else ""
    if outcome.status in ("failed", "terminated"):
        raise InputError(f"investigation {inv.id} {inv.status.value}: {inv.error}{notebook}; "
                         f"retry with `workbench air retry {inv.id}`")
    click.echo(f"investigation {inv.id}: {inv.status.value} ({inv.name}){notebook}")


@air.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def air_list(limit: int, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Recent investigations, newest first."""
    import sqlalchemy as sa

    from workbench.store import tables as t

    _, store = _open(home, tenant_name, db_url)
    with store.read() as conn:
        rows = conn.execute(sa.select(t.investigations).order_by(t.investigations.c.id.desc()).limit(limit)).all()
    click.echo(_table([[r.id, r.status, r.playbook, r.started_by, _when(r.started), r.name] for r in rows],
                      ["id", "status", "playbook", "started by", "started", "name"]))


@air.command("show")
@click.argument("investigation_id", type=int)
@home_option
@tenant_option
@db_option
@friendly_errors
def air_show(investigation_id: int, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """One investigation's record: summary, analyzer log, evidence, clusters, proposed actions."""
    import polars as pl

    from workbench.air import records
    from workbench.air.playbook import frames

    from workbench.cli_mail import safe

    _, store = _open(home, tenant_name, db_url)
    with pl.Config(tbl_rows=100, fmt_str_lengths=80, tbl_width_chars=180, tbl_hide_dataframe_shape=True):
        for title, frame in frames(records.load(store, investigation_id)).items():
            shown = frame.with_columns(pl.col(pl.String).map_elements(safe, return_dtype=pl.String))  # URLs defanged
            click.echo(f"\n{title}\n{shown}")


@air.command("dispatch")
@click.option("--concurrency", type=click.IntRange(1), default=2, show_default=True, help="Playbook runs at the same time.")
@click.option("--timeout", type=click.IntRange(1), default=600, show_default=True,
              help="Seconds a playbook cell (its work is one cell) may run before the run ends terminatedBySystem.")
@click.option("--retries", type=click.IntRange(0), default=1, show_default=True,
              help="Retries of a failed run (with backoff), each a new run linked to the failed one.")
@click.option("--limit", type=click.IntRange(0), default=None, help="Consider at most this many groups of alerts.")
@click.option("--max-running", type=click.IntRange(1), default=None,
              help="Investigations running at once in the tenant; the rest are queued by throttling "
                   "(default: the tenant's setting, see `air configure`).")
@click.option("--share-kernels/--kernel-per-run", default=True, show_default=True,
              help="Run the notebooks one after another in a kernel per worker, or start a kernel for each.")
@home_option
@tenant_option
@db_option
@friendly_errors
def air_dispatch(concurrency: int, timeout: int, retries: int, limit: int | None, max_running: int | None,
                 share_kernels: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Start the right playbook for every alert that has none yet (safe to run from cron)."""
    from dataclasses import replace

    from tqdm import tqdm

    from workbench.air import dispatch

    tenant, store = _open(home, tenant_name, db_url)
    settings = dispatch.throttle(store)
    if max_running is not None:
        settings = replace(settings, max_running=max_running)
    todo = len(dispatch.pending(store)) + len(dispatch.queued(store))
    with tqdm(total=min(todo, todo if limit is None else limit), unit="group", desc="dispatch") as bar, \
            dispatch.PapermillRunner(tenant, db_url, timeout, share_kernels=share_kernels) as runner:
        outcomes = dispatch.dispatch(store, runner, concurrency=concurrency, retries=retries, limit=limit,
                                     settings=settings, timeout=timeout, progress=lambda _o: bar.update())
    for o in outcomes:
        click.echo(f"{o.status:10} {o.group.playbook:28} alerts {len(o.group.alert_ids):3} "
                   f"investigation {o.investigation_id or '-'} ({o.seconds:.1f} s){' ' + o.error if o.error else ''}")
    counts = {s: sum(o.status == s for o in outcomes) for s in dispatch.OutcomeStatus}
    click.echo(", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "nothing to dispatch")
    click.echo(f"{len(dispatch.pending(store))} group(s) pending, {len(dispatch.queued(store))} queued by throttling")


@air.command("retry")
@click.argument("investigation_id", type=int)
@click.option("--timeout", type=click.IntRange(1), default=600, show_default=True,
              help="Seconds the run may take before it ends terminatedBySystem.")
@home_option
@tenant_option
@db_option
@friendly_errors
def air_retry(investigation_id: int, timeout: int, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Run a failed or terminated investigation's playbook again, with its parameters (a new run linked to it)."""
    from workbench.air import dispatch
    from workbench.identity import acting_user

    tenant, store = _open(home, tenant_name, db_url)
    with dispatch.PapermillRunner(tenant, db_url, timeout, share_kernels=False, progress_bar=True) as runner:
        outcome = dispatch.retry(store, runner, investigation_id, started_by=acting_user())
    click.echo(f"retry of investigation {investigation_id}:")
    _echo_outcome(store, outcome)


@air.command("configure")
@click.option("--max-running", type=click.IntRange(1), default=None, help="Investigations running at once.")
@click.option("--queue-expiry-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="A queued investigation older than this ends terminatedByThrottling.")
@click.option("--max-messages", type=click.IntRange(1), default=None,
              help="A group of alerts naming more messages ends terminatedBySystem without running.")
@home_option
@tenant_option
@db_option
@friendly_errors
def air_configure(max_running: int | None, queue_expiry_hours: float | None, max_messages: int | None,
                  home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Show (or change) the tenant's AIR throttling settings."""
    from dataclasses import asdict

    from workbench.air import dispatch

    _, store = _open(home, tenant_name, db_url)
    settings = dispatch.configure(store, max_running=max_running, queue_expiry_hours=queue_expiry_hours,
                                  max_messages=max_messages)
    click.echo(_table([[k, v] for k, v in asdict(settings).items()], ["setting", "value"]))
