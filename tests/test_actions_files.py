"""File actions on a copy of the small generated tenant: the content-malware alert's file is
proposed for a block → an approver approves → the run quarantines it (no longer readable at its
place) → the lake's FileMaliciousContentInfo rows say Blocked → undo releases it (Released);
and the same loop on the command line."""

from __future__ import annotations

import hashlib
import json
import shutil

import polars as pl
import pytest
from click.testing import CliRunner

from workbench.actions import ActionKind, ActionService, ActionSource, ActionStatus
from workbench.actions.service import import_file_alerts, propose_file_blocks
from workbench.cli import main
from workbench.errors import ConflictError, NotFound, PermissionDenied
from workbench.files import QUARANTINE, FileBlocked, FileRef, FileStore
from workbench.incidents import alerting
from workbench.lake import Lake
from workbench.mail.base import Outcome
from workbench.store import open_store
from workbench.tenant import open_tenant


@pytest.fixture
def tenant(small_tenant, tmp_path):
    """A private copy: the session's small tenant is shared with other tests and stays as generated."""
    root = tmp_path / "tenants" / "small"
    shutil.copytree(small_tenant.root, root, ignore=shutil.ignore_patterns("workbench.sqlite*"))
    return open_tenant("small", base=tmp_path)


def _detected(tenant) -> list[dict]:
    story = {s["id"]: s for s in json.loads(tenant.scenarios_path.read_text())["stories"]}["content-malware"]
    return [f for f in story["files"] if f["detected"]]


def _latest(lake: Lake, sha: str) -> set:
    return set(lake.scan("FileMaliciousContentInfo", columns=["SHA256", "LatestFileAction"])
               .filter(pl.col("SHA256") == sha).collect()["LatestFileAction"])


def test_generated_files_carry_the_hashes_of_their_content_malware_rows(tenant):
    files = FileStore.for_tenant(tenant)
    rows = Lake.for_tenant(tenant).scan("FileMaliciousContentInfo").collect()
    assert rows.height and set(rows["LatestFileAction"]) == {None}
    for f in _detected(tenant):
        ref = FileRef.parse(f["place"])
        assert hashlib.sha256(files.read(ref)).hexdigest() == f["SHA256"]
        assert ref in files.locate(f["SHA256"])
    listed = files.list()
    assert {f.ref.workload.value for f in listed} == {"SharePoint", "OneDrive", "Teams"}
    assert len(listed) > len(_detected(tenant))  # ordinary shared files too
    assert files.blocked() == []


def test_alert_proposal_approved_run_shown_in_the_lake_and_undone(tenant, db_url):
    lake, files = Lake.for_tenant(tenant), FileStore.for_tenant(tenant)
    store = open_store(url=db_url)
    try:
        alerting.run(store, lake, only=["content_malware"])
        bob = ActionService(store, "bob", lake=lake, files=files, approvers=frozenset({"ana"}))
        proposed = import_file_alerts(bob)
        assert proposed and {a.kind for a in proposed} == {ActionKind.BLOCK_FILE}
        assert {a.status for a in proposed} == {ActionStatus.PENDING} and {a.source for a in proposed} == {ActionSource.INCIDENT}
        assert [a.id for a in import_file_alerts(bob)] == [a.id for a in proposed]  # once per alert, ever
        detected = {f["SHA256"]: FileRef.parse(f["place"]) for f in _detected(tenant)}
        targets = {(r.network_message_id, r.mailbox) for a in proposed for r in bob.results(a.id)}
        assert {(sha, ref.key) for sha, ref in detected.items()} <= targets

        with pytest.raises(PermissionDenied, match="Search and Purge"):
            bob.approve([proposed[0].id])
        ana = ActionService(store, "ana", lake=lake, files=files, approvers=frozenset({"ana"}))
        action = proposed[0]
        sha = action.target
        place = detected[sha]
        content = files.read(place)
        ana.approve([action.id], comment="malware in SharePoint")
        dry = ana.dry_run(action.id)
        assert {(r.network_message_id, r.mailbox, r.would) for r in dry} >= {(sha, place.key, Outcome.SUCCESS)}
        done = ana.run(action.id)
        assert done.status is ActionStatus.COMPLETED and done.totals.success == done.totals.targets
        assert {r.outcome for r in ana.results(action.id)} == {Outcome.SUCCESS}
        with pytest.raises(FileBlocked, match="blocked"):
            files.read(place)
        assert not files.path(place).exists() and (files.root / QUARANTINE / sha).read_bytes() == content
        assert place in {b.ref for b in files.blocked()}
        assert _latest(lake, sha) == {"Blocked"}
        with pytest.raises(ConflictError):
            ana.run(action.id)  # completed: nothing to run again

        with pytest.raises(PermissionDenied):
            bob.undo(action.id)
        undo = ana.undo(action.id)
        assert undo.kind is ActionKind.RELEASE_FILE and undo.status is ActionStatus.COMPLETED and undo.undo_of == action.id
        assert files.read(place) == content and files.blocked() == []
        assert ana.get(action.id).status is ActionStatus.UNDONE
        assert _latest(lake, sha) == {"Released"}
        with pytest.raises(ConflictError, match="already undone"):
            ana.undo(action.id)
        with pytest.raises(NotFound, match="no file with SHA256"):
            propose_file_blocks(ana, ["0" * 64])
    finally:
        store.dispose()


