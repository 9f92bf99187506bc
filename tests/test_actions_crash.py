"""Crash safety with a real process, on the embedded store and on a Maildir tree: `workbench actions
run` on 3,000 copies is killed with SIGKILL between a batch's moves and its record, then run again;
no copy is moved twice or lost, every result and folder is exactly right, the lake has one row per
moved copy, and undo puts every copy back where it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from workbench import schema
from workbench.actions import ActionKind, ActionService, ActionStatus
from workbench.enums import Folder
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore, MaildirMailStore, configure_maildir, open_mail_store
from workbench.mail.base import Outcome
from workbench.store import open_store
from workbench.store import tables as t
from workbench.tenant import open_tenant

MESSAGES, MAILBOXES = 100, 30
WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def nmid(i: int) -> str:
    """Message *i*'s NetworkMessageId (a GUID, so a Maildir copy of it answers to the same id)."""
    return f"00000000-0000-4000-8000-{i:012d}"


def _initial(i: int, u: int) -> Folder | None:
    """Most copies in the inbox; some in junk, some already soft-deleted, a few missing."""
    if (i + u) % 97 == 0:
        return None
    if (i * u) % 11 == 3:
        return Folder.JUNK
    if (i + 2 * u) % 53 == 0:
        return Folder.RECOVERABLE_DELETIONS
    return Folder.INBOX


def _raw(i: int) -> bytes:
    return (f"X-MS-Exchange-Organization-Network-Message-Id: {nmid(i)}\r\nFrom: billing@fabrikam.test\r\n"
            f"To: all@contoso.test\r\nSubject: Invoice {i}\r\nDate: Thu, 19 Nov 2026 08:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <inv-{i}@fabrikam.test>\r\n\r\nInvoice {i} is attached.\r\n").encode()


