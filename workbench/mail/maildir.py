"""Mail stores on a real mail server's disk: one Maildir per mailbox (Dovecot, Postfix).

Layout. ``root`` holds one Maildir per mailbox, placed by a Dovecot-style template:

- ``%d/%n/Maildir`` (default): ``<root>/contoso.test/ann/Maildir`` — Postfix
  ``virtual_mailbox_base`` + Dovecot ``mail_location = maildir:/var/vmail/%d/%n/Maildir``;
- ``%d/%n``: ``<root>/contoso.test/ann`` (the same without the ``Maildir`` level);
- ``%u``: ``<root>/ann@contoso.test``.

Folders are Maildir++ subfolders of the mailbox's Maildir (``.Junk``, ``.Trash``,
``.Recoverable Items.Deletions``...), each with ``cur/ new/ tmp/``; the Inbox is the Maildir
itself. Reading recognises the usual aliases (Junk / Junk Email / Spam, Trash / Deleted Items /
Deleted Messages, Sent / Sent Items...); a folder the workbench creates gets the first name of
:data:`FOLDER_NAMES` (Dovecot's defaults, then Exchange's names) unless the mailbox already has
one of its aliases. Folders that are none of these (a user's "Projects") are not read.

Addressing. Real servers know no NetworkMessageId, so a file's id is the one the workbench's
ingest gives it (:func:`ingest_network_message_id`: the ``X-MS-Exchange-Organization-Network-Message-Id``
header, else an id derived from the bytes) — the ids in the lake and here agree. An index
(``<root>/.workbench/maildir-index.sqlite``, a cache) maps ids to files; a mailbox is scanned
again when the modification time of one of its folders changes, and only files it has never
seen are read.

Moves are ``os.rename`` within the tree: atomic, so a killed process leaves each file in exactly
one folder; the file keeps its name and its ``:2,<flags>`` info (seen, replied...) and stays in
``cur/`` or ``new/``. An index that is behind the disk is corrected on the spot (the move rescans
the mailbox and tries again), which makes a rerun after a crash exact.

>>> import tempfile
>>> store = MaildirMailStore(tempfile.mkdtemp())
>>> ref = store.deliver("Ann@Contoso.test", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
>>> store.mailboxes(), store.folder(ref.network_message_id, ref.mailbox)
(['ann@contoso.test'], <Folder.INBOX: 'Inbox'>)
>>> [r.outcome.value for r in store.move([ref, ref], Folder.JUNK)]
['Success', 'AlreadyInDestination']
>>> sorted(p.name for p in (store.maildir("ann@contoso.test")).iterdir())
['.Junk', 'cur', 'new', 'tmp']
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.enums import Folder
from workbench.errors import InputError, NotFound
from workbench.ingest.message import ParseError, network_message_id, parse
from workbench.mail.base import CopyRef, CopyResult, Outcome

DEFAULT_LAYOUT = "%d/%n/Maildir"
INDEX_DIR = ".workbench"
#: Maildir++ names per folder, case-insensitive; the first is the one created when a mailbox has none.
FOLDER_NAMES: dict[Folder, tuple[str, ...]] = {
    Folder.INBOX: ("",),
    Folder.JUNK: ("Junk", "Junk Email", "Junk E-mail", "Spam", "Bulk Mail"),
    Folder.DELETED_ITEMS: ("Trash", "Deleted Items", "Deleted Messages", "Deleted"),
    Folder.SENT_ITEMS: ("Sent", "Sent Items", "Sent Messages"),
    Folder.QUARANTINE: ("Quarantine",),
    Folder.RECOVERABLE_DELETIONS: ("Recoverable Items.Deletions",),
    Folder.RECOVERABLE_PURGES: ("Recoverable Items.Purges",),
}
_RACY_NS = 2_000_000_000  # a folder changed this close to its scan is scanned again (coarse mtime clocks)
_COUNTER = itertools.count()
_HOST = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    mailbox TEXT NOT NULL, dir TEXT NOT NULL, base TEXT NOT NULL,
    sub TEXT NOT NULL, name TEXT NOT NULL, nmid TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (mailbox, dir, base)
);
CREATE INDEX IF NOT EXISTS files_by_id ON files (nmid, mailbox);
CREATE TABLE IF NOT EXISTS dirs (
    mailbox TEXT NOT NULL, dir TEXT NOT NULL, sub TEXT NOT NULL, mtime_ns INTEGER NOT NULL, scanned_ns INTEGER NOT NULL,
    PRIMARY KEY (mailbox, dir, sub)
);
"""


