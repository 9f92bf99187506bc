"""``workbench intel ...``: import, export, search and learn indicators; list threat notes.

``import`` reads STIX 2.0/2.1 bundles, MISP events and warning lists, and text/CSV blocklists
(files or folders; needs alert policy configuration); ``export`` writes the shareable indicators
(never TLP:RED or AMBER+STRICT) as STIX 2.1 or CSV; ``learn`` adds what investigations found
malicious. Values from feeds are untrusted: they are printed defanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from workbench.cli_actions import _Progress
from workbench.cli_common import friendly_errors, home_option, tenant_option
from workbench.cli_incidents import _open, _table, db_option
from workbench.cli_mail import safe
from workbench.errors import InputError

TYPES = ["url", "domain", "ip", "sha256", "sender", "senderDomain"]


@click.group()
def intel() -> None:
    """Threat intelligence: indicators (import, export, search, learn) and threat notes."""


@intel.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--tlp", default="clear", show_default=True,
              help="TLP for indicators whose source does not mark one (clear, green, amber, amber+strict, red).")
@click.option("--no-hunt", is_flag=True, help="Do not retro-hunt the new indicators in past mail now.")
@home_option
@tenant_option
@db_option
@friendly_errors
def intel_import(paths: tuple[Path, ...], tlp: str, no_hunt: bool, home: Path | None, tenant_name: str,
                 db_url: str | None) -> None:
    """Import indicator files and folders (every .json/.txt/.csv below a folder; re-importing changes
    nothing), then retro-hunt the new indicators across the whole lake."""
    from workbench.identity import acting_user
    from workbench.intel.imports import import_paths
    from workbench.intel.model import Tlp

    level = Tlp.parse(tlp)
    tenant, store = _open(home, tenant_name, db_url)
    with _Progress("import") as update:
        results = import_paths(store, list(paths), actor=acting_user(), tlp_default=level, progress=update)
    for r in results:
        click.echo(safe(r.render()))
    if not no_hunt and any(r.added for r in results):
        _hunt(tenant, store)
    failed = [r for r in results if r.failed]
    if failed:
        raise InputError(f"{len(failed)} file(s) could not be imported, first {failed[0].source}: "
                         f"{safe(failed[0].reasons[0])}")


def _hunt(tenant: Any, store: Any) -> None:
    from workbench.intel.retrohunt import retro_hunt
    from workbench.lake import Lake

    click.echo(safe(retro_hunt(store, Lake.for_tenant(tenant)).render()))


@intel.command("hunt")
@home_option
@tenant_option
@db_option
@friendly_errors
def intel_hunt(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Retro-hunt the indicators added since the last hunt across the whole lake; one alert per match."""
    tenant, store = _open(home, tenant_name, db_url)
    _hunt(tenant, store)


@intel.command("export")
@click.option("--format", "fmt", type=click.Choice(["stix", "csv"]), default="stix", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
@click.option("--no-learned", is_flag=True, help="Leave out indicators learned from investigations.")
@home_option
@tenant_option
@db_option
@friendly_errors
def intel_export(fmt: str, out: Path, no_learned: bool, home: Path | None, tenant_name: str,
                 db_url: str | None) -> None:
    """Write shareable indicators (never TLP:RED or AMBER+STRICT, never allow entries), atomically; audited."""
    from workbench.identity import acting_user
    from workbench.intel.exports import export_csv, export_stix

    _, store = _open(home, tenant_name, db_url)
    write = export_stix if fmt == "stix" else export_csv
    n = write(store, out, actor=acting_user(), include_learned=not no_learned)
    click.echo(f"{n:,} indicator(s) written to {out}")


@intel.command("search")
@click.argument("text", required=False, default="")
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this type (repeatable).")
@click.option("--allow", "allow", flag_value=True, default=None, help="Only allow-list entries.")
@click.option("--block", "allow", flag_value=False, help="Only block indicators.")
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def intel_search(text: str, types: tuple[str, ...], allow: bool | None, limit: int, as_json: bool,
                 home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Indicators whose value, family or description contains TEXT; newest first."""
    from workbench import rbac
    from workbench.identity import acting_user
    from workbench.intel.store import search

    _, store = _open(home, tenant_name, db_url)
    rbac.require(store, acting_user(), rbac.Permission.METADATA_READ, activity="intel.search", target=text)
    found = search(store, text=text, types=types, allow=allow, limit=limit)
    if as_json:
        for i in found:
            click.echo(json.dumps({"type": i.type.value, "value": i.value, "source": i.source,
                                   "confidence": i.confidence, "tlp": i.tlp.value, "allow": i.allow,
                                   "family": i.family, "tags": list(i.tags), "description": i.description,
                                   "expires": i.expires.isoformat() if i.expires else None}, ensure_ascii=False))
        return
    click.echo(_table([[i.type.value, safe(i.value), safe(i.source), i.confidence, i.tlp.value.upper(),
                        "allow" if i.allow else "block", safe(i.family)] for i in found],
                      ["type", "value", "source", "conf", "TLP", "list", "family"]))


@intel.command("learn")
@home_option
@tenant_option
@db_option
@friendly_errors
def intel_learn(home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Add what automated investigations found malicious (URLs, files, sender IPs/domains) as indicators."""
    from workbench import audit, rbac
    from workbench.identity import acting_user
    from workbench.intel.exports import learn_from_investigations

    _, store = _open(home, tenant_name, db_url)
    actor = acting_user()
    rbac.require(store, actor, rbac.Permission.ALERT_POLICY_CONFIGURATION, activity="intel.learn", target="workbench")
    result = learn_from_investigations(store)
    audit.record(store, actor=actor, activity="intel.learn", target="workbench",
                 details={"added": result.added, "updated": result.updated, "unchanged": result.unchanged})
    click.echo(f"learned indicators: {result.render()}")


@intel.command("notes")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@home_option
@tenant_option
@db_option
@friendly_errors
def intel_notes(as_json: bool, home: Path | None, tenant_name: str, db_url: str | None) -> None:
    """Threat notes from STIX reports, intrusion sets, malware and campaigns."""
    from workbench import rbac
    from workbench.identity import acting_user
    from workbench.intel.imports import notes

    _, store = _open(home, tenant_name, db_url)
    rbac.require(store, acting_user(), rbac.Permission.METADATA_READ, activity="intel.notes")
    found = notes(store)
    if as_json:
        for n in found:
            click.echo(json.dumps({"id": n.id, "name": n.name, "family": n.family, "tlp": n.tlp.value,
                                   "techniques": list(n.techniques), "protections": list(n.protections),
                                   "indicators": [list(x) for x in n.indicators], "source": n.source},
                                  ensure_ascii=False))
        return
    click.echo(_table([[safe(n.name), safe(n.family), n.tlp.value.upper(), len(n.techniques), len(n.protections),
                        len(n.indicators), safe(n.source)] for n in found],
                      ["name", "family", "TLP", "techniques", "protections", "indicators", "source"]))


__all__ = ["intel"]
