"""Heuristic quality checks for one dialogue.

Every check returns ``{"passed": bool, "reason": str, "value": ...}``.  They work
on messages in role/content form and are script-aware (see ``text.py``): the same
thresholds apply to English, Korean, Japanese and Chinese.

* ``structure``   user/assistant turns alternate, nothing is empty, the dialogue ends with an answer.
* ``catchphrase`` a phrase of several words (Han/Kana: several characters) recurs in too many answers,
                  or so does an opening or closing sentence of any length (a short verbal tic), or a
                  short opener/closer up to clause punctuation ("The answer is:", "물론이죠!"; an
                  allow-list keeps plain acknowledgements such as "네," or "Yes,"), or the persona's
                  configured prefix/suffix appears past the turns it was configured for.
                  Stretches an answer shares with a user question are topic words, not catchphrases.
* ``shrinking``   later answers are much shorter than the first, or an answer after the second falls
                  below a fraction of the median of the answers before it (length in non-space characters).
* ``echo``        an answer too similar to the previous answer, a question too similar to an earlier one,
                  a question that copies the answer just given, or an answer that only repeats its question
                  (character n-gram Jaccard / containment of the text without spaces and punctuation).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Sequence

from pydantic import Field

from ..kit import Strict

from .edges import edge_position, persona_leaks, recurring_edges
from .text import char_count, containment, dominant_script, jaccard, sentences, squash, units

ACKNOWLEDGEMENTS = ["네", "예", "아니요", "아뇨", "Yes", "No", "Sure", "Okay", "OK", "是的", "是", "不是", "对",
                    "好的", "はい", "いいえ", "ええ"]


class CatchphraseThresholds(Strict):
    enabled: bool = True
    max_answer_share: float = Field(0.5, ge=0, le=1, description="fail when a phrase is in more than this share of answers")
    min_answers: int = Field(3, ge=2, description="... and in at least this many answers")
    ngram_spaced: int = Field(4, ge=2, description="phrase length in words for Latin and similar scripts")
    ngram_hangul: int = Field(3, ge=2, description="phrase length in space-separated Korean words")
    ngram_dense: int = Field(6, ge=2, description="phrase length in characters for Chinese/Japanese")
    edge_min_chars_spaced: int = Field(8, ge=1, description="a repeated opening/closing sentence counts from this "
                                                            "many letters (Latin and similar scripts)")
    edge_min_chars_cjk: int = Field(3, ge=1, description="... and from this many characters in Korean/Chinese/Japanese")
    edge_max_chars: int = Field(40, ge=1, description="an opener/closer is the text up to (from) clause "
                                                      "punctuation within this many characters of the edge")
    allow: list[str] = Field(default_factory=lambda: list(ACKNOWLEDGEMENTS),
                             description="openers/closers that may recur (plain acknowledgements)")


class ShrinkThresholds(Strict):
    enabled: bool = True
    min_mean_ratio: float = Field(0.4, ge=0, le=1, description="fail when mean(later answers) < ratio * first answer")
    min_last_ratio: float = Field(0.5, ge=0, le=1, description="fail when answers shrink every turn and the last < ratio * first")
    min_first_chars: int = Field(40, ge=0, description="skip the check when the first answer is shorter than this")
    min_median_ratio: float = Field(0.2, ge=0, le=1, description="fail when an answer after the second is below "
                                                                 "this fraction of the median of the answers before it")


class EchoThresholds(Strict):
    enabled: bool = True
    answer_jaccard: float = Field(0.5, ge=0, le=1)
    answer_containment: float = Field(0.8, ge=0, le=1)
    question_jaccard: float = Field(0.6, ge=0, le=1)
    question_containment: float = Field(0.85, ge=0, le=1, description="the shorter question inside the other one")
    question_min_grams: int = Field(8, ge=1, description="containment only for questions with this many n-grams")
    parrot_containment: float = Field(0.9, ge=0, le=1, description="a question made of the previous answer's text")
    parrot_min_chars: int = Field(30, ge=1, description="... when the question has at least this many characters")
    min_chars: int = Field(12, ge=1, description="containment only applies when both texts have this many characters")


class CheckThresholds(Strict):
    catchphrase: CatchphraseThresholds = CatchphraseThresholds()
    shrinking: ShrinkThresholds = ShrinkThresholds()
    echo: EchoThresholds = EchoThresholds()


def _result(passed: bool, reason: str, value: Any = None) -> dict:
    return {"passed": passed, "reason": reason, "value": value}


def split_turns(messages: list[dict]) -> tuple[list[str], list[str]]:
    """(user questions, assistant answers) in order, system messages ignored."""
    qs = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    ans = [str(m.get("content") or "") for m in messages if m.get("role") == "assistant"]
    return qs, ans


def check_structure(messages: list[dict], expected_turns: int | None = None) -> dict:
    convo = [m for m in messages if m.get("role") != "system"]
    if not convo:
        return _result(False, "no user or assistant messages")
    for i, m in enumerate(convo):
        want = "user" if i % 2 == 0 else "assistant"
        if m.get("role") != want:
            return _result(False, f"message {i + 1} has role {m.get('role')!r}, expected {want!r}")
        if not str(m.get("content") or "").strip():
            return _result(False, f"message {i + 1} ({want}) is empty")
    if convo[-1].get("role") != "assistant":
        return _result(False, "dialogue ends with an unanswered user message")
    turns = len(convo) // 2
    if expected_turns is not None and turns != expected_turns:
        return _result(False, f"{turns} turns, expected {expected_turns}", turns)
    return _result(True, f"{turns} complete turns", turns)


def _ngrams(seq: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def _free_ngrams(seq: list[str], n: int, topic: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The n-grams of ``seq`` that do not touch a stretch it shares with a user question (topic words)."""
    covered = [False] * len(seq)
    for i in range(len(seq) - n + 1):
        if tuple(seq[i : i + n]) in topic:
            covered[i : i + n] = [True] * n
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1) if not any(covered[i : i + n])}


