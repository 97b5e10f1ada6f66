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

_D = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f"
_DENSE_RE = re.compile(f"[{_D}]")  # Hiragana, Katakana, CJK ideographs (+ extensions), half-width Katakana
_HANGUL_RE = re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_LETTER_RE = re.compile(r"[^\W\d_]")
_UNIT_RE = re.compile(f"[{_D}]|[^\\W_{_D}]+(?:['’-][^\\W_{_D}]+)*")
_NONWORD_RE = re.compile(r"[\W_]+")

_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|(?<=[。！？])|\n+")
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n")


def is_dense(ch: str) -> bool:
    """True for characters of scripts written without spaces between words."""
    return _DENSE_RE.match(ch) is not None


def is_hangul(ch: str) -> bool:
    return _HANGUL_RE.match(ch) is not None


def units(text: str) -> list[str]:
    """Lower-cased word units: letter/digit runs, except that every dense character is its own unit."""
    return _UNIT_RE.findall(unicodedata.normalize("NFKC", text or "").lower())


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
    joined = "\n".join(texts)
    total = len(_LETTER_RE.findall(joined))
    if total == 0:
        return "spaced"
    if len(_DENSE_RE.findall(joined)) / total >= 0.3:
        return "dense"
    if len(_HANGUL_RE.findall(joined)) / total >= 0.3:
        return "hangul"
    return "spaced"


def squash(text: str) -> str:
    """Lower-cased letters and digits only (no whitespace, no punctuation), NFKC-normalised."""
    return _NONWORD_RE.sub("", unicodedata.normalize("NFKC", text or "").lower())


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
