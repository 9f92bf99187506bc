"""`workbench mail configure / show / search [--propose]` on a small Maildir tree and on the embedded
store of a copy of the small generated tenant: the tenant's settings choose the store the action
center and searches act on; hits are printed with URLs defanged; a proposal goes through the action
center and, once approved and run, moves the real files or rows; every mistake is one line."""

from __future__ import annotations

import json
import shutil
from email.message import EmailMessage

import polars as pl
import pytest
from click.testing import CliRunner, Result

from workbench.actions import ActionService, ActionStatus
from workbench.cli import main
from workbench.enums import Folder
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore, MaildirMailStore, open_mail_store
from workbench.mail.config import config_path, load
from workbench.mail.search import SearchCriteria, search
from workbench.store import open_store
from workbench.tenant import ensure, open_tenant


def phish() -> bytes:
    m = EmailMessage()
    m["From"], m["To"] = "Payroll <payroll@evil.test>", "ann@contoso.test"
    m["Subject"], m["Date"] = "Salary review \x1b[31mnow", "Tue, 03 Nov 2026 09:15:00 +0000"
    m.set_content("Review your pay: https://evil.test/login?u=ann\n")
    m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="Salary_Review.pdf")
    return m.as_bytes()


def newsletter() -> bytes:
    m = EmailMessage()
    m["From"], m["To"] = "news@fabrikam.test", "all@contoso.test"
    m["Subject"], m["Date"] = "Weekly newsletter", "Tue, 20 Oct 2026 08:00:00 +0000"
    m.set_content("Read the latest news at https://fabrikam.test/news\n")
    return m.as_bytes()


