"""The audit log on SQLite and PostgreSQL: appends chain, `verify` passes on an untouched log and names
the first bad record after each direct tamper with the database (edit, delete, forged insert, deleted
tail); four concurrent writers keep one valid chain; exports round-trip; the CLI lists, verifies
(exit 1, one line) and exports."""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from workbench.audit import (
    GENESIS,
    AuditResult,
    compute_hash,
    export,
    query,
    record,
    request_scope,
    verify,
)
from workbench.cli import main
from workbench.errors import InputError
from workbench.store import open_store
from workbench.tenant import ensure


def fill(store, n: int = 6) -> None:
    for i in range(1, n + 1):
        record(store, actor="ana" if i % 2 else "bob", activity="mail.preview" if i % 3 else "action.approve",
               target=f"<m{i}@contoso.test>", result="denied" if i == 5 else "ok", details={"i": i, "note": "ü"})


def sql(store, text: str, **params) -> None:
    store.run(lambda conn: conn.execute(sa.text(text), params))


def test_append_chains_and_verifies(db_url: str) -> None:
    store = open_store(url=db_url)
    assert verify(store).ok and verify(store).checked == 0
    with request_scope("req-1"):
        first = record(store, actor="ana", activity="mail.download", target="<a@x>", details={"b": 1, "a": [1, 2]})
    second = record(store, actor="bob", activity="role.grant", target="carl", result=AuditResult.ALLOWED)
    assert (first.seq, first.prev_hash, first.request_id) == (1, GENESIS, "req-1")
    assert second.seq == 2 and second.prev_hash == first.hash and second.request_id != "req-1"
    assert first.hash == compute_hash(1, first.at, "ana", "mail.download", "<a@x>", "ok", "req-1",
                                      {"a": [1, 2], "b": 1}, GENESIS)
    fill(store)
    outcome = verify(store)
    assert outcome.ok and outcome.checked == 8 and "intact" in outcome.render()
    stored = query(store, limit=None, newest_first=False)
    assert [r.seq for r in stored] == list(range(1, 9)) and stored[0] == first
    with pytest.raises(InputError, match="unknown audit result"):
        record(store, actor="ana", activity="x", result="maybe")
    with pytest.raises(InputError, match="needs an activity"):
        record(store, actor="ana", activity="")
    assert record(store, actor="", activity="permission.remediation", result="denied").actor == "(unknown)"


def test_filters(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    assert {r.actor for r in query(store, user="bob")} == {"bob"} and len(query(store, user="bob")) == 3
    assert [r.seq for r in query(store, activity="action.approve")] == [6, 3]
    assert len(query(store, activity="mail.")) == 4 and len(query(store, activity="mail*")) == 4
    assert [r.seq for r in query(store, target="m4@")] == [4]
    assert [r.seq for r in query(store, result="denied")] == [5]
    now = datetime.now(UTC)
    assert len(query(store, since=now - timedelta(minutes=5), until=now + timedelta(minutes=5))) == 6
    assert query(store, since=now + timedelta(minutes=5)) == []
    assert [r.seq for r in query(store, limit=2)] == [6, 5]


def test_edited_record_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    sql(store, "UPDATE audit_log SET target = '<other@x>' WHERE seq = 3")
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq, outcome.checked) == (False, 3, 2)
    assert "record 3 was edited" in outcome.render()


def test_edited_details_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    sql(store, "UPDATE audit_log SET details = :d WHERE seq = 4", d='{"i":4,"note":"x"}')
    assert verify(store).first_bad_seq == 4


def test_deleted_middle_record_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 3")
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq) == (False, 3) and "record 3 missing (deleted)" in outcome.reason


def test_deleted_and_renumbered_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 3")
    for seq in (4, 5, 6):  # close the gap: the link from 2 to the old 4 still breaks
        sql(store, "UPDATE audit_log SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq) == (False, 3)


def forge(store, seq: int, prev_hash: str) -> None:
    """Insert a record whose hash is correct for its content (a plausible forgery)."""
    at = datetime.now(UTC)
    digest = compute_hash(seq, at, "mallory", "export", "audit", "ok", "r", {}, prev_hash)
    store.run(lambda conn: conn.execute(sa.text(
        "INSERT INTO audit_log (seq, at, actor, activity, target, result, request_id, details, prev_hash, hash) "
        "VALUES (:seq, :at, 'mallory', 'export', 'audit', 'ok', 'r', '{}', :prev, :hash)"),
        {"seq": seq, "at": at.replace(tzinfo=None), "prev": prev_hash, "hash": digest}))


def test_forged_insert_at_the_end_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    last = query(store, limit=1)[0]
    forge(store, 7, last.hash)  # links perfectly: only the anchor knows 6 was the last append
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq) == (False, 7) and "inserted" in outcome.reason


