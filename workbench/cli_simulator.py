"""``workbench simulator ...``: attack simulation campaigns from the command line (docs/simulator.md).

``configure`` sets the relay, the tracking address and the simulation sender domains; ``payloads``
lists the library; ``create`` makes a campaign (and ``--launch``es or schedules it); ``run``
starts/ends campaigns, sends due messages and notifications and picks up user reports (cron-safe,
or ``--follow``); ``serve`` runs the tracking server; ``smtp-server`` the embedded SMTP server
that delivers into the tenant; ``show`` prints a campaign's report; ``export`` its per-user CSV;
``overview`` the reports across campaigns (coverage, training, repeat offenders, trends).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _open, _table, db_option
from workbench.cli_mail import safe
from workbench.errors import InputError


def _service(store: Any) -> Any:
    from workbench.identity import acting_user
    from workbench.simulator.campaigns import SimulationService

    return SimulationService(store, acting_user())


def _when(value: str | None) -> datetime | None:
    from workbench.cli_audit import _time

    return _time(value, "at")


def _window(value: str) -> tuple[int, int]:
    start, sep, end = value.partition("-")
    if not sep or not start.strip().isdigit() or not end.strip().isdigit():
        raise InputError(f"--window {value!r} is not START-END hours; use e.g. 9-17")
    return int(start), int(end)


@click.group()
def simulator() -> None:
    """Attack simulation: payloads, campaigns, sending, tracking and reports."""


@simulator.command("configure")
@click.option("--base-url", default=None, help="The tracking server's address as recipients reach it.")
@click.option("--organisation", default=None, help="Who runs the simulations (pages, notifications).")
@click.option("--smtp-host", default=None, help="The relay's host name or address.")
@click.option("--smtp-port", type=int, default=None, help="The relay's port (25, 465, 587).")
@click.option("--smtp-security", type=click.Choice(["none", "starttls", "ssl"]), default=None)
@click.option("--smtp-user", default=None, help="Relay login (with --smtp-password-env).")
@click.option("--smtp-password-env", default=None, help="NAME of the environment variable holding the password.")
@click.option("--smtp-ca-file", default=None, help="PEM file of the relay's CA (private CAs).")
@click.option("--simulation-domain", "domains", multiple=True,
              help="Sender domain of simulation payloads (advanced delivery); repeatable.")
@click.option("--awareness-sender", default=None, help='From of notifications, e.g. "Security awareness <a@org>".')
@home_option
@tenant_option
@friendly_errors
def configure(base_url: str | None, organisation: str | None, smtp_host: str | None, smtp_port: int | None,
              smtp_security: str | None, smtp_user: str | None, smtp_password_env: str | None,
              smtp_ca_file: str | None, domains: tuple[str, ...], awareness_sender: str | None, home: Path | None,
              tenant_name: str) -> None:
    """Change the tenant's simulator settings (the rest stay); prints them (never a password)."""
    from workbench import rbac
    from workbench.identity import acting_user
    from workbench.simulator import config
    from workbench.store import existing_store
    from workbench.tenant import open_tenant

    tenant = open_tenant(tenant_name, base=home)
    roles = existing_store(tenant)
    if roles is not None:
        try:
            rbac.require(roles, acting_user(), rbac.Permission.SIMULATION_MANAGEMENT, activity="simulator.configure")
        finally:
            roles.dispose()
    current = config.load(tenant)
    smtp = dict(current.smtp or {})
    for key, value in (("host", smtp_host), ("port", smtp_port), ("security", smtp_security),
                       ("username", smtp_user), ("password_env", smtp_password_env), ("ca_file", smtp_ca_file)):
        if value is not None:
            smtp[key] = value
    new = replace(current, base_url=base_url or current.base_url, organisation=organisation or current.organisation,
                  smtp=smtp or None, simulation_domains=tuple(domains) or current.simulation_domains,
                  awareness_sender=awareness_sender if awareness_sender is not None else current.awareness_sender)
    new = config.SimulatorConfig.from_dict(new.to_dict())  # validated as a whole
    path = config.save(tenant, new)
    click.echo(json.dumps(new.to_dict(), indent=2))
    click.echo(f"saved {path}", err=True)


