"""Message ingestion: parsing facts, hostile input, sources, the batch and its dead letters."""

from __future__ import annotations

import io
import json
import mailbox
import zipfile
from email.message import EmailMessage
from pathlib import Path

import polars as pl
import pytest
from conftest import zip_bytes
from hypothesis import HealthCheck, given, settings, strategies as st

from workbench.enums import Folder
from workbench.ingest import files
from workbench.ingest.batch import ingest
from workbench.ingest.demo.content import office, pdf
from workbench.ingest.message import ParseError, ParsedMessage, parse
from workbench.ingest.sources import RawItem, eml_items, maildir_items, mbox_items, msg_items
from workbench.lake import Lake
from workbench.mail import EmbeddedMailStore
from workbench.tenant import ensure

EXTERNAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "emails"


def sample(**extra) -> bytes:
    msg = EmailMessage()
    msg["From"] = '"IT Service Desk" <helpdesk@contoso-support.test>'
    msg["To"] = "ann@fabrikam.test, Bob <bob@fabrikam.test>"
    msg["Cc"] = "carol@fabrikam.test"
    msg["Reply-To"] = "collector@evil.test"
    msg["Return-Path"] = "<bounce@mailer.test>"
    msg["Subject"] = "Réinitialiser votre mot de passe https://subject.test/x"
    msg["Date"] = "Tue, 03 Nov 2026 09:12:44 +0100"
    msg["Message-ID"] = "<abc123@contoso-support.test>"
    msg["Received"] = "from mx.fabrikam.test (mx.fabrikam.test [10.1.1.1]) by mbx.fabrikam.test; Tue, 03 Nov 2026 09:12:50 +0100"
    msg["Received"] = "from out.mailer.test (out.mailer.test [52.100.7.7]) by mx.fabrikam.test; Tue, 03 Nov 2026 09:12:47 +0100"
    msg["Authentication-Results"] = "mx.fabrikam.test; spf=softfail smtp.mailfrom=mailer.test; dkim=none; dmarc=fail action=quarantine header.from=contoso-support.test; compauth=fail reason=001"
    msg.set_content("Votre compte expire. Cliquez ici: https://text.test/login maintenant, s'il vous plaît.")
    msg.add_alternative('<p>Bonjour</p><a href="https://href.test/a">a</a><form action="http://form.test/post"></form>'
                        '<img src="https://img.test/p.png"><meta http-equiv="refresh" content="0;url=https://refresh.test/">',
                        subtype="html")
    msg.add_attachment(pdf("see https://pdf.test/doc"), maintype="application", subtype="pdf", filename="Facture.pdf")
    for name, data in extra.items():
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(msg)


def test_parse_extracts_addresses_chain_auth_urls_and_attachments():
    m = parse(sample())
    assert (m.from_address, m.from_display) == ("helpdesk@contoso-support.test", "IT Service Desk")
    assert m.reply_to == ("collector@evil.test",) and m.return_path == "bounce@mailer.test"
    assert m.recipients == ("ann@fabrikam.test", "bob@fabrikam.test", "carol@fabrikam.test")
    assert m.subject.startswith("Réinitialiser") and m.language == "fr"
    assert m.sender_ip(("fabrikam.test",)) == "52.100.7.7"
    assert m.auth == {"SPF": "softfail", "DKIM": "none", "DMARC": "fail", "CompAuth": "fail"}
    assert m.date.isoformat() == "2026-11-03T08:12:44+00:00"
    where = {u.url: u.location for u in m.urls}
    assert where == {
        "https://subject.test/x": "Subject", "https://text.test/login": "Body", "https://href.test/a": "Body",
        "http://form.test/post": "Body", "https://img.test/p.png": "Body", "https://refresh.test/": "Body",
        "https://pdf.test/doc": "Attachment",
    }
    (att,) = m.attachments
    assert (att.file_name, att.true_type, att.size) == ("Facture.pdf", "pdf", len(pdf("see https://pdf.test/doc")))


