"""The embedded mail store: raw RFC 5322 messages and a folder per recipient copy.

One SQLite file (``<tenant>/mail/store.sqlite``) holds

- ``bodies``: everything after the header block, content-addressed by SHA-256 and
  zlib-compressed, so identical campaign or newsletter content is stored once;
- ``packs``: header blocks compressed together, up to :data:`PACK_SIZE` per pack (header
  blocks repeat most of their text, so a pack compresses far better than single blocks,
  and reading one message decompresses only its pack);
- ``messages``: one row per NetworkMessageId: where its header block sits and its body;
- ``mailbox``: one row per (NetworkMessageId, mailbox) with its current folder — the
  state that remediation changes.

>>> import tempfile, pathlib
>>> store = EmbeddedMailStore(pathlib.Path(tempfile.mkdtemp()) / "store.sqlite")
>>> body = store.put_body(b"hello\\r\\n")
>>> store.put_messages([("nmid-1", "2026-11-01T10:00:00Z", b"Subject: hi\\r\\n", body)])
>>> store.place([("nmid-1", "ann@contoso.test", Folder.INBOX)])
>>> store.raw("nmid-1")
b'Subject: hi\\r\\n\\r\\nhello\\r\\n'
>>> store.folder("nmid-1", "ann@contoso.test")
<Folder.INBOX: 'Inbox'>
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path

from workbench.enums import Folder
from workbench.errors import NotFound

PACK_SIZE = 512

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bodies (body INTEGER PRIMARY KEY, body_id TEXT NOT NULL UNIQUE, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS packs (pack_id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    network_message_id TEXT PRIMARY KEY,
    received TEXT NOT NULL,
    pack_id INTEGER NOT NULL REFERENCES packs(pack_id),
    start INTEGER NOT NULL,
    length INTEGER NOT NULL,
    body INTEGER NOT NULL REFERENCES bodies(body)
);
CREATE TABLE IF NOT EXISTS mailbox (
    network_message_id TEXT NOT NULL REFERENCES messages(network_message_id),
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    PRIMARY KEY (network_message_id, mailbox)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mailbox_by_owner ON mailbox (mailbox, folder);
"""


def body_id(body: bytes) -> str:
    """Content address of a body."""
    return hashlib.sha256(body).hexdigest()