def _spans(seq: list[str], flagged: set[tuple[str, ...]], n: int) -> list[tuple[str, ...]]:
    """Maximal runs of ``seq`` covered by flagged n-grams."""
    covered = [False] * len(seq)
    for i in range(len(seq) - n + 1):
        if tuple(seq[i : i + n]) in flagged:
            for j in range(i, i + n):
                covered[j] = True
    out, start = [], None
    for i, c in enumerate(covered + [False]):
        if c and start is None:
            start = i
        elif not c and start is not None:
            out.append(tuple(seq[start:i]))
            start = None
    return out


def _edge_repeats(answers: list[str], need: int, min_chars: int) -> list[dict]:
    """Opening or closing sentences (of any length from ``min_chars``) shared by ``need`` or more answers."""
    counts: Counter[tuple[str, str]] = Counter()
    shown: dict[tuple[str, str], str] = {}
    for a in answers:
        sents = sentences(a)
        keys = set()
        for pos, sent in (("opening", sents[0]), ("closing", sents[-1])) if sents else ():
            k = (pos, squash(sent))
            if len(k[1]) >= min_chars:
                keys.add(k)
                shown.setdefault(k, sent)
        counts.update(keys)
    return [{"phrase": shown[k], "answers": c, "position": k[0]} for k, c in counts.most_common() if c >= need]


