"""The Maildir store on real Maildir trees: Dovecot/Postfix layout, Maildir++ folders and their
aliases, atomic and idempotent moves that keep flags, and ids that agree with ingest."""

from __future__ import annotations

import mailbox
import os
from email.message import EmailMessage
from pathlib import Path

import pytest

from workbench.enums import Folder
from workbench.errors import InputError, NotFound
from workbench.ingest.batch import ingest
from workbench.ingest.message import parse
from workbench.ingest.sources import maildir_items
from workbench.lake import Lake
from workbench.mail import HARD_DELETE_FOLDER, SOFT_DELETE_FOLDER, CopyRef, MaildirMailStore, Outcome
from workbench.mail.maildir import ingest_network_message_id
from workbench.tenant import ensure

EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "emails"
CORPORA = (EXTERNAL / "usrp_users_list" / "eml", EXTERNAL / "spamassassin" / "ham")


def corpus(n: int) -> list[bytes]:
    """The first *n* real messages of the external corpus (skips when it is absent)."""
    files = sorted(p for folder in CORPORA if folder.is_dir() for p in folder.glob("*.eml"))
    if len(files) < n:
        pytest.skip("external mail corpus not present (../shared/data/external/emails)")
    return [p.read_bytes() for p in files[:n]]


def files_under(root: Path) -> list[Path]:
    """Every message file of a tree (cur/ and new/ of every Maildir and folder)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new") and ".workbench" not in p.parts)


@pytest.fixture
def store(tmp_path):
    s = MaildirMailStore(tmp_path / "vmail")
    yield s
    s.close()


def test_delivery_follows_the_maildir_protocol_and_postfix_layout(store):
    raws = corpus(6)
    refs = [store.deliver(f"User{i % 3}@Contoso.test", raw) for i, raw in enumerate(raws)]
    assert store.mailboxes() == ["user0@contoso.test", "user1@contoso.test", "user2@contoso.test"]
    maildir = store.root / "contoso.test" / "user1" / "Maildir"
    assert store.maildir("USER1@contoso.test") == maildir
    assert sorted(p.name for p in maildir.iterdir()) == ["cur", "new", "tmp"]
    assert len(list((maildir / "new").iterdir())) == 2 and not list((maildir / "tmp").iterdir())
    assert store.folder_counts("user1@contoso.test") == {Folder.INBOX: 2}
    assert store.messages_in("user1@contoso.test", Folder.INBOX) == [refs[1].network_message_id, refs[4].network_message_id]
    for ref, raw in zip(refs, raws):
        assert store.raw(ref.network_message_id) == raw
        assert ref.network_message_id == parse(raw).network_message_id  # the id ingest gives the file
    with pytest.raises(NotFound, match="check the NetworkMessageId"):
        store.raw("no-such-id")
    # Python's own Maildir reader sees the same mailbox
    box = mailbox.Maildir(maildir, create=False)
    assert sorted(box.get_bytes(k) for k in box.keys()) == sorted([raws[1], raws[4]])


def test_move_soft_delete_hard_delete_restore_and_rerun(store):
    raws = corpus(4)
    ann = [store.deliver("ann@contoso.test", raw) for raw in raws[:3]]
    seen = store.deliver("ann@contoso.test", raws[3], flags="SR")
    assert store.path(seen.network_message_id, seen.mailbox).name.endswith(":2,RS")

    moved = store.move([ann[0], seen], Folder.JUNK)
    assert [(r.outcome, r.source, r.destination) for r in moved] == [(Outcome.SUCCESS, Folder.INBOX, Folder.JUNK)] * 2
    soft = store.move([ann[1], seen], SOFT_DELETE_FOLDER)
    assert [r.source for r in soft] == [Folder.INBOX, Folder.JUNK]
    hard = store.move([ann[2]], HARD_DELETE_FOLDER)
    maildir = store.maildir("ann@contoso.test")
    assert sorted(p.name for p in maildir.iterdir() if p.name.startswith(".")) == [
        ".Junk", ".Recoverable Items.Deletions", ".Recoverable Items.Purges"]
    for folder in (".Junk", ".Recoverable Items.Deletions"):
        assert (maildir / folder / "maildirfolder").is_file() and (maildir / folder / "tmp").is_dir()
    # flags and the cur/ placement survive two moves; the unique name is kept
    path = store.path(seen.network_message_id, seen.mailbox)
    assert path.parent == maildir / ".Recoverable Items.Deletions" / "cur" and path.name.endswith(":2,RS")
    assert store.folder_counts("ann@contoso.test") == {
        Folder.JUNK: 1, Folder.RECOVERABLE_DELETIONS: 2, Folder.RECOVERABLE_PURGES: 1}

    again = store.move([ann[1], seen], SOFT_DELETE_FOLDER)  # a rerun changes nothing
    assert [r.outcome for r in again] == [Outcome.ALREADY_IN_DESTINATION] * 2
    missing = store.move([CopyRef.of("unknown-id", "ann@contoso.test"), CopyRef.of(ann[0].network_message_id, "bob@contoso.test")],
                         Folder.INBOX)
    assert [r.outcome for r in missing] == [Outcome.NOT_FOUND] * 2 and "bob@contoso.test has no copy" in missing[1].reason

    undo = [store.move([r.ref], r.source)[0] for r in moved + soft + hard if r.moved]  # restore = back to the source
    assert all(r.moved for r in undo)
    assert {r.ref: store.folder(r.ref.network_message_id, r.ref.mailbox) for r in undo} == {
        ann[0]: Folder.INBOX, ann[1]: Folder.INBOX, ann[2]: Folder.INBOX, seen: Folder.JUNK}
    assert len(files_under(store.root)) == 4  # nothing duplicated, nothing lost
    assert sorted(p.read_bytes() for p in files_under(store.root)) == sorted(raws)


def test_dovecot_aliases_are_read_and_reused(tmp_path):
    """A tree written by another program (Python's Maildir) with .Spam, .Deleted Messages, a user folder."""
    raws = corpus(5)
    maildir = tmp_path / "vmail" / "contoso.test" / "ann" / "Maildir"
    maildir.parent.mkdir(parents=True)
    md = mailbox.Maildir(maildir, create=True)
    md.add(raws[0])
    spam, trash, projects = md.add_folder("Spam"), md.add_folder("Deleted Messages"), md.add_folder("Projects")
    key = spam.add(raws[1])
    msg = spam.get_message(key)
    msg.set_subdir("cur")
    msg.set_flags("S")
    spam[key] = msg  # a seen message: cur/<name>:2,S
    trash.add(raws[2])
    projects.add(raws[3])
    store = MaildirMailStore(tmp_path / "vmail")
    assert store.folder_counts("ann@contoso.test") == {Folder.INBOX: 1, Folder.JUNK: 1, Folder.DELETED_ITEMS: 1}
    on_disk = {p.parts[-3]: p.read_bytes() for p in files_under(tmp_path / "vmail")}  # Maildir.add rewrites From_ lines
    ids = [ingest_network_message_id(on_disk[k]) for k in ("Maildir", ".Spam", ".Deleted Messages", ".Projects")]
    assert store.folder(ids[3], "ann@contoso.test") is None  # user folders are not the workbench's
    assert store.move([CopyRef.of(ids[0], "ann@contoso.test")], Folder.JUNK)[0].moved
    assert store.move([CopyRef.of(ids[1], "ann@contoso.test")], Folder.DELETED_ITEMS)[0].moved
    assert sorted(p.name for p in maildir.iterdir() if p.name.startswith(".")) == [".Deleted Messages", ".Projects", ".Spam"]
    assert [p.name.endswith(":2,S") for p in (maildir / ".Deleted Messages" / "cur").iterdir()] == [True]
    assert len(list(mailbox.Maildir(maildir, create=False).get_folder("Spam").keys())) == 1  # still a valid Maildir++ folder

    exchange = MaildirMailStore(tmp_path / "exchange", names={Folder.JUNK: "Junk Email", Folder.DELETED_ITEMS: "Deleted Items"})
    ref = exchange.deliver("bob@contoso.test", raws[4], Folder.JUNK)
    assert (exchange.maildir("bob@contoso.test") / ".Junk Email" / "new").is_dir()
    assert exchange.folder(ref.network_message_id, ref.mailbox) is Folder.JUNK


def test_index_follows_changes_made_by_other_clients(store):
    raws = corpus(4)
    refs = [store.deliver("ann@contoso.test", raw) for raw in raws[:3]]
    maildir = store.maildir("ann@contoso.test")
    assert store.folder_counts("ann@contoso.test") == {Folder.INBOX: 3}
    # an IMAP client reads one (new/ -> cur/ with :2,S) and moves another to Trash
    read = next((maildir / "new").iterdir())
    os.rename(read, maildir / "cur" / f"{read.name}:2,S")
    other = sorted((maildir / "new").iterdir())[0]
    trashed = ingest_network_message_id(other.read_bytes())
    (maildir / ".Trash" / "cur").mkdir(parents=True)
    (maildir / ".Trash" / "new").mkdir()
    os.rename(other, maildir / ".Trash" / "cur" / f"{other.name}:2,ST")
    mailbox.Maildir(maildir, create=False).add(raws[3])  # Postfix delivers one more
    assert store.folder_counts("ann@contoso.test") == {Folder.INBOX: 3, Folder.DELETED_ITEMS: 1}
    assert store.folder(trashed, "ann@contoso.test") is Folder.DELETED_ITEMS
    late = ingest_network_message_id(raws[3])
    assert store.folder(late, "ann@contoso.test") is Folder.INBOX
    # a second store on the same tree (another process) reuses and corrects the same index
    fresh = MaildirMailStore(store.root)
    results = fresh.move([CopyRef.of(late, "ann@contoso.test"), *refs], SOFT_DELETE_FOLDER)
    assert [r.outcome for r in results] == [Outcome.SUCCESS] * 4
    assert {r.source for r in results} == {Folder.INBOX, Folder.DELETED_ITEMS}
    # a file moved behind the index's back is still found by a move (the mailbox is rescanned)
    target = fresh.path(late, "ann@contoso.test")
    os.rename(target, maildir / "cur" / target.name)
    assert store.move([CopyRef.of(late, "ann@contoso.test")], SOFT_DELETE_FOLDER)[0].source is Folder.INBOX
    assert len(files_under(store.root)) == 4


@pytest.mark.parametrize("layout, relative", [("%d/%n/Maildir", "contoso.test/ann/Maildir"),
                                              ("%d/%n", "contoso.test/ann"), ("%u", "ann@contoso.test")])
def test_layouts(tmp_path, layout, relative):
    store = MaildirMailStore(tmp_path, layout=layout)
    ref = store.deliver("Ann@Contoso.test", b"Subject: x\r\n\r\nhi\r\n")
    assert (tmp_path / relative / "new").is_dir()
    store.deliver("bob@contoso.test", b"Subject: y\r\n\r\nhi\r\n", Folder.JUNK)  # a first delivery to a folder
    assert MaildirMailStore(tmp_path, layout=layout).mailboxes() == ["ann@contoso.test", "bob@contoso.test"]
    assert store.folder(ref.network_message_id, "ann@contoso.test") is Folder.INBOX


def test_bad_layout_and_address(tmp_path):
    with pytest.raises(InputError, match="use %u, or %d and %n"):
        MaildirMailStore(tmp_path, layout="%d/mail")
    store = MaildirMailStore(tmp_path)
    for bad in ("../etc", "..@contoso.test", "ann@..", "ann@a/b"):
        with pytest.raises(InputError, match="not a mailbox address"):
            store.deliver(bad, b"Subject: x\r\n\r\n")
    assert store.move([CopyRef.of("x", "no-at-sign")], Folder.JUNK)[0].outcome is Outcome.FAILURE
    assert store.folder("x", "no-at-sign") is None and store.folder_counts("no-at-sign") == {}
    ref = store.deliver("ann@contoso.test", b"Subject: x\r\n\r\n")
    raw_ref = CopyRef(f"<{ref.network_message_id}>", "Ann@Contoso.test")  # built without .of(): still matched
    assert store.move([raw_ref], Folder.JUNK)[0].ref is raw_ref and store.folder(ref.network_message_id, ref.mailbox) is Folder.JUNK


def test_ids_agree_with_the_lake(tmp_path):
    """Ingesting the Maildir gives the lake the same NetworkMessageIds the store answers to."""
    raws = corpus(3)
    exchange = (b"X-MS-Exchange-Organization-Network-Message-Id: 6F2B1C5E-0D43-4C1A-9A51-2F7E6C0B9D10\r\n"
                b"From: a@fabrikam.test\r\nTo: ann@contoso.test\r\nSubject: from Exchange\r\n\r\nhello\r\n")
    report = EmailMessage()
    report["From"], report["To"], report["Subject"] = "ann@contoso.test", "phish@contoso.test", "reported"
    report.set_content("this looks like phish")
    report.add_attachment(raws[0], maintype="message", subtype="rfc822")  # a user report: ingest analyses the original
    store = MaildirMailStore(tmp_path / "vmail")
    refs = [store.deliver("ann@contoso.test", raw) for raw in (*raws, exchange, report.as_bytes())]
    assert refs[3].network_message_id == "6f2b1c5e-0d43-4c1a-9a51-2f7e6c0b9d10"
    tenant = ensure("md", base=tmp_path, org_domains=("contoso.test",))
    ingest(tenant, maildir_items([store.maildir("ann@contoso.test")], "ann@contoso.test"), detect=False)
    lake_ids = set(Lake.for_tenant(tenant).scan("EmailEvents").select("NetworkMessageId").collect()["NetworkMessageId"])
    assert lake_ids == {r.network_message_id for r in refs} == set(store.messages_in("ann@contoso.test", Folder.INBOX))