@simulator.command("payloads")
@click.option("--technique", default=None, help="Only this technique (e.g. credentialHarvest).")
@click.option("--json", "as_json", is_flag=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def payloads_cmd(technique: str | None, as_json: bool, home: Path | None, tenant_name: str,
                 db_url: str | None) -> None:
    """The shipped library and the tenant's own payloads."""
    from workbench.simulator.model import Technique
    from workbench.simulator.payload_store import all_payloads
    from workbench.simulator.payloads import to_dict

    _, store = _open(home, tenant_name, db_url)
    wanted = Technique.parse(technique) if technique else None
    found = [p for p in all_payloads(store) if wanted is None or p.technique is wanted]
    if as_json:
        for p in found:
            click.echo(json.dumps(to_dict(p), ensure_ascii=False))
        return
    click.echo(_table([[p.id, p.technique.label, p.language, p.complexity, p.source, safe(p.subject)[:60]]
                       for p in found], ["id", "technique", "lang", "complexity", "source", "subject"]))


@simulator.command("test-send")
@click.option("--payload", "payload_id", required=True)
@click.option("--to", "address", required=True, help="Where the test goes.")
@home_option
@tenant_option
@db_option
@friendly_errors
def test_send(payload_id: str, address: str, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Send a test of a payload to one address (sample attributes; its links record nothing)."""
    from workbench.identity import acting_user
    from workbench.simulator import config
    from workbench.simulator.payload_store import get_payload
    from workbench.simulator.sending import send_test

    tenant, store = _open(home, tenant_name, db_url)
    result = send_test(store, config.load(tenant), acting_user(), get_payload(store, payload_id), address)
    click.echo(f"{result.outcome.value}: {safe(result.detail)}")
    if not result.sent:
        raise SystemExit(1)


@simulator.command("payload-save")
@click.argument("definition", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@home_option
@tenant_option
@db_option
@friendly_errors
def payload_save(definition: Path, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Create or replace a tenant payload from a JSON file (payload authors)."""
    from workbench.identity import acting_user
    from workbench.simulator.payload_store import save_payload

    try:
        data = json.loads(definition.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{definition} is not JSON ({exc}); see `workbench simulator payloads --json`") from None
    _, store = _open(home, tenant_name, db_url)
    payload = save_payload(store, acting_user(), data)
    click.echo(f"payload {payload.id} saved ({payload.technique.label})")


def _targets(lake: Any, store: Any, *, all_users: bool, users: tuple[str, ...], departments: tuple[str, ...],
             titles: tuple[str, ...], cities: tuple[str, ...], countries: tuple[str, ...], tags: tuple[str, ...],
             exclude: tuple[str, ...], suggested: str | None, csv_file: Path | None, limit: int | None) -> list[Any]:
    from workbench.simulator.targets import TargetFilter, from_csv, select

    chosen = from_csv(csv_file, lake=lake) if csv_file else []
    f = TargetFilter(all_users=all_users, emails=users, departments=departments, titles=titles, cities=cities,
                     countries=countries, tags=tags, exclude=exclude, suggested=suggested or "", limit=limit)
    if not f.empty:
        chosen += select(lake, f, store=store)
    elif not chosen:
        raise InputError("choose targets: --all-users, --user, --department, --title, --city, --country, --tag, "
                         "--suggested or --csv")
    skip = {e.strip().lower() for e in exclude}
    return [r for r in chosen if r.email not in skip]


@simulator.command("create")
@click.option("--name", required=True)
@click.option("--payload", "payload_id", required=True, help="A payload id (workbench simulator payloads).")
@click.option("--all-users", is_flag=True)
@click.option("--user", "users", multiple=True, help="A user's address (repeatable).")
@click.option("--department", "departments", multiple=True)
@click.option("--title", "titles", multiple=True)
@click.option("--city", "cities", multiple=True)
@click.option("--country", "countries", multiple=True)
@click.option("--tag", "tags", multiple=True)
@click.option("--exclude", multiple=True, help="An address never targeted (repeatable).")
@click.option("--suggested", type=click.Choice(["not_recently_simulated", "repeat_offenders"]), default=None)
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--limit", type=int, default=None, help="At most N users (the first by address).")
@click.option("--training", multiple=True, help="A training module id (repeatable).")
@click.option("--assign-training-to", type=click.Choice(["none", "all", "clicked", "compromised"]),
              default="compromised", show_default=True)
@click.option("--training-due-days", type=int, default=15, show_default=True)
@click.option("--landing-url", default="", help="A custom landing page instead of the teaching page.")
@click.option("--reinforcement", type=click.Choice(["never", "immediately", "after_end"]), default="immediately",
              show_default=True, help="Thank users who report it.")
@click.option("--reminders", type=click.Choice(["none", "weekly", "twice_weekly"]), default="weekly",
              show_default=True)
@click.option("--window", default="9-17", show_default=True, help="Local hours sending may happen in.")
@click.option("--no-time-zones", is_flag=True, help="Use UTC hours for everyone.")
@click.option("--spread-minutes", type=int, default=0, show_default=True)
@click.option("--end-after-days", type=int, default=2, show_default=True)
@click.option("--launch", is_flag=True, help="Launch at once.")
@click.option("--at", "at", default=None, help="Schedule the launch (ISO date and time).")
@home_option
@tenant_option
@db_option
@friendly_errors
def create(name: str, payload_id: str, all_users: bool, users: tuple[str, ...], departments: tuple[str, ...],
           titles: tuple[str, ...], cities: tuple[str, ...], countries: tuple[str, ...], tags: tuple[str, ...],
           exclude: tuple[str, ...], suggested: str | None, csv_file: Path | None, limit: int | None,
           training: tuple[str, ...], assign_training_to: str, training_due_days: int, landing_url: str,
           reinforcement: str, reminders: str, window: str, no_time_zones: bool, spread_minutes: int,
           end_after_days: int, launch: bool, at: str | None, home: Path | None, tenant_name: str,
           db_url: str | None) -> None:
    """Create a campaign (a draft, or launched / scheduled with --launch / --at)."""
    from workbench.lake import Lake
    from workbench.simulator.campaigns import CampaignSettings

    if launch and at:
        raise InputError("--launch and --at exclude each other; launch now or schedule")
    start, end = _window(window)
    settings = CampaignSettings(training=training, assign_training_to=assign_training_to,
                                training_due_days=training_due_days, landing_url=landing_url,
                                positive_reinforcement=reinforcement, training_reminder=reminders, window_start=start,
                                window_end=end, time_zone_aware=not no_time_zones, spread_minutes=spread_minutes,
                                end_after_days=end_after_days)
    tenant, store = _open(home, tenant_name, db_url)
    service = _service(store)
    service._manage("simulator.create", name)  # refuse before reading the directory
    recipients = _targets(Lake.for_tenant(tenant), store, all_users=all_users, users=users, departments=departments,
                          titles=titles, cities=cities, countries=countries, tags=tags, exclude=exclude,
                          suggested=suggested, csv_file=csv_file, limit=limit)
    campaign = service.create(name, payload_id, recipients, settings=settings)
    if launch:
        campaign = service.launch(campaign.id)
    elif at:
        campaign = service.schedule(campaign.id, _when(at))
    then = {"draft": f"launch it with: workbench simulator launch {campaign.id}",
            "scheduled": f"it launches at {campaign.launch_at:%Y-%m-%d %H:%M} UTC (workbench simulator run)",
            "running": "send it with: workbench simulator run"}[campaign.status.value]
    click.echo(f"campaign {campaign.id} ({campaign.targets:,} targets) is {campaign.status.value}; {then}")


_HELP = {"launch": "Launch a draft or scheduled campaign now.", "schedule": "Schedule a campaign's launch (--at).",
         "cancel": "Cancel a campaign: nothing more is sent; its results stay."}


def _transition(verb: str):  # noqa: ANN202 - a click command factory
    @simulator.command(verb, help=_HELP[verb])
    @click.argument("campaign_id", type=int)
    @click.option("--at", "at", default=None, help="(schedule) ISO date and time.")
    @home_option
    @tenant_option
    @db_option
    @friendly_errors
    def command(campaign_id: int, at: str | None, home: Path | None, tenant_name: str, db_url: str | None) -> None:
        _, store = _open(home, tenant_name, db_url)
        service = _service(store)
        if verb == "schedule":
            if not at:
                raise InputError("schedule needs --at (ISO date and time)")
            campaign = service.schedule(campaign_id, _when(at))
        else:
            campaign = getattr(service, verb)(campaign_id)
        click.echo(f"campaign {campaign.id} is {campaign.status.value}")
    return command


for _verb in ("launch", "schedule", "cancel"):
    _transition(_verb)


@simulator.command("automate")
@click.option("--name", required=True)
@click.option("--payload", "payload_id", required=True)
@click.option("--every-days", type=int, default=30, show_default=True)
@click.option("--all-users", is_flag=True)
@click.option("--department", "departments", multiple=True)
@click.option("--suggested", type=click.Choice(["not_recently_simulated", "repeat_offenders"]), default=None)
@click.option("--limit", type=int, default=None, help="At most N users per run.")
@click.option("--spread-minutes", type=int, default=240, show_default=True, help="Randomise arrival over this long.")
@click.option("--training", multiple=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def automate(name: str, payload_id: str, every_days: int, all_users: bool, departments: tuple[str, ...],
             suggested: str | None, limit: int | None, spread_minutes: int, training: tuple[str, ...],
             home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """A recurring simulation: a campaign launched every N days by `workbench simulator run`."""
    from workbench.identity import acting_user
    from workbench.simulator import automations
    from workbench.simulator.campaigns import CampaignSettings
    from workbench.simulator.targets import TargetFilter

    _, store = _open(home, tenant_name, db_url)
    made = automations.create(store, acting_user(), name, payload_id,
                              TargetFilter(all_users=all_users, departments=departments, suggested=suggested or "",
                                           limit=limit),
                              settings=CampaignSettings(spread_minutes=spread_minutes, training=training),
                              every_days=every_days)
    click.echo(f"automation {made.id} runs every {made.every_days} day(s); next {made.next_run:%Y-%m-%d %H:%M} UTC")


@simulator.command("automations")
@home_option
@tenant_option
@db_option
@friendly_errors
def automations_cmd(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Recurring simulations."""
    from workbench.simulator import automations

    _, store = _open(home, tenant_name, db_url)
    _service(store).require_reports()
    click.echo(_table([[a.id, safe(a.name), a.template["payload_id"], a.every_days,
                        f"{a.next_run:%Y-%m-%d %H:%M}" if a.next_run else "", "on" if a.enabled else "off"]
                       for a in automations.list_all(store)],
                      ["id", "name", "payload", "every (days)", "next run (UTC)", "enabled"]))


@simulator.command("password-endpoint")
@click.option("--imap", "imap", required=True, metavar="HOST[:PORT]", help="The organisation's own IMAP server.")
@click.option("--security", type=click.Choice(["tls", "starttls", "plain"]), default="tls", show_default=True)
@click.option("--login", type=click.Choice(["email", "local"]), default="email", show_default=True,
              help="Sign in with the full address or the local part.")
@click.option("--ca-file", default="", help="PEM bundle of a private CA.")
@click.option("--lockout-threshold", type=int, default=None, help="The directory's account lockout threshold.")
@home_option
@tenant_option
@db_option
@friendly_errors
def password_endpoint(imap: str, security: str, login: str, ca_file: str, lockout_threshold: int | None,
                      home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Declare the organisation's own IMAP endpoint, the only target password attacks accept."""
    from workbench.identity import acting_user
    from workbench.simulator import password_config as pc

    host, _, port = imap.rpartition(":") if imap.count(":") == 1 else (imap, "", "")
    if port and not port.isdigit():
        raise InputError(f"--imap {imap!r} is not HOST[:PORT]; use e.g. mail.contoso.com:993")
    tenant, store = _open(home, tenant_name, db_url)
    current = pc.load(tenant)
    endpoint = pc.OwnEndpoint(host=host or imap, port=int(port or 0), security=security, login=login,
                              ca_file=ca_file)
    kept = tuple(e for e in current.own_endpoints if e.key != endpoint.key)
    new = replace(current, own_endpoints=(*kept, endpoint),
                  lockout_threshold=lockout_threshold or current.lockout_threshold)
    pc.configure(tenant, store, acting_user(), new)
    click.echo(f"own endpoint {endpoint.key} saved; lockout threshold {new.lockout_threshold}")


@simulator.command("password-attack")
@click.argument("mode", type=click.Choice(["spray", "dictionary"]))
@click.option("--account", "accounts", multiple=True, help="A directory account (repeatable).")
@click.option("--accounts-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="One account per line.")
@click.option("--passwords-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Candidate passwords, one per line (read, never stored or printed).")
@click.option("--endpoint", default=None, help="imap://host:port (default: the only own endpoint).")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between attempts.")
@click.option("--round-delay", type=float, default=60.0, show_default=True, help="Spray: seconds between rounds.")
@home_option
@tenant_option
@db_option
@friendly_errors
def password_attack(mode: str, accounts: tuple[str, ...], accounts_file: Path | None, passwords_file: Path,
                    endpoint: str | None, interval: float, round_delay: float, home: Path | None, tenant_name: str,
                    db_url: str | None) -> None:
    """Password spray or dictionary attack against the organisation's own endpoint: which accounts
    accept a weak password (simulation administrators; paced; never stores a password)."""
    from workbench.cli_actions import _Progress
    from workbench.identity import acting_user
    from workbench.lake import Lake
    from workbench.simulator.password_attacks import AttackLimits, simulate

    names = list(accounts) + ([x.strip() for x in accounts_file.read_text(encoding="utf-8").splitlines()
                               if x.strip()] if accounts_file else [])
    candidates = [x for x in passwords_file.read_text(encoding="utf-8").splitlines() if x]
    if not names or not candidates:
        raise InputError("give at least one --account (or --accounts-file) and a non-empty --passwords-file")
    tenant, store = _open(home, tenant_name, db_url)
    with _Progress("attempts") as update:
        result = simulate(tenant, store, acting_user(), mode=mode, accounts=names, passwords=candidates,
                          endpoint=endpoint, limits=AttackLimits(min_interval=interval, round_delay=round_delay),
                          progress=update, lake=Lake.for_tenant(tenant))
    del candidates
    counts = result.counts()
    click.echo(f"{counts['accounts_tried']} account(s) tried, {counts['attempts']} attempt(s), "
               f"{counts['accepted']} accepted a weak password, {counts['lockout_guard_hits']} stopped by the "
               f"lockout guard, {counts['duration_s']:.1f} s")
    for outcome in result.outcomes:
        click.echo(f"  {safe(outcome.describe())}")
    if result.error:
        click.echo(f"stopped early: {safe(result.error)}", err=True)


@simulator.command("list")
@home_option
@tenant_option
@db_option
@friendly_errors
def list_cmd(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Campaigns, newest first."""
    _, store = _open(home, tenant_name, db_url)
    rows = [[c.id, safe(c.name)[:50], c.technique.label, c.status.value, c.targets,
             f"{c.started:%Y-%m-%d %H:%M}" if c.started else "", f"{c.end_at:%Y-%m-%d %H:%M}" if c.end_at else ""]
            for c in _service(store).list()]
    click.echo(_table(rows, ["id", "name", "technique", "status", "targets", "started (UTC)", "ends (UTC)"]))


@simulator.command("show")
@click.argument("campaign_id", type=int)
@click.option("--flagged", is_flag=True, help="Also list the excluded (scanner, preview...) events.")
@home_option
@tenant_option
@db_option
@friendly_errors
def show(campaign_id: int, flagged: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """A campaign's report: counts, rates, timing, by department; flagged events with --flagged."""
    from workbench.identity import acting_user
    from workbench.simulator.reports import campaign_report

    _, store = _open(home, tenant_name, db_url)
    report = campaign_report(store, campaign_id, actor=acting_user())
    click.echo(safe(report.render()))
    if report.by_department.height:
        click.echo(_table([[safe(r["department"]), r["received"], r["clicked"], r["compromised"], r["reported"],
                            f"{r['compromise_rate']:.0%}"] for r in report.by_department.iter_rows(named=True)],
                          ["department", "received", "clicked", "compromised", "reported", "compromise rate"]))
    if flagged:
        click.echo(_table([[f"{r['at']:%Y-%m-%d %H:%M:%S}", r["user"], r["kind"], r["ip"], safe(r["user_agent"])[:60],
                            r["reasons"]] for r in report.flagged.iter_rows(named=True)],
                          ["at (UTC)", "user", "event", "ip", "user agent", "excluded because"]))


@simulator.command("overview")
@home_option
@tenant_option
@db_option
@friendly_errors
def overview(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Across campaigns: coverage (last 90 days), training completion, repeat offenders, department
    trends and the users over the last 5 campaigns."""
    from workbench.lake import Lake
    from workbench.simulator import reports
    from workbench.simulator.targets import directory

    tenant, store = _open(home, tenant_name, db_url)
    _service(store).require_reports("overview")
    users = directory(Lake.for_tenant(tenant))
    cover = reports.coverage(store, users["email"].to_list() if "email" in users.columns else [])
    n = cover["users"]
    click.echo(_table([[label, f"{cover[k]:,}", f"{cover[k] / n:.0%}" if n else "n/a"]
                       for label, k in (("simulated (last 90 days)", "simulated"), ("not simulated", "not_simulated"),
                                        ("directory users", "users"))], ["coverage", "users", "share"]))
    training = reports.training_completion(store)
    click.echo("\n" + _table([[label, f"{training[k]:,}"] for label, k in (
        ("assigned", "assigned"), ("completed", "completed"), ("in progress", "in_progress"),
        ("overdue", "incomplete"))], ["training", "users"]))
    offenders = reports.repeat_offender_table(store, users)
    click.echo("\n" + _table([[safe(r["email"]), safe(r["department"]), r["consecutive"]]
                              for r in offenders.iter_rows(named=True)],
                             ["repeat offender", "department", "consecutive compromises"]))
    trends = reports.department_trends(store)
    click.echo("\n" + _table([[safe(r["department"]), r["campaign_id"], f"{r['started']:%Y-%m-%d %H:%M}",
                               r["received"], f"{r['compromise_rate']:.0%}", f"{r['report_rate']:.0%}"]
                              for r in trends.iter_rows(named=True)],
                             ["department", "campaign", "launched (UTC)", "received", "compromise rate",
                              "report rate"]))
    ids, recent = reports.recent_user_trends(store, last=5)
    cols = [f"#{i}" for i in ids]
    click.echo("\n" + _table([[safe(r["email"]), safe(r["department"]), *(r[c] for c in cols), r["clicked"],
                               r["compromised"], r["reported"]] for r in recent.iter_rows(named=True)],
                             ["user", "department", *cols, "clicked", "compromised", "reported"]))


@simulator.command("export")
@click.argument("campaign_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def export(campaign_id: int, out: Path, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """The per-user CSV of a campaign (the report's user fields; audited)."""
    from workbench.identity import acting_user
    from workbench.simulator.reports import export_users_csv

    _, store = _open(home, tenant_name, db_url)
    n = export_users_csv(store, campaign_id, out, actor=acting_user())
    click.echo(f"{n:,} user row(s) written to {out}")


@simulator.command("run")
@click.option("--follow", is_flag=True, help="Keep running (every --interval seconds) until Ctrl-C.")
@click.option("--interval", type=float, default=60.0, show_default=True)
@home_option
@tenant_option
@db_option
@friendly_errors
def run(follow: bool, interval: float, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Start/end due campaigns, send due messages and notifications, mark reported simulations."""
    from workbench.cli_actions import _Progress
    from workbench.lake import Lake
    from workbench.simulator import config
    from workbench.simulator.sending import run_once
    from workbench.simulator.user_reports import mark_user_reports

    tenant, store = _open(home, tenant_name, db_url)
    settings = config.load(tenant)
    while True:
        with _Progress("sending") as update:
            changed, sent, notified = run_once(store, settings, lake=Lake.for_tenant(tenant), progress=update)
        reported = mark_user_reports(store, Lake.for_tenant(tenant))
        click.echo(f"{len(changed['started'])} started, {len(changed['completed'])} completed; {sent.render()}; "
                   f"{notified.render()}; {reported} report(s) picked up")
        for line in sent.errors + notified.errors:
            click.echo(f"  {safe(line)}", err=True)
        if not follow:
            return
        time.sleep(max(interval, 1.0))


@simulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8899, show_default=True)
@click.option("--public", is_flag=True, help="Allow a non-loopback --host (put TLS in front of it).")
@click.option("--trust-forwarded", is_flag=True, help="Take the client address from X-Forwarded-For (behind a proxy).")
@click.option("--min-click-seconds", type=float, default=10.0, show_default=True,
              help="Clicks faster than this after delivery are flagged as scanners.")
@home_option
@tenant_option
@db_option
@friendly_errors
def serve(host: str, port: int, public: bool, trust_forwarded: bool, min_click_seconds: float, home: Path | None,
          tenant_name: str, db_url: str | None) -> None:
    """Run the tracking and landing server (links, pixel, login/consent pages, reports, training)."""
    from workbench.simulator import config
    from workbench.simulator.recorder import StoreTracker
    from workbench.simulator.tracking import serve_forever

    tenant, store = _open(home, tenant_name, db_url)
    tracker = StoreTracker(store, organisation=config.load(tenant).organisation)
    serve_forever(tracker, host=host, port=port, allow_public=public, trust_forwarded=trust_forwarded,
                  min_seconds=min_click_seconds)


@simulator.command("smtp-server")
@click.option("--port", type=int, default=2525, show_default=True)
@home_option
@tenant_option
@friendly_errors
def smtp_server(port: int, home: Path | None, tenant_name: str) -> None:
    """Run the embedded SMTP server on loopback: what it receives lands in the tenant's mailboxes."""
    from workbench.simulator.mail_server import serve_forever, tenant_delivery
    from workbench.tenant import open_tenant

    tenant = open_tenant(tenant_name, base=home)
    serve_forever(tenant_delivery(tenant), host="127.0.0.1", port=port)


__all__ = ["simulator"]
