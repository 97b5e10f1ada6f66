"""Short set phrases at the edges of answers: openers, closers and a persona's own prefix/suffix.

An opener is the text of an answer up to a clause punctuation mark within its first
``max_chars`` characters ("The answer is:", "Honestly,", "Well, you see,", "물론이죠!");
a closer is the text after a clause punctuation mark within its last ``max_chars``
characters. Every such cut counts, so "Well," and "Well, you see," are both candidates;
the longest one that recurs is reported. Comparison ignores case, spaces and punctuation.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable

from .text import squash

_CLAUSE = re.compile(r"[,.!?:;…、。！？：；，]+")


def openers(text: str, max_chars: int = 40) -> list[str]:
    """Every leading piece of `text` that ends at clause punctuation within `max_chars` characters."""
    t = text.lstrip()
    return [t[: m.end()] for m in _CLAUSE.finditer(t) if m.end() <= max_chars and squash(t[: m.start()])]


def closers(text: str, max_chars: int = 40) -> list[str]:
    """Every trailing piece of `text` that starts after clause punctuation within its last `max_chars`."""
    t = text.rstrip()
    core = t.rstrip(",.!?:;…、。！？：；， ")  # the final mark ends the closer, it does not start one
    out = []
    for m in _CLAUSE.finditer(core):
        piece = t[m.end():].strip()
        if piece and len(piece) <= max_chars and squash(piece):
            out.append(piece)
    return out


def _key(phrase: str) -> str:
    return squash(phrase)


def recurring_edges(answers: list[str], need: int, *, allow: Iterable[str] = (), max_chars: int = 40) -> list[dict]:
    """Openers/closers found in at least `need` answers (allow-listed ones aside), longest first."""
    allowed = {_key(a) for a in allow}
    counts: Counter[tuple[str, str]] = Counter()
    shown: dict[tuple[str, str], str] = {}
    for a in answers:
        keys = set()
        for pos, pieces in (("opening", openers(a, max_chars)), ("closing", closers(a, max_chars))):
            for p in pieces:
                k = (pos, _key(p))
                if k[1] and k[1] not in allowed:
                    keys.add(k)
                    shown.setdefault(k, p)
        counts.update(keys)
    hits = [{"phrase": shown[k], "position": k[0], "answers": c} for k, c in counts.items() if c >= need]
    return sorted(hits, key=lambda h: (-h["answers"], -len(_key(h["phrase"]))))


def persona_leaks(answers: list[str], prefixes: Iterable[str], suffixes: Iterable[str],
                  suffix_turn: Any) -> list[dict]:
    """A persona's configured prefix used after the first answer, or its suffix in a turn it was not
    configured for (`suffix_turn(turn, total)` says where it belongs)."""
    out: list[dict] = []
    total = len(answers)
    for phrase in prefixes:
        k = _key(phrase)
        turns = [i + 1 for i, a in enumerate(answers) if i > 0 and k and squash(a).startswith(k)]
        if turns:
            out.append({"phrase": phrase, "position": "opening", "turns": turns, "answers": len(turns)})
    for phrase in suffixes:
        k = _key(phrase)
        turns = [i + 1 for i, a in enumerate(answers)
                 if k and squash(a).endswith(k) and not suffix_turn(i + 1, total)]
        if turns:
            out.append({"phrase": phrase, "position": "closing", "turns": turns, "answers": len(turns)})
    return out


def strip_edge(text: str, phrase: str, position: str) -> str | None:
    """`text` without `phrase` at its start (opening) or end (closing), or None when it is not there
    or nothing would be left."""
    k = _key(phrase)
    if not k:
        return None
    t = text.strip()
    rest: str | None = None
    if position == "opening":
        cut = next((len(p) for p in openers(t, max(len(phrase) + 8, 40)) if _key(p) == k), None)
        if cut is None and t.lower().startswith(phrase.strip().lower()):
            cut = len(phrase.strip())
        if cut is not None:
            rest = _capitalise(t[cut:].lstrip(",.!?:;…、。！？：；， \n"))
    else:
        cut = next((len(p) for p in closers(t, max(len(phrase) + 8, 40)) if _key(p) == k), None)
        if cut is None and t.lower().endswith(phrase.strip().lower()):
            cut = len(phrase.strip())
        if cut is not None:
            rest = t[: len(t) - cut].rstrip().rstrip(",;:、，：").rstrip()
    return rest if rest is not None and squash(rest) else None


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def edge_position(phrase: str, answers: list[str]) -> str | None:
    """"opening" / "closing" when every answer that holds `phrase` holds it at that edge."""
    k = _key(phrase)
    having = [squash(a) for a in answers if k and k in squash(a)]
    if not having:
        return None
    if all(a.startswith(k) for a in having):
        return "opening"
    if all(a.endswith(k) for a in having):
        return "closing"
    return None
