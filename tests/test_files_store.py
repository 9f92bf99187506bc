"""The file store on a real folder tree: list, read, block (idempotent), release, path safety."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from workbench.enums import FileWorkload
from workbench.errors import InputError, NotFound
from workbench.files import QUARANTINE, FileBlocked, FileRef, FileStore, UnsafePath, ref_for_row
from workbench.mail.base import Outcome

BAD = b"inert stand-in for a malicious macro document"
GOOD = b"meeting notes"
SHA = hashlib.sha256(BAD).hexdigest()


@pytest.fixture
def store(tmp_path) -> FileStore:
    s = FileStore(tmp_path / "files")
    s.write(FileRef.of("SharePoint", "Finance", "Shared Documents/AP/Invoice.docm"), BAD)
    s.write(FileRef.of("OneDrive", "ann_contoso_com", "Documents/Downloads/Invoice.docm"), BAD)
    s.write(FileRef.of("Teams", "SalesTeam", "Shared Documents/General/Notes.docx"), GOOD)
    return s


AP = FileRef.of("SharePoint", "Finance", "Shared Documents/AP/Invoice.docm")
DRIVE = FileRef.of("OneDrive", "ann_contoso_com", "Documents/Downloads/Invoice.docm")


def test_list_read_and_locate(store):
    listed = {f.ref.key: f.sha256 for f in store.list()}
    assert listed == {AP.key: SHA, DRIVE.key: SHA,
                      "Teams/SalesTeam/Shared Documents/General/Notes.docx": hashlib.sha256(GOOD).hexdigest()}
    assert [f.ref for f in store.list(FileWorkload.SHAREPOINT)] == [AP]
    assert store.read(AP) == BAD
    assert set(store.locate(SHA.upper())) == {AP, DRIVE}
    with pytest.raises(NotFound, match="no file"):
        store.read(FileRef.of("SharePoint", "Finance", "nope.txt"))


def test_block_is_idempotent_and_release_puts_it_back(store, tmp_path):
    (r,) = store.block([AP], expected=[SHA])
    assert r.outcome is Outcome.SUCCESS and r.sha256 == SHA
    assert not store.path(AP).exists() and (store.root / QUARANTINE / SHA).read_bytes() == BAD
    sidecar = json.loads((store.root / QUARANTINE / f"{SHA}.json").read_text())
    assert sidecar["places"][0] | {"blocked": ""} == {"workload": "SharePoint", "site": "Finance",
                                                      "path": "Shared Documents/AP/Invoice.docm", "blocked": ""}
    with pytest.raises(FileBlocked, match="is blocked"):
        store.read(AP)
    assert str(AP) not in {f.ref.key for f in store.list()}
    assert [b.ref for b in store.blocked()] == [AP]
    # rerun: nothing moves; a missing file is NotFound; changed content is not blocked
    assert [x.outcome for x in store.block([AP])] == [Outcome.ALREADY_IN_DESTINATION]
    assert store.block([FileRef.of("Teams", "SalesTeam", "gone.docx")])[0].outcome is Outcome.NOT_FOUND
    notes = FileRef.of("Teams", "SalesTeam", "Shared Documents/General/Notes.docx")
    assert store.block([notes], expected=[SHA])[0].outcome is Outcome.FAILURE and store.read(notes) == GOOD
    # the second place with the same hash shares the quarantined content
    assert {x.ref: x.outcome for x in store.block_hash(SHA)} == {AP: Outcome.ALREADY_IN_DESTINATION,
                                                                DRIVE: Outcome.SUCCESS}
    assert {b.ref for b in store.blocked()} == {AP, DRIVE}

    (back,) = store.release([AP])
    assert back.outcome is Outcome.SUCCESS and store.read(AP) == BAD
    assert [b.ref for b in store.blocked()] == [DRIVE] and (store.root / QUARANTINE / SHA).exists()
    assert store.release([AP])[0].outcome is Outcome.ALREADY_IN_DESTINATION
    assert [x.outcome for x in store.release_hash(SHA)] == [Outcome.SUCCESS]
    assert store.read(DRIVE) == BAD and store.blocked() == []
    assert sorted(os.listdir(store.root / QUARANTINE)) == []
    assert store.release([FileRef.of("Teams", "SalesTeam", "gone.docx")])[0].outcome is Outcome.NOT_FOUND


def test_a_block_stopped_between_its_steps_is_blocked_and_finished_by_a_rerun(store):
    data = {"sha256": SHA, "size": len(BAD), "places": [{"workload": "SharePoint", "site": "Finance",
                                                         "path": AP.path, "blocked": "2026-11-20T10:00:00+00:00"}]}
    (store.root / QUARANTINE).mkdir()
    (store.root / QUARANTINE / f"{SHA}.json").write_text(json.dumps(data))  # intent written, file not yet moved
    with pytest.raises(FileBlocked):
        store.read(AP)
    assert store.block([AP])[0].outcome is Outcome.ALREADY_IN_DESTINATION
    assert not store.path(AP).exists() and (store.root / QUARANTINE / SHA).exists()


@pytest.mark.parametrize("site, path", [("Finance", "../HR/secret.docx"), ("Finance", "/etc/passwd"),
                                        ("..", "x.docx"), ("Finance", "a/./b"), ("Finance", "C:/x"),
                                        ("Finance/HR", "x"), (QUARANTINE, SHA)])
def test_paths_leaving_the_store_are_refused(store, site, path):
    with pytest.raises(InputError):
        FileRef.of("SharePoint", site, path)
    if "/" not in site:  # (a key's first two segments are the workload and the site)
        with pytest.raises(InputError):
            FileRef.parse(f"SharePoint/{site}/{path}")


def test_symlinks_out_of_the_root_are_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, store.root / "SharePoint" / "Finance" / "Linked")
    ref = FileRef.of("SharePoint", "Finance", "Linked/secret.txt")
    with pytest.raises(UnsafePath, match="outside the file store"):
        store.read(ref)
    (failed,) = store.block([ref])  # one place's failure, not the whole batch's
    assert failed.outcome is Outcome.FAILURE and "outside the file store" in failed.reason
    assert "secret.txt" not in {f.ref.name for f in store.list()}  # links are not followed when listing
    with pytest.raises(InputError, match="unknown workload"):
        FileRef.of("Dropbox", "x", "y")


def test_rows_of_the_content_malware_table_map_to_places():
    ref = ref_for_row("OneDrive", "https://contoso-my.sharepoint.com/personal/ann_contoso_com",
                      "https://contoso-my.sharepoint.com/personal/ann_contoso_com/Documents/Downloads", "Invoice.docm")
    assert ref == DRIVE
    assert ref_for_row("SharePoint", None, None, "x") is None
