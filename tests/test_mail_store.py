"""The embedded mail store: raw messages round-trip, bodies stored once, folders per copy."""

from __future__ import annotations

import sqlite3

import pytest

from workbench.enums import Folder
from workbench.errors import NotFound
from workbench.mail import EmbeddedMailStore
from workbench.mail.embedded import PACK_SIZE


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
