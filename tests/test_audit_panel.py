"""The audit panel built headless: filters narrow the table, stored strings are escaped, verify reports a
tampered chain in the status line, export writes the filtered records (and is itself audited); the
Audit notebook runs the panel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from workbench.audit import record
from workbench.store import open_store
from workbench.ui.audit import AuditPanel

XSS = '<img src=x onerror="alert(1)">'


def make(tmp_path: Path) -> AuditPanel:
    store = open_store(url=f"sqlite:///{tmp_path / 'wb.sqlite'}")
    record(store, actor="ana", activity="mail.preview", target=XSS, details={"why": XSS})
    record(store, actor="bob", activity="action.approve", target="action 3", result="denied")
    record(store, actor="ana", activity="action.run", target="action 3")
    return AuditPanel(store, "auditor", export_dir=tmp_path / "reports")


def test_filters_and_escaping(tmp_path: Path) -> None:
    panel = make(tmp_path)
    assert [r.seq for r in panel.records] == [3, 2, 1] and "3 record(s)" in panel.status.value
    assert XSS not in panel.table.value and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in panel.table.value
    panel.user.value = "ana"
    panel.refresh()
    assert [r.seq for r in panel.records] == [3, 1]
    panel.activity.value, panel.user.value = "action.", ""
    panel.refresh()
    assert [r.seq for r in panel.records] == [3, 2]
    panel.result.value = "denied"
    panel.refresh()
    assert [r.actor for r in panel.records] == ["bob"] and "wb-audit-denied" in panel.table.value
    panel.activity.value, panel.result.value, panel.target.value = "", "", "action 3"
    panel.refresh()
    assert len(panel.records) == 2
    panel.target.value = ""
    panel.since.value = (datetime.now(UTC) + timedelta(days=2)).date()
    panel.refresh()
    assert panel.records == [] and "None." in panel.table.value
    panel.since.value, panel.until.value = None, datetime.now(UTC).date()
    panel.refresh()
    assert len(panel.records) == 3


def test_verify_and_export(tmp_path: Path) -> None:
    panel = make(tmp_path)
    panel.verify_button.click()
    assert "intact: 3 record(s)" in panel.status.value
    panel.user.value = "ana"
    path = panel.export()
    assert path is not None and path.parent == tmp_path / "reports" and "2 record(s) saved" in panel.download.value
    assert [json.loads(x)["seq"] for x in path.read_text().splitlines()] == [1, 3]
    assert "data:application/x-ndjson;base64," in panel.download.value
    panel.user.value = "auditor"
    panel.refresh()
    assert [(r.activity, r.target, r.details["records"]) for r in panel.records] == [("audit.export", path.name, 2)]
    panel.format.value, panel.user.value = "csv", ""
    assert panel.export().read_text().count("\n") == 5  # header + 4 records (the first export's included)
    panel.store.run(lambda conn: conn.execute(sa.text("UPDATE audit_log SET actor = 'eve' WHERE seq = 2")))
    panel.check()
    assert "broken at record 2" in panel.status.value and "#b00020" in panel.status.value


def test_notebook_runs_the_panel(tmp_path: Path, monkeypatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    from workbench.tenant import ensure

    ensure("au", base=tmp_path)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_TENANT", "au")
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / "Audit.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[-1].outputs
    assert outputs and all(o.get("output_type") != "error" for o in outputs)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
