"""YARA rules over attachments and archive members (yara-python).

A folder of ``.yar`` / ``.yara`` files is compiled once per process (:func:`load`; cached per
folder until a file changes) into one rule set, each file its own namespace. Collections
written for other scanners do not all compile with plain yara-python (THOR's external
variables, modules the wheel lacks, ``include`` index files, syntax errors): each file is
tried alone, with the usual external variables (``filename``, ``filepath``, ``extension``,
``filetype``, ``owner``, ``md5``) defined as empty strings, and a file that fails is skipped
and listed in :attr:`YaraRules.skipped`. Every file the parser read (:attr:`FileFacts.content`,
already bounded by :mod:`workbench.ingest.files`) is scanned with a timeout; a match is the
signal ``yara.match``, or ``yara.weak_match`` when the rule's own metadata rates it as
informational (:func:`informational`): evidence in the explanation, but no shipped rule
turns it into a verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.detect.evidence import Context, Evidence, Findings, analyzer
from workbench.errors import InputError
from workbench.ingest.message import ParsedMessage

SUFFIXES = (".yar", ".yara")
EXTERNALS = {name: "" for name in ("filename", "filepath", "extension", "filetype", "owner", "md5")}
TIMEOUT = 5  # seconds per scanned file
MAX_SCAN = 20 * 2**20  # bytes of one file that are scanned
MAX_NAMED = 5  # matches named in one evidence detail
MIN_SCORE = 40  # signature-base / YARA style guide: scores below 40 mark capabilities, not threats


@dataclass(frozen=True, eq=False)
class YaraRules:
    """A compiled folder of YARA rules and what loading it skipped."""

    folder: str
    rules: Any  # yara.Rules
    rule_count: int
    files: int  # files compiled
    skipped: tuple[tuple[str, str], ...]  # (file, first line of the compiler's error)
    seconds: float

    def summary(self) -> str:
        """One line: what loaded, what was skipped and why (the first few reasons)."""
        line = f"YARA: {self.rule_count} rules from {self.files} files in {self.folder} ({self.seconds:.2f} s)"
        if self.skipped:
            reasons = "; ".join(f"{name}: {why}" for name, why in self.skipped[:3])
            more = f"; ... {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            line += f"; skipped {len(self.skipped)} files that yara-python cannot compile ({reasons}{more})"
        return line

    def __repr__(self) -> str:
        return f"<YaraRules {self.summary()}>"


_CACHE: dict[tuple, YaraRules] = {}


def rule_files(folder: Path) -> list[Path]:
    """The rule files under *folder* (not in hidden folders), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def load(folder: Path | str) -> YaraRules:
    """Compile every rule file of *folder* that compiles; see the module docstring.

    Raises :class:`InputError` when the folder does not exist or not one file compiles.
    """
    import yara

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise InputError(f"YARA rules folder {folder} does not exist; pass a folder of .yar files")
    paths = rule_files(folder)
    key = (str(folder), tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths))
    if key in _CACHE:
        return _CACHE[key]
    if not paths:
        raise InputError(f"no .yar or .yara files under {folder}; pass a folder of YARA rules")
    started = time.perf_counter()
    good: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    count = 0
    for path in paths:
        name = path.relative_to(folder).as_posix()
        try:
            count += sum(1 for _ in yara.compile(filepath=str(path), externals=EXTERNALS, includes=False))
        except yara.Error as exc:
            skipped.append((name, (str(exc).splitlines() or ["error"])[0].replace(str(path), name)[:160]))
            continue
        good[name] = str(path)
    if not good:
        raise InputError(f"none of the {len(paths)} rule files under {folder} compiles with yara-python "
                         f"(first: {skipped[0][0]}: {skipped[0][1]})")
    rules = yara.compile(filepaths=good, externals=EXTERNALS, includes=False)
    loaded = YaraRules(str(folder), rules, count, len(good), tuple(skipped), time.perf_counter() - started)
    _CACHE[key] = loaded
    return loaded


def informational(meta: dict) -> bool:
    """Whether a rule's author rates its matches as notes rather than detections: a ``score``
    below :data:`MIN_SCORE` (signature-base, the YARA style guide) or a ``weight`` of 1 (the
    PDF heuristics of Yara-Rules, which describe such rules as holding no weight alone)."""
    def number(key: str) -> int | None:
        try:
            return int(meta[key])
        except (KeyError, TypeError, ValueError):
            return None

    score, weight = number("score"), number("weight")
    return (score is not None and score < MIN_SCORE) or (weight is not None and weight <= 1)


@analyzer("yara")
def yara_matches(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    out = Findings("yara")
    if ctx.yara is None:
        return out
    import yara

    matched: dict[bool, list[str]] = {False: [], True: []}  # informational? -> matches
    for top in m.attachments:
        for f in top.walk():
            if not f.content:
                continue
            where = f"{f.file_name} (in {top.file_name})" if f is not top else f.file_name
            externals = {"filename": f.file_name, "extension": f".{f.extension}" if f.extension else "",
                         "filetype": f.true_type.upper()}
            try:
                hits = ctx.yara.rules.match(data=f.content[:MAX_SCAN], externals=externals, timeout=TIMEOUT, fast=True)
            except yara.TimeoutError:
                out.add("yara.timeout", f"YARA scan of {where} stopped after {TIMEOUT} s")
                continue
            except yara.Error as exc:
                out.add("yara.error", f"YARA could not scan {where}: {str(exc)[:100]}")
                continue
            for hit in hits:
                matched[informational(hit.meta)].append(f"{hit.rule} ({hit.namespace}) matched {where}")
    for signal, found in (("yara.match", matched[False]), ("yara.weak_match", matched[True])):
        if found:
            more = f"; and {len(found) - MAX_NAMED} more" if len(found) > MAX_NAMED else ""
            out.add(signal, f"YARA rule {'; '.join(found[:MAX_NAMED])}{more}")
    return out