def test_true_type_archives_macros_and_bombs():
    exe = b"MZ" + bytes(300)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("scan.pdf.exe", exe)
        zf.writestr("inner.zip", zip_bytes({"deep.js": b"var x = 1;"}))
    facts = files.inspect("invoice.pdf", buf.getvalue())
    assert facts.true_type == "zip" and facts.type_mismatch
    names = {f.file_name: f.true_type for f in facts.walk()}
    assert names["scan.pdf.exe"] == "exe" and names["deep.js"] == "js"
    assert files.inspect("x.docm", office("docm", "hi", macro="Sub AutoOpen()")).macros
    bomb = zip_bytes({"zeros.bin": bytes(60 * 2**20)})
    facts = files.inspect("bomb.zip", bomb)
    assert facts.bomb and facts.members[0].true_type == "unread" and len(bomb) < 200_000
    encrypted = bytearray(zip_bytes({"secret.exe": exe}))
    encrypted[6] |= 0x1  # local header flag bit 0: encrypted
    encrypted[encrypted.rfind(b"PK\x01\x02") + 8] |= 0x1  # and in the central directory
    assert files.inspect("locked.zip", bytes(encrypted)).encrypted


def test_reported_message_is_analysed_not_the_wrapper():
    original = parse(sample())
    wrapper = EmailMessage()
    wrapper["From"] = "ann@fabrikam.test"
    wrapper["To"] = "phish-reports@fabrikam.test"
    wrapper["Subject"] = "FW: suspicious"
    wrapper.set_content("Please look at this.")
    wrapper.add_attachment(sample(), maintype="message", subtype="rfc822")
    reported = parse(bytes(wrapper))
    assert reported.from_address == original.from_address and reported.subject == original.subject
    assert reported.reported_by == "ann@fabrikam.test"


@pytest.mark.parametrize("raw, message", [(b"", "empty file"), (b"   \r\n", "empty file"), (b"\x00\x01\x02", "no header block")])
def test_not_a_message(raw, message):
    with pytest.raises(ParseError, match=message):
        parse(raw)


