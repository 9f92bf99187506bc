"""The embedded mail store: raw messages round-trip, bodies stored once, folders per copy; moves on
both stores are idempotent and survive a SIGKILL mid-way."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.enums import Folder
from workbench.errors import NotFound
from workbench.mail import SOFT_DELETE_FOLDER, CopyRef, EmbeddedMailStore, MaildirMailStore, Outcome
from workbench.mail.embedded import PACK_SIZE
from workbench.mail.maildir import ingest_network_message_id


def headers(i: int) -> bytes:
    return f"Subject: message {i}\r\nMessage-ID: <{i}@example.test>\r\n\r\n".encode()


@pytest.mark.parametrize("bulk", [False, True])
def test_raw_round_trip_across_packs(tmp_path, bulk):
    store = EmbeddedMailStore(tmp_path / "s.sqlite", bulk=bulk)
    body = store.put_body(b"same campaign body\r\n")
    n = PACK_SIZE * 2 + 7
    store.put_messages((f"id-{i}", f"2026-11-01T00:00:{i % 60:02d}Z", headers(i), body) for i in range(n))
    store.place([(f"id-{i}", f"User{i % 3}@Contoso.test", Folder.INBOX) for i in range(n)])
    store.close()
    store = EmbeddedMailStore(tmp_path / "s.sqlite")
    for i in (0, PACK_SIZE - 1, PACK_SIZE, n - 1):
        assert store.raw(f"id-{i}") == headers(i) + b"same campaign body\r\n"
    stats = store.stats()
    assert stats == {**stats, "messages": n, "bodies": 1, "packs": 3, "mailbox_items": n}
    assert store.folder_counts("user1@contoso.test") == {Folder.INBOX: sum(1 for i in range(n) if i % 3 == 1)}
    indexes = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_by_id", "mailbox_by_copy", "mailbox_by_owner"} <= indexes


def test_known_ids_and_copies(tmp_path):
    store = EmbeddedMailStore(tmp_path / "s.sqlite")
    body = store.put_body(b"x")
    assert store.put_body(b"x") == body
    store.put_messages([("a", "2026-11-01T00:00:00Z", headers(1), body)])
    store.put_messages([("a", "2026-11-01T00:00:00Z", headers(2), body)])  # already known: first copy kept
    assert store.raw("a").startswith(headers(1))
    store.place([("a", "ann@contoso.test", Folder.INBOX)])
    store.place([("a", "ANN@contoso.test", Folder.QUARANTINE)])  # same copy moves
    assert store.folder("a", "ann@contoso.test") is Folder.QUARANTINE
    assert store.messages_in("ann@contoso.test", Folder.QUARANTINE) == ["a"]
    assert store.folder("a", "bob@contoso.test") is None


def test_unknown_message_and_body(tmp_path):
    store = EmbeddedMailStore(tmp_path / "s.sqlite")
    with pytest.raises(NotFound, match="no raw message 'nope'"):
        store.raw("nope")
    with pytest.raises(NotFound, match="put_body"):
        store.put_messages([("a", "2026-11-01T00:00:00Z", b"Subject: x\r\n", "0" * 64)])
    assert sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT count(*) FROM messages").fetchone() == (0,)


# ---------------------------------------------------------------- moves (both stores)

def test_move_is_idempotent_and_reports_the_source(tmp_path):
    store = EmbeddedMailStore(tmp_path / "s.sqlite")
    body = store.put_body(b"x")
    store.put_messages([(f"id-{i}", "2026-11-01T00:00:00Z", headers(i), body) for i in range(3)])
    store.place([("id-0", "ann@contoso.test", Folder.INBOX), ("id-1", "ann@contoso.test", Folder.JUNK),
                 ("id-0", "bob@contoso.test", Folder.INBOX)])
    assert store.mailboxes() == ["ann@contoso.test", "bob@contoso.test"]
    refs = [CopyRef.of("<id-0>", "Ann@Contoso.test"), CopyRef.of("id-1", "ann@contoso.test"),
            CopyRef.of("id-2", "ann@contoso.test"), CopyRef.of("id-0", "carl@contoso.test")]
    first = store.move(refs, SOFT_DELETE_FOLDER)
    assert [(r.outcome, r.source) for r in first] == [
        (Outcome.SUCCESS, Folder.INBOX), (Outcome.SUCCESS, Folder.JUNK), (Outcome.NOT_FOUND, None), (Outcome.NOT_FOUND, None)]
    assert [r.outcome for r in store.move(refs[:2], SOFT_DELETE_FOLDER)] == [Outcome.ALREADY_IN_DESTINATION] * 2
    assert store.folder("id-0", "bob@contoso.test") is Folder.INBOX  # other copies stay where they are
    assert store.move([CopyRef("id-0", "Bob@Contoso.test")], Folder.JUNK)[0].moved  # a ref built without .of()
    store.move([CopyRef.of("id-0", "bob@contoso.test")], Folder.INBOX)
    undo = [store.move([r.ref], r.source)[0] for r in first if r.moved]  # restore = move back to the source
    assert [(r.ref.network_message_id, r.destination) for r in undo] == [("id-0", Folder.INBOX), ("id-1", Folder.JUNK)]
    assert store.folder_counts("ann@contoso.test") == {Folder.INBOX: 1, Folder.JUNK: 1}


def test_readers_open_and_read_while_a_writer_holds_the_lock(tmp_path):
    store = EmbeddedMailStore(tmp_path / "s.sqlite")
    body = store.put_body(b"x")
    store.put_messages([("a", "2026-11-01T00:00:00Z", headers(1), body)])
    store.place([("a", "ann@contoso.test", Folder.INBOX)])
    store.close()
    writer = sqlite3.connect(tmp_path / "s.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE mailbox SET folder = 'Junk Email'")  # not committed yet
    started = time.perf_counter()
    reader = EmbeddedMailStore(tmp_path / "s.sqlite")  # opening an existing store writes nothing
    assert reader.folder("a", "ann@contoso.test") is Folder.INBOX and reader.raw("a").startswith(b"Subject")
    assert time.perf_counter() - started < 5
    writer.execute("COMMIT")
    assert reader.folder("a", "ann@contoso.test") is Folder.JUNK


CHILD = """
import json, sys
from pathlib import Path
from workbench.mail import CopyRef, EmbeddedMailStore, MaildirMailStore, SOFT_DELETE_FOLDER
kind, path, refs_file = sys.argv[1:4]
store = EmbeddedMailStore(Path(path)) if kind == "embedded" else MaildirMailStore(path)
refs = [CopyRef(*r) for r in json.loads(Path(refs_file).read_text())]
for i in range(0, len(refs), 200):
    print(i, flush=True)  # the parent kills us once batch 5 has started
    results = store.move(refs[i:i + 200], SOFT_DELETE_FOLDER)
    assert all(r.moved for r in results), results
