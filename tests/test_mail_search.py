"""Find and delete: content search over both mail stores, by each criterion, including copies the
lake does not describe; restricted to the Search and Purge role and audited."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from email.message import EmailMessage
from pathlib import Path

import polars as pl
import pytest

from workbench.enums import Folder
from workbench.errors import InputError, PermissionDenied
from workbench.ingest.batch import _split, ingest
from workbench.ingest.sources import RawItem, maildir_items
from workbench.lake import Lake
from workbench.mail import SOFT_DELETE_FOLDER, CopyRef, EmbeddedMailStore, MaildirMailStore, Outcome
from workbench.mail.maildir import ingest_network_message_id
from workbench.mail.search import SearchCriteria, search
from workbench.tenant import ensure

EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "emails"
PAGE = b"<html><form action='https://evil.test/collect'>password</form></html>"
ARCHIVE = io.BytesIO()
with zipfile.ZipFile(ARCHIVE, "w") as z:
    z.writestr("review.html", PAGE)
ARCHIVE = ARCHIVE.getvalue()


def phish() -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Cc"] = "Payroll <payroll@evil.test>", "ann@contoso.test", "bob@contoso.test"
    m["Subject"], m["Date"], m["Message-ID"] = "Action required: Salary Review", "Tue, 03 Nov 2026 09:15:00 +0000", "<p1@evil.test>"
    m.set_content("Please review your pay before Friday: https://evil.test/login?u=ann\n")
    m.add_attachment(ARCHIVE, maintype="application", subtype="zip", filename="Salary_Review.zip")
    return m.as_bytes()


def newsletter() -> bytes:
    m = EmailMessage()
    m["From"], m["To"] = "news@fabrikam.test", "all@contoso.test"
    m["Subject"], m["Date"] = "Weekly newsletter", "Tue, 20 Oct 2026 08:00:00 +0000"
    m.set_content("<p>Read the <a href='https://fabrikam.test/news'>latest news</a> about salary bands</p>", subtype="html")
    return m.as_bytes()


def noise() -> list[bytes]:
    """Real ham as background (none when the external corpus is absent)."""
    folder = EXTERNAL / "spamassassin" / "ham"
    return [p.read_bytes() for p in sorted(folder.glob("*.eml"))[:15]] if folder.is_dir() else []


COPIES = [("phish", "ann@contoso.test", Folder.INBOX), ("phish", "bob@contoso.test", Folder.JUNK),
          ("phish", "carl@contoso.test", Folder.INBOX),  # Bcc: only the mailbox knows
          ("news", "ann@contoso.test", Folder.INBOX), ("news", "bob@contoso.test", Folder.INBOX),
          ("news", "dave@contoso.test", Folder.INBOX)]


def put_embedded(store: EmbeddedMailStore, raw: bytes, copies: list[tuple[str, Folder]], received: str = "2026-11-03T09:15:00+00:00") -> str:
    """Store a message and place its copies the way ingest does (same id, header block + body)."""
    nmid = ingest_network_message_id(raw)
    head, body = _split(raw)
    store.put_messages([(nmid, received, head, store.put_body(body))])
    store.place([(nmid, mailbox, folder) for mailbox, folder in copies])
    return nmid


@pytest.fixture(params=["embedded", "maildir"])
def mail(request, tmp_path):
    """A store of either kind holding COPIES and some real ham in eve's mailbox; ids by message."""
    raws = {"phish": phish(), "news": newsletter()}
    if request.param == "embedded":
        store = EmbeddedMailStore(tmp_path / "mail" / "store.sqlite")
        for key, raw in raws.items():
            put_embedded(store, raw, [(mb, f) for k, mb, f in COPIES if k == key])
        for raw in noise():
            put_embedded(store, raw, [("eve@contoso.test", Folder.INBOX)])
    else:
        store = MaildirMailStore(tmp_path / "vmail")
        for key, mailbox, folder in COPIES:
            store.deliver(mailbox, raws[key], folder)
        for raw in noise():
            store.deliver("eve@contoso.test", raw)
    ids = {k: ingest_network_message_id(raw) for k, raw in raws.items()}
    return store, ids


