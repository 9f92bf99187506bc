"""Playbook benchmark: one investigation end to end, kernel start included, on the demo tenant.

Cases (same message, medians of --repeat runs):

- ``empty_notebook`` (baseline): papermill executing a one-cell notebook — the price of a
  kernel (start, connect, shut down) with nothing to do;
- ``imports_only``: the playbook's imports in a kernel, no investigation;
- ``playbook_papermill``: ``manual_email_investigation`` executed by papermill, as
  ``workbench air run`` does: kernel, imports, the analyzers, the record written to a store;
- ``investigation_in_process``: the same investigation called directly (no kernel): what the
  analyzers themselves cost.

The analyzers' own durations come from the run's analyzer log. Run from the project root::

    .venv/bin/python -m benchmarks.bench_playbook [--tenant demo] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import papermill

from benchmarks.harness import RESULTS_DIR, Case, run


def _notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import sqlalchemy as sa

    from workbench.air.email_investigation import investigate_emails
    from workbench.air.playbook import PLAYBOOKS_DIR
    from workbench.lake import Lake
    from workbench.store import open_store
    from workbench.store import tables as t
    from workbench.tenant import open_tenant

    tenant = open_tenant(args.tenant)
    stories = {s["id"]: s for s in json.loads((tenant.root / "scenarios.json").read_text())["stories"]}
    message = stories["credential-phish-campaign"]["messages"][0]["NetworkMessageId"]
    scratch = Path(tempfile.mkdtemp(prefix="bench-playbook-"))
    db = f"sqlite:///{scratch / 'wb.sqlite'}"
    empty = _notebook(scratch / "empty.ipynb", "1")
    imports = _notebook(scratch / "imports.ipynb", "from workbench.ui.playbook_app import open_playbook")
    lake, store = Lake.for_tenant(tenant), open_store(url=db)

    def execute(path: Path, **params: Any) -> dict[str, Any]:
        papermill.execute_notebook(str(path), str(scratch / "out.ipynb"), parameters=params, progress_bar=False,
                                   kernel_name="python3")
        return {"ok": 1}

    def in_process() -> dict[str, Any]:
        rec = investigate_emails(store, lake, [message], playbook="bench", name="bench", started_by="bench").record
        return {"actions": len(rec.actions)}

    try:
        report = run(
            "playbook",
            [
                Case("empty_notebook", lambda: execute(empty), baseline=True, description="papermill, one trivial cell"),
                Case("imports_only", lambda: execute(imports), description="kernel + the playbook's imports"),
                Case("playbook_papermill", lambda: execute(PLAYBOOKS_DIR / "manual_email_investigation.ipynb",
                                                           tenant=str(tenant.root), messages=[message], db_url=db),
                     description="manual_email_investigation end to end"),
                Case("investigation_in_process", in_process, description="the same investigation, no kernel"),
            ],
            repeat=args.repeat, warmup=1, interleave=True,
            params={"tenant": args.tenant, "message": message}, results_dir=results_dir,
        )
        per: dict[str, list[float]] = {}
        with store.read() as conn:  # every run's analyzer log: in-process and papermill runs alike
            for name, seconds in conn.execute(sa.select(t.analyzer_log.c.analyzer, t.analyzer_log.c.seconds)):
                per.setdefault(name, []).append(seconds)
        report["analyzers"] = {k: statistics.median(v) for k, v in per.items()}
        print("analyzer medians (s): " + ", ".join(f"{k} {v:.3f}" for k, v in report["analyzers"].items()))
    finally:
        store.dispose()
        shutil.rmtree(scratch, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
