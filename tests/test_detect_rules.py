"""Detection framework: shipped rules load and refer to signals analyzers emit; verdicts explain themselves."""

from __future__ import annotations

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
    if kw.get("reply_to"):
        msg["Reply-To"] = kw["reply_to"]
    msg.set_content(kw.get("body", "See you tomorrow."))
    for att in kw.get("attachments", ()):
        msg.add_attachment(att.content, maintype="application", subtype="octet-stream", filename=att.file_name)
    return bytes(msg)


CTX = Context(org_domains=("fabrikam.test",), protected_people=(Person("Charlotte Bauer", "charlotte.bauer@fabrikam.test"),))


@pytest.mark.parametrize("kw, rule, threat", [
    ({"attachments": [macro_document("Invoice.docm", "t")]}, "WB-MAL-002", "Malware"),
    ({"attachments": [html_smuggling("Statement.html", "t")]}, "WB-MAL-003", "Malware"),
    ({"sender": "IT <it@fabrikam-sso.com>", "body": "Your password expires today: https://fabrikam-sso.com/login"},
     "WB-PHISH-001", "Phish"),
    ({"sender": "Charlotte Bauer <charlotte.bauer.office@gmail.com>", "subject": "Quick favour",
      "body": "Are you at your desk? I need gift cards.", "reply_to": "cb.exec@proton.me"}, "WB-PHISH-008", "Phish"),
    ({"sender": "DocuSign <sign@mailer-notice.test>", "body": "Review the document now: https://x.test/d"},
     "WB-PHISH-003", "Phish"),
])
def test_rules_fire_with_their_evidence(kw, rule, threat):
    verdict = evaluate(parse(_message(**kw)), CTX)
    assert threat in verdict.threat_types
    fired = {e["rule"]: e for e in verdict.explanation}
    assert rule in fired and fired[rule]["evidence"], verdict.explanation
    assert verdict.detection_methods[threat]


def test_clean_mail_gets_no_verdict():
    verdict = evaluate(parse(_message()), CTX)
    assert verdict.threat_types == () and verdict.explanation == ()
