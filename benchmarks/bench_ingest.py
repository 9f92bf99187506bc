"""Ingest benchmark: messages per second on the external mail corpus, against stdlib parsing.

Cases (same files, read into memory first; one process pinned to one core, so polars'
threads share it too):

- ``stdlib_email`` (baseline): ``email.message_from_bytes(raw, policy=email.policy.default)``
  and a walk over every part with ``get_content()`` — plain parsing, nothing extracted;
- ``workbench_parse``: :func:`workbench.ingest.message.parse` (addresses, chain, auth, URLs,
  attachment facts, language);
- ``workbench_parse_detect``: parse, then :func:`workbench.detect.evaluate` with the tenant's
  context (every analyzer and rule) — the CPU part of ingesting, nothing stored;
- ``workbench_ingest``: :func:`workbench.ingest.batch.ingest` with detection on, the whole
  batch into a fresh tenant: parse, detection, rows, lake appends, raw mail store. Deleting
  the tenants afterwards is not timed.

Run from the project root::

    .venv/bin/python -m benchmarks.bench_ingest [--corpus ../shared/data/external/emails] [--repeat 3] [--all-cores]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS_DIR, Case, run

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "emails"


def load(corpus: Path) -> list[bytes]:
    if not corpus.is_dir():
        raise SystemExit(f"error: corpus folder {corpus} not found; pass --corpus PATH to a folder of messages")
    return [p.read_bytes() for p in sorted(corpus.rglob("*")) if p.is_file() and p.suffix not in (".md", ".csv")]


def stdlib(messages: list[bytes]) -> dict[str, Any]:
    parts = 0
    for raw in messages:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for part in msg.walk():
            if not part.is_multipart():
                try:
                    part.get_content()
                except (LookupError, ValueError, KeyError, AttributeError, AssertionError):
                    pass
                parts += 1
    return {"messages": len(messages), "parts": parts}


def main(argv: Sequence[str] | None = None, *, results_dir: Path | None = RESULTS_DIR) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args(argv)
    messages = load(args.corpus)
    cores: int | str = "all"
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if not args.all_cores and affinity:
        # Run as a module, this happens before polars is imported: its thread pool is one core too.
        os.sched_setaffinity(0, {min(affinity)})
        cores = 1

    from workbench.detect import evaluate
    from workbench.ingest.batch import ingest, tenant_context
    from workbench.ingest.message import ParseError, detect_language, parse
    from workbench.ingest.sources import RawItem
    from workbench.tenant import ensure

    detect_language("warm up the language model once, outside the timings")

    def parse_all() -> dict[str, Any]:
        ok = 0
        for raw in messages:
            try:
                parse(raw)
                ok += 1
            except ParseError:
                pass
        return {"messages": ok}

    scratch = Path(tempfile.mkdtemp(prefix="bench-ingest-"))  # every run's tenant, deleted at the end
    context = tenant_context(ensure("context", base=scratch))

    def parse_detect_all() -> dict[str, Any]:
        ok = threats = 0
        for raw in messages:
            try:
                verdict = evaluate(parse(raw), context)
            except ParseError:
                continue
            ok += 1
            threats += bool(verdict.threat_types)
        return {"messages": ok, "threats": threats}

    def ingest_all() -> dict[str, Any]:
        tenant = ensure("bench", base=Path(tempfile.mkdtemp(dir=scratch)))
        summary = ingest(tenant, [RawItem(str(i), raw) for i, raw in enumerate(messages)], detect=True)
        return {"messages": summary.messages, "rejected": len(summary.rejected)}

    try:
        report = run(
            "ingest",
            [
                Case("stdlib_email", lambda: stdlib(messages), baseline=True,
                     description="email.message_from_bytes + walk"),
                Case("workbench_parse", parse_all, description="workbench.ingest.message.parse"),
                Case("workbench_parse_detect", parse_detect_all,
                     description="parse + detection (evaluate), nothing stored"),
                Case("workbench_ingest", ingest_all,
                     description="batch.ingest: parse + detection + rows + lake + mail store"),
            ],
            repeat=args.repeat,
            warmup=1,
            interleave=True,  # this machine's speed drifts by ±40 % within minutes: pair every case with the baseline
            params={"corpus": str(args.corpus), "messages": len(messages), "cores": cores},
            results_dir=results_dir,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if cores == 1:
            os.sched_setaffinity(0, affinity)
    for case in report["cases"]:
        rate = len(messages) / case["median"]
        case["extra"]["msgs_per_s"] = rate
        print(f"{case['name']:<24} {rate:8.0f} messages/s  (x{case['ratio']:.2f} the stdlib time, paired rounds)")
    if results_dir is not None:  # keep the rates in the saved report too
        (results_dir / "ingest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


if __name__ == "__main__":
    main()
