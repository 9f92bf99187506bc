"""The ``workbench`` command.

Every subcommand has ``--help``. Errors a user can cause print one line, ``error: ...``,
naming the problem and the fix, and exit non-zero without a traceback. Heavy imports
happen inside commands so ``workbench --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from workbench import __version__
from workbench.cli_common import friendly_errors, home_option, tenant_option

yara_option = click.option(
    "--yara",
    "yara_dir",
    envvar="WORKBENCH_YARA_RULES",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of YARA rules (.yar/.yara) to scan attachments with (default: $WORKBENCH_YARA_RULES; none).",
)


def with_yara(ctx: Any, folder: Path | None) -> Any:
    """The detection Context with the folder's compiled YARA rules; prints what loaded and what was skipped."""
    if folder is None:
        return ctx
    from dataclasses import replace

    from workbench.detect.analyzers.yara import load

    rules = load(folder)
    click.echo(("warning: " if rules.skipped else "") + rules.summary(), err=True)
    return replace(ctx, yara=rules)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
def main() -> None:
    """Threat investigation and response workbench for email- and file-borne attacks."""


# --------------------------------------------------------------------------- demo


@main.group(invoke_without_command=True)
@home_option
@tenant_option
@click.option("--port", type=int, default=8866, show_default=True, help="Port for Voila.")
@click.option("--no-serve", is_flag=True, help="Prepare the tenant, then stop (no Voila).")
@click.pass_context
@friendly_errors
def demo(ctx: click.Context, home: Path | None, tenant_name: str, port: int, no_serve: bool) -> None:
    """Run the main job on the demo tenant: generate it if absent, process it, serve the apps."""
    if ctx.invoked_subcommand is not None:
        return
    from workbench import tenant as tenants
    from workbench.ingest.demo import DEFAULT_DAYS, DEFAULT_SEED, DEFAULT_USERS, generate
    from workbench.pipeline import run_pipeline

    if tenant_name not in tenants.list_tenants(home):
        click.echo(f"generating demo tenant {tenant_name!r} (first run only)")
        summary = generate(
            tenant_name,
            users=DEFAULT_USERS,
            days=DEFAULT_DAYS,
            seed=DEFAULT_SEED,
            base=home,
            progress=True,
        )
        click.echo(summary.render())
    tenant = tenants.open_tenant(tenant_name, base=home)
    run_pipeline(tenant, progress=True)
    _seed_demo_roles(tenant)
    if no_serve:
        click.echo(f"tenant ready at {tenant.root}")
        return
    from workbench.serve import serve

    serve(tenant, port=port)


@demo.command("generate")
@home_option
@tenant_option
@click.option("--users", type=int, default=300, show_default=True, help="Mailboxes in the organisation.")
@click.option("--days", type=int, default=30, show_default=True, help="Days of telemetry.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed: same seed, same tenant.")
@click.option(
    "--end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the window (default: today, UTC). Fix it for reproducible tenants.",
)
@click.option("--force", is_flag=True, help="Replace the tenant if it exists.")
@click.option("--no-raw", is_flag=True, help="Skip raw RFC 5322 messages (telemetry only; faster).")
@friendly_errors
def demo_generate(
    home: Path | None,
    tenant_name: str,
    users: int,
    days: int,
    seed: int,
    end: Any,
    force: bool,
    no_raw: bool,
) -> None:
    """Generate a realistic demo tenant with planted attack stories (ground truth in scenarios.json)."""
    from workbench.ingest.demo import generate

    summary = generate(
        tenant_name,
        users=users,
        days=days,
        seed=seed,
        end=end.date() if end else None,
        base=home,
        force=force,
        raw=not no_raw,
        progress=True,
    )
    click.echo(summary.render())


# --------------------------------------------------------------------------- serve


@main.command()
@home_option
@tenant_option
@click.option("--port", type=int, default=8866, show_default=True, help="Port for Voila.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--token", envvar="WORKBENCH_TOKEN", default=None,
              help="Token every visitor needs (open /?token=... once; a cookie keeps you in). "
                   "Default: $WORKBENCH_TOKEN, else a random one, printed.")
