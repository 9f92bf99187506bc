"""Detection framework: shipped rules load and refer to signals analyzers emit; verdicts explain themselves."""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

import workbench.detect.analyzers as analyzers_pkg
from workbench.detect import Context, Person, evaluate
from workbench.detect.rules import Rule, default_rules, load
from workbench.errors import InputError
from workbench.ingest.demo.lures import html_smuggling, macro_document
from workbench.ingest.message import parse


def emitted_signals() -> set[str]:
    """Every signal name written in an analyzer's source (literal or f-string prefix)."""
    names = set()
    for path in Path(analyzers_pkg.__file__).parent.glob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'"((?:auth|lookalike|people|url|attachment|content|intel)\.[a-z_]+)"', text))
        for prefix, method in re.findall(r'f"(auth)\.\{method\.lower\(\)\}(_fail)"', text):
            names |= {f"auth.{m}{method}" for m in ("spf", "dkim", "dmarc", "compauth")}
        if 'f"content.{theme}"' in text:
            names |= {"content.credential", "content.urgency", "content.payment", "content.delivery", "content.prize", "content.casino_crypto", "content.extortion"}
    return names


def test_shipped_rules_load_and_use_real_signals():
    rules = default_rules()
    assert len(rules) >= 15 and len({r.id for r in rules}) == len(rules)
    known = emitted_signals()
    for rule in rules:
        unknown = (rule.signals() | rule.none) - known
        assert not unknown, f"{rule.id} refers to signals no analyzer emits: {unknown}"


def test_bad_rule_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("- {id: X, name: n, threat: Virus, technology: Bulk, all: [a.b]}\n")
    with pytest.raises(InputError, match="invalid rule 'X'"):
        load(bad)
    with pytest.raises(InputError, match="at least one signal"):
        Rule.from_dict({"id": "Y", "name": "n", "threat": "Spam", "technology": "Bulk"})


def _message(**kw) -> bytes:
    msg = EmailMessage()
    msg["From"] = kw.get("sender", "Service <info@partner.test>")
    msg["To"] = "ann@fabrikam.test"
    msg["Subject"] = kw.get("subject", "Hello")
    for name, value in kw.get("headers", {}).items():
        msg[name] = value
    if kw.get("reply_to"):
        msg["Reply-To"] = kw["reply_to"]
    if kw.get("html"):
        msg.set_content(kw["html"], subtype="html")
    else:
        msg.set_content(kw.get("body", "See you tomorrow."))
    for name, data in kw.get("files", {}).items():
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    for att in kw.get("attachments", ()):
        msg.add_attachment(att.content, maintype="application", subtype="octet-stream", filename=att.file_name)
    return bytes(msg)


def _zip_bytes() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "x")
    return buf.getvalue()


CTX = Context(org_domains=("fabrikam.test",), protected_people=(Person("Charlotte Bauer", "charlotte.bauer@fabrikam.test"),))
EXE = b"MZ" + bytes(300)
FAIL = {"Authentication-Results": "mx.fabrikam.test; spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail action=none "
                                  "header.from=evil.test; compauth=fail reason=000"}