def cli(*args: str, user: str = "ana", approvers: str | None = None) -> Result:
    env = {"WORKBENCH_USER": user, "WORKBENCH_APPROVERS": approvers, "WORKBENCH_DB_URL": None}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_line_error(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr, result.stderr


@pytest.fixture
def maildir_tenant(tmp_path):
    """An imported tenant (no embedded store) and a Maildir tree of four mailboxes."""
    tree, bad, news = MaildirMailStore(tmp_path / "vmail"), phish(), newsletter()  # one message, several copies
    refs = {"phish-ann": tree.deliver("ann@contoso.test", bad), "phish-bob": tree.deliver("bob@contoso.test", bad, Folder.JUNK),
            "news-ann": tree.deliver("ann@contoso.test", news), "news-dave": tree.deliver("dave@contoso.test", news)}
    tree.deliver("eve@contoso.test", news, Folder.DELETED_ITEMS)
    tree.close()
    ensure("md", base=tmp_path, org_domains=("contoso.test",))
    return tmp_path, refs


def audit_of(tenant) -> list:
    """The tenant's mail searches in its audit log, oldest first."""
    from workbench.audit import query

    store = open_store(tenant)
    try:
        return query(store, activity="mail.search", newest_first=False)
    finally:
        store.dispose()


def test_maildir_configure_show_search_propose(maildir_tenant, monkeypatch):
    home, refs = maildir_tenant
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    where = ("--home", str(home), "--tenant", "md")
    one_line_error(cli("mail", "show", *where), 3, "has no mail store")  # nothing configured, nothing ingested

    out = cli("mail", "configure", "--maildir", str(home / "vmail"), *where)
    assert out.exit_code == 0 and out.stdout == f"tenant md now acts on its Maildir tree {home / 'vmail'} (layout %d/%n/Maildir)\n"
    tenant = open_tenant("md", base=home)
    assert json.loads(config_path(tenant).read_text()) == {"store": "maildir", "root": str(home / "vmail"),
                                                           "layout": "%d/%n/Maildir", "folder_names": {}}
    assert not list(config_path(tenant).parent.glob("*.tmp"))

    shown = cli("mail", "show", "--mailbox", "Ann@Contoso.test", "--list", *where)
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].endswith(f"Maildir tree {home / 'vmail'} (layout %d/%n/Maildir)") and lines[2].endswith("mailboxes: 4")
    assert [x.strip() for x in lines[3:7]] == ["ann@contoso.test", "bob@contoso.test", "dave@contoso.test", "eve@contoso.test"]
    assert lines[-1].split() == ["Inbox", "2"]
    one_line_error(cli("mail", "show", "--mailbox", "zed@contoso.test", *where), 3, "holds no copies")

    found = cli("mail", "search", "--url", "evil.test/login", "--attachment", "salary*.pdf", *where)
    assert found.exit_code == 0, found.stderr
    assert "https://evil.test" not in found.stdout and "hxxps[://]evil[.]test/login?u=ann" in found.stdout
    assert "\x1b" not in found.stdout and "Salary review \\x1b[31mnow" in found.stdout  # terminal escapes shown, not obeyed
    rows = [line.split()[:3] for line in found.stdout.splitlines()[2:-1]]
    assert sorted(rows) == sorted([[refs["phish-ann"].network_message_id, "ann@contoso.test", "Inbox"],
                                   [refs["phish-bob"].network_message_id, "bob@contoso.test", "Junk"]])
    assert found.stdout.splitlines()[-1].startswith("2 copies of 1 message match; 5 copies scanned")
    searches = audit_of(tenant)
    assert [(a.actor, a.result.value, a.details["outcome"], a.details["hits"]) for a in searches] == [
        ("ana", "ok", "completed", 2)]
    assert not (tenant.mail_dir / "search-audit.jsonl").exists()  # a tenant's searches go to its audit log

    proposed = cli("mail", "search", "--subject", "weekly newsletter", "--from", "2026-10-20", "--to", "2026-10-20",
                   "--mailbox", "ann@contoso.test", "--mailbox", "dave@contoso.test", "--propose", "move-junk",
                   "--json", *where, user="bob")
    assert proposed.exit_code == 0, proposed.stderr
    assert {json.loads(x)["mailbox"] for x in proposed.stdout.splitlines()[:-1]} == {"ann@contoso.test", "dave@contoso.test"}
    assert proposed.stdout.splitlines()[-1].endswith("(Move to Junk, 2 copies) is pending; an approver approves it "
                                                     "with: workbench actions approve 1")
    store = open_store(tenant)
    try:
        service = ActionService.for_tenant(tenant, store, "ana")
        assert isinstance(service.mail, MaildirMailStore)
        action = service.get(1)
        assert action.proposed_by == "bob" and action.source_ref.startswith("mail search: subject=weekly newsletter")
        assert {(r.mailbox, r.destination) for r in service.results(1)} == {
            ("ann@contoso.test", Folder.JUNK), ("dave@contoso.test", Folder.JUNK)}
        again = cli("mail", "search", "--subject", "weekly newsletter", "--mailbox", "ann@contoso.test", "--mailbox",
                    "dave@contoso.test", "--propose", "move-junk", *where)
        assert "action 1 (Move to Junk, 2 copies) is pending" in again.stdout  # the same copies join the open action
        service.approve([1])
        assert service.run(1).status is ActionStatus.COMPLETED
    finally:
        store.dispose()
    assert (home / "vmail" / "contoso.test" / "dave" / "Maildir" / ".Junk" / "new").is_dir()
    assert len(list((home / "vmail" / "contoso.test" / "ann" / "Maildir" / ".Junk" / "new").iterdir())) == 1

    none = cli("mail", "search", "--sender", "nobody@nowhere.test", "--propose", "soft-delete", *where)
    assert none.exit_code == 0 and none.stdout.splitlines()[-1] == "no copies found: nothing proposed"

    one_line_error(cli("mail", "search", *where), 2, "a search needs at least one criterion")
    one_line_error(cli("mail", "search", "--sha256", "abc", *where), 2, "is not 64 hex digits")
    one_line_error(cli("mail", "search", "--from", "yesterday", "--sender", "x@y.test", *where), 2, "is not an ISO date")
    one_line_error(cli("mail", "search", "--sender", "payroll@evil.test", *where, user="bob", approvers="ana"), 5,
                   "bob lacks the Search and Purge role")
    last = audit_of(tenant)[-1]
    assert (last.actor, last.result.value, last.details["outcome"]) == ("bob", "denied", "denied")