PHISH = {("phish", mb) for k, mb, _ in COPIES if k == "phish"}
NEWS = {("news", mb) for k, mb, _ in COPIES if k == "news"}


@pytest.mark.parametrize("criteria, expected", [
    (dict(sender="payroll@evil.test"), PHISH),
    (dict(sender="@FABRIKAM.test"), NEWS),
    (dict(recipients=["carl@contoso.test"]), {("phish", "carl@contoso.test")}),  # Bcc'd: the mailbox matches
    (dict(recipients="bob@contoso.test"), PHISH | {("news", "bob@contoso.test")}),  # Cc'd on every copy of the phish
    (dict(subject="salary review"), PHISH),
    (dict(body="pay before friday"), PHISH),
    (dict(body="latest news about salary"), NEWS),  # visible text of the HTML body
    (dict(attachment_name="*.ZIP"), PHISH),
    (dict(attachment_name="review.html"), PHISH),  # a member of the archive
    (dict(attachment_name="invoice.pdf"), set()),
    (dict(attachment_sha256=hashlib.sha256(ARCHIVE).hexdigest().upper()), PHISH),
    (dict(attachment_sha256=hashlib.sha256(PAGE).hexdigest()), PHISH),
    (dict(url="evil.test/login"), PHISH),
    (dict(url="evil.test/collect"), PHISH),  # a URL inside the archived HTML page
    (dict(url="FABRIKAM.test/news"), NEWS),
    (dict(start="2026-11-01"), PHISH),
    (dict(start="2026-10-15", end="2026-10-20"), NEWS),  # an end date includes its whole day
    (dict(sender="@evil.test", recipients="carl@contoso.test"), {("phish", "carl@contoso.test")}),  # AND
    (dict(subject="salary", mailboxes=["bob@contoso.test", "dave@contoso.test"]), {("phish", "bob@contoso.test")}),
])
def test_each_criterion_finds_its_copies(mail, criteria, expected):
    store, ids = mail
    result = search(store, SearchCriteria(**criteria), actor="ana")
    key = {v: k for k, v in ids.items()}
    assert {(key.get(h.ref.network_message_id), h.ref.mailbox) for h in result} == expected
    assert result.scanned >= (len(COPIES) if "mailboxes" not in criteria else 3)
    for hit in result:
        assert hit.folder is store.folder(hit.ref.network_message_id, hit.ref.mailbox)
        assert len(hit.matched) == len({"date" if k in ("start", "end") else k for k in criteria} - {"mailboxes"})
    if expected == PHISH:
        assert {h.subject for h in result} == {"Action required: Salary Review"}
        assert {h.sender for h in result} == {"payroll@evil.test"}


def test_hits_feed_the_same_actions(mail):
    store, ids = mail
    found = search(store, SearchCriteria(url="evil.test/login"), actor="ana")
    moved = store.move(found.refs, SOFT_DELETE_FOLDER)
    assert {(r.outcome, r.source) for r in moved} == {(Outcome.SUCCESS, Folder.INBOX), (Outcome.SUCCESS, Folder.JUNK)}
    again = search(store, SearchCriteria(url="evil.test/login"), actor="ana")
    assert {h.folder for h in again} == {SOFT_DELETE_FOLDER} and len(again) == 3
    assert found.rows()[0]["Folder"] in ("Inbox", "Junk Email")


def test_permission_and_audit(mail, monkeypatch):
    store, _ = mail
    monkeypatch.setenv("WORKBENCH_APPROVERS", "ana")
    with pytest.raises(PermissionDenied, match="bob lacks the Search and Purge role"):
        search(store, SearchCriteria(subject="salary"), actor="bob")
    result = search(store, SearchCriteria(subject="salary"), actor="Ana")
    lines = [json.loads(line) for line in store.audit_path.read_text().splitlines()]
    assert [(r["actor"], r["outcome"]) for r in lines] == [("bob", "denied"), ("Ana", "completed")]
    assert lines[1]["criteria"] == {"subject": "salary"} and lines[1]["hits"] == len(result) == 3
    assert lines[1]["copies_scanned"] == result.scanned and lines[1]["at"].endswith("+00:00")


