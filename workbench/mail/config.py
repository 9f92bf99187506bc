"""Which mail store a tenant's remediation and searches act on: its embedded store, or a Maildir tree.

A tenant uses its embedded store (``<tenant>/mail/store.sqlite``) unless ``<tenant>/mail/config.json``
points it at the Maildirs of a Dovecot/Postfix server::

    {"store": "maildir", "root": "/var/vmail", "layout": "%d/%n/Maildir", "folder_names": {"Junk Email": "Junk Email"}}

``folder_names`` maps a workbench folder to the Maildir++ name created for it when a mailbox has
none of its aliases (see :data:`workbench.mail.maildir.FOLDER_NAMES`). The file is JSON, written
atomically (a temporary file renamed over it), so a reader sees the old or the new settings, never
half of them. :func:`open_mail_store` is what the action center and the CLI open; :func:`search_tenant` searches it.

>>> import tempfile, pathlib
>>> from workbench.tenant import Tenant
>>> t = Tenant("t", pathlib.Path(tempfile.mkdtemp()))
>>> load(t).store
'embedded'
>>> vmail = t.root / "vmail"; vmail.mkdir()
>>> configure_maildir(t, vmail, folder_names={"Junk Email": "Spam"}).layout
'%d/%n/Maildir'
>>> type(open_mail_store(t)).__name__, load(t).names
('MaildirMailStore', {<Folder.JUNK: 'Junk Email'>: 'Spam'})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from workbench.enums import Folder
from workbench.errors import InputError, NotFound, StorageError
from workbench.mail.base import MailStore
from workbench.mail.maildir import DEFAULT_LAYOUT, FOLDER_NAMES

CONFIG_FILE = "config.json"
STORES = ("embedded", "maildir")
#: Folder naming presets for ``workbench mail configure --naming``: Dovecot's defaults, or Exchange's names.
NAMING: dict[str, dict[Folder, str]] = {
    "dovecot": {},
    "exchange": {Folder.JUNK: "Junk Email", Folder.DELETED_ITEMS: "Deleted Items", Folder.SENT_ITEMS: "Sent Items"},
}


@dataclass(frozen=True)
class MailConfig:
    """A tenant's mail store settings (``store`` is ``embedded`` or ``maildir``)."""

    store: str = "embedded"
    root: Path | None = None
    layout: str = DEFAULT_LAYOUT
    names: Mapping[Folder, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        if self.store == "embedded":
            return {"store": "embedded"}
        return {"store": self.store, "root": str(self.root), "layout": self.layout,
                "folder_names": {f.value: n for f, n in sorted(self.names.items())}}

    def describe(self) -> str:
        """One line: which store, and where."""
        if self.store == "embedded":
            return "embedded store"
        names = ", ".join(f"{f.value} → .{n}" for f, n in self.names.items())
        return f"Maildir tree {self.root} (layout {self.layout}" + (f"; folders {names}" if names else "") + ")"


def config_path(tenant: Any) -> Path:
    """``<tenant>/mail/config.json``."""
    return Path(tenant.mail_dir) / CONFIG_FILE


def _folder_names(raw: Mapping[str, str] | None, where: str) -> dict[Folder, str]:
    """``{"Junk Email": "Spam"}`` (folder value or enum name, any case) → ``{Folder.JUNK: "Spam"}``."""
    lookup = {k.lower(): f for f in Folder for k in (f.value, f.name, f.name.replace("_", "-"))}
    out: dict[Folder, str] = {}
    for key, name in (raw or {}).items():
        folder = lookup.get(str(key).strip().lower())
        if folder is None or folder is Folder.INBOX:
            choices = ", ".join(f.value for f in FOLDER_NAMES if f is not Folder.INBOX)
            raise InputError(f"{where}: unknown folder {key!r}; name one of {choices}")
        name = str(name).strip().strip("/").lstrip(".")
        if not name or "/" in name or "\0" in name:
            raise InputError(f"{where}: {name!r} is not a Maildir++ folder name; give one like Junk or Deleted Items")
        out[folder] = name
    return out


def load(tenant: Any) -> MailConfig:
    """The tenant's settings (embedded when it has none); a damaged file is a one-line error."""
    path = config_path(tenant)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return MailConfig()
    except (OSError, ValueError) as exc:
        raise InputError(f"mail settings {path} are unreadable ({exc}); fix the file or run "
                         "`workbench mail configure --embedded` / `--maildir ROOT`") from None
    if not isinstance(data, dict) or data.get("store") not in STORES:
        raise InputError(f"mail settings {path}: \"store\" must be one of {', '.join(STORES)}; "
                         "run `workbench mail configure` to rewrite them")
    if data["store"] == "embedded":
        return MailConfig()
    if not isinstance(data.get("root"), str) or not data["root"]:
        raise InputError(f"mail settings {path}: a Maildir store needs \"root\"; run `workbench mail configure --maildir ROOT`")
    return MailConfig("maildir", Path(data["root"]), str(data.get("layout") or DEFAULT_LAYOUT),
                      _folder_names(data.get("folder_names"), f"mail settings {path}"))


def save(tenant: Any, config: MailConfig) -> MailConfig:
    """Write the settings atomically (temporary file, fsync, rename)."""
    from workbench.atomic import write_json

    path = config_path(tenant)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {path.parent}: {exc.strerror or exc}; check the tenant folder's permissions") from None
    write_json(path, config.to_dict())
    return config


def configure_maildir(tenant: Any, root: Path | str, *, layout: str = DEFAULT_LAYOUT,
                      folder_names: Mapping[Folder | str, str] | None = None, naming: str = "dovecot") -> MailConfig:
    """Point the tenant at the Maildir tree under *root* (which must exist); returns the saved settings.

    *naming* is a preset of :data:`NAMING`; *folder_names* override it folder by folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise InputError(f"Maildir root {root} {what}; give the folder holding the mailboxes (e.g. /var/vmail)")
    if naming not in NAMING:
        raise InputError(f"unknown folder naming {naming!r}; use one of {', '.join(NAMING)}")
    names = {**NAMING[naming], **_folder_names({str(k): v for k, v in (folder_names or {}).items()}, "folder names")}
    config = MailConfig("maildir", root.resolve(), layout.strip().strip("/") or DEFAULT_LAYOUT, names)
    _open_maildir(config).close()  # checks the layout (and that the index can be written) before saving
    return save(tenant, config)


def configure_embedded(tenant: Any) -> MailConfig:
    """Use the tenant's embedded store again."""
    return save(tenant, MailConfig())


def _open_maildir(config: MailConfig) -> MailStore:
    from workbench.mail.maildir import MaildirMailStore

    assert config.root is not None
    if not config.root.is_dir():
        raise NotFound(f"Maildir root {config.root} is missing; mount it, or run `workbench mail configure` "
                       "(--maildir ROOT or --embedded)")
    try:
        return MaildirMailStore(config.root, layout=config.layout, names=config.names)
    except OSError as exc:
        raise StorageError(f"cannot open the Maildir index under {config.root}: {exc.strerror or exc}; "
                           "the workbench needs write access to ROOT/.workbench") from None


@overload
def open_mail_store(tenant: Any, *, missing_ok: Literal[False] = False) -> MailStore: ...
@overload
def open_mail_store(tenant: Any, *, missing_ok: bool) -> MailStore | None: ...


def open_mail_store(tenant: Any, *, missing_ok: bool = False) -> MailStore | None:
    """The mail store the tenant is configured to use (close it when done).

    An embedded store that does not exist yet raises :class:`NotFound` (None with *missing_ok*);
    a configured Maildir root that is gone always raises."""
    config = load(tenant)
    if config.store == "maildir":
        return _open_maildir(config)
    from workbench.mail.embedded import EmbeddedMailStore

    path = Path(tenant.mail_dir) / "store.sqlite"
    if not path.is_file():
        if missing_ok:
            return None
        raise NotFound(f"tenant {tenant.name!r} has no mail store ({path}); ingest or generate mail first, "
                       "or point it at a Maildir tree: workbench mail configure --maildir ROOT")
    return EmbeddedMailStore(path)


def search_tenant(tenant: Any, criteria: Any, *, roles: Any, **kw: Any) -> Any:
    """:func:`workbench.mail.search.search` over the tenant's configured store, checked against and
    audited to (``mail.search``) *roles*, the tenant's :class:`~workbench.store.Store`, whichever
    mail store it is (keywords: actor, progress, max_bytes)."""
    from workbench.mail.search import search

    store = open_mail_store(tenant)
    try:
        return search(store, criteria, roles=roles, audit_store=roles, **kw)
    finally:
        store.close()  # type: ignore[attr-defined]


__all__ = ["MailConfig", "search_tenant", "NAMING", "CONFIG_FILE", "config_path", "load", "save",
           "configure_maildir", "configure_embedded", "open_mail_store"]