def ingest_network_message_id(raw: bytes) -> str:
    """The NetworkMessageId :func:`workbench.ingest.message.parse` gives these bytes (so the lake's
    id of an ingested file): the Exchange header, else a stable id derived from the bytes; for a
    user-reported message with the original attached, the original's id.

    >>> ingest_network_message_id(b"Subject: x\\r\\n\\r\\nbody") == parse(b"Subject: x\\r\\n\\r\\nbody").network_message_id
    True
    """
    if b"message/rfc822" in raw.lower():  # parse() may analyse the attached original: ask it
        try:
            return parse(raw, language=False).network_message_id
        except ParseError:
            pass
    return network_message_id(_HEADERS.parsebytes(raw), raw)


def unique_name() -> str:
    """A Maildir unique file name (``<sec>.M<usec>P<pid>Q<n>.<host>``, as Dovecot writes them)."""
    now = time.time_ns() // 1000
    return f"{now // 1_000_000}.M{now % 1_000_000}P{os.getpid()}Q{next(_COUNTER)}.{_HOST}"


def _base(name: str) -> str:
    return name.split(":", 1)[0]


@dataclass(frozen=True)
class _File:
    dir: str  # the Maildir++ folder directory: "" (Inbox) or ".Junk"...
    sub: str  # "cur" or "new"
    name: str


