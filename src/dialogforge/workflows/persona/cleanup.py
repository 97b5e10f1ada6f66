"""Clean-up of generated answers and questions.

Each function returns the cleaned text plus the list of fixes it applied, so a
record can show what was changed.  Clean-up never drops or merges turns: it
works on one message at a time, and a message that is empty after clean-up is
reported to the caller (which retries the call) instead of being removed.
"""
from __future__ import annotations

import re

from .text import containment, squash

_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "「": "」", "『": "』", "«": "»", "`": "`"}
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.*?)\s*#*\s*$")
_ANSWER_LABELS = (
    "assistant", "answer", "a", "response", "reply", "persona",
    "답변", "답", "대답", "回答", "答", "答え", "回答者",
)
_QUESTION_LABELS = (
    "user", "question", "q", "follow-up question", "follow up question", "next question", "human",
    "the next question", "my next question", "your next question", "rewritten question", "the rewritten question",
    "사용자", "질문", "유저", "用户", "问题", "質問", "ユーザー",
)


def _label_re(labels: tuple[str, ...] | list[str]) -> re.Pattern[str]:
    alts = "|".join(re.escape(x) for x in sorted(set(labels), key=len, reverse=True) if x)
    # "Answer:", "**Answer:**", "[Answer]", "Answer -", full-width colon
    return re.compile(
        rf"^\s*(?:\*\*|__)?\[?(?:{alts})\]?(?:\*\*|__)?\s*(?:[:：]|\s-\s)\s*(?:\*\*|__)?\s*", re.IGNORECASE
    )


def strip_label(text: str, labels: tuple[str, ...] | list[str]) -> tuple[str, bool]:
    new = _label_re(labels).sub("", text, count=1)
    return new, new != text


def strip_quotes(text: str) -> tuple[str, bool]:
    """Remove quotes wrapping the whole text, and a lone unmatched quote at either end."""
    t = text.strip()
    changed = False
    for _ in range(2):
        if len(t) >= 2 and t[0] in _QUOTE_PAIRS and t[-1] == _QUOTE_PAIRS[t[0]]:
            inner = t[1:-1]
            q, cq = t[0], _QUOTE_PAIRS[t[0]]
            balanced = (inner.count(q) % 2 == 0) if q == cq else inner.count(q) == inner.count(cq)
            if balanced:
                t, changed = inner.strip(), True
                continue
        break
    for q, cq in _QUOTE_PAIRS.items():
        if t.startswith(q) and t.count(q) + (t.count(cq) if cq != q else 0) == 1:
            t, changed = t[1:].lstrip(), True
        if t.endswith(cq) and t.count(cq) + (t.count(q) if cq != q else 0) == 1:
            t, changed = t[:-1].rstrip(), True
    return t, changed


def strip_headings(text: str) -> tuple[str, bool]:
    """Drop markdown heading lines; a heading that is the only content keeps its words."""
    lines = text.split("\n")
    kept = [ln for ln in lines if not _HEADING.match(ln)]
    if len(kept) == len(lines):
        return text, False
    if not "".join(kept).strip():
        kept = [_HEADING.match(ln).group(1) if _HEADING.match(ln) else ln for ln in lines]  # type: ignore[union-attr]
    return "\n".join(kept), True


def collapse_paragraphs(text: str) -> tuple[str, bool]:
    lines = [ln.rstrip() for ln in text.strip().split("\n")]
    out: list[str] = []
    for ln in lines:
        if not ln.strip():
            if out and out[-1] != "":
                out.append("")
            continue
        out.append(ln)
    new = "\n".join(out).strip()
    return new, new != text


def strip_echo(text: str, question: str | None, *, threshold: float = 0.9) -> tuple[str, bool]:
    """Remove the question when the answer starts by repeating it."""
    if not question or not squash(question):
        return text, False
    q = question.strip()
    t = text.lstrip()
    t2, _ = strip_label(t, _QUESTION_LABELS)
    if t2.lower().startswith(q.lower()) and len(t2) > len(q):
        rest = t2[len(q):].lstrip(" \t:-–—")
        if squash(rest):
            return rest.lstrip("\n"), True
    first, sep, rest = t2.partition("\n")
    if sep and squash(rest) and len(squash(first)) <= 2 * len(squash(q)) + 4 and containment(first, q) >= threshold:
        return rest.lstrip("\n"), True
    return text, False


def clean_answer(
    text: str | None, *, question: str | None = None, names: list[str] | tuple[str, ...] = ()
) -> tuple[str, list[str]]:
    """Clean a persona answer. ``names`` are the persona's own names, stripped when used as a speaker label."""
    fixes: list[str] = []
    t = (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    labels = tuple(_ANSWER_LABELS) + tuple(n for n in names if n)
    t, lab1 = strip_label(t, labels)
    t, ch = strip_echo(t, question)
    if ch:
        fixes.append("echoed_question")
    t, lab2 = strip_label(t, labels)
    if lab1 or lab2:
        fixes.append("speaker_label")
    t, q1 = strip_quotes(t)
    t, ch = strip_headings(t)
    if ch:
        fixes.append("headings")
    t, q2 = strip_quotes(t)
    if q1 or q2:
        fixes.append("quotes")
    t, ch = collapse_paragraphs(t)
    if ch and t:
        fixes.append("empty_paragraphs")
    return t, fixes


def clean_question(text: str | None) -> tuple[str, list[str]]:
    """Clean a simulated user question: labels, quotes, headings; keep only the first paragraph."""
    fixes: list[str] = []
    t = (text or "").replace("\r\n", "\n").strip()
    t, ch = strip_headings(t)
    if ch:
        fixes.append("headings")
    t, ch = strip_label(t.strip(), _QUESTION_LABELS)
    if ch:
        fixes.append("speaker_label")
    t, ch = collapse_paragraphs(t)
    parts = t.split("\n\n")
    if len(parts) > 1:
        t = parts[0]
        fixes.append("extra_paragraphs")
    t, ch = strip_quotes(t)
    if ch:
        fixes.append("quotes")
    return t.strip(), fixes
