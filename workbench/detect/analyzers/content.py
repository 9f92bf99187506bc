"""What the message says: credential, urgency, payment and delivery themes, spam terms,
bulk mail markers (gives the bulk complaint level)."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import yaml

from workbench.detect.reference import DATA
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.message import ParsedMessage


_MONEY = re.compile(r"[$€£]\s?\d[\d,.]*|\d[\d,.]*\s?(?:usd|eur|dollars|euros)\b|\d{2,3}\s?%", re.IGNORECASE)
_IMG = re.compile(r"<img\b", re.IGNORECASE)
_HIDDEN = re.compile(r"font-size\s*:\s*[01](?:\.\d+)?\s*(?:px|pt)?\s*[;\"']", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|[$%]")


@cache
def _phrases() -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """First word → the (theme, phrase words) that start with it, over every theme."""
    themes = yaml.safe_load((DATA / "phrases.yaml").read_text())
    index: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for theme, phrases in themes.items():
        for phrase in phrases:
            words = tuple(_TOKEN.findall(str(phrase).lower()))
            if words:
                index.setdefault(words[0], []).append((theme, words))
    return index


@cache
def _themes() -> tuple[str, ...]:
    return tuple(yaml.safe_load((DATA / "phrases.yaml").read_text()))


def phrase_hits(text: str) -> dict[str, set[str]]:
    """Theme → the phrases found in *text* (whole words, case-insensitive), in one pass."""
    tokens = _TOKEN.findall(text.lower())
    index = _phrases()
    hits: dict[str, set[str]] = {}
    for i, token in enumerate(tokens):
        for theme, words in index.get(token, ()):
            if len(words) == 1 or tuple(tokens[i:i + len(words)]) == words:
                hits.setdefault(theme, set()).add(" ".join(words))
    return hits


def text_of(m: ParsedMessage) -> str:
    from workbench.ingest.links import html_parts

    body = m.text if m.text.strip() else (html_parts(m.html)[1] if m.html else "")
    return f"{m.subject}\n{body[:20_000]}"


@analyzer("content")
def themes(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    text = text_of(m)
    out = []
    found = phrase_hits(text)
    for theme in _themes():
        hits = sorted(found.get(theme, ()))
        if theme == "spam":
            if len(hits) >= 3:
                out.append(Evidence("content", "content.spam_terms", f"spam terms: {', '.join(hits[:6])}"))
        elif hits:
            out.append(Evidence("content", f"content.{theme}", f"{theme} wording: {', '.join(hits[:5])}"))
    if obfuscated := _obfuscation(f"{m.from_display} {m.subject}") or _obfuscation(text[:5000], invisible=False):
        out.append(Evidence("content", "content.obfuscated_text", obfuscated))
    subject = m.subject.strip()
    letters = [c for c in subject if c.isalpha()]
    if (len(letters) >= 12 and sum(c.isupper() for c in letters) > 0.7 * len(letters)) or "!!!" in subject or "$$$" in subject:
        out.append(Evidence("content", "content.shouting", f"subject shouts: {subject[:80]!r}"))
    money = _MONEY.findall(text)
    if len(money) >= 2:
        out.append(Evidence("content", "content.money", f"money amounts: {', '.join(sorted(set(money))[:4])}"))
    if m.html.strip() and not m.text.strip():
        out.append(Evidence("content", "content.html_only", "HTML body without a plain-text part"))
        visible = len(" ".join(text.split()[1:]))  # without the subject line
        images = len(_IMG.findall(m.html[:300_000]))
        if images and visible < 120:
            out.append(Evidence("content", "content.image_only", f"{images} image(s) and only {visible} characters of text"))
    if _HIDDEN.search(m.html[:300_000]):
        out.append(Evidence("content", "content.hidden_text", "text hidden with a zero or one-pixel font"))
    headers = {k.lower() for k, _ in m.headers}
    bulk = [h for h in ("list-unsubscribe", "list-id", "precedence", "x-campaign", "x-mailer-recptid", "feedback-id") if h in headers]
    if any(v.lower() in ("bulk", "list", "junk") for v in m.header("Precedence")) or len(bulk) >= 2:
        out.append(Evidence("content", "content.bulk", f"bulk mail headers: {', '.join(bulk)}"))
    return out


def bulk_complaint_level(evidence: list[Evidence]) -> int:
    """0 for person-to-person mail; 4–7 for bulk, higher when it also reads as spam."""
    signals = {e.signal for e in evidence}
    if "content.bulk" not in signals:
        return 0
    return 7 if "content.spam_terms" in signals else 4


# Soft hyphen, zero-width and direction marks, word joiners, BOM, tag characters and
# variation selectors: nothing a reader sees, everything a keyword filter trips on.
_INVISIBLE_CHARS = "\u00ad\u200b-\u200f\u2060-\u2064\ufeff\ufe00-\ufe0f\U000e0000-\U000e007f\U000e0100-\U000e01ef"
_INVISIBLE_IN_WORD = re.compile(f"\\w([{_INVISIBLE_CHARS}]+)\\w")
_WORDS = re.compile(r"\w+", re.UNICODE)
# A Latin letter followed by a combining mark, inside a word (e.g. "Aܿmܿaܿzܿon").
_MARKED = re.compile(r"\w*[A-Za-z][\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0711\u0730-\u074a\u07a6-\u07b0\u0900-\u0903\u093a-\u094f\u20d0-\u20ff]+\w*")


def _obfuscation(text: str, *, invisible: bool = True) -> str | None:
    """Words written with letters of two scripts (Latin with Cyrillic/Greek look-alikes), or
    letters split by invisible characters: tricks to slip past keyword filters."""
    if invisible:
        for match in _INVISIBLE_IN_WORD.finditer(text):
            return f"invisible characters inside a word: {match.group(0).encode('unicode_escape').decode()[:60]}"
    for word in _MARKED.findall(text):
        marks = [c for c in word if unicodedata.category(c) == "Mn"]
        if any(not 0x300 <= ord(c) <= 0x36F for c in marks) or len(marks) > 2:
            return f"Latin word {word!r} sprinkled with combining marks from another script"
    for word in _WORDS.findall(text):
        if len(word) < 3 or word.isascii():
            continue
        scripts = {_script(c) for c in word if c.isalpha()}
        if "latin" in scripts and scripts & {"cyrillic", "greek"}:
            return f"mixed-script word {word!r} (Latin with {', '.join(sorted(scripts - {'latin'}))} letters)"
    return None


def _script(ch: str) -> str:
    code = ord(ch)
    if code < 0x250 or 0x1E00 <= code <= 0x1EFF:
        return "latin"
    if 0x370 <= code <= 0x3FF:
        return "greek"
    if 0x400 <= code <= 0x52F:
        return "cyrillic"
    return "other"
