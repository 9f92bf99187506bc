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

    _, store = _open(home, tenant_name, db_url)
    click.echo(report.markdown(_service(store).page(incident_id)))


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

    _, store = _open(home, tenant_name, db_url)
    path = report.write(_service(store).page(incident_id), out, generated_by=acting_user())
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
    from datetime import UTC, datetime

    import papermill
    import sqlalchemy as sa
    import yaml

    from workbench import tenant as tenants
    from workbench.air.playbook import PLAYBOOKS_DIR
    from workbench.errors import InputError, NotFound
    from workbench.store import open_store
    from workbench.store import tables as t

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
    tenant = tenants.open_tenant(tenant_name, base=home)
    store = open_store(tenant, db_url)  # fail here, before a kernel starts, when the database is unreachable
    out = tenant.root / "investigations" / f"{playbook}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    values.setdefault("tenant", str(tenant.root))
    if db_url:
        values.setdefault("db_url", db_url)
    values["record_notebook"] = str(out)
    try:
        papermill.execute_notebook(str(path), str(out), parameters=values, progress_bar=True, kernel_name="python3")
    except papermill.PapermillExecutionError as exc:
        raise InputError(f"playbook {playbook} failed in cell {exc.cell_index}: {exc.ename}: {exc.evalue}; "
                         f"the executed notebook is {out}") from None
    with store.read() as conn:
        row = conn.execute(sa.select(t.investigations).where(t.investigations.c.notebook == str(out))).first()
    if row is None:
        raise InputError(f"playbook {playbook} ran but recorded no investigation; see {out}")
    click.echo(f"investigation {row.id}: {row.status} ({row.name}); notebook {out}")


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

    _, store = _open(home, tenant_name, db_url)
    with pl.Config(tbl_rows=100, fmt_str_lengths=80, tbl_width_chars=180, tbl_hide_dataframe_shape=True):
        for title, frame in frames(records.load(store, investigation_id)).items():
            click.echo(f"\n{title}\n{frame}")


@air.command("dispatch")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Playbook runs at the same time.")
@click.option("--timeout", type=int, default=600, show_default=True, help="Seconds a cell may run before the run fails.")
@click.option("--retries", type=int, default=1, show_default=True, help="Retries of a failed run (with backoff).")
@click.option("--limit", type=int, default=None, help="Start at most this many investigations.")
@home_option
@tenant_option
@db_option
@friendly_errors
def air_dispatch(concurrency: int, timeout: int, retries: int, limit: int | None, home: Path | None,
                 tenant_name: str, db_url: str | None) -> None:
    """Start the right playbook for every alert that has none yet (safe to run from cron)."""
    from tqdm import tqdm

    from workbench.air import dispatch

    tenant, store = _open(home, tenant_name, db_url)
    groups = dispatch.pending(store)
    with tqdm(total=min(len(groups), limit or len(groups)), unit="investigation", desc="dispatch") as bar:
        outcomes = dispatch.dispatch(store, dispatch.papermill_runner(tenant, db_url, timeout), concurrency=concurrency,
                                     retries=retries, limit=limit, progress=lambda _o: bar.update())
    for o in outcomes:
        click.echo(f"{o.status:8} {o.group.playbook:28} alerts {len(o.group.alert_ids):3} "
                   f"investigation {o.investigation_id or '-'} ({o.seconds:.1f} s){' ' + o.error if o.error else ''}")
    done = sum(o.status == "done" for o in outcomes)
    click.echo(f"{done} investigation(s) run, {len(outcomes) - done} not; {len(dispatch.pending(store))} group(s) still pending")