def test_forged_replacement_in_the_middle_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    prev = query(store, target="m2@")[0].hash
    sql(store, "DELETE FROM audit_log WHERE seq = 3")
    forge(store, 3, prev)  # self-consistent and linked to 2, but 4 linked to the original 3
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq) == (False, 4) and "does not link" in outcome.reason


def test_forged_insert_with_a_wrong_link_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    sql(store, "DELETE FROM audit_log WHERE seq = 3")
    forge(store, 3, "f" * 64)
    assert verify(store).first_bad_seq == 3


def test_deleted_last_record_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    kept = query(store, target="m4@")[0]
    sql(store, "DELETE FROM audit_log WHERE seq = 6")
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq) == (False, 6) and "missing at the end" in outcome.reason
    sql(store, "DELETE FROM audit_log")
    assert verify(store).first_bad_seq == 1
    sql(store, "DELETE FROM audit_anchor")
    assert verify(store).ok  # everything gone, anchor too: the limit the docstring states...
    outcome = verify(store, known=(4, kept.hash))  # ...unless a record was kept outside the database
    assert (outcome.ok, outcome.first_bad_seq) == (False, 4) and "(deleted)" in outcome.reason


def test_rewritten_chain_is_caught_by_a_known_record(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    kept = query(store, target="m2@")[0]
    assert verify(store, known=(kept.seq, kept.hash)).ok
    rows = query(store, limit=None, newest_first=False)
    sql(store, "DELETE FROM audit_log")
    sql(store, "DELETE FROM audit_anchor")
    for r in rows:  # a rewrite with every hash recomputed and the anchor rewritten
        record(store, actor="eve" if r.seq == 2 else r.actor, activity=r.activity, target=r.target,
               result=r.result, request_id=r.request_id, details=r.details)
    assert verify(store).ok
    outcome = verify(store, known=(kept.seq, kept.hash))
    assert (outcome.ok, outcome.first_bad_seq) == (False, 2) and "(rewritten)" in outcome.reason


def test_deleted_anchor_is_detected(db_url: str) -> None:
    store = open_store(url=db_url)
    fill(store)
    sql(store, "DELETE FROM audit_anchor")
    outcome = verify(store)
    assert (outcome.ok, outcome.first_bad_seq) == (False, 6) and "anchor" in outcome.reason


def test_concurrent_writers_keep_one_chain(db_url: str) -> None:
    open_store(url=db_url).dispose()  # migrate once
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        store = open_store(url=db_url)  # its own engine and connections, like another process
        try:
            for i in range(15):
                record(store, actor=f"w{k}", activity="action.run", target=f"{k}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            store.dispose()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    store = open_store(url=db_url)
    outcome = verify(store)
    assert outcome.ok and outcome.checked == 60, outcome.render()
    assert {r.target for r in query(store, limit=None)} == {f"{k}-{i}" for k in range(4) for i in range(15)}


def test_export_round_trip(db_url: str, tmp_path: Path) -> None:
    store = open_store(url=db_url)
    fill(store)
    records = query(store, limit=None, newest_first=False)
    assert export(store, tmp_path / "a.jsonl", "jsonl") == 6
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [r.to_json() for r in records]
    assert export(store, tmp_path / "a.csv", "csv", user="ana") == 3
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    want = [r.to_json() for r in records if r.actor == "ana"]
    assert [{**row, "seq": int(row["seq"]), "details": json.loads(row["details"])} for row in rows] == want
    # the exported hashes are checkable without the database
    for r in want:
        assert r["hash"] == compute_hash(r["seq"], datetime.fromisoformat(r["at"]), r["actor"], r["activity"],
                                         r["target"], r["result"], r["request_id"], r["details"], r["prev_hash"])
    with pytest.raises(InputError, match="unknown export format"):
        export(store, tmp_path / "a.xml", "xml")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("a.")) == ["a.csv", "a.jsonl"]


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"WORKBENCH_DB_URL": None}, catch_exceptions=False)


