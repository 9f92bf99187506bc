"""Tenants: a tenant is a folder holding its lake, its database and its mail store.

Tenants live in ``<home>/tenants/<name>/`` where *home* is ``$WORKBENCH_HOME`` or, when
unset, the nearest ``data/`` folder above the working directory that has a ``tenants``
folder (so notebooks find the project's tenants), else ``./data``.

A tenant is complete when its ``tenant.json`` manifest exists. Builders write into a
hidden staging folder and :func:`staging` renames it into place only when they finish, so
an interrupted build never leaves a half tenant that later commands would open.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ConflictError, InputError, NotFound, StorageError

DEFAULT_TENANT = "demo"
MANIFEST = "tenant.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def home() -> Path:
    """The folder that holds ``tenants/``."""
    env = os.environ.get("WORKBENCH_HOME")
    if env:
        return Path(env).expanduser().resolve()
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "data" / "tenants").is_dir():
            return folder / "data"
    return cwd / "data"


def default_name() -> str:
    return os.environ.get("WORKBENCH_TENANT") or DEFAULT_TENANT


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"invalid tenant name {name!r}: use letters, digits, '.', '_' or '-' (at most 64), "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Tenant:
    """Paths of one tenant folder."""

    name: str
    root: Path

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def mail_dir(self) -> Path:
        return self.root / "mail"

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def db_path(self) -> Path:
        return self.root / "workbench.sqlite"

    @property
    def scenarios_path(self) -> Path:
        return self.root / "scenarios.json"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text())


def tenants_dir(base: Path | None = None) -> Path:
    return (base or home()) / "tenants"


def list_tenants(base: Path | None = None) -> list[str]:
    folder = tenants_dir(base)
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()
    )


def open_tenant(name: str | None = None, *, base: Path | None = None) -> Tenant:
    """Open a complete tenant by name (or by path); unknown names raise :class:`NotFound`."""
    name = name or default_name()
    if os.sep in name or name.startswith("."):
        root = Path(name).expanduser().resolve()
        tenant = Tenant(root.name, root)
    else:
        check_name(name)
        tenant = Tenant(name, tenants_dir(base) / name)
    if not tenant.manifest_path.is_file():
        known = list_tenants(base)
        hint = f" (known: {', '.join(known)})" if known else ""
        raise NotFound(
            f"tenant {tenant.name!r} not found in {tenant.root.parent}{hint}; "
            f"create it with: workbench demo generate --tenant {tenant.name}"
        )
    return tenant


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(
            f"cannot write to {folder}: {exc.strerror or exc}; "
            "set WORKBENCH_HOME (or --home) to a writable folder"
        ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale(folder: Path) -> None:
    """Remove staging/trash folders left by processes that no longer run."""
    for path in folder.glob(".*-*"):
        match = re.match(r"^\.(staging|trash)-.+-(\d+)$", path.name)
        if match and path.is_dir() and not _pid_alive(int(match.group(2))):
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def staging(name: str, *, force: bool = False, base: Path | None = None) -> Iterator[Tenant]:
    """Build a tenant in a hidden folder; rename it into place only on success.

    Raises :class:`ConflictError` when the tenant exists and *force* is false, before
    anything is written. On any exception the staging folder is removed.
    """
    check_name(name)
    folder = tenants_dir(base)
    final = folder / name
    if final.exists() and not force:
        raise ConflictError(
            f"tenant {name!r} already exists at {final}; pass --force to replace it"
        )
    _ensure_writable(folder)
    _sweep_stale(folder)
    work = folder / f".staging-{name}-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        yield Tenant(name, work)
        if not (work / MANIFEST).is_file():
            raise RuntimeError("tenant builder finished without writing its manifest")
        trash = folder / f".trash-{name}-{os.getpid()}"
        if final.exists():
            os.replace(final, trash)
        os.replace(work, final)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def write_manifest(tenant: Tenant, manifest: dict[str, Any]) -> None:
    """Write the manifest last: its presence marks the tenant complete."""
    tmp = tenant.manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, tenant.manifest_path)


def ensure(name: str | None = None, *, base: Path | None = None, org_domains: tuple[str, ...] = ()) -> Tenant:
    """Open a tenant, creating an empty one for imported data when it does not exist yet."""
    name = name or default_name()
    if name in list_tenants(base) or os.sep in name:
        return open_tenant(name, base=base)
    with staging(name, base=base) as t:
        write_manifest(t, {"name": name, "kind": "imported", "organisation": {"domains": list(org_domains)}})
    return open_tenant(name, base=base)


def org_domains(tenant: Tenant) -> tuple[str, ...]:
    """The organisation's accepted domains, from the manifest."""
    return tuple(d.lower() for d in tenant.manifest().get("organisation", {}).get("domains", []))