class MaildirMailStore:
    """Maildirs under one root; see the module docstring for the layout."""

    def __init__(self, root: Path | str, *, layout: str = DEFAULT_LAYOUT,
                 names: Mapping[Folder, str] | None = None) -> None:
        """Open the tree at *root* (created if missing). *layout* places a mailbox's Maildir
        (``%d`` domain, ``%n`` local part, ``%u`` address); *names* overrides the Maildir++ name
        created for a folder (e.g. ``{Folder.JUNK: "Junk Email"}`` for Exchange-style names)."""
        if "%u" not in layout and not ("%d" in layout and "%n" in layout):
            raise InputError(f"layout {layout!r} cannot name a mailbox; use %u, or %d and %n (e.g. {DEFAULT_LAYOUT!r})")
        self.root = Path(root)
        self.layout = layout.strip("/")
        self._names = {f: ((names[f],) if names and f in names else ()) + FOLDER_NAMES[f] for f in Folder}
        self._alias = {n.lower(): f for f, ns in self._names.items() for n in ns}
        pattern = re.escape(self.layout)
        for var, group in (("%d", "(?P<d>[^/]+)"), ("%n", "(?P<n>[^/]+)"), ("%u", "(?P<u>[^/]+@[^/]+)")):
            pattern = pattern.replace(re.escape(var), group, 1)
        self._pattern = re.compile(pattern + r"\Z")
        (self.root / INDEX_DIR).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / INDEX_DIR / "maildir-index.sqlite", timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MaildirMailStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def audit_path(self) -> Path:
        """Where searches over this tree are audited when no tenant is given."""
        return self.root / INDEX_DIR / "search-audit.jsonl"

    # ------------------------------------------------------------------ layout

    def maildir(self, mailbox: str) -> Path:
        """The Maildir of *mailbox* (whether or not it exists yet)."""
        address = mailbox.strip().lower()
        local, _, domain = address.rpartition("@")
        if not local or not domain or local.startswith(".") or domain.startswith(".") or "/" in address or "\0" in address:
            raise InputError(f"{mailbox!r} is not a mailbox address; give one like ann@contoso.test")
        relative = self.layout.replace("%u", address).replace("%d", domain).replace("%n", local)
        return self.root / relative

    def _discover(self) -> dict[str, Path]:
        """Every mailbox of the tree with its Maildir."""
        found: dict[str, Path] = {}
        glob = re.sub(r"%[dnu]", "*", self.layout)
        for path in self.root.glob(glob):
            relative = path.relative_to(self.root).as_posix()
            match = self._pattern.match(relative)
            if not match or any(p.startswith(".") for p in relative.split("/")) or not _is_maildir(path):
                continue
            groups = match.groupdict()
            address = (groups.get("u") or f"{groups['n']}@{groups['d']}").lower()
            found[address] = path
        return found

    def _folders(self, maildir: Path) -> Iterator[tuple[str, Folder]]:
        """The Maildir++ folders of a Maildir that map to a :class:`Folder` (dir name, folder)."""
        yield "", Folder.INBOX
        try:
            entries = sorted(e.name for e in os.scandir(maildir) if e.name.startswith(".") and e.is_dir())
        except FileNotFoundError:
            return
        for name in entries:
            folder = self._alias.get(name[1:].lower())
            if folder is not None and folder is not Folder.INBOX:
                yield name, folder

    def folder_of(self, dirname: str) -> Folder | None:
        """The folder a Maildir++ directory name stands for (``".Spam"`` → Junk Email)."""
        return Folder.INBOX if dirname == "" else self._alias.get(dirname[1:].lower())

    def _destination_dir(self, maildir: Path, folder: Folder) -> str:
        """The mailbox's existing directory for *folder*, else the name to create."""
        if folder is Folder.INBOX:
            return ""
        existing = {name.lower(): name for name, f in self._folders(maildir) if f is folder}
        for candidate in self._names[folder]:
            if f".{candidate}".lower() in existing:
                return existing[f".{candidate}".lower()]
        return "." + self._names[folder][0]

    # ------------------------------------------------------------------ index

    def _refresh(self, mailbox: str | None = None) -> None:
        """Bring the index up to date with the disk: one mailbox, or all (dropping vanished ones)."""
        if mailbox is not None:
            try:
                maildir = self.maildir(mailbox)
            except InputError:
                return  # not an address: no such mailbox here (the queries answer nothing)
            self._refresh_mailbox(mailbox, maildir)
            return
        found = self._discover()
        for address, path in found.items():
            self._refresh_mailbox(address, path)
        indexed = {r[0] for r in self._db.execute("SELECT DISTINCT mailbox FROM dirs")}
        with self._db:
            for gone in indexed - found.keys():
                self._db.execute("DELETE FROM files WHERE mailbox = ?", (gone,))
                self._db.execute("DELETE FROM dirs WHERE mailbox = ?", (gone,))

    def _refresh_mailbox(self, mailbox: str, maildir: Path, *, force: bool = False) -> None:
        now = time.time_ns()
        state: dict[tuple[str, str], int] = {}
        for dirname, _ in self._folders(maildir):
            for sub in ("new", "cur"):
                try:
                    state[(dirname, sub)] = os.stat(maildir / dirname / sub).st_mtime_ns
                except FileNotFoundError:
                    continue
        stored = {(d, s): (m, t) for d, s, m, t in self._db.execute(
            "SELECT dir, sub, mtime_ns, scanned_ns FROM dirs WHERE mailbox = ?", (mailbox,))}
        fresh = stored.keys() == state.keys() and all(
            stored[k][0] == m and m < stored[k][1] - _RACY_NS for k, m in state.items())
        if fresh and not force:
            return
        self._rescan(mailbox, maildir, state, now)

    def _rescan(self, mailbox: str, maildir: Path, state: dict[tuple[str, str], int], now: int) -> None:
        """List every folder of the mailbox; read only files the index has never seen."""
        on_disk: dict[tuple[str, str], tuple[str, str, int]] = {}
        for dirname, sub in state:
            try:
                entries = list(os.scandir(maildir / dirname / sub))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:
                    continue
                on_disk[(dirname, _base(entry.name))] = (sub, entry.name, size)
        indexed = {(d, b): (s, n, i) for d, b, s, n, i in self._db.execute(
            "SELECT dir, base, sub, name, nmid FROM files WHERE mailbox = ?", (mailbox,))}
        by_base = {b: i for (_, b), (_, _, i) in indexed.items()}  # a file moved between folders keeps its id
        upserts = []
        for (dirname, base), (sub, name, size) in on_disk.items():
            known = indexed.get((dirname, base))
            if known and known[:2] == (sub, name):
                continue
            nmid = known[2] if known else by_base.get(base)
            if nmid is None:
                try:
                    nmid = ingest_network_message_id((maildir / dirname / sub / name).read_bytes())
                except FileNotFoundError:
                    continue  # moved while we listed: the folder's new mtime brings it back
            upserts.append((mailbox, dirname, base, sub, name, nmid, size))
        with self._db:
            self._db.executemany(
                "DELETE FROM files WHERE mailbox = ? AND dir = ? AND base = ?",
                ((mailbox, d, b) for d, b in indexed.keys() - on_disk.keys()),
            )
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", upserts)
            self._db.execute("DELETE FROM dirs WHERE mailbox = ?", (mailbox,))
            self._db.executemany("INSERT INTO dirs VALUES (?, ?, ?, ?, ?)",
                                 ((mailbox, d, s, m, now) for (d, s), m in state.items()))

    def _files(self, network_message_id: str, mailbox: str) -> list[_File]:
        rows = self._db.execute(
            "SELECT dir, sub, name FROM files WHERE nmid = ? AND mailbox = ? ORDER BY dir, name",
            (network_message_id, mailbox),
        )
        return [_File(*r) for r in rows]

    # ------------------------------------------------------------------ reading

    def mailboxes(self) -> list[str]:
        """Every mailbox holding at least one copy in a known folder, sorted."""
        self._refresh()
        return [r[0] for r in self._db.execute("SELECT DISTINCT mailbox FROM files ORDER BY mailbox")]

    def folder_counts(self, mailbox: str) -> dict[Folder, int]:
        mailbox = mailbox.strip().lower()
        self._refresh(mailbox)
        counts: dict[Folder, int] = {}
        for dirname, n in self._db.execute("SELECT dir, count(*) FROM files WHERE mailbox = ? GROUP BY dir", (mailbox,)):
            folder = self.folder_of(dirname)
            if folder is not None:
                counts[folder] = counts.get(folder, 0) + n
        return counts

    def messages_in(self, mailbox: str, folder: Folder | str) -> list[str]:
        """NetworkMessageIds in one folder of one mailbox, in delivery (file name) order."""
        mailbox, folder = mailbox.strip().lower(), Folder(folder)
        self._refresh(mailbox)
        rows = self._db.execute("SELECT dir, nmid FROM files WHERE mailbox = ? ORDER BY name", (mailbox,))
        return list(dict.fromkeys(nmid for dirname, nmid in rows if self.folder_of(dirname) is folder))

    def folder(self, network_message_id: str, mailbox: str) -> Folder | None:
        ref = CopyRef.of(network_message_id, mailbox)
        self._refresh(ref.mailbox)
        files = self._files(ref.network_message_id, ref.mailbox)
        return self.folder_of(files[0].dir) if files else None

    def path(self, network_message_id: str, mailbox: str) -> Path | None:
        """The file holding that copy now (None when there is none)."""
        ref = CopyRef.of(network_message_id, mailbox)
        self._refresh(ref.mailbox)
        files = self._files(ref.network_message_id, ref.mailbox)
        return self.maildir(ref.mailbox) / files[0].dir / files[0].sub / files[0].name if files else None

    def raw(self, network_message_id: str) -> bytes:
        """The bytes of one copy of the message (any mailbox); unknown ids raise :class:`NotFound`."""
        nmid = network_message_id.strip().strip("<>").strip()
        for attempt in range(2):
            rows = self._db.execute("SELECT mailbox, dir, sub, name FROM files WHERE nmid = ? ORDER BY mailbox", (nmid,))
            for mailbox, dirname, sub, name in rows.fetchall():
                try:
                    return (self.maildir(mailbox) / dirname / sub / name).read_bytes()
                except FileNotFoundError:
                    continue
            if attempt == 0:
                self._refresh()
        raise NotFound(f"no message {nmid!r} in the Maildirs under {self.root}; check the NetworkMessageId")

    # ------------------------------------------------------------------ writing

    def deliver(self, mailbox: str, raw: bytes, folder: Folder | str = Folder.INBOX, *,
                flags: str | None = None) -> CopyRef:
        """Deliver *raw* to *mailbox* the Maildir way: write ``tmp/<unique>``, fsync, rename into
        ``new/`` (or ``cur/<unique>:2,<flags>`` when *flags* is given, e.g. ``"S"`` for seen).
        Creates the Maildir and the folder as needed; returns the copy's reference."""
        ref = CopyRef.of(ingest_network_message_id(raw), mailbox)
        maildir, folder = self.maildir(ref.mailbox), Folder(folder)
        dirname = self._destination_dir(maildir, folder)
        target = _ensure_folder(maildir, dirname)
        name = unique_name()
        tmp = target / "tmp" / name
        with open(tmp, "xb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        sub, final = ("new", name) if flags is None else ("cur", f"{name}:2,{''.join(sorted(set(flags)))}")
        os.rename(tmp, target / sub / final)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (ref.mailbox, dirname, name, sub, final, ref.network_message_id, len(raw)))
        return ref

    def move(self, refs: Sequence[CopyRef], destination: Folder | str) -> list[CopyResult]:
        """Move each copy to *destination* by renaming its file (see :class:`workbench.mail.base.MailStore`).

        A mailbox holding the same message twice has both files moved. A rename the disk
        refuses (permissions, another file system) answers ``Failure`` with the reason."""
        destination = Folder(destination)
        rescanned: set[str] = set()
        results = []
        for ref in refs:
            results.append(self._move_one(ref, destination, rescanned))
        return results

    def _move_one(self, ref: CopyRef, destination: Folder, rescanned: set[str]) -> CopyResult:
        key = CopyRef.of(ref.network_message_id, ref.mailbox)  # refs built without .of() are matched too
        try:
            maildir = self.maildir(key.mailbox)
        except InputError as exc:
            return CopyResult(ref, Outcome.FAILURE, destination=destination, reason=str(exc))
        refreshed = False
        while True:
            files = [f for f in self._files(key.network_message_id, key.mailbox) if self.folder_of(f.dir)]
            if files:
                try:
                    return self._rename(ref, key.mailbox, maildir, files, destination)
                except FileNotFoundError:  # the index is behind the disk (another client, a run killed mid-way)
                    if refreshed:
                        return CopyResult(ref, Outcome.FAILURE, destination=destination,
                                          reason="the file changed while it was being moved; run the action again")
            elif refreshed or key.mailbox in rescanned:
                return CopyResult(ref, Outcome.NOT_FOUND, reason=f"{key.mailbox} has no copy of {key.network_message_id}")
            self._refresh_mailbox(key.mailbox, maildir, force=True)  # maybe delivered or moved since the last scan
            rescanned.add(key.mailbox)
            refreshed = True

    def _rename(self, ref: CopyRef, mailbox: str, maildir: Path, files: list[_File], destination: Folder) -> CopyResult:
        """Rename the copy's files into *destination*; FileNotFoundError means the index is stale."""
        if not all(os.path.lexists(maildir / f.dir / f.sub / f.name) for f in files):
            raise FileNotFoundError  # moved by someone else since the last scan
        moving = [f for f in files if self.folder_of(f.dir) is not destination]
        if not moving:
            return CopyResult(ref, Outcome.ALREADY_IN_DESTINATION, destination, destination)
        source = self.folder_of(moving[0].dir)
        dirname = self._destination_dir(maildir, destination)
        try:
            target = _ensure_folder(maildir, dirname)
            for f in moving:
                name = f.name
                if os.path.lexists(target / f.sub / name):  # never overwrite: a fresh unique name, same flags
                    name = unique_name() + (":" + f.name.split(":", 1)[1] if ":" in f.name else "")
                os.rename(maildir / f.dir / f.sub / f.name, target / f.sub / name)
                with self._db:
                    self._db.execute("UPDATE files SET dir = ?, base = ?, name = ? WHERE mailbox = ? AND dir = ? AND base = ?",
                                     (dirname, _base(name), name, mailbox, f.dir, _base(f.name)))
        except FileNotFoundError:
            raise
        except OSError as exc:
            return CopyResult(ref, Outcome.FAILURE, source, destination, reason=f"cannot move the file: {exc.strerror or exc}; "
                              "check the permissions on the Maildir")
        return CopyResult(ref, Outcome.SUCCESS, source, destination)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _ensure_folder(maildir: Path, dirname: str) -> Path:
    """Create the Maildir (and the Maildir++ folder) with cur/ new/ tmp/; return the folder's path."""
    target = maildir / dirname
    for folder in {maildir, target}:  # a folder lives in a Maildir: make both whole
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
    if dirname:
        marker = target / "maildirfolder"
        if not marker.exists():
            marker.touch()
    return target


__all__ = ["MaildirMailStore", "FOLDER_NAMES", "DEFAULT_LAYOUT", "ingest_network_message_id", "unique_name"]