def check_catchphrase(messages: list[dict], t: CatchphraseThresholds = CatchphraseThresholds(),
                      persona: Any = None) -> dict:
    """`persona`: its PersonaDef (answer_prefixes, answer_suffixes, suffix_at), when known."""
    qs, answers = split_turns(messages)
    if persona is not None:
        leaks = persona_leaks(answers, persona.answer_prefixes, persona.answer_suffixes, persona.suffix_at)
        if leaks:
            lk = leaks[0]
            return _result(False, f"the persona's {lk['position']} phrase {lk['phrase']!r} is used past the turns it "
                                  f"was configured for (answers {', '.join(map(str, lk['turns']))})", leaks)
    if len(answers) < t.min_answers:
        return _result(True, f"only {len(answers)} answers (check needs {t.min_answers})", [])
    script = dominant_script(answers)
    n = {"dense": t.ngram_dense, "hangul": t.ngram_hangul}.get(script, t.ngram_spaced)
    joiner = "" if script == "dense" else " "
    topic: set[tuple[str, ...]] = set()
    for q in qs:
        topic |= _ngrams(units(q), n)
    seqs = [units(a) for a in answers]
    counts: Counter[tuple[str, ...]] = Counter()
    for seq in seqs:
        counts.update(_free_ngrams(seq, n, topic))
    need = max(t.min_answers, math.floor(t.max_answer_share * len(answers)) + 1)
    flagged = {g for g, c in counts.items() if c >= need}
    if not flagged:
        edges = _edge_repeats(answers, need, t.edge_min_chars_spaced if script == "spaced" else t.edge_min_chars_cjk)
        if edges:
            e = edges[0]
            return _result(False, f"{e['position']} sentence {e['phrase']!r} recurs in {e['answers']} of "
                                  f"{len(answers)} answers (limit {need - 1})", edges[:3])
        short = recurring_edges(answers, need, allow=t.allow, max_chars=t.edge_max_chars)
        if short:
            e = short[0]
            return _result(False, f"{e['position']} phrase {e['phrase']!r} recurs in {e['answers']} of "
                                  f"{len(answers)} answers (limit {need - 1})", short[:3])
        top = counts.most_common(1)
        most = top[0][1] if top else 0
        return _result(True, f"no {n}-unit phrase in more than {need - 1} of {len(answers)} answers (max {most})", [])
    phrase_answers: Counter[tuple[str, ...]] = Counter()
    for seq in seqs:
        phrase_answers.update(set(_spans(seq, flagged, n)))
    # A span can differ slightly between answers; report the flagged n-grams' best spans.
    phrases = [
        {"phrase": joiner.join(p), "answers": c}
        for p, c in sorted(phrase_answers.items(), key=lambda kv: (-kv[1], -len(kv[0])))
        if c >= 2
    ][:3]
    if not phrases:
        g, c = max(((g, counts[g]) for g in flagged), key=lambda kv: kv[1])
        phrases = [{"phrase": joiner.join(g), "answers": c}]
    for ph in phrases:
        if pos := edge_position(str(ph["phrase"]), answers):
            ph["position"] = pos  # a set opening/closing phrase: `persona check --repair` can take it off
    worst = max(counts[g] for g in flagged)
    return _result(
        False,
        f"phrase {phrases[0]['phrase']!r} recurs in {worst} of {len(answers)} answers (limit {need - 1})",
        phrases,
    )