def _tenant(home: Path, kind: str = "embedded"):
    """The crash tenant: raw messages and their copies in the embedded store, and for *kind*
    ``maildir`` the same copies delivered into a Maildir tree the tenant is configured to use."""
    root = home / "tenants" / "crash"
    root.mkdir(parents=True)
    (root / "tenant.json").write_text(json.dumps({"name": "crash"}))
    mail = EmbeddedMailStore(root / "mail" / "store.sqlite")
    raws = [_raw(i) for i in range(MESSAGES)]
    bodies = mail.put_bodies([r.split(b"\r\n\r\n", 1)[1] for r in raws])
    mail.put_messages([(nmid(i), f"2026-11-19T08:{i % 60:02d}:00+00:00", r.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", b)
                       for i, (r, b) in enumerate(zip(raws, bodies))])
    copies = [(nmid(i), f"user{u:02d}@contoso.test", f) for i in range(MESSAGES) for u in range(MAILBOXES)
              if (f := _initial(i, u)) is not None]
    mail.place(copies)
    if kind == "maildir":  # deliver every copy the embedded store has, in its folder
        tree = MaildirMailStore(home / "vmail")
        for n, (message_id, mailbox, folder) in enumerate(copies):
            tree.deliver(mailbox, mail.raw(message_id), folder, flags="S" if n % 7 == 0 else None)
        tree.close()
    mail.close()
    at = datetime(2026, 11, 19, 8, tzinfo=UTC)
    Lake(root / "lake").append("EmailEvents", schema.EmailEvents.conform(pl.DataFrame([
        dict(Timestamp=at + timedelta(minutes=i), NetworkMessageId=nmid(i),
             RecipientEmailAddress=f"User{u:02d}@contoso.test", ReportId=f"r-{i}-{u}",
             DeliveryLocation="Inbox/folder", LatestDeliveryLocation="Inbox/folder")
        for i in range(MESSAGES) for u in range(MAILBOXES)])))
    tenant = open_tenant("crash", base=home)
    if kind == "maildir":
        configure_maildir(tenant, home / "vmail")
    return tenant


def _files(root: Path) -> list[Path]:
    """Every message file of a Maildir tree."""
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new") and ".workbench" not in p.parts]


def _run(home: Path, *args: str, delay: float = 0.0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_APPROVERS", "WORKBENCH_DB_URL")}
    env.update(WORKBENCH_USER="ana", WORKBENCH_ACTIONS_BATCH_DELAY=str(delay))
    return subprocess.Popen([WORKBENCH, "actions", *args, "--home", str(home), "--tenant", "crash"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(store, action_id: int, state: str) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).where(t.action_targets.c.action_id == action_id,
                                                             t.action_targets.c.state == state)).scalar_one()


@pytest.mark.parametrize("kind", ["embedded", "maildir"])
def test_sigkill_mid_batch_then_rerun_moves_every_copy_exactly_once(tmp_path, monkeypatch, kind):
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    tenant = _tenant(tmp_path, kind)
    store = open_store(tenant)
    everyone = [(nmid(i), f"user{u:02d}@contoso.test") for i in range(MESSAGES) for u in range(MAILBOXES)]
    initial = {(nmid(i), f"user{u:02d}@contoso.test"): _initial(i, u) for i in range(MESSAGES) for u in range(MAILBOXES)}
    service = ActionService(store, "ana")
    action = service.propose(ActionKind.SOFT_DELETE, copies=everyone, source="cli", reason="crash test")
    service.approve([action.id])

    # Kill the run while a batch is moved but not yet recorded. A kill that lands in the short gap
    # between one batch's record and the next one's intent is a crash too, but not this one: the
    # run is then resumed and killed again, further on.
    for threshold in (1000, 1500, 2000):
        proc = _run(tmp_path, "run", str(action.id), "--confirm", "--batch-size", "50", delay=0.1)
        deadline = time.monotonic() + 120
        while (proc.poll() is None and time.monotonic() < deadline
               and not (_count(store, action.id, "done") >= threshold and _count(store, action.id, "moving"))):
            time.sleep(0.005)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with store.read() as conn:
            row = conn.execute(sa.select(t.actions).where(t.actions.c.id == action.id)).one()
        assert row.status == "running"
        if _count(store, action.id, "moving"):
            break  # killed between a batch's moves and its record
    else:
        pytest.fail("no kill landed between a batch's moves and its record")
    killed_at = _count(store, action.id, "done")
    assert 0 < killed_at < len(everyone)

    rerun = _run(tmp_path, "run", str(action.id), "--confirm", "--batch-size", "50")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"action {action.id}" in out and "partiallyCompleted" in out

    done = ActionService(store, "ana").get(action.id)
    results = {(r.network_message_id, r.mailbox): r for r in ActionService(store, "ana").results(action.id)}
    expected = {c: (Outcome.NOT_FOUND if f is None else Outcome.ALREADY_IN_DESTINATION
                    if f is Folder.RECOVERABLE_DELETIONS else Outcome.SUCCESS) for c, f in initial.items()}
    assert {c: r.outcome for c, r in results.items()} == expected
    assert {c: r.source_folder for c, r in results.items() if r.outcome is Outcome.SUCCESS} == {
        c: f for c, f in initial.items() if expected[c] is Outcome.SUCCESS}
    retried = [r for r in results.values() if r.attempts >= 2]
    assert retried and all(r.outcome in (Outcome.SUCCESS, Outcome.ALREADY_IN_DESTINATION, Outcome.NOT_FOUND)
                           for r in retried)
    x = done.totals
    assert done.status is ActionStatus.PARTIALLY_COMPLETED and x.targets == len(everyone)
    assert (x.success, x.already, x.not_found, x.failure) == tuple(
        sum(v is o for v in expected.values()) for o in (Outcome.SUCCESS, Outcome.ALREADY_IN_DESTINATION,
                                                         Outcome.NOT_FOUND, Outcome.FAILURE))

    mail = open_mail_store(tenant)
    assert isinstance(mail, MaildirMailStore if kind == "maildir" else EmbeddedMailStore)
    present = sum(f is not None for f in initial.values())
    try:
        assert {c: mail.folder(*c) for c in everyone} == {
            c: (None if f is None else Folder.RECOVERABLE_DELETIONS) for c, f in initial.items()}
        assert sum(sum(mail.folder_counts(m).values()) for m in mail.mailboxes()) == present  # none lost, none duplicated
        if kind == "maildir":
            on_disk = _files(tmp_path / "vmail")
            assert len(on_disk) == present and {p.parts[-3] for p in on_disk} == {".Recoverable Items.Deletions"}
            assert sum(p.name.endswith(":2,S") for p in on_disk) == len(range(0, present, 7))  # flags kept
        lake = Lake.for_tenant(tenant)
        post = lake.scan("EmailPostDeliveryEvents").collect()
        moved = sorted(c for c, o in expected.items() if o is Outcome.SUCCESS)
        assert post.height == len(moved)  # one row per moved copy, even for the batch moved twice over
        assert sorted(zip(post["NetworkMessageId"], post["RecipientEmailAddress"].str.to_lowercase())) == moved
        events = lake.scan("EmailEvents").collect()
        assert events.height == len(everyone)
        deleted = events.filter(pl.col("LatestDeliveryLocation") == "Deleted items")
        assert sorted(zip(deleted["NetworkMessageId"], deleted["RecipientEmailAddress"].str.to_lowercase())) == moved

        undo = _run(tmp_path, "undo", str(action.id))
        out, err = undo.communicate(timeout=300)
        assert undo.returncode == 0, err
        assert {c: mail.folder(*c) for c in everyone} == initial
        if kind == "maildir":
            assert len(_files(tmp_path / "vmail")) == present
            for c, f in initial.items():  # every file is back in its own folder, bytes untouched
                if f is not None:
                    path = mail.path(*c)
                    assert mail.folder_of(path.parts[-3] if path.parts[-3].startswith(".") else "") is f
                    assert path.read_bytes() == _raw(int(c[0][-12:]))
    finally:
        mail.close()
        store.dispose()


def test_cli_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    tenant = _tenant(tmp_path)
    store = open_store(tenant)
    a = ActionService(store, "bob").propose(ActionKind.SOFT_DELETE, copies=[(nmid(1), "user01@contoso.test")])
    store.dispose()
    cases = [(("run", "999"), "error: no action 999; list them with `workbench actions list`\n"),
             (("run", str(a.id)), f"error: action {a.id} is pending: approve it first (workbench actions approve {a.id})\n"),
             (("reject", str(a.id), "--comment", " "), f"error: reject {a.id}: say why in a comment (--comment TEXT)\n")]
    for args, expected in cases:
        p = _run(tmp_path, *args)
        _, err = p.communicate(timeout=60)
        assert err == expected and p.returncode != 0
    env_p = subprocess.run([WORKBENCH, "actions", "approve", str(a.id), "--home", str(tmp_path), "--tenant", "crash"],
                           env={**os.environ, "WORKBENCH_USER": "bob", "WORKBENCH_APPROVERS": "ana"},
                           capture_output=True, text=True, timeout=60)
    assert env_p.returncode == 5 and env_p.stderr.count("\n") == 1
    assert "bob lacks the Search and Purge role" in env_p.stderr
    ok = _run(tmp_path, "approve", str(a.id), "--comment", "ok")
    out, _ = ok.communicate(timeout=60)
    assert ok.returncode == 0 and f"action {a.id} (Soft delete) is approved" in out
    listed = _run(tmp_path, "list", "--status", "approved")
    out, _ = listed.communicate(timeout=60)
    assert out.splitlines()[2].split()[:2] == [str(a.id), "approved"]
    dry = _run(tmp_path, "run", str(a.id), "--dry-run")
    out, _ = dry.communicate(timeout=60)
    assert dry.returncode == 0 and out.splitlines()[-2].split() == [nmid(1), "user01@contoso.test", "Inbox",
                                                                     "Recoverable", "Items/Deletions", "Success"]
    assert out.splitlines()[-1] == f"dry run of action {a.id}: 1 Success"
    mail = EmbeddedMailStore.for_tenant(tenant)
    assert mail.folder(nmid(1), "user01@contoso.test") is Folder.INBOX  # a dry run moves nothing
    mail.close()
