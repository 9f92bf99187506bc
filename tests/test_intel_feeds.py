"""Indicator feeds: STIX bundles, MISP events and warning lists, blocklists → detection context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.detect import Context, evaluate
from workbench.errors import InputError
from workbench.ingest.message import parse
from workbench.intel.feeds import read, read_all, with_indicators

INTEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "threat_intel"


def test_formats(tmp_path):
    (tmp_path / "event.json").write_text(json.dumps({"Event": {"Attribute": [
        {"type": "url", "value": "http://bad.test/a", "to_ids": True}, {"type": "link", "value": "https://blog.test"},
        {"type": "domain|ip", "value": "evil.test|52.1.1.1"}, {"type": "sha256", "value": "AB" * 32}]}}))
    (tmp_path / "warn.json").write_text(json.dumps({"name": "top", "type": "hostname", "list": ["good.test", "*.cdn.test"]}))
    (tmp_path / "block.txt").write_text("! comment\n# comment\n||bad2.test^\n52.9.9.9\nbad3.test/path/x.exe\n")
    kinds = {(i.kind, i.value) for i in read_all([tmp_path])}
    assert kinds == {("url", "http://bad.test/a"), ("domain", "evil.test"), ("sha256", "ab" * 32), ("allow-domain", "good.test"),
                     ("allow-domain", "cdn.test"), ("domain", "bad2.test"), ("ip", "52.9.9.9"), ("url", "http://bad3.test/path/x.exe")}
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(InputError, match="not a STIX bundle"):
        read(tmp_path / "other.json")


def test_indicators_reach_detection():
    ctx = with_indicators(Context(), read_all([]))
    assert not ctx.bad_domains
    from workbench.intel.feeds import Indicator

    ctx = with_indicators(Context(), [Indicator("domain", "evil.test", "t")])
    raw = b"From: a@b.test\r\nSubject: hi\r\n\r\nsee https://www.evil.test/login\r\n"
    verdict = evaluate(parse(raw), ctx)
    assert "Phish" in verdict.threat_types and any(e["rule"] == "WB-PHISH-006" for e in verdict.explanation)


@pytest.mark.skipif(not INTEL.is_dir(), reason="external threat intel samples not present (../shared/data/external)")
def test_external_samples():
    kinds = {}
    for ind in read_all([INTEL]):
        kinds[ind.kind] = kinds.get(ind.kind, 0) + 1
    assert kinds["url"] > 1000 and kinds["domain"] > 1000 and kinds["sha256"] >= 50 and kinds["allow-domain"] > 10000
