"""What the message says and how it is dressed: lure themes in several languages (credential,
urgency, payment, billing, delivery, prize, advance fee, government, crypto, extortion, spam
offers), subject tricks (hash busters, reference numbers, pictographs, broken-up words),
HTML habits of mass mailers, and bulk mail markers (gives the bulk complaint level)."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import NamedTuple

import yaml

from workbench.detect import reference
from workbench.detect.reference import DATA
from workbench.detect.evidence import Context, Evidence, analyzer
from workbench.ingest.message import ParsedMessage


# Money amounts: "$ 5", "10.000 EUR", "50 %". Every branch starts with a currency sign or a
# digit, so that class comes first (the engine skips to it) and lookbehinds pick the branch.
_MONEY = re.compile(r"[$€£\d](?:(?<=[$€£])\s?\d[\d,.]*|(?<=\d)[\d,.]*\s?(?i:usd|eur|dollars|euros)\b|(?<=\d)\d{1,2}\s?%)")
_IMG = re.compile(r"<img\b")  # these HTML patterns run on the lower-cased HTML: no IGNORECASE scan
_HIDDEN = re.compile(r"font-size\s*:\s*[01](?:\.\d+)?\s*(?:px|pt)?\s*[;\"']")
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|[$%]")
# Themes whose words in the subject line itself mark an offer rather than a newsletter topic.
_SUBJECT_THEMES = ("spam", "spam_health", "spam_finance", "spam_marketing", "freebie", "prize")
# The "ADV:" label some laws required on unsolicited advertising.
_ADV = re.compile(r"(?:^|[\s\[(])adv\s*[:\])]", re.IGNORECASE)
# Distinct phrases a theme needs before it counts: themes of everyday words need several.
_MIN_HITS = {"spam": 3, "spam_health": 2, "spam_finance": 2, "spam_marketing": 2, "freebie": 2}
# Hash busters: a random token (upper and lower case letters with digits) or a run of spaces
# and a code tacked onto the subject, so that every copy of a mass mailing differs.
_BUSTER = re.compile(r"(?<![\w#/.@:-])(?=[A-Za-z0-9]*[a-z][A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z])"
                     r"(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{10,}(?![\w.@-])"
                     r"|\S\s{6,}\S|\s{3,}[\w-]{3,}\s*$")
# Reference numbers in the subject ("#930-0956203-865", "[96492727663]", "Protocolo: 5571...")
# make a lure look transactional; real orders and tickets have them too, so the signal is weak.
_REFERENCE = re.compile(r"#\s?[A-Z0-9][A-Z0-9-]{5,}|\d{8,}|[\[(]\s*\d{5,}\s*[\])]|\b\d{3,}-\d{4,}-\d{3,}\b")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]")
# Words broken up so keyword filters miss them: letters split off ("G emeentelijk"), dots inside
# words ("c.adeaukaarten", "u..te"), hyphen-chained capitals ("-Albert-Heijn-"), a zero for an O.
_BROKEN = re.compile(r"(?<![A-Za-z])[A-Z] [a-z]{3,}.*(?<![A-Za-z])[A-Z] [a-z]{3,}"
                     r"|(?<![\w.@/])[a-zA-Z]\.[a-z]{5,}(?![\w.@/])|\w\.\.\w|(?<=\w)-(?=[A-Z][a-z]+-)"
                     r"|[A-Za-z]0[A-Za-z]|\b0[A-Za-z]{3,}|^\s*[-.*_~]+\w")
_TAGS_IN_TEXT = re.compile(r"<(?:p|br|font|a\s|table|td|div|b|html|body)\b", re.IGNORECASE)
# Impersonal greetings of mass mail ("Dear Customer", "Prezado cliente", "Sehr geehrter Kunde").
_GREETING = re.compile(r"\b(?:dear (?:friend|sir|madam|sir/madam|sir or madam|customer|valued customer|user|member|client|"
                       r"account holder|beneficiary|winner|subscriber|recipient)|prezad[oa]s? client|car[oa]s? client|"
                       r"estimad[oa]s? client|querid[oa]s? client|sehr geehrte[r]? kund|liebe[r]? kund|cher client|"
                       r"chère cliente|beste klant|geachte klant|gentile cliente)")
_GREETING_KEYS = ("dear ", "client", "kund", "klant")
# Two patterns, each starting with a literal the regex engine can skip to (an alternation of
# the two scans every position of the HTML).
_LOUD = (re.compile(r"<font[^>]+size\s*=\s*[\"']?\+?[4-7]"), re.compile(r"font-size\s*:\s*(?:[3-9]\d|[1-9]\d\d)px"))


class _Phrase(NamedTuple):
    theme: str
    text: str  # its words joined by single spaces
    rest: frozenset[str]  # the words after the first
    padded: str  # " text ": a substring of the joined tokens exactly where the words follow each other


@cache
def _phrases() -> dict[str, list[_Phrase]]:
    """First word → the phrases that start with it, over every theme."""
    themes = yaml.safe_load((DATA / "phrases.yaml").read_text())
    index: dict[str, list[_Phrase]] = {}
    for theme, phrases in themes.items():
        for phrase in phrases:
            words = _TOKEN.findall(str(phrase).lower())
            if words:
                text = " ".join(words)
                index.setdefault(words[0], []).append(_Phrase(theme, text, frozenset(words[1:]), f" {text} "))
    return index


@cache
def _themes() -> tuple[str, ...]:
    return tuple(yaml.safe_load((DATA / "phrases.yaml").read_text()))


def _tokens(text: str) -> list[str]:
    """``_TOKEN.findall(text)``, faster: a token never spans white space, and a chunk between
    spaces that is all letters and digits is one token (most words are)."""
    findall = _TOKEN.findall
    out: list[str] = []
    for chunk in text.split():
        if chunk.isalnum():
            out.append(chunk)
        else:
            out += findall(chunk)
    return out


def phrase_hits(text: str) -> dict[str, set[str]]:
    """Theme → the phrases found in *text* (whole words, case-insensitive).

    >>> phrase_hits("Please VERIFY your account now")["credential"] >= {"verify your account"}
    True
    """
    tokens = _tokens(text.lower())
    seen = set(tokens)
    index = _phrases()
    hits: dict[str, set[str]] = {}
    joined = ""
    for first in index.keys() & seen:  # only phrases whose first word occurs at all
        for phrase in index[first]:
            if phrase.rest:
                if not seen.issuperset(phrase.rest):  # a word of it is missing: no need to look for the sequence
                    continue
                joined = joined or f" {' '.join(tokens)} "  # tokens hold no spaces: a substring test is a word-sequence test
                if phrase.padded not in joined:
                    continue
            hits.setdefault(phrase.theme, set()).add(phrase.text)
    return hits


def text_of(m: ParsedMessage) -> str:
    from workbench.ingest.links import html_parts

    body = m.text if m.text.strip() else (html_parts(m.html)[1] if m.html else "")
    return f"{m.subject}\n{body[:20_000]}"


@analyzer("content")
def themes(m: ParsedMessage, ctx: Context) -> list[Evidence]:
    text = text_of(m)
    out = []
    names = " ".join(f.file_name for f in m.attachments[:20] if f.file_name)  # lures are written into file names too
    found = phrase_hits(f"{text}\n{names}" if names else text)
    for theme in _themes():
        hits = sorted(found.get(theme, ()))
        if len(hits) < _MIN_HITS.get(theme, 1):
            continue
        if theme == "spam":
            out.append(Evidence("content", "content.spam_terms", f"spam terms: {', '.join(hits[:6])}"))
        else:
            out.append(Evidence("content", f"content.{theme}", f"{theme} wording: {', '.join(hits[:5])}"))
    if obfuscated := _obfuscation(f"{m.from_display} {m.subject}") or _obfuscation(text[:5000], invisible=False):
        out.append(Evidence("content", "content.obfuscated_text", obfuscated))
    subject = m.subject.strip()
    letters = [c for c in subject if c.isalpha()]
    if (len(letters) >= 12 and sum(c.isupper() for c in letters) > 0.7 * len(letters)) or "!!!" in subject or "$$$" in subject:
        out.append(Evidence("content", "content.shouting", f"subject shouts: {subject[:80]!r}"))
    for where, value in (("display name", m.from_display or ""), ("subject", m.subject)):
        if broken := _BROKEN.search(value):
            out.append(Evidence("content", "content.broken_words",
                                f"{where} breaks words up to slip past filters: {broken.group(0)[:40]!r} in {value[:80]!r}"))
            break
    if buster := _BUSTER.search(m.subject) or (names and _BUSTER.search(names.replace(".", " ").replace("_", " "))):
        out.append(Evidence("content", "content.subject_hash_buster",
                            f"subject or file name carries a random token or padding that makes each copy unique: {buster.group(0).strip()[:40]!r}"))
    if ref := _REFERENCE.search(f"{m.subject} {m.from_display}"):
        out.append(Evidence("content", "content.subject_reference",
                            f"a reference or order number in the subject or sender name: {ref.group(0)[:30]!r}"))
    if emoji := _EMOJI.findall(m.subject):
        out.append(Evidence("content", "content.subject_emoji", f"subject decorated with pictographs: {''.join(emoji[:5])}"))
    if "!" in subject:
        out.append(Evidence("content", "content.subject_exclaim", f"exclamation mark in the subject: {subject[:80]!r}"))
    head = text[:5000].lower()
    if any(k in head for k in _GREETING_KEYS) and (greeting := _GREETING.search(head)):
        out.append(Evidence("content", "content.generic_greeting", f"impersonal greeting: {greeting.group(0)!r}"))
    money = _MONEY.findall(text)
    if len(money) >= 2:
        out.append(Evidence("content", "content.money", f"money amounts: {', '.join(sorted(set(money))[:4])}"))
    html_head = m.html[:300_000].lower()
    h = reference.headers(m)
    if m.html.strip() and not m.text.strip():
        out.append(Evidence("content", "content.html_only", "HTML body without a plain-text part"))
        visible = len(" ".join(text.split()[1:]))  # without the subject line
        images = len(_IMG.findall(html_head))
        if images and visible < 120:
            out.append(Evidence("content", "content.image_only", f"{images} image(s) and only {visible} characters of text"))
        if "list-unsubscribe" not in h:
            out.append(Evidence("content", "content.html_without_unsubscribe",
                                "HTML-only message without the List-Unsubscribe header legitimate bulk senders add"))
    if len(_TAGS_IN_TEXT.findall(m.text[:50_000])) >= 5:
        out.append(Evidence("content", "content.html_in_text", "HTML markup sent as plain text: a mass mailer's broken template"))
    if loud := min(filter(None, (p.search(html_head) for p in _LOUD)), key=lambda m: m.start(), default=None):
        out.append(Evidence("content", "content.loud_html", f"oversized text in the HTML: {loud.group(0)[:40]!r}"))
    if _HIDDEN.search(html_head):
        out.append(Evidence("content", "content.hidden_text", "text hidden with a zero or one-pixel font"))
    if any(v.strip().startswith("1") for v in h.get("x-priority", ())) or \
            any("high" in v.lower() for v in h.get("x-msmail-priority", ())):
        out.append(Evidence("content", "content.high_priority", "marked high priority (X-Priority), as mass mailers do to stand out"))
    in_subject = phrase_hits(m.subject)
    subject_hits = sorted({p for theme in _SUBJECT_THEMES for p in in_subject.get(theme, ())})
    if _ADV.search(m.subject):
        subject_hits.insert(0, "ADV label")
    if subject_hits:
        out.append(Evidence("content", "content.spam_subject", f"sales or prize wording in the subject: {', '.join(subject_hits[:4])}"))
    bulk = [name for name in ("list-unsubscribe", "list-id", "precedence", "x-campaign", "x-mailer-recptid", "feedback-id") if name in h]
    if any(v.lower() in ("bulk", "list", "junk") for v in h.get("precedence", ())) or len(bulk) >= 2:
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
_MARK_CLASS = (r"[\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0711\u0730-\u074a"
               r"\u07a6-\u07b0\u0900-\u0903\u093a-\u094f\u20d0-\u20ff]")
# A cheap scan first (most text has no marked Latin letter): the mark, the rarer of the two
# characters, comes first so the engine skips to it; a lookbehind checks the letter before it.
_MARK = re.compile(f"{_MARK_CLASS}(?<=[A-Za-z].)")
_MARKED = re.compile(f"\\w*[A-Za-z]{_MARK_CLASS}+\\w*")
_GREEK_OR_CYRILLIC = re.compile("[\u0370-\u052f]")


def _obfuscation(text: str, *, invisible: bool = True) -> str | None:
    """Words written with letters of two scripts (Latin with Cyrillic/Greek look-alikes), or
    letters split by invisible characters: tricks to slip past keyword filters."""
    if text.isascii():  # every trick below needs characters outside ASCII
        return None
    if invisible:
        for match in _INVISIBLE_IN_WORD.finditer(text):
            return f"invisible characters inside a word: {match.group(0).encode('unicode_escape').decode()[:60]}"
    if _MARK.search(text):
        for word in _MARKED.findall(text):
            marks = [c for c in word if unicodedata.category(c) == "Mn"]
            if any(not 0x300 <= ord(c) <= 0x36F for c in marks) or len(marks) > 2:
                return f"Latin word {word!r} sprinkled with combining marks from another script"
    if not _GREEK_OR_CYRILLIC.search(text):  # mixed-script words need a Greek or Cyrillic letter
        return None
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