def test_the_loop_on_the_command_line(tenant, monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "ana")
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    where = ["--home", str(tenant.root.parent.parent), "--tenant", "small"]
    run = CliRunner().invoke
    sha = _detected(tenant)[0]["SHA256"]
    out = run(main, ["files", "block", sha, *where])
    assert out.exit_code == 0, out.output
    action_id = int(out.output.split()[1])
    listed = run(main, ["actions", "list", *where]).output
    assert "Block file" in listed and "pending" in listed
    assert run(main, ["actions", "approve", str(action_id), *where]).exit_code == 0
    dry = run(main, ["actions", "run", str(action_id), "--dry-run", *where])
    assert "its place" in dry.output and "Success" in dry.output, dry.output
    ran = run(main, ["actions", "run", str(action_id), *where])
    assert "completed" in ran.output and "files" in ran.output, ran.output
    blocked = run(main, ["files", "blocked", *where]).output
    assert sha in blocked
    shown = run(main, ["actions", "show", str(action_id), "--copies", *where]).output
    assert "quarantine" in shown and "Success" in shown
    undone = run(main, ["actions", "undo", str(action_id), *where])
    assert undone.exit_code == 0 and "Release file" in undone.output, undone.output
    assert sha not in run(main, ["files", "blocked", *where]).output
    assert sha in run(main, ["files", "list", *where]).output
    bad = run(main, ["files", "block", "nothex", *where])
    assert bad.exit_code != 0 and "SHA256" in bad.output and "Traceback" not in bad.output


def test_a_run_killed_after_blocking_is_resumed_without_losing_the_undo(tenant):
    """The executor blocked the file and died before recording it: the rerun counts the file as
    blocked by this action (not 'already there'), so undo still releases it."""
    from workbench.store import tables as t

    files = FileStore.for_tenant(tenant)
    store = open_store(tenant)
    try:
        ana = ActionService(store, "ana", files=files)
        f = _detected(tenant)[0]
        place = FileRef.parse(f["place"])
        action = propose_file_blocks(ana, [f["SHA256"]])
        ana.approve([action.id])
        store.run(lambda conn: conn.execute(t.action_targets.update().where(t.action_targets.c.action_id == action.id)
                                            .values(state="moving", attempts=1)))  # intent recorded: in place
        files.block([place])  # ...then the executor moved the file and was killed
        done = ana.run(action.id)
        assert done.status is ActionStatus.COMPLETED
        assert {r.mailbox: r.outcome for r in ana.results(action.id)}[place.key] is Outcome.SUCCESS
        ana.undo(action.id)
        assert hashlib.sha256(files.read(place)).hexdigest() == f["SHA256"]
    finally:
        store.dispose()