def test_configure_errors_layouts_and_naming(maildir_tenant, monkeypatch):
    home, _ = maildir_tenant
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    where = ("--home", str(home), "--tenant", "md")
    one_line_error(cli("mail", "configure", "--maildir", str(home / "nowhere"), *where), 2, "does not exist")
    (home / "file").write_text("x")
    one_line_error(cli("mail", "configure", "--maildir", str(home / "file"), *where), 2, "is not a folder")
    one_line_error(cli("mail", "configure", *where), 2, "give either --maildir ROOT or --embedded")
    one_line_error(cli("mail", "configure", "--maildir", str(home / "vmail"), "--layout", "%d/mail", *where), 2,
                   "cannot name a mailbox")
    one_line_error(cli("mail", "configure", "--maildir", str(home / "vmail"), "--folder-name", "Spam", *where), 2,
                   "write FOLDER=NAME")
    one_line_error(cli("mail", "configure", "--maildir", str(home / "vmail"), "--folder-name", "Outbox=x", *where), 2,
                   "unknown folder 'Outbox'")
    one_line_error(cli("mail", "configure", "--embedded", "--layout", "%u", *where), 2, "apply to --maildir only")
    one_line_error(cli("mail", "show", "--home", str(home), "--tenant", "nope"), 3, "tenant 'nope' not found")
    tenant = open_tenant("md", base=home)
    assert not config_path(tenant).exists()  # nothing half-written by the refused commands

    # a flat %u tree with Exchange names: the folder a move creates is ".Junk Email"
    flat = MaildirMailStore(home / "flat", layout="%u")
    ref = flat.deliver("ann@contoso.test", newsletter())
    flat.close()
    done = cli("mail", "configure", "--maildir", str(home / "flat"), "--layout", "%u", "--naming", "exchange",
               "--folder-name", "recoverable-deletions=Deleted Forever", *where)
    assert done.exit_code == 0, done.stderr
    settings = load(tenant)
    assert (settings.layout, settings.names[Folder.JUNK], settings.names[Folder.RECOVERABLE_DELETIONS]) == (
        "%u", "Junk Email", "Deleted Forever")
    mail = open_mail_store(tenant)
    try:
        assert mail.mailboxes() == ["ann@contoso.test"]
        assert mail.move([ref], Folder.JUNK)[0].moved and mail.move([ref], Folder.RECOVERABLE_DELETIONS)[0].moved
    finally:
        mail.close()
    assert sorted(p.name for p in (home / "flat" / "ann@contoso.test").iterdir() if p.name.startswith(".")) == [
        ".Deleted Forever", ".Junk Email"]

    shutil.rmtree(home / "flat")  # the tree is gone (unmounted): a one-line error, not an empty store
    one_line_error(cli("mail", "show", *where), 3, "is missing; mount it")
    config_path(tenant).write_text("{not json")
    one_line_error(cli("mail", "show", *where), 2, "are unreadable")
    back = cli("mail", "configure", "--embedded", *where)
    assert back.exit_code == 0 and back.stdout == "tenant md now acts on its embedded store\n"
    assert json.loads(config_path(tenant).read_text()) == {"store": "embedded"}


@pytest.fixture
def small_copy(small_tenant, tmp_path):
    """A copy of the small generated tenant (its embedded store, lake; a fresh database)."""
    shutil.copytree(small_tenant.root, tmp_path / "tenants" / "small", ignore=shutil.ignore_patterns("workbench.sqlite*"))
    return open_tenant("small", base=tmp_path)


def test_embedded_store_of_a_small_tenant(small_copy, monkeypatch):
    monkeypatch.delenv("WORKBENCH_APPROVERS", raising=False)
    tenant = small_copy
    where = ("--home", str(tenant.root.parents[1]), "--tenant", "small")
    assert load(tenant).store == "embedded" and not config_path(tenant).exists()
    mail = open_mail_store(tenant)
    assert isinstance(mail, EmbeddedMailStore)
    boxes = mail.mailboxes()
    shown = cli("mail", "show", "--mailbox", boxes[0], *where)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[0].endswith("embedded store") and f"mailboxes: {len(boxes):,}" in shown.stdout
    assert {tuple(x.split()[:-1]) for x in shown.stdout.splitlines()[5:]} == {
        tuple(f.value.split()) for f in mail.folder_counts(boxes[0])}

    # a URL domain that a few delivered messages carry
    urls = Lake.for_tenant(tenant).scan("EmailUrlInfo").group_by("UrlDomain").agg(
        pl.col("NetworkMessageId").n_unique().alias("n"), pl.col("NetworkMessageId").first().alias("nmid")).collect()
    domain = urls.filter(pl.col("n").is_between(2, 20)).sort("n", "UrlDomain")["UrlDomain"][0]
    expected = search(mail, SearchCriteria(url=domain), actor="ana")
    mail.close()
    assert len(expected) >= 2

    found = cli("mail", "search", "--url", domain, "--limit", "1", "--propose", "soft-delete", *where)
    assert found.exit_code == 0, found.stderr
    lines = found.stdout.splitlines()
    assert "://" not in found.stdout.replace("[://]", "")  # every URL shown defanged
    assert lines[-2].startswith(f"{len(expected):,} copies of ") and "(first 1 shown; raise --limit)" in lines[-2]
    store = open_store(tenant)
    try:
        service = ActionService.for_tenant(tenant, store, "ana")
        action = service.list()[0]
        assert lines[-1].startswith(f"action {action.id} (Soft delete, {len(expected):,} copies) is pending")
        assert {(r.network_message_id, r.mailbox) for r in service.results(action.id)} == {
            (h.ref.network_message_id, h.ref.mailbox) for h in expected}
        service.approve([action.id])
        ran = service.run(action.id, confirm=True)
        assert ran.totals.success + ran.totals.already == len(expected)
        assert all(service.mail.folder(h.ref.network_message_id, h.ref.mailbox) is Folder.RECOVERABLE_DELETIONS
                   for h in expected)
        service.undo(action.id)
        assert all(service.mail.folder(h.ref.network_message_id, h.ref.mailbox) is h.folder for h in expected)
    finally:
        store.dispose()
