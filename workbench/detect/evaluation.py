"""Evaluate detection on labelled mail: per source folder, recall and precision for phish,
malware and spam, and the false-positive rate on ham.

A threat counts as caught when the verdict names any threat the label implies (a phish
detected as malware is still caught); spam is caught by any threat verdict. Ham is a false
positive when it gets a Phish or Malware verdict (spam verdicts on ham are reported apart).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from tqdm.auto import tqdm

from workbench.detect.evidence import Context
from workbench.detect.verdict import evaluate
from workbench.errors import InputError
from workbench.ingest.message import ParseError, parse

CLASSES = {"phishing": "phish", "malware": "malware", "spam": "spam", "ham": "ham"}


@dataclass(frozen=True)
class Outcome:
    path: str
    source: str
    label: str
    predicted: tuple[str, ...]
    rules: tuple[str, ...]


def run(root: Path, labels: Path, ctx: Context | None = None, *, progress: bool = False) -> list[Outcome]:
    ctx = ctx or Context()
    try:
        rows = list(csv.DictReader(labels.open(newline="", encoding="utf-8")))
    except OSError as exc:
        raise InputError(f"cannot read labels {labels}: {exc.strerror}; pass --labels path/to/labels.csv") from None
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise InputError(f"{labels} needs 'path' and 'label' columns")
    out = []
    for row in tqdm(rows, desc="evaluating", unit="msg", disable=not progress, leave=False):
        label = CLASSES.get(row["label"].strip().lower())
        path = root / row["path"]
        if label is None or not path.is_file():
            continue
        try:
            verdict = evaluate(parse(path.read_bytes()), ctx)
            predicted = verdict.threat_types
            rules = tuple(e["rule"] for e in verdict.explanation)
        except ParseError:
            predicted, rules = ("unparsed",), ()
        out.append(Outcome(row["path"], row["path"].split("/")[0], label, predicted, rules))
    if not out:
        raise InputError(f"no labelled file of {labels} was found under {root}; check --labels and the folder")
    return out


def _caught(o: Outcome) -> bool:
    threats = set(o.predicted)
    if o.label in ("phish", "malware"):
        return bool(threats & {"Phish", "Malware"})
    if o.label == "spam":
        return bool(threats & {"Phish", "Malware", "Spam"})
    return False


def table(outcomes: list[Outcome]) -> pl.DataFrame:
    """One row per source folder (and an 'all' row): counts, recall, precision, ham FPR."""
    frame = pl.DataFrame([{
        "source": o.source, "label": o.label, "caught": _caught(o),
        "threat": bool(set(o.predicted) & {"Phish", "Malware"}), "spam_verdict": "Spam" in o.predicted,
    } for o in outcomes])

    def summarise(df: pl.DataFrame, name: str) -> dict:
        row: dict = {"source": name, "messages": df.height}
        for label in ("phish", "malware", "spam"):
            part = df.filter(pl.col("label") == label)
            row[f"{label}_n"] = part.height
            row[f"{label}_recall"] = round(part["caught"].mean(), 3) if part.height else None
        ham = df.filter(pl.col("label") == "ham")
        row["ham_n"] = ham.height
        row["ham_fpr"] = round(ham["threat"].mean(), 4) if ham.height else None
        row["ham_spam_rate"] = round(ham["spam_verdict"].mean(), 4) if ham.height else None
        flagged = df.filter(pl.col("threat"))
        row["threat_precision"] = round(flagged["label"].is_in(["phish", "malware"]).mean(), 3) if flagged.height else None
        return row

    rows = [summarise(frame.filter(pl.col("source") == s), s) for s in sorted(frame["source"].unique())]
    rows.append(summarise(frame, "all"))
    return pl.DataFrame(rows)