# One message per shipped rule that must make it fire (and a context when the rule needs one).
CASES = {
    "WB-MAL-001": {"files": {"setup.exe": EXE}},
    "WB-MAL-002": {"attachments": [macro_document("Invoice.docm", "t")]},
    "WB-MAL-003": {"attachments": [html_smuggling("Statement.html", "t")]},
    "WB-MAL-004": {"files": {"invoice.pdf": _zip_bytes()}},
    "WB-MAL-005": {"files": {"report.bin": b"known bad bytes"}, "ctx": {"bad_hashes": frozenset({hashlib.sha256(b"known bad bytes").hexdigest()})}},
    "WB-PHISH-001": {"sender": "IT <it@fabrikam-sso.com>", "body": "Your password expires today: https://fabrikam-sso.com/login"},
    "WB-PHISH-002": {"files": {"login.html": b'<html><form><input type="password" name="p"></form></html>'}},
    "WB-PHISH-003": {"sender": "DocuSign <sign@mailer-notice.test>", "body": "Review the document now: https://x.test/d"},
    "WB-PHISH-004": {"sender": "Ann <ann@fabrikam.test>", "headers": {"Return-Path": "<bounce@evil.test>", **FAIL}},
    "WB-PHISH-005": {"body": "Please verify your account to keep access.", "headers": FAIL},
    "WB-PHISH-006": {"body": "Open https://bad.test/x", "ctx": {"bad_urls": frozenset({"https://bad.test/x"})}},
    "WB-PHISH-007": {"body": "Verify your account at https://secure-check.weebly.com/login"},
    "WB-PHISH-008": {"sender": "Charlotte Bauer <charlotte.bauer.office@gmail.com>", "subject": "Quick favour",
                     "body": "Are you at your desk? I need gift cards.", "reply_to": "cb.exec@proton.me"},
    "WB-PHISH-009": {"body": "Please process the wire transfer today.", "reply_to": "accounts.dept@gmail.com"},
    "WB-PHISH-010": {"sender": "Help Desk <helpdesk.team@gmail.com>", "body": "Verify your account immediately or lose access."},
    "WB-PHISH-011": {"subject": "Your Am\u0430zon order is on hold"},
    "WB-PHISH-012": {"sender": "Members <club@offers-mail.test>", "subject": "Netflix: claim your reward"},
    "WB-PHISH-013": {"sender": "Rewards <r@lucky-draw.top>", "body": "You have been selected! Claim your prize today."},
    "WB-PHISH-014": {"body": "Your parcel delivery failed, pay the customs fee.", "headers": FAIL},
    "WB-PHISH-015": {"headers": FAIL},
    "WB-PHISH-016": {"sender": "Info <info@x7k2q9z4pw.top>", "body": "See https://bit.ly/abc"},
    "WB-PHISH-017": {"sender": "Club <club@gmail.com>", "html": '<p>Hello</p><span style="font-size:0px;">filler words</span>'},
    "WB-PHISH-018": {"sender": '"alerts@bank.test" <member@survey-mailer.test>', "body": "Verify your account today."},
    "WB-PHISH-019": {"sender": "Receita <alerta@regularizacao972139>", "body": "Documento pendente."},
    "WB-SPAM-001": {"body": "Cheap viagra and cialis from our online pharmacy at the lowest price.", "headers": FAIL},
    "WB-SPAM-002": {"headers": {"List-Unsubscribe": "<mailto:u@list.test>", "List-Id": "<deals.list.test>"},
                    "body": "Limited time special offer, order now, lowest price."},
    "WB-SPAM-003": {"body": "Limited time special offer at http://deals.top/x, order now at the best price"},
    "WB-SPAM-004": {"subject": "BUY NOW AT THE LOWEST PRICE EVER", "body": "Special offer, order now, lowest price."},
}


def test_every_shipped_rule_has_a_case():
    assert set(CASES) == {r.id for r in default_rules()}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_with_its_evidence(rule_id):
    case = dict(CASES[rule_id])
    ctx = Context(**{**CTX.__dict__, **case.pop("ctx", {})})
    verdict = evaluate(parse(_message(**case)), ctx)
    fired = {e["rule"]: e for e in verdict.explanation}
    assert rule_id in fired, [e.detail for e in verdict.evidence]
    rule = next(r for r in default_rules() if r.id == rule_id)
    assert rule.threat.value in verdict.threat_types
    assert rule.technology.value in verdict.detection_methods[rule.threat.value]
    assert fired[rule_id]["evidence"] and all(e["detail"] for e in fired[rule_id]["evidence"])


def test_clean_mail_gets_no_verdict():
    verdict = evaluate(parse(_message()), CTX)
    assert verdict.threat_types == () and verdict.explanation == ()
