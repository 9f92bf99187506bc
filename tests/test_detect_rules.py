"""Detection framework: shipped rules load and refer to signals analyzers emit; verdicts explain themselves."""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import zip_bytes
import yaml

import workbench.detect.analyzers as analyzers_pkg
from workbench.detect import Context, Person, evaluate
from workbench.detect.analyzers import yara
from workbench.detect.reference import DATA
from workbench.detect.rules import Rule, default_rules, load, score_tables
from workbench.errors import InputError
from workbench.ingest.demo.lures import html_smuggling, macro_document
from workbench.ingest.message import parse


def emitted_signals() -> set[str]:
    """Every signal name written in an analyzer's source (literal or f-string prefix)."""
    names = set()
    for path in Path(analyzers_pkg.__file__).parent.glob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'"((?:auth|lookalike|people|url|attachment|content|intel|yara)\.[a-z_]+)"', text))
        for prefix, method in re.findall(r'f"(auth)\.\{method\.lower\(\)\}(_fail)"', text):
            names |= {f"auth.{m}{method}" for m in ("spf", "dkim", "dmarc", "compauth")}
        if 'f"content.{theme}"' in text:  # one signal per theme of phrases.yaml ("spam" is content.spam_terms)
            names |= {f"content.{theme}" for theme in yaml.safe_load((DATA / "phrases.yaml").read_text()) if theme != "spam"}
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



def _yara_rules(tmp_path: Path) -> yara.YaraRules:
    """A YARA rule written for the test, matching the harmless marker of the WB-MAL-006 case."""
    (tmp_path / "test.yar").write_text('rule WB_Test_Marker { strings: $m = "wb-harmless-yara-marker" condition: $m }\n')
    return yara.load(tmp_path)


CTX = Context(org_domains=("fabrikam.test",), protected_people=(Person("Charlotte Bauer", "charlotte.bauer@fabrikam.test"),))
EXE = b"MZ" + bytes(300)
FAIL = {"Authentication-Results": "mx.fabrikam.test; spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail action=none "
                                  "header.from=evil.test; compauth=fail reason=000"}

# One message per shipped rule that must make it fire (and a context when the rule needs one;
# a callable context value is built in the test's tmp_path).
CASES = {
    "WB-MAL-001": {"files": {"setup.exe": EXE}},
    "WB-MAL-002": {"attachments": [macro_document("Invoice.docm", "t")]},
    "WB-MAL-003": {"attachments": [html_smuggling("Statement.html", "t")]},
    "WB-MAL-004": {"files": {"invoice.pdf": zip_bytes({"a.txt": b"x"})}},
    "WB-MAL-005": {"files": {"report.bin": b"known bad bytes"}, "ctx": {"bad_hashes": frozenset({hashlib.sha256(b"known bad bytes").hexdigest()})}},
    "WB-MAL-006": {"files": {"notes.txt": b"meeting notes wb-harmless-yara-marker"}, "ctx": {"yara": _yara_rules}},
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
    # Score rules: no single signal below decides, their weights add up past the threshold.
    "WB-PHISH-020": {"sender": "Billing Alert <notice@mailer-hub.test>", "subject": "Your subscription has expired #NP00X1234567",
                     "html": "<p>Dear Customer, your subscription renewal failed. Renew today.</p>",
                     "headers": {"Authentication-Results": "mx.fabrikam.test; spf=none smtp.mailfrom=mailer-hub.test; dkim=none; "
                                                           "dmarc=none action=none header.from=mailer-hub.test"}},
    "WB-SPAM-005": {"sender": "deals4u@bulk-offers.test", "subject": "Lowest price on refinance loans!  x7Kq9Zt2Lm",
                    "body": "Special offer: refinance your mortgage, order now. To be removed reply with remove."},
}


def test_every_shipped_rule_has_a_case():
    assert set(CASES) == {r.id for r in default_rules()}


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_with_its_evidence(rule_id, tmp_path):
    case = dict(CASES[rule_id])
    extra = {k: v(tmp_path) if callable(v) else v for k, v in case.pop("ctx", {}).items()}
    ctx = Context(**{**CTX.__dict__, **extra})
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