def test_hostile_structures_do_not_crash():
    deep = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, 400):
        deep += f"--b{i - 1}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n".encode()
    huge_headers = b"".join(b"X-Junk-%d: %s\r\n" % (i, b"a" * 900) for i in range(5000)) + b"Subject: hi\r\n\r\nbody"
    bad_charset = b"Subject: =?x-unknown?q?abc?=\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\n\xff\xfe body"
    bad_base64 = (b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: application/zip; name=a.zip\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64***\r\n--z--\r\n")
    for raw in (deep, huge_headers, bad_charset, bad_base64, b"Subject: \xc3\x28 raw 8-bit\r\n\r\n\xc3\x28"):
        try:
            m = parse(raw)
        except ParseError:
            continue
        assert isinstance(m, ParsedMessage)
        json.dumps(m.subject)  # text is valid (no lone surrogates)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=4000), st.binary(max_size=40))
def test_fuzz_parser_only_raises_parse_error(noise, cut, insert):
    base = sample(**{"a.zip": zip_bytes({"x.exe": b"MZ" + bytes(10)})})
    for raw in (noise, base[:cut] + insert + base[cut:], base[:cut]):
        try:
            parse(raw)
        except ParseError:
            pass


@pytest.fixture
def tenant(tmp_path):
    return ensure("imp", base=tmp_path, org_domains=("fabrikam.test",))


def test_batch_rows_raw_mail_and_dead_letters(tenant, tmp_path):
    good = sample()
    items = [RawItem("a.eml", good), RawItem("empty.eml", b""), RawItem("gone.eml", error="cannot read file")]
    summary = ingest(tenant, items, org_domains=("fabrikam.test",))
    assert summary.messages == 1 and len(summary.rejected) == 2
    assert {src for src, _ in summary.rejected} == {"empty.eml", "gone.eml"}
    notes = sorted((tenant.root / "dead-letter").glob("*.json"))
    assert {json.loads(n.read_text())["source"] for n in notes} == {"empty.eml", "gone.eml"}
    lake = Lake.for_tenant(tenant)
    events = lake.scan("EmailEvents").collect()
    assert events.height == 3 and set(events["EmailDirection"]) == {"Inbound"}
    assert events["SenderIPv4"].to_list() == ["52.100.7.7"] * 3
    extra = json.loads(events["AdditionalFields"][0])
    assert extra["ReplyTo"] == "collector@evil.test"
    explanation = extra["Explanation"]  # every message carries its verdict and why
    assert explanation["verdict"] == (events["ThreatTypes"][0] or "No threats found")
    assert "content" in explanation["analyzers"] and (explanation["rules"] or explanation["other_signals"])
    for rule in explanation["rules"]:
        assert rule["evidence"] and rule["technology"] in json.loads(events["DetectionMethods"][0])[rule["threat"]]
    assert lake.scan("EmailAttachmentInfo").collect()["SHA256"].n_unique() == 1
    urls = lake.scan("EmailUrlInfo").collect()
    assert urls.filter(pl.col("UrlLocation") == "Attachment")["Url"].to_list() == ["https://pdf.test/doc"]
    store = EmbeddedMailStore.for_tenant(tenant)
    assert store.raw(events["NetworkMessageId"][0]) == good
    again = ingest(tenant, [RawItem("a.eml", good)], org_domains=("fabrikam.test",))
    assert sum(again.rows.values()) == 0 and again.duplicates == 3 + 3 + 7  # events, attachments per recipient, URLs


def test_mbox_and_maildir_sources(tenant, tmp_path):
    box = mailbox.mbox(tmp_path / "in.mbox")
    box.add(sample())
    box.add(b"From: x@y.test\r\nSubject: second\r\n\r\nhello")
    box.flush()
    assert [i.source.rsplit("#", 1)[1] for i in mbox_items([tmp_path / "in.mbox"])] == ["0", "1"]
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    md.add(sample())
    junk = md.add_folder("Junk")
    junk.add(b"From: spam@bulk.test\r\nTo: ann@fabrikam.test\r\nSubject: win\r\n\r\nbuy")
    items = list(maildir_items([tmp_path / "Maildir"], "ann@fabrikam.test"))
    assert sorted(i.location for i in items) == ["Inbox/folder", "Junk folder"]
    ingest(tenant, items, org_domains=("fabrikam.test",))
    events = Lake.for_tenant(tenant).scan("EmailEvents").collect()
    spam = events.filter(pl.col("Subject") == "win")
    assert spam["DeliveryLocation"].to_list() == ["Junk folder"]
    store = EmbeddedMailStore.for_tenant(tenant)
    assert store.folder(spam["NetworkMessageId"][0], "ann@fabrikam.test") is Folder.JUNK


def test_unreadable_msg_goes_to_dead_letters(tenant, tmp_path):
    (tmp_path / "broken.msg").write_bytes(b"not an outlook file")
    items = list(msg_items([tmp_path / "broken.msg"]))
    assert items[0].error and "Outlook" in items[0].error
    assert len(ingest(tenant, items).rejected) == 1


@pytest.mark.slow
@pytest.mark.skipif(not EXTERNAL.is_dir(), reason="external mail corpus not present (../shared/data/external)")
def test_external_corpus_ingests_without_rejections(tenant):
    items = list(eml_items([EXTERNAL]))
    summary = ingest(tenant, items)
    assert summary.items == len(items) >= 600
    assert summary.rejected == [] and summary.messages == len(items)
    events = Lake.for_tenant(tenant).scan("EmailEvents", columns=["ThreatTypes", "AdditionalFields"]).collect()
    verdicts = [json.loads(a)["Explanation"]["verdict"] for a in events["AdditionalFields"]]
    assert len(verdicts) == events.height and all(verdicts)  # every message judged, with its explanation
    assert events["ThreatTypes"].drop_nulls().len() > 100
    again = ingest(tenant, items)
    assert sum(again.rows.values()) == 0