"""


def build_store(kind: str, tmp_path: Path, n: int) -> tuple[object, list[CopyRef]]:
    """A store holding *n* copies in the Inboxes of 4 mailboxes."""
    if kind == "embedded":
        store = EmbeddedMailStore(tmp_path / "s.sqlite")
        body = store.put_body(b"the same body\r\n")
        store.put_messages([(f"id-{i}", "2026-11-01T00:00:00Z", headers(i), body) for i in range(n)])
        refs = [CopyRef.of(f"id-{i}", f"user{i % 4}@contoso.test") for i in range(n)]
        store.place([(r.network_message_id, r.mailbox, Folder.INBOX) for r in refs])
        return store, refs
    store = MaildirMailStore(tmp_path / "vmail")
    return store, [store.deliver(f"user{i % 4}@contoso.test", headers(i) + b"body\r\n") for i in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["embedded", "maildir"])
def test_a_move_killed_mid_way_and_run_again_is_exact(tmp_path, kind):
    """A child process moves 2,000 copies; SIGKILL mid-way; a rerun finishes the job exactly."""
    n = 2000
    store, refs = build_store(kind, tmp_path, n)
    path = tmp_path / ("s.sqlite" if kind == "embedded" else "vmail")
    (tmp_path / "refs.json").write_text(json.dumps([[r.network_message_id, r.mailbox] for r in refs]))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(path), str(tmp_path / "refs.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[1])
    try:
        for line in proc.stdout:
            if int(line) >= 1000:  # batch 5 (copies 1000-1199) is being moved: kill it part-way
                time.sleep(0.02 if kind == "maildir" else 0.001)
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]

    def counts() -> dict[Folder, int]:
        total: dict[Folder, int] = {}
        for mb in store.mailboxes():
            for folder, k in store.folder_counts(mb).items():
                total[folder] = total.get(folder, 0) + k
        return total

    before = counts()
    moved = before.get(SOFT_DELETE_FOLDER, 0)
    assert sum(before.values()) == n and 1000 <= moved < n, before  # killed mid-way, every copy in one folder
    if kind == "embedded":
        assert moved % 200 == 0  # a batch is one transaction: all of it or none
    again = store.move(refs, SOFT_DELETE_FOLDER)
    outcomes = [r.outcome for r in again]
    assert outcomes.count(Outcome.SUCCESS) == n - moved and outcomes.count(Outcome.ALREADY_IN_DESTINATION) == moved
    assert counts() == {SOFT_DELETE_FOLDER: n}
    assert all(store.folder(r.network_message_id, r.mailbox) is SOFT_DELETE_FOLDER for r in refs[:: 97])
    if kind == "embedded":
        rows = store._db.execute("SELECT count(*), count(DISTINCT network_message_id || mailbox) FROM mailbox").fetchone()
        assert rows == (n, n)
    else:  # on disk: exactly one file per copy, all in the Deletions folder, none left in tmp/
        files = [p for p in (tmp_path / "vmail").rglob("*") if p.is_file() and p.parent.name in ("cur", "new", "tmp")
                 and ".workbench" not in p.parts]
        assert len(files) == n and {p.parts[-3] for p in files} == {".Recoverable Items.Deletions"}
        assert sorted(ingest_network_message_id(p.read_bytes()) for p in files) == sorted(r.network_message_id for r in refs)