class EmbeddedMailStore:
    """Raw messages and per-recipient folders in one SQLite file."""

    def __init__(self, path: Path, *, bulk: bool = False) -> None:
        """Open (creating) a store. *bulk* trades durability for speed while a builder fills a
        store that is not yet visible to anyone (the demo generator's staging folder)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'OFF' if bulk else 'NORMAL'}")
        self._db.execute(f"PRAGMA foreign_keys={'OFF' if bulk else 'ON'}")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', '1')")
        self._db.commit()

    @classmethod
    def for_tenant(cls, tenant: object) -> "EmbeddedMailStore":
        return cls(tenant.mail_dir / "store.sqlite")  # type: ignore[attr-defined]

    def close(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def __enter__(self) -> "EmbeddedMailStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def put_body(self, body: bytes) -> str:
        """Store a body once; return its id."""
        bid = body_id(body)
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO bodies (body_id, data) VALUES (?, ?)", (bid, zlib.compress(body, 9))
            )
        return bid

    def _body_rowids(self, body_ids: set[str]) -> dict[str, int]:
        rows = self._db.execute(
            f"SELECT body_id, body FROM bodies WHERE body_id IN ({','.join('?' * len(body_ids))})", list(body_ids)
        )
        found = dict(rows)
        missing = body_ids - found.keys()
        if missing:
            raise NotFound(f"unknown body {sorted(missing)[0]}; store it with put_body() first")
        return found

    def put_messages(self, rows: Iterable[tuple[str, str, bytes, str]]) -> None:
        """Add (network_message_id, received ISO time, header block, body_id) rows; known ids are skipped."""
        batch: list[tuple[str, str, bytes, str]] = []
        with self._db:
            for row in rows:
                batch.append(row)
                if len(batch) == PACK_SIZE:
                    self._write_pack(batch)
                    batch = []
            if batch:
                self._write_pack(batch)

    def _write_pack(self, batch: list[tuple[str, str, bytes, str]]) -> None:
        known = {
            r[0]
            for r in self._db.execute(
                f"SELECT network_message_id FROM messages WHERE network_message_id IN ({','.join('?' * len(batch))})",
                [b[0] for b in batch],
            )
        }
        batch = [b for b in batch if b[0] not in known]
        if not batch:
            return
        rowid = self._body_rowids({b[3] for b in batch})
        data, index, offset = [], [], 0
        for nmid, received, headers, bid in batch:
            data.append(headers)
            index.append((nmid, received, offset, len(headers), rowid[bid]))
            offset += len(headers)
        pack_id = self._db.execute("INSERT INTO packs (data) VALUES (?)", (zlib.compress(b"".join(data), 6),)).lastrowid
        self._db.executemany(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
            ((nmid, received, pack_id, start, length, bid) for nmid, received, start, length, bid in index),
        )

    def place(self, rows: Iterable[tuple[str, str, Folder | str]]) -> None:
        """Put recipient copies (network_message_id, mailbox, folder) in their folder."""
        with self._db:
            self._db.executemany(
                "INSERT INTO mailbox VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET folder=excluded.folder",
                ((nmid, mailbox.lower(), Folder(folder).value) for nmid, mailbox, folder in rows),
            )

    # ------------------------------------------------------------------ reading

    def raw(self, network_message_id: str) -> bytes:
        """The raw RFC 5322 message; unknown ids raise :class:`NotFound`."""
        row = self._db.execute(
            "SELECT p.data, m.start, m.length, b.data FROM messages m JOIN packs p USING (pack_id) "
            "JOIN bodies b USING (body) WHERE m.network_message_id = ?",
            (network_message_id,),
        ).fetchone()
        if row is None:
            raise NotFound(
                f"no raw message {network_message_id!r} in {self.path}; "
                "check the NetworkMessageId (copy it from EmailEvents)"
            )
        pack, start, length, body = row
        return zlib.decompress(pack)[start : start + length] + b"\r\n" + zlib.decompress(body)

    def folder(self, network_message_id: str, mailbox: str) -> Folder | None:
        row = self._db.execute(
            "SELECT folder FROM mailbox WHERE network_message_id = ? AND mailbox = ?",
            (network_message_id, mailbox.lower()),
        ).fetchone()
        return Folder(row[0]) if row else None

    def messages_in(self, mailbox: str, folder: Folder | str) -> list[str]:
        """NetworkMessageIds in one folder of one mailbox, oldest first."""
        rows = self._db.execute(
            "SELECT x.network_message_id FROM mailbox x JOIN messages m USING (network_message_id) "
            "WHERE x.mailbox = ? AND x.folder = ? ORDER BY m.received",
            (mailbox.lower(), Folder(folder).value),
        )
        return [r[0] for r in rows]

    def folder_counts(self, mailbox: str) -> dict[Folder, int]:
        rows = self._db.execute(
            "SELECT folder, count(*) FROM mailbox WHERE mailbox = ? GROUP BY folder",
            (mailbox.lower(),),
        )
        return {Folder(f): n for f, n in rows}

    def stats(self) -> dict[str, int]:
        """Counts and stored bytes, for summaries."""
        q = self._db.execute
        return {
            "messages": q("SELECT count(*) FROM messages").fetchone()[0],
            "packs": q("SELECT count(*) FROM packs").fetchone()[0],
            "bodies": q("SELECT count(*) FROM bodies").fetchone()[0],
            "mailbox_items": q("SELECT count(*) FROM mailbox").fetchone()[0],
            "bytes": self.path.stat().st_size,
        }
