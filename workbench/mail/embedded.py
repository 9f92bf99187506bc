"""The embedded mail store: raw RFC 5322 messages and a folder per recipient copy.

One SQLite file (``<tenant>/mail/store.sqlite``) holds

- ``bodies``: everything after the header block, content-addressed by SHA-256 and
  zstd-compressed, so identical campaign or newsletter content is stored once;
- ``packs``: header blocks compressed together, up to :data:`PACK_SIZE` per pack (header
  blocks repeat most of their text, so a pack compresses far better than single blocks,
  and reading one message decompresses only its pack);
- ``messages``: one row per NetworkMessageId: where its header block sits and its body;
- ``mailbox``: one row per (NetworkMessageId, mailbox) with its current folder — the
  state that remediation changes (:meth:`EmbeddedMailStore.move`).

The file is in WAL mode with a 30 s busy timeout: readers (the Explorer, the pipeline) never
block a writer and never see half a batch; opening a store that exists writes nothing.

>>> import tempfile, pathlib
>>> store = EmbeddedMailStore(pathlib.Path(tempfile.mkdtemp()) / "store.sqlite")
>>> body = store.put_body(b"hello\\r\\n")
>>> store.put_messages([("nmid-1", "2026-11-01T10:00:00Z", b"Subject: hi\\r\\n\\r\\n", body)])
>>> store.place([("nmid-1", "ann@contoso.test", Folder.INBOX)])
>>> store.raw("nmid-1")
b'Subject: hi\\r\\n\\r\\nhello\\r\\n'
>>> store.folder("nmid-1", "ann@contoso.test")
<Folder.INBOX: 'Inbox'>
>>> [r.outcome.value for r in store.move([CopyRef.of("nmid-1", "Ann@contoso.test")] * 2, Folder.JUNK)]
['Success', 'AlreadyInDestination']
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl
import zstandard

from workbench.enums import Folder
from workbench.errors import NotFound
from workbench.mail.base import CopyRef, CopyResult, Outcome

PACK_SIZE = 512
MOVE_BATCH = 500  # copies moved per transaction: short enough that readers and other writers barely wait
# zstd level for bodies and header packs. On the external corpus (13.2 MB, mostly base64
# attachments) level 3 stores 6.50 MB in 0.07 s where zlib level 3 stored 6.62 MB in 0.31 s.
LEVEL = 3
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _decompress(blob: bytes) -> bytes:
    """A stored body or pack: zstd frames, or zlib streams written by earlier versions."""
    if blob[:4] == _ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().decompress(blob)
    return zlib.decompress(blob)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bodies (body INTEGER PRIMARY KEY, body_id TEXT NOT NULL UNIQUE, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS packs (pack_id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    network_message_id TEXT NOT NULL,
    received TEXT NOT NULL,
    pack_id INTEGER NOT NULL REFERENCES packs(pack_id),
    start INTEGER NOT NULL,
    length INTEGER NOT NULL,
    body INTEGER NOT NULL REFERENCES bodies(body)
);
CREATE TABLE IF NOT EXISTS mailbox (
    id INTEGER PRIMARY KEY,
    network_message_id TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL
);
"""
# Rows are appended in arrival order (cheap at any size); lookups go through these indexes.
# A bulk load creates them once, at close, instead of updating them row by row.
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (network_message_id);
CREATE UNIQUE INDEX IF NOT EXISTS mailbox_by_copy ON mailbox (network_message_id, mailbox);
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
        if bulk:  # keep the B-tree pages of large stores in memory while filling them
            self._db.execute("PRAGMA cache_size=-262144")
        self._db.execute(f"PRAGMA foreign_keys={'OFF' if bulk else 'ON'}")
        self._bulk = bulk
        self._zstd = zstandard.ZstdCompressor(level=LEVEL)  # one per store: compressors are not shared across threads
        names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        # A store that is already set up is opened without writing: readers (the Explorer, the
        # lake pipeline) never queue behind a writer's lock just to open it.
        if not {"meta", "bodies", "packs", "messages", "mailbox"} <= names:
            self._db.executescript(_SCHEMA)
        if not bulk and not {"messages_by_id", "mailbox_by_copy", "mailbox_by_owner"} <= names:
            self._db.executescript(_INDEXES)  # a bulk load builds its indexes once, at close
        if self._db.execute("SELECT 1 FROM meta WHERE key = 'format'").fetchone() is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', '1')")
            self._db.commit()

    @classmethod
    def for_tenant(cls, tenant: object) -> "EmbeddedMailStore":
        return cls(tenant.mail_dir / "store.sqlite")  # type: ignore[attr-defined]

    @property
    def audit_path(self) -> Path:
        """Where content searches of this store are audited (``<tenant>/mail/search-audit.jsonl``)."""
        return self.path.parent / "search-audit.jsonl"

    def close(self) -> None:
        if self._bulk:
            self._db.executescript(_INDEXES)
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def __enter__(self) -> "EmbeddedMailStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def put_body(self, body: bytes) -> str:
        """Store a body once; return its id."""
        return self.put_bodies([body])[0]

    def put_bodies(self, bodies: list[bytes]) -> list[str]:
        """Store bodies (each once, in one transaction); return their ids in order.

        Bodies already stored are not compressed again (re-ingesting costs a lookup)."""
        ids = [body_id(b) for b in bodies]
        new = dict(zip(ids, bodies))
        for known in self._known("bodies", "body_id", list(new)):
            del new[known]
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO bodies (body_id, data) VALUES (?, ?)",
                ((bid, self._zstd.compress(b)) for bid, b in new.items()),
            )
        return ids

    def _known(self, table: str, column: str, values: list[str]) -> set[str]:
        """Which of *values* are already in *table*.*column* (an indexed, unique column)."""
        found: set[str] = set()
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", chunk)
            found.update(r[0] for r in rows)
        return found

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
        """Add (network_message_id, received ISO time, header block, body_id) rows.

        The header block includes the empty line that ends it; :meth:`raw` is header block + body.
        """
        rows = list(rows)
        self.put_message_frame(
            pl.DataFrame(
                {
                    "NetworkMessageId": [r[0] for r in rows],
                    "Received": [r[1] for r in rows],
                    "Headers": [r[2] for r in rows],
                    "BodyId": [r[3] for r in rows],
                },
                schema={"NetworkMessageId": pl.String, "Received": pl.String, "Headers": pl.Binary, "BodyId": pl.String},
            )
        )

    def put_message_frame(self, frame: pl.DataFrame) -> int:
        """Add messages from a frame (NetworkMessageId, Received, Headers, BodyId); return how many were new.

        Header blocks are packed :data:`PACK_SIZE` at a time. An id already in the store keeps
        its first copy.
        """
        if frame.is_empty():
            return 0
        rowid = self._body_rowids(set(frame["BodyId"].unique().to_list()))
        if not self._bulk:  # ids already stored keep their first copy: do not pack their headers again
            known = self._known("messages", "network_message_id", frame["NetworkMessageId"].unique().to_list())
            frame = frame.filter(~pl.col("NetworkMessageId").is_in(list(known))) if known else frame
            frame = frame.unique("NetworkMessageId", keep="first", maintain_order=True)
            if frame.is_empty():
                return 0
        frame = frame.with_columns(pl.col("Headers").cast(pl.Binary))  # header bytes need not be UTF-8
        frame = frame.with_columns(
            _pack=pl.int_range(pl.len()) // PACK_SIZE,
            _length=pl.col("Headers").bin.size().cast(pl.Int64),
            _body=pl.col("BodyId").replace_strict(rowid, return_dtype=pl.Int64),
        ).with_columns(_start=pl.col("_length").cum_sum().over("_pack") - pl.col("_length"))
        before = self._db.total_changes
        with self._db:
            pack_ids = {}
            for pack, offset in enumerate(range(0, frame.height, PACK_SIZE)):
                block = b"".join(frame["Headers"].slice(offset, PACK_SIZE).to_list())
                pack_ids[pack] = self._db.execute("INSERT INTO packs (data) VALUES (?)", (self._zstd.compress(block),)).lastrowid
            rows = frame.select(
                "NetworkMessageId", "Received", pl.col("_pack").replace_strict(pack_ids, return_dtype=pl.Int64),
                "_start", "_length", "_body",
            )
            verb = "INSERT" if self._bulk else "INSERT OR IGNORE"  # a bulk loader guarantees new ids
            self._db.executemany(
                f"{verb} INTO messages (network_message_id, received, pack_id, start, length, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows.iter_rows(),
            )
        return self._db.total_changes - before - len(pack_ids)

    def place(self, rows: Iterable[tuple[str, str, Folder | str]] | pl.DataFrame) -> None:
        """Put recipient copies (network_message_id, mailbox, folder) in their folder."""
        if isinstance(rows, pl.DataFrame):
            nmid, mailbox, folder = rows.columns[:3]
            rows = rows.select(nmid, pl.col(mailbox).str.to_lowercase(), folder).iter_rows()
        else:
            rows = ((nmid, mailbox.lower(), Folder(folder).value) for nmid, mailbox, folder in rows)
        sql = "INSERT INTO mailbox (network_message_id, mailbox, folder) VALUES (?, ?, ?)"
        if not self._bulk:  # a bulk loader places each copy once
            sql += " ON CONFLICT (network_message_id, mailbox) DO UPDATE SET folder = excluded.folder"
        with self._db:
            self._db.executemany(sql, rows)

    def move(self, refs: Sequence[CopyRef], destination: Folder | str) -> list[CopyResult]:
        """Move copies to *destination* (see :class:`workbench.mail.base.MailStore`).

        Copies are moved :data:`MOVE_BATCH` per ``BEGIN IMMEDIATE`` transaction: a process
        killed mid-way leaves each copy in its old or its new folder (a row holds one folder),
        and a rerun answers ``AlreadyInDestination`` for the copies already moved."""
        destination = Folder(destination)
        results: list[CopyResult] = []
        for start in range(0, len(refs), MOVE_BATCH):
            chunk = refs[start:start + MOVE_BATCH]
            self._db.execute("BEGIN IMMEDIATE")  # take the write lock before reading the folders
            try:
                for ref in chunk:
                    results.append(self._move_one(ref, destination))
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
        return results

    def _move_one(self, ref: CopyRef, destination: Folder) -> CopyResult:
        key = CopyRef.of(ref.network_message_id, ref.mailbox)  # refs built without .of() are matched too
        row = self._db.execute(
            "SELECT id, folder FROM mailbox WHERE network_message_id = ? AND mailbox = ?", (key.network_message_id, key.mailbox)
        ).fetchone()
        if row is None:
            return CopyResult(ref, Outcome.NOT_FOUND, reason=f"{ref.mailbox} has no copy of {ref.network_message_id}")
        source = Folder(row[1])
        if source is destination:
            return CopyResult(ref, Outcome.ALREADY_IN_DESTINATION, source, destination)
        self._db.execute("UPDATE mailbox SET folder = ? WHERE id = ?", (destination.value, row[0]))
        return CopyResult(ref, Outcome.SUCCESS, source, destination)

    # ------------------------------------------------------------------ reading

    def mailboxes(self) -> list[str]:
        """Every mailbox holding at least one copy, sorted."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT mailbox FROM mailbox ORDER BY mailbox")]

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
        return _decompress(pack)[start : start + length] + _decompress(body)

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