@click.option("--no-token", is_flag=True, help="No token (only with a loopback --host, e.g. behind an authenticating proxy).")
@click.option("--trusted-header", default=None, metavar="NAME",
              help="Pass this request header (e.g. X-Forwarded-User) to the apps' kernels as HTTP_<NAME>. "
                   "Only trustworthy behind a proxy that authenticates, sets it and strips it from clients.")
@click.option("--preheat", type=int, default=1, show_default=True, metavar="N",
              help="Kernels kept ready for the dashboard (0 disables).")
@click.option("--open", "open_browser", is_flag=True, help="Open the home page in a browser (logged in).")
@friendly_errors
def serve(home: Path | None, tenant_name: str, port: int, host: str, token: str | None, no_token: bool,
          trusted_header: str | None, preheat: int, open_browser: bool) -> None:
    """Serve the workbench apps with Voila: a home page linking every app, offline, tracebacks hidden,
    idle kernels culled, a token in front (read-only for everyone until RBAC lands)."""
    from workbench import tenant as tenants
    from workbench.serve import check_header_name, check_preheat, resolve_token
    from workbench.serve import serve as run

    resolve_token(host, token, no_token=no_token)  # bad flags fail before the tenant is opened
    check_preheat(preheat)
    if trusted_header is not None:
        check_header_name(trusted_header)
    run(tenants.open_tenant(tenant_name, base=home), port=port, host=host, token=token, no_token=no_token,
        trusted_header=trusted_header, preheat=preheat, open_browser=open_browser)


# --------------------------------------------------------------------------- report


@main.group()
def report() -> None:
    """Reports for management, rendered offline (no browser, no network)."""


@report.command("dashboard")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write: .png (one image) or .pdf (summary, charts and tables pages).")
@click.option("--window", type=click.Choice(["24h", "7d", "30d", "90d"]), default=None,
              help="Relative window ending now.  [default: 30d]")
@click.option("--start", default=None, help="Start of a custom window (UTC), e.g. 2026-10-01; needs --end.")
@click.option("--end", default=None, help="End of a custom window (UTC, exclusive), e.g. 2026-11-01; needs --start.")
@home_option
@tenant_option
@friendly_errors
def report_dashboard(out: Path, window: str | None, start: str | None, end: str | None, home: Path | None,
                     tenant_name: str) -> None:
    """The threat dashboard as a PNG or PDF report; the format follows the --out extension."""
    import time

    from workbench import tenant as tenants
    from workbench.dashboard import build, window_named
    from workbench.dashboard.report import check_target, write
    from workbench.errors import InputError
    from workbench.lake import Lake

    started = time.perf_counter()
    check_target(out)  # a bad extension or folder fails before the build
    if window and (start or end):
        raise InputError("give either --window or --start and --end, not both")
    span = window_named("custom", start, end) if (start or end) else window_named(window or "30d")
    tenant = tenants.open_tenant(tenant_name, base=home)
    from workbench.store import existing_store

    path = write(build(Lake.for_tenant(tenant), span, store=existing_store(tenant)), out, tenant=tenant.name)
    size = path.stat().st_size
    human = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    click.echo(f"wrote {path} ({human}, {size:,} bytes) in {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------- ingest


@main.group()
def ingest() -> None:
    """Load mail (.eml, .msg, mbox, Maildir) and security exports into a tenant."""


def _ingest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--org-domain", "org_domain", multiple=True,
                      help="An accepted domain of your organisation (repeatable; decides direction).")(fn)
    return home_option(tenant_option(yara_option(fn)))