def test_cli_list_verify_export(tmp_path: Path) -> None:
    ensure("au", base=tmp_path)
    common = ["--home", str(tmp_path), "--tenant", "au"]
    store = open_store(url=f"sqlite:///{tmp_path / 'tenants' / 'au' / 'workbench.sqlite'}")
    fill(store)
    listed = cli("audit", "list", "--user", "bob", *common)
    assert listed.exit_code == 0 and listed.stdout.count("bob") == 3 and "<m2@contoso.test>" in listed.stdout
    as_json = cli("audit", "list", "--activity", "action.", "--json", *common)
    assert [json.loads(x)["seq"] for x in as_json.stdout.splitlines()] == [6, 3]
    ok = cli("audit", "verify", *common)
    assert ok.exit_code == 0 and "6 record(s) verified" in ok.stdout
    out = tmp_path / "audit.csv"
    done = cli("audit", "export", "--format", "csv", "--out", str(out), "--since", "2000-01-01", *common)
    assert done.exit_code == 0 and "6 audit record(s)" in done.stdout and len(out.read_text().splitlines()) == 7
    bad = cli("audit", "list", "--since", "yesterday", *common)
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr
    kept = json.loads(cli("audit", "list", "--json", "--limit", "1", *common).stdout)
    assert cli("audit", "verify", "--known", f"{kept['seq']}:{kept['hash']}", *common).exit_code == 0
    wrong = cli("audit", "verify", "--known", "3:abc", *common)
    assert wrong.exit_code == 2 and "not SEQ:HASH" in wrong.stderr
    sql(store, "UPDATE audit_log SET actor = 'eve' WHERE seq = 2")
    broken = cli("audit", "verify", *common)
    assert broken.exit_code == 1 and broken.stderr == "audit log broken at record 2: record 2 was edited " \
        "(hash mismatch) (1 checked)\n"


def test_mail_search_is_audited_in_the_log(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.errors import PermissionDenied
    from workbench.mail.maildir import MaildirMailStore
    from workbench.mail.search import SearchCriteria, search

    mail = MaildirMailStore(tmp_path / "maildir")
    mail.deliver("ann@contoso.test", b"From: x@evil.test\r\nSubject: Invoice 42\r\n\r\npay https://evil.test/pay\r\n")
    store = open_store(url=db_url)
    monkeypatch.setenv("WORKBENCH_APPROVERS", "ana")
    with pytest.raises(PermissionDenied):
        search(mail, SearchCriteria(subject="invoice"), actor="bob", audit_store=store)
    assert len(search(mail, SearchCriteria(subject="invoice"), actor="ana", audit_store=store)) == 1
    logged = query(store, activity="mail.search", newest_first=False)
    assert [(r.actor, r.result.value) for r in logged] == [("bob", "denied"), ("ana", "ok")]
    assert json.loads(logged[1].target) == {"subject": "invoice"} and logged[1].details["hits"] == 1
    assert "lacks the Search and Purge role" in logged[0].details["reason"]
    assert not mail.audit_path.exists() and verify(store).ok  # the log, not the file
    search(mail, SearchCriteria(subject="invoice"), actor="ana")  # no store: the file, as before
    assert json.loads(mail.audit_path.read_text())["outcome"] == "completed"


def test_action_events_are_audited(db_url: str, tmp_path: Path) -> None:
    from workbench.actions import ActionKind, ActionService
    from workbench.enums import Folder
    from workbench.mail import EmbeddedMailStore

    mail = EmbeddedMailStore(tmp_path / "mail" / "store.sqlite")
    mail.place([("m0", f"user{u}@contoso.test", Folder.INBOX) for u in range(3)])
    store = open_store(url=db_url)
    try:
        bob = ActionService(store, "bob", mail=mail, approvers=frozenset({"ana"}))
        ana = ActionService(store, "ana", mail=mail, approvers=frozenset({"ana"}))
        a = bob.propose(ActionKind.SOFT_DELETE, copies=[("m0", f"user{u}@contoso.test") for u in range(3)])
        ana.approve([a.id], "confirmed phish")
        ana.run(a.id)
        restore = ana.undo(a.id)
        b = bob.propose(ActionKind.MOVE_TO_JUNK, copies=[("m0", "user0@contoso.test")])
        ana.reject(b.id, "not phish")
        mine = [(r.actor, r.activity, r.result.value) for r in query(store, target=f"action {a.id}", newest_first=False)
                if r.target == f"action {a.id}"]
        assert mine[:4] == [("bob", "action.proposed", "ok"), ("ana", "action.approved", "ok"),
                            ("ana", "action.started", "ok"), ("ana", "action.completed", "ok")]
        assert mine[-1] == ("ana", "action.undone", "ok")
        assert query(store, target=f"action {restore.id}", activity="action.completed")
        rejected = query(store, activity="action.rejected")
        assert [(r.actor, r.target, r.details) for r in rejected] == [("ana", f"action {b.id}",
                                                                        {"comment": "not phish"})]
        assert verify(store).ok
    finally:
        mail.close()
        store.dispose()