def test_size_cap_and_progress(mail):
    store, _ = mail
    calls: list[tuple[int, int]] = []
    result = search(store, SearchCriteria(sender="@evil.test", url="evil.test"), actor="ana", max_bytes=600,
                    progress=lambda done, total: calls.append((done, total)))
    assert len(result) == 0 and len(result.skipped) == 1  # only the phish passes the header check, and is too large
    assert "over the" in result.skipped[0] and "raise max_bytes" in result.skipped[0]
    assert calls[-1] == (result.scanned, result.scanned)
    headers_only = search(store, SearchCriteria(sender="@evil.test"), actor="ana", max_bytes=600)
    assert len(headers_only) == 3 and not headers_only.skipped  # the header block is always searched


def test_criteria_errors():
    with pytest.raises(InputError, match="at least one criterion"):
        SearchCriteria(subject="  ", mailboxes=["ann@contoso.test"])
    with pytest.raises(InputError, match="64 hex digits"):
        SearchCriteria(attachment_sha256="abc")
    with pytest.raises(InputError, match="put the start first"):
        SearchCriteria(start="2026-11-05", end="2026-11-01")
    with pytest.raises(InputError, match="ISO date"):
        SearchCriteria(start="yesterday")
    with pytest.raises(InputError, match="unknown search criteria"):
        SearchCriteria.from_dict({"subjekt": "x"})
    c = SearchCriteria(sender="A@Evil.test", recipients=["Ann@contoso.test"], start="2026-11-01")
    assert SearchCriteria.from_dict(c.to_dict()) == c
    assert c.to_dict() == {"sender": "a@evil.test", "recipients": ["ann@contoso.test"], "start": "2026-11-01T00:00:00+00:00"}


@pytest.mark.parametrize("kind", ["embedded", "maildir"])
def test_finds_copies_the_lake_does_not_describe(tmp_path, kind):
    """Telemetry covers ann's and bob's copies; carl's (Bcc) copy and a message delivered after
    ingest exist only in the mail store; the search finds them all."""
    tenant = ensure("t", base=tmp_path, org_domains=("contoso.test",))
    late = newsletter().replace(b"Weekly newsletter", b"Salary review, second wave")
    raw = phish()
    if kind == "embedded":
        ingest(tenant, [RawItem("p.eml", raw, location="Inbox/folder", mailbox="ann@contoso.test"),
                        RawItem("p.eml", raw, location="Junk folder", mailbox="bob@contoso.test")], detect=False)
        store = EmbeddedMailStore.for_tenant(tenant)
        store.place([(ingest_network_message_id(raw), "carl@contoso.test", Folder.INBOX)])
        put_embedded(store, late, [("dave@contoso.test", Folder.INBOX)])
    else:
        store = MaildirMailStore(tmp_path / "vmail")
        store.deliver("ann@contoso.test", raw)
        store.deliver("bob@contoso.test", raw, Folder.JUNK)
        ingest(tenant, [*maildir_items([store.maildir("ann@contoso.test")], "ann@contoso.test"),
                        *maildir_items([store.maildir("bob@contoso.test")], "bob@contoso.test")], detect=False)
        store.deliver("carl@contoso.test", raw)
        store.deliver("dave@contoso.test", late)
    events = Lake.for_tenant(tenant).scan("EmailEvents").select("NetworkMessageId", "RecipientEmailAddress").collect()
    described = {(n, r.lower()) for n, r in events.iter_rows()}
    result = search(store, SearchCriteria(subject="salary review"), actor="ana")
    found = {(h.ref.network_message_id, h.ref.mailbox) for h in result}
    nmid, late_id = ingest_network_message_id(raw), ingest_network_message_id(late)
    assert found == {(nmid, "ann@contoso.test"), (nmid, "bob@contoso.test"), (nmid, "carl@contoso.test"),
                     (late_id, "dave@contoso.test")}
    assert {(nmid, "ann@contoso.test"), (nmid, "bob@contoso.test")} <= described  # the same ids as the lake's
    assert (nmid, "carl@contoso.test") not in described and late_id not in set(events["NetworkMessageId"])
    assert all(r.moved for r in store.move([CopyRef.of(*f) for f in sorted(found)], SOFT_DELETE_FOLDER))
    assert events.filter(pl.col("NetworkMessageId") == nmid).height == 2
