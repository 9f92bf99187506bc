"""YARA over attachments: loading rule folders (broken files skipped), matches in archives, the CLI option."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import zip_bytes
from click.testing import CliRunner

from workbench.cli import main
from workbench.detect import Context, evaluate
from workbench.detect.analyzers import yara
from workbench.errors import InputError
from workbench.ingest.message import parse

REAL_RULES = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "rules" / "yara"
MARKER = b"wb-harmless-yara-marker"
GOOD = ('rule WB_Marker : test { meta: description = "test marker" '
        'strings: $m = "wb-harmless-yara-marker" condition: $m }\n')
BROKEN = {
    "syntax.yar": "rule Broken { strings: $a = \"x\" condition: $a and }\n",
    "thor_external.yar": 'rule Needs_External { condition: file_owner == "root" }\n',
    "unknown_module.yara": 'import "cuckoo"\nrule Sandbox { condition: cuckoo.network.http_request(/evil/) }\n',
    "index.yar": 'include "marker.yar"\n',
}


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _mail(files: dict[str, bytes]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ann <ann@partner.test>"
    msg["To"] = "bob@fabrikam.test"
    msg["Subject"] = "Files"
    msg.set_content("See attached.")
    for name, data in files.items():
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(msg)


def test_broken_files_are_skipped_and_the_rest_loads(tmp_path):
    folder = _folder(tmp_path, {"marker.yar": GOOD, "notes.txt": "not a rule file", **BROKEN})
    (folder / ".git").mkdir()
    (folder / ".git" / "hidden.yar").write_text("rule Hidden { condition: true }\n")
    rules = yara.load(folder)
    assert (rules.rule_count, rules.files) == (1, 1)
    assert sorted(name for name, _ in rules.skipped) == sorted(BROKEN)
    assert all(why and "\n" not in why for _, why in rules.skipped)
    line = rules.summary()
    assert "\n" not in line and "1 rules from 1 files" in line and "skipped 4 files" in line


def test_rules_are_compiled_once_per_folder_until_a_file_changes(tmp_path):
    folder = _folder(tmp_path, {"marker.yar": GOOD})
    first = yara.load(folder)
    assert yara.load(folder) is first and yara.load(str(folder)) is first
    (folder / "more.yar").write_text("rule WB_Other { strings: $o = \"other-marker\" condition: $o }\n")
    second = yara.load(folder)
    assert second is not first and second.rule_count == 2


def test_unusable_folders_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        yara.load(tmp_path / "missing")
    with pytest.raises(InputError, match=r"no \.yar or \.yara files"):
        yara.load(_folder(tmp_path, {"readme.txt": "x"}))
    with pytest.raises(InputError, match="none of the 1 rule files"):
        yara.load(_folder(tmp_path, {"syntax.yar": BROKEN["syntax.yar"]}))


def test_matches_name_rule_file_and_attachment_also_inside_archives(tmp_path):
    ctx = Context(yara=yara.load(_folder(tmp_path, {"marker.yar": GOOD})))
    message = parse(_mail({"bundle.zip": zip_bytes({"docs/readme.txt": b"hello " + MARKER}), "clean.txt": b"nothing here"}))
    evidence = [e for e in evaluate(message, ctx).evidence if e.analyzer == "yara"]
    assert [e.signal for e in evidence] == ["yara.match"]
    assert evidence[0].detail == "YARA rule WB_Marker (marker.yar) matched readme.txt (in bundle.zip)"
    verdict = evaluate(message, ctx)
    assert "WB-MAL-006" in [r["rule"] for r in verdict.explanation] and "Malware" in verdict.threat_types


def test_no_rules_or_no_match_means_no_yara_evidence(tmp_path):
    message = parse(_mail({"a.txt": MARKER}))
    assert not [e for e in evaluate(message, Context()).evidence if e.analyzer == "yara"]
    ctx = Context(yara=yara.load(_folder(tmp_path, {"marker.yar": GOOD})))
    assert not [e for e in evaluate(parse(_mail({"a.txt": b"plain text"})), ctx).evidence if e.analyzer == "yara"]


def test_file_name_externals_are_set_per_attachment(tmp_path):
    rule = 'rule WB_Named { condition: filename == "invoice.js" and extension == ".js" }\n'
    ctx = Context(yara=yara.load(_folder(tmp_path, {"named.yar": rule})))
    def signals(name: str) -> list[str]:
        return [e.signal for e in evaluate(parse(_mail({name: b"var a;"})), ctx).evidence if e.analyzer == "yara"]

    assert signals("invoice.js") == ["yara.match"] and signals("other.js") == []


def test_informational_rules_are_weak_evidence_not_verdicts(tmp_path):
    rules = {
        "notes.yar": 'rule WB_Note { meta: score = 30 strings: $m = "wb-harmless-yara-marker" condition: $m }\n'
                     'rule WB_Weight { meta: weight = 1 strings: $m = "wb-harmless-yara-marker" condition: $m }\n',
        "strong.yar": 'rule WB_Strong { meta: score = 75 strings: $m = "strong-marker" condition: $m }\n',
    }
    ctx = Context(yara=yara.load(_folder(tmp_path, rules)))
    weak = evaluate(parse(_mail({"a.txt": MARKER})), ctx)
    found = [e for e in weak.evidence if e.analyzer == "yara"]
    assert [e.signal for e in found] == ["yara.weak_match"]
    assert "WB_Note (notes.yar) matched a.txt" in found[0].detail and "WB_Weight" in found[0].detail
    assert "Malware" not in weak.threat_types
    strong = evaluate(parse(_mail({"a.txt": b"strong-marker"})), ctx)
    assert "Malware" in strong.threat_types
    assert yara.informational({"score": "39"}) and not yara.informational({"score": 40, "weight": 2})


@pytest.mark.skipif(not REAL_RULES.is_dir(), reason="shared/data/external/rules/yara not present")
def test_real_rule_collections_load(tmp_path):
    started = time.perf_counter()
    rules = yara.load(REAL_RULES)
    assert rules.rule_count > 50 and rules.files > 20
    assert time.perf_counter() - started < 30
    # The same collections with files that plain yara-python cannot compile: skipped, not fatal.
    copy = tmp_path / "collections"
    shutil.copytree(REAL_RULES, copy)
    for name, text in BROKEN.items():
        (copy / name).write_text(text)
    mixed = yara.load(copy)
    assert mixed.rule_count == rules.rule_count and mixed.files == rules.files
    assert len(mixed.skipped) == len(rules.skipped) + len(BROKEN)
    evaluate(parse(_mail({"a.pdf": b"%PDF-1.4\n%%EOF\n", "b.txt": MARKER})), replace(Context(), yara=mixed))


def _all_row(table: str) -> str:
    return next(line for line in table.splitlines() if line.startswith("│ all "))


def test_cli_loads_the_folder_from_option_or_environment(tmp_path):
    folder = _folder(tmp_path, {"marker.yar": GOOD, "syntax.yar": BROKEN["syntax.yar"]})
    mail = tmp_path / "mail"
    (mail / "set").mkdir(parents=True)
    (mail / "set" / "a.eml").write_bytes(_mail({"notes.txt": MARKER}))
    (mail / "set" / "b.eml").write_bytes(_mail({"notes.txt": b"fine"}))
    labels = mail / "labels.csv"
    labels.write_text("path,label\nset/a.eml,malware\nset/b.eml,ham\n")
    runner = CliRunner()
    args = ["detect", "evaluate", str(mail), "--labels", str(labels)]
    with_rules = runner.invoke(main, args + ["--yara", str(folder)])
    assert with_rules.exit_code == 0, with_rules.output
    assert "warning: YARA: 1 rules from 1 files" in with_rules.stderr and "skipped 1 files" in with_rules.stderr
    assert "1.0" in _all_row(with_rules.stdout)  # malware recall and threat precision
    from_env = runner.invoke(main, args, env={"WORKBENCH_YARA_RULES": str(folder)})
    assert from_env.exit_code == 0 and "YARA: 1 rules" in from_env.stderr
    without = runner.invoke(main, args)
    assert without.exit_code == 0 and "YARA" not in without.stderr and "1.0" not in _all_row(without.stdout)
    missing = runner.invoke(main, args + ["--yara", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_ingest_command_scans_attachments_with_the_folder(tmp_path):
    import polars as pl

    from workbench.lake import Lake
    from workbench.tenant import ensure

    folder = _folder(tmp_path, {"marker.yar": GOOD})
    eml = tmp_path / "in" / "a.eml"
    eml.parent.mkdir()
    eml.write_bytes(_mail({"notes.txt": MARKER}))
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["ingest", "eml", str(eml), "--home", str(home), "--tenant", "t",
                                       "--yara", str(folder)])
    assert result.exit_code == 0, result.output
    assert "YARA: 1 rules from 1 files" in result.stderr
    events = Lake.for_tenant(ensure("t", base=home)).scan("EmailEvents").collect()
    assert events.height == 1 and events["ThreatTypes"][0] == "Malware"
    assert "WB-MAL-006" in events.select(pl.col("AdditionalFields")).item()