def test_score_weights_have_reasons_and_real_signals():
    known = emitted_signals()
    for table, weights in score_tables().items():
        for signal, entry in weights.items():
            assert signal in known, f"scores.yaml {table}: {signal} is emitted by no analyzer"
            assert isinstance(entry["weight"], (int, float)) and len(str(entry.get("why", ""))) > 10, f"{table}: {signal} needs a weight and its reason"


def test_score_explanation_reproduces_the_verdict():
    case = dict(CASES["WB-PHISH-020"])
    verdict = evaluate(parse(_message(**case)), CTX)
    entry = next(e for e in verdict.explanation if e["rule"] == "WB-PHISH-020")
    weights = [e["weight"] for e in entry["evidence"]]
    assert len(weights) >= 3 and max(weights) < entry["threshold"]  # several signals, none decisive alone
    assert round(sum(weights), 2) == entry["score"] >= entry["threshold"]
    assert len({e["signal"] for e in entry["evidence"]}) == len(entry["evidence"])  # each signal counted once


def test_score_rules_from_inline_weights_and_tables(tmp_path):
    rule = Rule.from_dict({"id": "S-1", "name": "n", "threat": "Spam", "technology": "General filter",
                           "score": {"content.shouting": 2, "content.money": 1.5}, "threshold": 3, "and_any": ["content.money"]})
    assert rule.matches({"content.shouting", "content.money"}) and not rule.matches({"content.shouting"})
    assert rule.contributions({"content.shouting", "x"}) == {"content.shouting": 2.0}
    (tmp_path / "rules.yaml").write_text("- {id: S-2, name: n, threat: Spam, technology: Bulk, score: nope, threshold: 1}\n")
    with pytest.raises(InputError, match="cannot read signal weights"):
        load(tmp_path / "rules.yaml", tmp_path / "missing-scores.yaml")
    (tmp_path / "scores.yaml").write_text("other: {content.money: {weight: 1, why: x}}\n")
    with pytest.raises(InputError, match="invalid rule 'S-2'"):
        load(tmp_path / "rules.yaml", tmp_path / "scores.yaml")


def test_mailing_list_posts_keep_their_authentication_excuse():
    """List posts break DKIM and SPF alignment legitimately; a kit's fake List-Id does not excuse it."""
    ar = {"Authentication-Results": "mx.fabrikam.test; spf=none smtp.mailfrom=x.test; dkim=none; dmarc=none"}
    post = _message(sender="Ann via Users <users@lists.example.org>",
                    headers={**ar, "List-Id": "Users <users.lists.example.org>", "Return-Path": "<users-bounces@lists.example.org>"})
    fake = _message(sender="Prize Team <win@promo-mailer.test>", headers={**ar, "List-Id": "07nw3aoy01vxg <List management>"})
    post_signals = {e.signal for e in evaluate(parse(post), CTX).evidence}
    fake_signals = {e.signal for e in evaluate(parse(fake), CTX).evidence}
    assert "auth.from_not_authenticated" not in post_signals and "auth.no_dkim" not in post_signals
    assert {"auth.from_not_authenticated", "auth.no_dkim"} <= fake_signals


def test_poor_sender_configuration_alone_is_not_phishing():
    """No DKIM, unaligned SPF and an HTML-only body without List-Unsubscribe add up to the
    phish threshold, but with no lure, impersonation or risky link there is nothing to flag."""
    raw = _message(sender="Smallshop <news@smallshop.test>", subject="Opening hours over the holidays",
                   html="<p>Our shop is open as usual during the holidays.</p>",
                   headers={"Authentication-Results": "mx.fabrikam.test; spf=none smtp.mailfrom=smallshop.test; dkim=none; "
                                                      "dmarc=none action=none header.from=smallshop.test"})
    verdict = evaluate(parse(raw), CTX)
    rule = next(r for r in default_rules() if r.id == "WB-PHISH-020")
    signals = {e.signal for e in verdict.evidence}
    assert rule.score(signals) >= rule.threshold  # the hygiene signals alone reach the threshold...
    assert "Phish" not in verdict.threat_types  # ...but the rule needs a mark of deception too