def _run_ingest(home: Path | None, tenant_name: str, org_domain: tuple[str, ...], items: Any, total: int | None,
                yara_dir: Path | None = None) -> None:
    from workbench import tenant as tenants
    from workbench.ingest.batch import ingest as run, tenant_context

    tenant = tenants.ensure(tenant_name, base=home, org_domains=tuple(d.lower() for d in org_domain))
    domains = tuple(d.lower() for d in org_domain) or tenants.org_domains(tenant)
    context = with_yara(tenant_context(tenant, domains), yara_dir) if yara_dir else None
    summary = run(tenant, items, org_domains=domains, progress=True, total=total, context=context)
    click.echo(summary.render())


def _run_records(home: Path | None, tenant_name: str, records: Any) -> None:
    """Load export records (source, table, values, error) into a tenant and print the summary."""
    from workbench import tenant as tenants
    from workbench.ingest.tables import ingest_records

    click.echo(ingest_records(tenants.ensure(tenant_name, base=home), records).render())


@ingest.command("eml")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_ingest_options
@friendly_errors
def ingest_eml(paths: tuple[Path, ...], home: Path | None, tenant_name: str, org_domain: tuple[str, ...],
               yara_dir: Path | None) -> None:
    """RFC 5322 files, or folders of them (.eml, .txt, no extension)."""
    from workbench.ingest.sources import eml_items

    items = list(eml_items(paths))
    _run_ingest(home, tenant_name, org_domain, items, len(items), yara_dir)


@ingest.command("msg")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_ingest_options
@friendly_errors
def ingest_msg(paths: tuple[Path, ...], home: Path | None, tenant_name: str, org_domain: tuple[str, ...],
               yara_dir: Path | None) -> None:
    """Outlook .msg files, or folders of them."""
    from workbench.ingest.sources import msg_items

    _run_ingest(home, tenant_name, org_domain, msg_items(paths), None, yara_dir)


@ingest.command("mbox")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_ingest_options
@friendly_errors
def ingest_mbox(paths: tuple[Path, ...], home: Path | None, tenant_name: str, org_domain: tuple[str, ...],
                yara_dir: Path | None) -> None:
    """mbox files (every message in each)."""
    from workbench.ingest.sources import mbox_items

    _run_ingest(home, tenant_name, org_domain, mbox_items(paths), None, yara_dir)


