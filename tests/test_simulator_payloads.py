"""Attack simulator payloads: the library, validation, rendering, attachments, notifications, training."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from datetime import date, datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from importlib import resources
from xml.etree import ElementTree

import pypdf
import pytest
import zxingcpp
from PIL import Image

from workbench.errors import InputError, NotFound
from workbench.simulator import attachments, notifications, payloads, training
from workbench.simulator.model import SIMULATION_HEADER, Links, Recipient, Technique
from workbench.simulator.payloads import AttachmentSpec, Payload

LIB = payloads.load_library()
LINKS = Links(base="http://127.0.0.1:8899", token="tok-3f9a")
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
ALICE = Recipient(email="alice.durand@fabrikam.example", display_name="Alice Durand", given_name="Alice",
                  department="Treasury", title="Cash Manager", manager="Bruno Keller", company="Fabrikam")
XSS_NAME = "<img src=x onerror=window.__xss=1>"
XSS_DEPT = '"><script>window.__xss=2</script>'
HOSTILE = Recipient(email="eve@fabrikam.example", display_name=XSS_NAME, given_name=XSS_NAME, department=XSS_DEPT,
                    manager=XSS_DEPT, company=XSS_NAME, title=XSS_DEPT)
URL = re.compile(r"https?://[^\s\"'<>)\\]+")


def parts(msg: EmailMessage) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def attached(msg: EmailMessage) -> list[EmailMessage]:
    return list(msg.iter_attachments())


def base_payload(**over: object) -> dict[str, object]:
    d: dict[str, object] = {
        "id": "t-1", "name": "Test", "technique": "credentialHarvest", "subject": "Hi {{first_name}}",
        "sender_name": "IT", "sender_address": "it@helpdesk.example", "html": "<p>{{link}}</p>",
        "text": "{{link}}", "complexity": "Low", "language": "en", "indicators": ["a", "b"],
    }
    d.update(over)
    return d


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = Tags()
    p.feed(html)
    return p.tags


# --- the library ---------------------------------------------------------------------------------

def test_library_files_all_load_and_round_trip() -> None:
    folder = resources.files("workbench.simulator").joinpath("library/payloads")
    files = [f for f in folder.iterdir() if f.name.endswith(".json")]
    assert len(files) == len(LIB) >= 12
    for f in files:
        p = payloads.from_dict(json.loads(f.read_text(encoding="utf-8")))
        assert f.name == f"{p.id}.json"
        assert payloads.from_dict(payloads.to_dict(p)) == p
        assert p.source == "global" and p.author
    assert len({p.id for p in LIB}) == len(LIB)
    assert payloads.load_library() is LIB  # cached


def test_library_covers_techniques_themes_languages_and_complexity() -> None:
    techniques = Counter(p.technique for p in LIB)
    assert set(techniques) == set(Technique)
    assert techniques[Technique.CREDENTIAL_HARVEST] >= 3
    kinds = {(p.technique, a.kind, a.purpose) for p in LIB for a in p.attachments}
    assert {(Technique.MALWARE_ATTACHMENT, "docx", "beacon"), (Technique.MALWARE_ATTACHMENT, "html", "beacon"),
            (Technique.LINK_IN_ATTACHMENT, "pdf", "link"), (Technique.LINK_IN_ATTACHMENT, "docx", "link"),
            (Technique.LINK_TO_MALWARE, "txt", "download")} <= kinds
    assert {p.complexity for p in LIB} == {"Low", "Medium", "High"}
    assert len({p.language for p in LIB}) >= 2 and "en" in {p.language for p in LIB}
    assert sum(p.uses_qr for p in LIB) >= 2
    assert len({p.theme for p in LIB}) >= 8
    oauth = [p for p in LIB if p.technique is Technique.OAUTH_CONSENT_GRANT]
    assert all(p.app_name and p.scopes for p in oauth)


def test_indicators_are_concrete_and_fewer_for_harder_payloads() -> None:
    for p in LIB:
        assert 2 <= len(p.indicators) <= 5, p.id
        assert all(len(i) > 20 for i in p.indicators), p.id
    tests = [p for p in LIB if p.technique is not Technique.HOW_TO_GUIDE]  # teaching mails: nothing to spot
    by = {c: [len(p.indicators) for p in tests if p.complexity == c] for c in ("Low", "Medium", "High")}
    assert min(by["Low"]) > max(by["High"])
    assert sum(by["Low"]) / len(by["Low"]) > sum(by["Medium"]) / len(by["Medium"]) > sum(by["High"]) / len(by["High"])


def test_library_uses_only_reserved_domains() -> None:
    for p in LIB:
        assert p.sender_address.endswith((".example", ".test")), p.id
        for url in URL.findall(p.html + p.text):
            pytest.fail(f"{p.id}: hard-coded URL {url}")


# --- rendering -----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", LIB, ids=lambda p: p.id)
def test_every_payload_renders_for_a_recipient(p: Payload) -> None:
    msg = payloads.render(p, ALICE, LINKS, when=WHEN)
    assert msg["From"].addresses[0].addr_spec == p.sender_address
    assert msg["From"].addresses[0].display_name == p.sender_name
    assert msg["To"].addresses[0].addr_spec == ALICE.email
    assert msg["To"].addresses[0].display_name == "Alice Durand"
    assert msg[SIMULATION_HEADER] == LINKS.token
    assert msg["Date"].datetime == WHEN
    assert msg["Message-ID"].strip("<>").endswith("@" + p.sender_address.split("@")[1])
    assert "{{" not in msg["Subject"]
    text, html = parts(msg)
    assert "{{" not in text and "{{" not in html
    assert f'<img src="{LINKS.pixel}" width="1" height="1" alt="">' in html
    assert html.index(LINKS.pixel) > html.lower().rfind("</p>")  # appended after the content
    if p.technique in payloads.NEEDS_LINK:
        assert (LINKS.click in html and LINKS.click in text) or (p.uses_qr and LINKS.qr in text)
    # every address in the message and its attachments is a tracking address of this recipient
    raw = (str(msg["From"]) + str(msg["To"]) + text + html).encode()
    for a in attached(msg):
        raw += a.get_content() if isinstance(a.get_content(), bytes) else a.get_content().encode()
        if a.get_filename().endswith(".docx"):
            with zipfile.ZipFile(io.BytesIO(a.get_content())) as z:
                raw += b"".join(z.read(n) for n in z.namelist())
    found = {u for u in URL.findall(raw.decode("latin-1"))
             if not u.startswith("http://schemas.openxmlformats.org/")}
    assert found and all(u.startswith(f"{LINKS.base}/") and LINKS.token in u for u in found), found
    assert [a.get_filename() for a in attached(msg)] == [a.file_name for a in p.attached]


def test_placeholders_are_substituted() -> None:
    p = payloads.from_dict(base_payload(
        subject="{{name}} / {{first_name}} / {{date}}",
        html="<p>{{name}}|{{first_name}}|{{email}}|{{department}}|{{title}}|{{manager}}|{{company}}|{{date}}|"
             "<a href=\"{{link}}\">x</a></p>",
        text="{{name}}|{{first_name}}|{{email}}|{{department}}|{{title}}|{{manager}}|{{company}}|{{date}}|"
             "{{link}}|{{qr}}"))
    msg = payloads.render(p, ALICE, LINKS, when=WHEN)
    expected = ("Alice Durand|Alice|alice.durand@fabrikam.example|Treasury|Cash Manager|Bruno Keller|Fabrikam|"
                "2026-03-02|")
    text, html = parts(msg)
    assert msg["Subject"] == "Alice Durand / Alice / 2026-03-02"
    assert text.startswith(expected + LINKS.click + "|" + LINKS.qr)
    assert f'<p>{expected}<a href="{LINKS.click}">x</a></p>' in html
    # no display name: the address's local part; no given name: the first word of the display name
    bare = payloads.render(p, Recipient(email="bob@fabrikam.example"), LINKS, when=WHEN)
    assert bare["Subject"] == "bob / bob / 2026-03-02"
    assert parts(payloads.render(p, Recipient(email="c@f.example", display_name="Carla Diaz"), LINKS,
                                 when=WHEN))[0].startswith("Carla Diaz|Carla|")


def test_hostile_recipient_values_are_escaped_in_html_but_kept_in_text() -> None:
    p = payloads.from_dict(base_payload(
        html='<p title="{{department}}">{{name}} {{first_name}} {{department}} {{company}}</p><a href="{{link}}">x</a>',
        text="{{name}} {{department}} {{link}}"))
    msg = payloads.render(p, HOSTILE, LINKS, when=WHEN)
    text, html = parts(msg)
    assert XSS_NAME in text and XSS_DEPT in text
    assert XSS_NAME not in html and "<script" not in html.lower()
    assert "&lt;img src=x onerror=window.__xss=1&gt;" in html
    assert "&quot;&gt;&lt;script&gt;" in html
    found = tags(html)
    assert [t for t, _ in found] == ["p", "a", "img"]  # only the template's tags and the pixel
    assert not any(k.startswith("on") for _, attrs in found for k in attrs)
    assert dict(found[0][1])["title"] == XSS_DEPT  # an attribute value, not markup
    # headers stay well formed: the hostile name is quoted, not injected
    assert msg["To"].addresses[0].display_name == XSS_NAME
    reparsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert reparsed["To"].addresses[0].addr_spec == HOSTILE.email


@pytest.mark.parametrize("p", [p for p in LIB if p.uses_qr], ids=lambda p: p.id)
def test_qr_code_decodes_to_the_qr_address(p: Payload) -> None:
    msg = payloads.render(p, ALICE, LINKS, when=WHEN)
    text, html = parts(msg)
    assert '<img src="cid:qr@workbench" alt="QR code">' in html
    assert LINKS.qr in text
    images = [x for x in msg.walk() if x.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == "<qr@workbench>"
    assert images[0].get_content_disposition() == "inline"
    assert msg.get_body(("related",)).get_content_type() == "multipart/related"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(images[0].get_content())))
    assert [d.text for d in decoded] == [LINKS.qr]


def test_render_is_deterministic_except_message_id() -> None:
    for p in LIB:
        a = payloads.render(p, ALICE, LINKS, when=WHEN)
        b = payloads.render(p, ALICE, LINKS, when=WHEN)
        assert a["Message-ID"] != b["Message-ID"]
        del a["Message-ID"], b["Message-ID"]
        assert a.as_bytes() == b.as_bytes(), p.id
    other = payloads.render(LIB[0], ALICE, Links(LINKS.base, "other"), when=WHEN)
    assert other[SIMULATION_HEADER] == "other"


def test_naive_datetime_is_utc_and_preview_uses_sample_values() -> None:
    msg = payloads.render(LIB[0], ALICE, LINKS, when=datetime(2026, 3, 2, 9, 30))
    assert msg["Date"].datetime == WHEN
    preview = payloads.render_preview(payloads.by_id("document-shared-syncbox"))
    assert preview[SIMULATION_HEADER] == payloads.SAMPLE_LINKS.token
    assert preview["To"].addresses[0].addr_spec == payloads.SAMPLE_RECIPIENT.email
    assert payloads.SAMPLE_RECIPIENT.manager in preview["Subject"]
    with pytest.raises(NotFound):
        payloads.by_id("nope")


# --- attachments ---------------------------------------------------------------------------------

def docx_parts(data: bytes) -> dict[str, ElementTree.Element]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names[0] == "[Content_Types].xml"
        assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml", "word/_rels/document.xml.rels"} <= set(names)
        return {n: ElementTree.fromstring(z.read(n)) for n in names}


REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


@pytest.mark.parametrize("purpose,url,rel_type", [
    ("beacon", LINKS.attachment_beacon, "/image"), ("link", LINKS.attachment_link, "/hyperlink")])
def test_docx_is_a_valid_package_with_one_external_relationship(purpose: str, url: str, rel_type: str) -> None:
    name, mime, data = attachments.build(AttachmentSpec("docx", "Report.docx", purpose), LINKS)
    assert (name, mime) == ("Report.docx", attachments.MIME_TYPES["docx"])
    xml = docx_parts(data)
    types = xml["[Content_Types].xml"]
    assert any(o.get("PartName") == "/word/document.xml" and o.get("ContentType", "").endswith(".main+xml")
               for o in types)
    root = xml["_rels/.rels"].findall(REL)
    assert [r.get("Target") for r in root] == ["word/document.xml"]
    rels = xml["word/_rels/document.xml.rels"].findall(REL)
    assert len(rels) == 1
    assert rels[0].get("Target") == url and rels[0].get("TargetMode") == "External"
    assert rels[0].get("Type").endswith(rel_type)
    doc = xml["word/document.xml"]
    assert doc.tag == f"{W}document" and doc.find(f"{W}body/{W}sectPr") is not None
    if purpose == "beacon":
        blips = list(doc.iter(f"{A}blip"))
        assert [b.get(f"{R}link") for b in blips] == [rels[0].get("Id")]
        assert doc.find(f".//{W}drawing") is not None
    else:
        links = list(doc.iter(f"{W}hyperlink"))
        assert [h.get(f"{R}id") for h in links] == [rels[0].get("Id")]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        text = b"".join(z.read(n) for n in z.namelist()).decode()
    assert {u for u in URL.findall(text) if "schemas.openxmlformats.org" not in u} == {url}
    assert "vbaProject" not in text and "macro" not in text.lower()


def test_pdf_parses_and_carries_exactly_the_attachment_link() -> None:
    name, mime, data = attachments.build(AttachmentSpec("pdf", "Contract.pdf", "link"), LINKS)
    assert mime == "application/pdf" and data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 1
    annots = [a.get_object() for a in reader.pages[0]["/Annots"]]
    assert [(a["/Subtype"], a["/A"]["/S"], a["/A"]["/URI"]) for a in annots] == [
        ("/Link", "/URI", LINKS.attachment_link)]
    assert "Contract" in reader.pages[0].extract_text()
    assert set(URL.findall(data.decode("latin-1"))) == {LINKS.attachment_link}
    assert b"/JavaScript" not in data and b"/Launch" not in data and b"/OpenAction" not in data


def test_pdf_escapes_hostile_strings() -> None:
    links = Links("http://127.0.0.1:8899", "a(b)c\\d")
    _, _, data = attachments.build(AttachmentSpec("pdf", "x (1).pdf", "link"), links)
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert reader.pages[0]["/Annots"][0].get_object()["/A"]["/URI"] == links.attachment_link


@pytest.mark.parametrize("purpose", ["beacon", "link"])
def test_html_attachment_has_only_the_tracking_address(purpose: str) -> None:
    _, mime, data = attachments.build(AttachmentSpec("html", "doc.html", purpose), LINKS)
    assert mime == "text/html"
    found = tags(data.decode())
    names = [t for t, _ in found]
    assert "script" not in names and "iframe" not in names and "form" not in names
    assert not any(k.startswith("on") for _, attrs in found for k in attrs)
    if purpose == "beacon":
        assert [a["src"] for t, a in found if t == "img"] == [LINKS.attachment_beacon]
        assert "a" not in names
    else:
        assert [a["href"] for t, a in found if t == "a"] == [LINKS.attachment_link]
        assert "img" not in names
    assert set(URL.findall(data.decode())) == {attachments.url_for(AttachmentSpec("html", "d.html", purpose), LINKS)}


def test_txt_download_is_harmless_and_served_not_attached() -> None:
    name, mime, data = attachments.build(AttachmentSpec("txt", "form.txt", "download"), LINKS)
    assert (name, mime) == ("form.txt", "text/plain")
    assert b"simulation" in data and not URL.findall(data.decode())
    p = next(p for p in LIB if p.technique is Technique.LINK_TO_MALWARE)
    assert p.download is not None and p.download.kind == "txt"
    assert attached(payloads.render(p, ALICE, LINKS, when=WHEN)) == []


def test_attachments_are_deterministic_and_unsupported_combinations_refused() -> None:
    for kind, purpose in [(k, pu) for k, ps in attachments.SUPPORTED.items() for pu in ps]:
        spec = AttachmentSpec(kind, f"f.{kind}", purpose)
        assert attachments.build(spec, LINKS) == attachments.build(spec, LINKS)
    with pytest.raises(ValueError):
        attachments.build(AttachmentSpec("pdf", "f.pdf", "beacon"), LINKS)


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("change,field", [
    ({"technique": "smoke signals"}, "technique"),
    ({"subject": ""}, "subject"),
    ({"subject": None}, "subject"),
    ({"html": "   "}, "html"),
    ({"sender_address": "it at helpdesk"}, "sender_address"),
    ({"sender_address": "Helpdesk <it@helpdesk.example>"}, "sender_address"),
    ({"id": "Bad Id"}, "id"),
    ({"complexity": "Extreme"}, "complexity"),
    ({"language": "English"}, "language"),
    ({"source": "vendor"}, "source"),
    ({"colour": "red"}, "colour"),
    ({"subject": "Hi {{nickname}}"}, "subject"),
    ({"html": "<p>{{link}} {{password}}</p>"}, "html"),
    ({"text": "{{ssn}}"}, "text"),
    ({"subject": "Scan {{qr}}"}, "subject"),
    ({"html": "<p>no link</p>", "text": "no link"}, "html"),
    ({"subject": "two\nlines"}, "subject"),
    ({"indicators": "one"}, "indicators"),
    ({"indicators": ["ok", ""]}, "indicators"),
    ({"attachments": [{"kind": "exe", "file_name": "a.exe", "purpose": "beacon"}]}, "attachments[0]"),
    ({"attachments": [{"kind": "pdf", "file_name": "a.pdf", "purpose": "beacon"}]}, "attachments[0]"),
    ({"attachments": [{"kind": "docx", "file_name": "a.docm", "purpose": "link"}]}, "attachments[0]"),
    ({"attachments": [{"kind": "docx", "file_name": "../a.docx", "purpose": "link"}]}, "attachments[0]"),
    ({"attachments": [{"kind": "docx", "file_name": "a.docx", "purpose": "fun"}]}, "attachments[0]"),
    ({"attachments": [{"kind": "txt", "file_name": "a.txt", "purpose": "download"}]}, "attachments"),
    ({"technique": "malwareAttachment", "attachments": []}, "attachments"),
    ({"technique": "Link in Attachment",
      "attachments": [{"kind": "docx", "file_name": "a.docx", "purpose": "beacon"}]}, "attachments"),
    ({"technique": "oAuthConsentGrant", "scopes": ["Read your mail"]}, "app_name"),
    ({"technique": "oAuthConsentGrant", "app_name": "App"}, "scopes"),
    ({"app_name": "App"}, "app_name"),
    ({"login_page": "My Page"}, "login_page"),
])
def test_validation_errors_are_one_line_and_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as e:
        payloads.from_dict(base_payload(**change))
    message = str(e.value)
    assert "\n" not in message
    assert f" {field} " in message or message.startswith(f"payload: {field} "), message
    assert ";" in message  # problem; fix


def test_valid_variants_are_accepted() -> None:
    assert payloads.from_dict(base_payload(html="<p>{{qr}}</p>", text="{{qr}}")).uses_qr
    assert payloads.from_dict(base_payload(technique="How-to Guide", html="<p>tips</p>", text="tips")).technique \
        is Technique.HOW_TO_GUIDE
    oauth = payloads.from_dict(base_payload(technique="oauth consent grant", app_name="App", scopes=["Read mail"]))
    assert oauth.scopes == ("Read mail",)
    p = payloads.from_dict(base_payload(subject="Hi {{ first_name }}"))
    assert payloads.render(p, ALICE, LINKS, when=WHEN)["Subject"] == "Hi Alice"
    with pytest.raises(InputError, match="JSON object"):
        payloads.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


# --- notifications and training ------------------------------------------------------------------

SENDER = notifications.default_sender("fabrikam.example")


def test_training_assignment_lists_modules_link_and_due_date() -> None:
    mods = training.load_catalog()[:3]
    msg = notifications.training_assignment(ALICE, mods, LINKS, sender=SENDER, due=date(2026, 4, 1),
                                            organisation="Fabrikam", when=WHEN)
    assert msg["From"].addresses[0].display_name == "Security awareness"
    assert msg["From"].addresses[0].addr_spec == "awareness@fabrikam.example"
    assert msg["Message-ID"].strip("<>").endswith("@fabrikam.example")
    assert msg[notifications.NOTIFICATION_HEADER] == "trainingAssignment"
    assert msg[SIMULATION_HEADER] is None
    assert "2026-04-01" in msg["Subject"]
    text, html = parts(msg)
    for m in mods:
        assert m.title in text and f"({m.minutes} min)" in text
    assert LINKS.training in text and f'href="{LINKS.training}"' in html and "2026-04-01" in html
    assert str(sum(m.minutes for m in mods)) in text
    with pytest.raises(InputError):
        notifications.training_assignment(ALICE, (), LINKS, sender=SENDER, due=date(2026, 4, 1))


def test_training_reminder_and_positive_reinforcement() -> None:
    mods = (training.by_id("qr-code-phishing"),)
    rem = notifications.training_reminder(ALICE, mods, LINKS, sender=SENDER, due=date(2026, 4, 1), when=WHEN)
    assert rem[notifications.NOTIFICATION_HEADER] == "trainingReminder"
    assert mods[0].title in parts(rem)[0] and LINKS.training in parts(rem)[1]
    pos = notifications.positive_reinforcement(ALICE, sender=SENDER, reported_subject="Your parcel", when=WHEN)
    text, html = parts(pos)
    assert pos[notifications.NOTIFICATION_HEADER] == "positiveReinforcement"
    assert "Thank you for reporting" in text and "Your parcel" in text and "Alice" in html


def test_notifications_escape_html_and_check_the_sender() -> None:
    mods = (training.by_id("report-phishing"),)
    for msg in (notifications.training_assignment(HOSTILE, mods, LINKS, sender=SENDER, due=date(2026, 4, 1),
                                                  organisation=XSS_DEPT),
                notifications.positive_reinforcement(HOSTILE, sender=SENDER, reported_subject=XSS_DEPT)):
        text, html = parts(msg)
        assert XSS_NAME in text and XSS_NAME not in html and "<script" not in html.lower()
        assert not any(k.startswith("on") for _, attrs in tags(html) for k in attrs)
    with pytest.raises(InputError, match="sender"):
        notifications.positive_reinforcement(ALICE, sender="awareness team")


def test_training_catalog() -> None:
    cat = training.load_catalog()
    assert len(cat) >= 6 and len({m.id for m in cat}) == len(cat)
    assert all(3 <= m.minutes <= 15 and m.title and m.summary for m in cat)
    assert training.by_id("oauth-consent-phishing").title
    assert training.load_catalog() is cat
    with pytest.raises(NotFound, match="report-phishing"):
        training.by_id("nope")
