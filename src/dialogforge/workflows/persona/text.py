"""Script-aware text measures used by clean-up, statistics and the quality checks.

Nothing here splits on spaces alone: Chinese and Japanese do not put spaces
between words, and Korean spacing is inconsistent in real data.  The rules:

* ``dense`` characters are Han ideographs, Hiragana and Katakana.  Each dense
  character counts as one *word* and one *unit* of a phrase.
* Everything else (Latin, Hangul, Cyrillic, digits, ...) is split on whitespace;
  each token (with surrounding punctuation removed) is one word / one unit.
* Similarity uses character n-grams of the text with whitespace and
  punctuation removed (3-grams; 2-grams for Korean, Chinese and Japanese,
  where one character is a syllable or a word), so no language needs a tokenizer.
"""
from __future__ import annotations

import re
import unicodedata

_DENSE_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x2FA1F),  # CJK extensions B..F, compatibility supplement
)
_HANGUL_RANGES = ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F))

_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|(?<=[。！？])|\n+")
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")


def is_dense(ch: str) -> bool:
    """True for characters of scripts written without spaces between words."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _DENSE_RANGES)


def is_hangul(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _HANGUL_RANGES)


def _is_wordchar(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in ("L", "N") or cat == "Mn" or cat == "Mc"


def units(text: str) -> list[str]:
    """Lower-cased word units: whitespace tokens, except that every dense character is its own unit."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append("".join(buf))
            buf.clear()

    for ch in unicodedata.normalize("NFKC", text).lower():
        if is_dense(ch):
            flush()
            out.append(ch)
        elif _is_wordchar(ch) or ch in "'’-" and buf:
            buf.append(ch)
        else:
            flush()
    flush()
    return [u.strip("'’-") for u in out if u.strip("'’-")]


def word_count(text: str) -> int:
    """Words: whitespace tokens, with each Han/Kana character counted as one word."""
    return len(units(text))


def char_count(text: str) -> int:
    """Characters that are not whitespace."""
    return sum(1 for ch in text if not ch.isspace())


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_SPLIT.split(text or "") if p.strip()]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text or "") if s and s.strip()]


def dominant_script(texts: list[str]) -> str:
    """'dense' (Chinese/Japanese), 'hangul' or 'spaced' (Latin and the rest) by letter share."""
    dense = hangul = other = 0
    for t in texts:
        for ch in t:
            if is_dense(ch):
                dense += 1
            elif is_hangul(ch):
                hangul += 1
            elif ch.isalpha():
                other += 1
    total = dense + hangul + other
    if total == 0:
        return "spaced"
    if dense / total >= 0.3:
        return "dense"
    if hangul / total >= 0.3:
        return "hangul"
    return "spaced"


def squash(text: str) -> str:
    """Lower-cased letters and digits only (no whitespace, no punctuation), NFKC-normalised."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text or "").lower() if _is_wordchar(ch))


def char_ngrams(text: str, n: int = 3) -> set[str]:
    s = squash(text)
    if not s:
        return set()
    if len(s) <= n:
        return {s}
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def ngram_size(a: str, b: str) -> int:
    """3 for Latin-like text; 2 for Korean, Chinese and Japanese, whose characters carry a syllable or a word."""
    return 2 if dominant_script([a, b]) in ("dense", "hangul") else 3


def jaccard(a: str, b: str, n: int | None = None) -> float:
    n = n or ngram_size(a, b)
    ga, gb = char_ngrams(a, n), char_ngrams(b, n)
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / len(ga | gb)


def containment(a: str, b: str, n: int | None = None, *, min_grams: int = 1) -> float:
    """Share of the smaller text's n-grams found in the other text (0 when it has fewer than ``min_grams``)."""
    n = n or ngram_size(a, b)
    ga, gb = char_ngrams(a, n), char_ngrams(b, n)
    if min(len(ga), len(gb)) < min_grams:
        return 0.0
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / min(len(ga), len(gb))