@ingest.command("maildir")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--mailbox", default=None, help="Whose mailbox this is (records each copy's folder).")
@_ingest_options
@friendly_errors
def ingest_maildir(paths: tuple[Path, ...], mailbox: str | None, home: Path | None, tenant_name: str,
                   org_domain: tuple[str, ...], yara_dir: Path | None) -> None:
    """Maildir trees (Dovecot/Postfix layout, Maildir++ subfolders such as .Junk)."""
    from workbench.ingest.sources import maildir_items

    _run_ingest(home, tenant_name, org_domain, maildir_items(paths, mailbox), None, yara_dir)


@ingest.command("defender")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--table", "table_name", default=None, help="Table of a CSV export (default: from the file name).")
@home_option
@tenant_option
@friendly_errors
def ingest_defender(paths: tuple[Path, ...], table_name: str | None, home: Path | None, tenant_name: str) -> None:
    """Defender Advanced Hunting exports: streaming-API JSON lines, bare Advanced Hunting rows
    (table inferred from the columns), Defender for Endpoint alert exports, or CSV per table."""
    from workbench.ingest.defender import records

    _run_records(home, tenant_name, records(paths, table_name))


@ingest.command("o365")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@home_option
@tenant_option
@friendly_errors
def ingest_o365(paths: tuple[Path, ...], home: Path | None, tenant_name: str) -> None:
    """Office 365 Management Activity JSON, Entra SignInLogs JSON, OfficeActivity CSV."""
    from workbench.ingest.office365 import records

    _run_records(home, tenant_name, records(paths))


@ingest.command("message-trace")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@home_option
@tenant_option
@friendly_errors
def ingest_message_trace(paths: tuple[Path, ...], home: Path | None, tenant_name: str) -> None:
    """Exchange message trace: CSV export or Reporting Web Service JSON."""
    from workbench.ingest.message_trace import records

    _run_records(home, tenant_name, records(paths))


# --------------------------------------------------------------------------- detect


@main.group()
def detect() -> None:
    """Explainable verdicts: analyzers, rules, evaluation on labelled mail."""


@detect.command("evaluate")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV with path,label columns (labels: phishing, malware, spam, ham); paths relative to PATH.")
@click.option("--intel", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Indicator files or folders (STIX, MISP events and warning lists, blocklists); repeatable.")
@yara_option
@friendly_errors
def detect_evaluate(path: Path, labels: Path, intel: tuple[Path, ...], yara_dir: Path | None) -> None:
    """Recall and precision per source folder, and the false-positive rate on ham."""
    import polars as pl

    from workbench.detect import Context
    from workbench.detect.evaluation import run, table
    from workbench.intel.feeds import read_all, with_indicators

    ctx = with_yara(with_indicators(Context(), read_all(intel)) if intel else Context(), yara_dir)
    with pl.Config(tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        click.echo(table(run(path, labels, ctx, progress=True)))


# --------------------------------------------------------------------------- lake


@main.group()
def lake() -> None:
    """Inspect and maintain a tenant's parquet lake."""


def _lake(home: Path | None, tenant_name: str) -> Any:
    from workbench import tenant as tenants
    from workbench.lake import Lake

    return Lake.for_tenant(tenants.open_tenant(tenant_name, base=home))


@lake.command("info")
@home_option
@tenant_option
@friendly_errors
def lake_info(home: Path | None, tenant_name: str) -> None:
    """Tables, partitions, files, rows, bytes and date range."""
    import polars as pl

    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True, tbl_width_chars=160):
        click.echo(_lake(home, tenant_name).info())


@lake.command("compact")
@home_option
@tenant_option
@click.option("--table", "table_name", default=None, help="Only this table (default: all).")
@friendly_errors
def lake_compact(home: Path | None, tenant_name: str, table_name: str | None) -> None:
    """Merge each day's small files into one file (atomic)."""
    result = _lake(home, tenant_name).compact(table_name)
    click.echo(result.render())


@lake.command("retention")
@home_option
@tenant_option
@click.option("--days", type=int, required=True, help="Keep this many days; older partitions are deleted.")
@click.option("--table", "table_name", default=None, help="Only this table (default: all).")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@friendly_errors
def lake_retention(
    home: Path | None, tenant_name: str, days: int, table_name: str | None, dry_run: bool
) -> None:
    """Delete day partitions older than --days (whole days, by partition date)."""
    result = _lake(home, tenant_name).retention(days, table_name, dry_run=dry_run)
    click.echo(result.render())


def _seed_demo_roles(tenant: Any) -> None:
    """The demo tenant's named analysts in different roles (docs/rbac.md), once."""
    from workbench.identity import acting_user
    from workbench.rbac.demo import DEMO_ANALYSTS, seed_demo
    from workbench.store import open_store

    store = open_store(tenant)
    try:
        creator = acting_user()
        if seed_demo(store, creator):
            names = ", ".join(f"{u} ({' + '.join(r.value for r in roles)})" for u, roles in DEMO_ANALYSTS)
            click.echo(f"roles: {creator} is Global Administrator; demo analysts {names} "
                       "(try WORKBENCH_USER=bob; see workbench roles list)")
    finally:
        store.dispose()


def _register() -> None:
    from workbench.cli_incidents import air, alerts, incidents

    main.add_command(alerts)
    main.add_command(incidents)
    main.add_command(air)

    from workbench.cli_actions import actions

    main.add_command(actions)

    from workbench.cli_mail import mail

    main.add_command(mail)

    from workbench.cli_files import files

    main.add_command(files)

    from workbench.cli_audit import audit

    main.add_command(audit)

    from workbench.cli_roles import roles

    main.add_command(roles)

    from workbench.cli_simulator import simulator

    main.add_command(simulator)

    from workbench.cli_trackers import trackers

    main.add_command(trackers)

    from workbench.cli_intel import intel

    main.add_command(intel)

    from workbench.cli_siem import siem

    main.add_command(siem)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