def check_shrinking(messages: list[dict], t: ShrinkThresholds = ShrinkThresholds()) -> dict:
    _, answers = split_turns(messages)
    lengths = [char_count(a) for a in answers]
    if len(lengths) < 2:
        return _result(True, "fewer than two answers", lengths)
    first = lengths[0]
    later = lengths[1:]
    mean_ratio = sum(later) / len(later) / first if first else 1.0
    last_ratio = lengths[-1] / first if first else 1.0
    value: dict[str, Any] = {"chars": lengths, "mean_ratio": round(mean_ratio, 3), "last_ratio": round(last_ratio, 3)}
    for i in range(2, len(lengths)):  # one long answer cannot hide a collapse: compare with the median
        before = sorted(lengths[:i])
        median = (before[(i - 1) // 2] + before[i // 2]) / 2
        if median >= t.min_first_chars and lengths[i] < t.min_median_ratio * median:
            return _result(False, f"answer {i + 1} has {lengths[i]} characters, below {t.min_median_ratio:.0%} of the "
                                  f"median ({median:g}) of the answers before it", {**value, "turn": i + 1})
    if first < t.min_first_chars:
        return _result(True, f"first answer has {first} characters (< {t.min_first_chars}); not checked", lengths)
    decreasing = len(lengths) >= 3 and all(b < a for a, b in zip(lengths, lengths[1:]))
    if mean_ratio < t.min_mean_ratio:
        return _result(False, f"later answers average {mean_ratio:.0%} of the first answer's length (min {t.min_mean_ratio:.0%})", value)
    if decreasing and last_ratio < t.min_last_ratio:
        return _result(False, f"answers shrink every turn; the last is {last_ratio:.0%} of the first (min {t.min_last_ratio:.0%})", value)
    return _result(True, f"later answers average {mean_ratio:.0%} of the first answer's length", value)


def question_similarity(earlier: str, new: str, t: EchoThresholds) -> tuple[float, float]:
    """(Jaccard, containment) of two questions, as the echo check measures them."""
    return jaccard(earlier, new), containment(earlier, new, min_grams=t.question_min_grams)


def repeats_a_question(new: str, earlier: list[str], t: EchoThresholds = EchoThresholds()) -> bool:
    """True when ``new`` would fail the echo check against one of the ``earlier`` questions."""
    for e in earlier:
        jac, con = question_similarity(e, new, t)
        if jac >= t.question_jaccard or con >= t.question_containment:
            return True
    return False


def parrots(question: str, previous_answer: str, t: EchoThresholds = EchoThresholds()) -> bool:
    """True when a user question mostly copies the answer just given (the simulator parroting the persona)."""
    if char_count(question) < t.parrot_min_chars:
        return False
    return containment(question, previous_answer) >= t.parrot_containment


def answer_parrots(answer: str, question: str, t: EchoThresholds = EchoThresholds()) -> bool:
    """True when an answer is little more than the question it answers, repeated."""
    n = char_count(answer)
    if n < t.parrot_min_chars or n > 1.25 * char_count(question):
        return False
    return containment(answer, question) >= t.parrot_containment


def check_echo(messages: list[dict], t: EchoThresholds = EchoThresholds()) -> dict:
    qs, answers = split_turns(messages)
    worst_a = 0.0
    for i in range(1, len(answers)):
        a, b = answers[i - 1], answers[i]
        jac = jaccard(a, b)
        worst_a = max(worst_a, jac)
        if jac >= t.answer_jaccard:
            return _result(False, f"answer {i + 1} repeats answer {i} (similarity {jac:.2f} >= {t.answer_jaccard})",
                           {"kind": "answer", "turn": i + 1, "jaccard": round(jac, 3)})
        if min(char_count(a), char_count(b)) >= t.min_chars:
            con = containment(a, b)
            if con >= t.answer_containment:
                return _result(False, f"answer {i + 1} contains answer {i} (containment {con:.2f} >= {t.answer_containment})",
                               {"kind": "answer", "turn": i + 1, "containment": round(con, 3)})
    worst_q = 0.0
    for i in range(1, len(qs)):
        for j in range(i):
            jac, con = question_similarity(qs[j], qs[i], t)
            worst_q = max(worst_q, jac)
            if jac >= t.question_jaccard:
                return _result(False, f"question {i + 1} repeats question {j + 1} (similarity {jac:.2f} >= {t.question_jaccard})",
                               {"kind": "question", "turn": i + 1, "earlier": j + 1, "jaccard": round(jac, 3)})
            if con >= t.question_containment:
                return _result(False, f"question {i + 1} restates question {j + 1} (containment {con:.2f} >= "
                               f"{t.question_containment})",
                               {"kind": "question", "turn": i + 1, "earlier": j + 1, "containment": round(con, 3)})
    for i in range(1, min(len(qs), len(answers) + 1)):
        q, prev = qs[i], answers[i - 1]
        if parrots(q, prev, t):
            return _result(False, f"question {i + 1} parrots answer {i}",
                           {"kind": "user_parrot", "turn": i + 1, "containment": round(containment(q, prev), 3)})
    for i in range(min(len(qs), len(answers))):
        if answer_parrots(answers[i], qs[i], t):
            return _result(False, f"answer {i + 1} repeats question {i + 1}",
                           {"kind": "answer_parrot", "turn": i + 1, "containment": round(containment(answers[i], qs[i]), 3)})
    return _result(True, f"max answer similarity {worst_a:.2f}, max question similarity {worst_q:.2f}",
                   {"answer_max": round(worst_a, 3), "question_max": round(worst_q, 3)})


def run_checks(messages: list[dict], t: CheckThresholds = CheckThresholds(), *, expected_turns: int | None = None,
               persona: Any = None) -> dict:
    """All heuristic checks, keyed by name (disabled checks are left out). `persona`: the dialogue's
    PersonaDef, when known (its configured prefix/suffix is checked)."""
    out = {"structure": check_structure(messages, expected_turns)}
    if t.catchphrase.enabled:
        out["catchphrase"] = check_catchphrase(messages, t.catchphrase, persona)
    if t.shrinking.enabled:
        out["shrinking"] = check_shrinking(messages, t.shrinking)
    if t.echo.enabled:
        out["echo"] = check_echo(messages, t.echo)
    return out


def decide(checks: dict, advisory: Sequence[str] = ()) -> tuple[bool, list[str]]:
    """Whether the dialogue goes to the filtered set, and the names of the checks that kept it out.

    ``advisory`` checks are recorded but do not filter."""
    reasons = [name for name, r in checks.items() if not r.get("passed") and name not in advisory]
    return not reasons, reasons
