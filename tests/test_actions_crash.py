"""Crash safety with a real process: `workbench actions run` on 3,000 copies is killed with
SIGKILL between a batch's moves and its record, then run again; no copy is moved twice or
lost, every result and folder is exactly right, the lake has one row per moved copy, and
undo puts every copy back where it was."""

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
import sqlalchemy as sa

from workbench import schema
from workbench.actions import ActionKind, ActionService, ActionStatus
from workbench.enums import Folder
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore
from workbench.mail.base import Outcome
from workbench.store import open_store
from workbench.store import tables as t
from workbench.tenant import open_tenant

MESSAGES, MAILBOXES = 100, 30
WORKBENCH = str(Path(sys.executable).with_name("workbench"))


def _initial(i: int, u: int) -> Folder | None:
    """Most copies in the inbox; some in junk, some already soft-deleted, a few missing."""
    if (i + u) % 97 == 0:
        return None
    if (i * u) % 11 == 3:
        return Folder.JUNK
    if (i + 2 * u) % 53 == 0:
        return Folder.RECOVERABLE_DELETIONS
    return Folder.INBOX


def _tenant(home: Path):
    root = home / "tenants" / "crash"
    root.mkdir(parents=True)
    (root / "tenant.json").write_text(json.dumps({"name": "crash"}))
    mail = EmbeddedMailStore(root / "mail" / "store.sqlite")
    mail.place([(f"msg-{i:03d}", f"user{u:02d}@contoso.test", f) for i in range(MESSAGES) for u in range(MAILBOXES)
                if (f := _initial(i, u)) is not None])
    mail.close()
    at = datetime(2026, 11, 19, 8, tzinfo=UTC)
    Lake(root / "lake").append("EmailEvents", schema.EmailEvents.conform(pl.DataFrame([
        dict(Timestamp=at + timedelta(minutes=i), NetworkMessageId=f"msg-{i:03d}",
             RecipientEmailAddress=f"User{u:02d}@contoso.test", ReportId=f"r-{i}-{u}",
             DeliveryLocation="Inbox/folder", LatestDeliveryLocation="Inbox/folder")
        for i in range(MESSAGES) for u in range(MAILBOXES)])))
    return open_tenant("crash", base=home)


def _run(home: Path, *args: str, delay: float = 0.0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_APPROVERS", "WORKBENCH_DB_URL")}
    env.update(WORKBENCH_USER="ana", WORKBENCH_ACTIONS_BATCH_DELAY=str(delay))
    return subprocess.Popen([WORKBENCH, "actions", *args, "--home", str(home), "--tenant", "crash"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done(store, action_id: int) -> int:
    with store.read() as conn:
        return conn.execute(sa.select(sa.func.count()).where(t.action_targets.c.action_id == action_id,
                                                             t.action_targets.c.state == "done")).scalar_one()


def test_sigkill_mid_batch_then_rerun_moves_every_copy_exactly_once(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    tenant = _tenant(tmp_path)
    store = open_store(tenant)
    everyone = [(f"msg-{i:03d}", f"user{u:02d}@contoso.test") for i in range(MESSAGES) for u in range(MAILBOXES)]
    initial = {c: _initial(int(c[0][4:]), int(c[1][4:6])) for c in everyone}
    service = ActionService(store, "ana")
    action = service.propose(ActionKind.SOFT_DELETE, copies=everyone, source="cli", reason="crash test")
    service.approve([action.id])

    proc = _run(tmp_path, "run", str(action.id), "--confirm", "--batch-size", "50", delay=0.05)
    deadline = time.monotonic() + 120
    while _done(store, action.id) < 1000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _done(store, action.id)
    assert 0 < killed_at < len(everyone)
    with store.read() as conn:
        row = conn.execute(sa.select(t.actions).where(t.actions.c.id == action.id)).one()
        moving = conn.execute(sa.select(sa.func.count()).where(t.action_targets.c.action_id == action.id,
                                                               t.action_targets.c.state == "moving")).scalar_one()
    assert row.status == "running" and moving  # killed between a batch's moves and its record

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
    retried = [r for r in results.values() if r.attempts == 2]
    assert retried and all(r.outcome in (Outcome.SUCCESS, Outcome.ALREADY_IN_DESTINATION, Outcome.NOT_FOUND)
                           for r in retried)
    x = done.totals
    assert done.status is ActionStatus.PARTIALLY_COMPLETED and x.targets == len(everyone)
    assert (x.success, x.already, x.not_found, x.failure) == tuple(
        sum(v is o for v in expected.values()) for o in (Outcome.SUCCESS, Outcome.ALREADY_IN_DESTINATION,
                                                         Outcome.NOT_FOUND, Outcome.FAILURE))

    mail = EmbeddedMailStore.for_tenant(tenant)
    try:
        assert {c: mail.folder(*c) for c in everyone} == {
            c: (None if f is None else Folder.RECOVERABLE_DELETIONS) for c, f in initial.items()}
        assert sum(sum(mail.folder_counts(m).values()) for m in mail.mailboxes()) == sum(
            f is not None for f in initial.values())  # none lost, none duplicated
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
    finally:
        mail.close()
        store.dispose()


def test_cli_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    tenant = _tenant(tmp_path)
    store = open_store(tenant)
    a = ActionService(store, "bob").propose(ActionKind.SOFT_DELETE, copies=[("msg-001", "user01@contoso.test")])
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
    assert dry.returncode == 0 and out.splitlines()[-2].split() == ["msg-001", "user01@contoso.test", "Inbox",
                                                                     "Recoverable", "Items/Deletions", "Success"]
    assert out.splitlines()[-1] == f"dry run of action {a.id}: 1 Success"
    mail = EmbeddedMailStore.for_tenant(tenant)
    assert mail.folder("msg-001", "user01@contoso.test") is Folder.INBOX  # a dry run moves nothing
    mail.close()
