"""The heuristic checks on constructed dialogues: each fault is caught, in English, Korean,
Japanese and Chinese, and clean dialogues pass every check."""
from __future__ import annotations

import pytest

from dialogforge.workflows.persona.checks import (CheckThresholds, check_catchphrase, check_echo, check_shrinking,
                                                  check_structure, decide, run_checks)
from dialogforge.workflows.persona.text import char_count, dominant_script, jaccard, squash, units, word_count

import persona_samples as S


@pytest.mark.parametrize("lang", S.LANGS)
def test_clean_dialogue_passes_every_check(lang):
    checks = run_checks(S.clean(lang), expected_turns=4)
    assert set(checks) == {"structure", "catchphrase", "shrinking", "echo"}
    for name, r in checks.items():
        assert r["passed"], (lang, name, r["reason"])
    assert decide(checks) == (True, [])


@pytest.mark.parametrize("lang", S.LANGS)
def test_catchphrase_overuse_is_caught(lang):
    r = check_catchphrase(S.with_catchphrase(lang))
    assert not r["passed"], r
    assert "4 of 4 answers" in r["reason"]
    # the reported phrase is (part of) the catchphrase
    phrase = r["value"][0]["phrase"].replace(" ", "")
    squashed_cp = "".join(units(S.CATCHPHRASE[lang]))
    assert phrase in squashed_cp, (phrase, squashed_cp)
    others = run_checks(S.with_catchphrase(lang))
    assert others["echo"]["passed"] and others["shrinking"]["passed"]


@pytest.mark.parametrize("lang", S.LANGS)
def test_short_closing_tic_is_caught(lang):
    r = check_catchphrase(S.with_short_tic(lang))
    assert not r["passed"], r
    # caught as a repeated closing sentence (or, in Japanese, as a phrase with the preceding verb ending)
    assert squash(S.SHORT_TIC[lang]) in squash(r["value"][0]["phrase"])
    assert r["value"][0]["answers"] >= 3


@pytest.mark.parametrize("lang", S.LANGS)
def test_shrinking_answers_are_caught(lang):
    r = check_shrinking(S.shrinking(lang))
    assert not r["passed"], r
    assert r["value"]["mean_ratio"] < 0.4
    assert r["value"]["chars"][0] == char_count(S.CLEAN[lang][0][1])


@pytest.mark.parametrize("lang", S.LANGS)
def test_echoed_answer_is_caught(lang):
    r = check_echo(S.echoed_answer(lang))
    assert not r["passed"], r
    assert r["value"]["kind"] == "answer" and r["value"]["turn"] == 3


@pytest.mark.parametrize("lang", S.LANGS)
def test_repeated_question_is_caught(lang):
    r = check_echo(S.repeated_question(lang))
    assert not r["passed"], r
    assert (r["value"]["kind"], r["value"]["turn"], r["value"]["earlier"]) == ("question", 3, 1)


@pytest.mark.parametrize("lang", S.LANGS)
def test_user_parroting_the_answer_is_caught(lang):
    r = check_echo(S.parroting_user(lang))
    assert not r["passed"], r
    assert r["value"]["kind"] == "user_parrot" and r["value"]["turn"] == 3


def test_topic_words_repeated_in_questions_are_not_catchphrases():
    # every answer names the topic the user asked about: not a verbal tic
    topic = "the theory of general relativity"
    msgs = []
    for i, extra in enumerate(["time slows near heavy masses, as clocks on mountains show",
                               "light bends around stars, seen during the 1919 eclipse",
                               "the orbit of Mercury precesses a little every century",
                               "satellite clocks drift unless engineers correct them"]):
        msgs += [{"role": "user", "content": f"What does {topic} say, part {i}?"},
                 {"role": "assistant", "content": f"According to {topic}, {extra}."}]
    assert check_catchphrase(msgs)["passed"]


def test_thresholds_are_configurable():
    msgs = S.with_catchphrase("en")
    loose = CheckThresholds.model_validate({"catchphrase": {"max_answer_share": 1.0}})
    assert check_catchphrase(msgs, loose.catchphrase)["passed"]  # 4 of 4 is not "more than 100%"
    off = CheckThresholds.model_validate({"catchphrase": {"enabled": False}, "echo": {"enabled": False}})
    assert set(run_checks(msgs, off)) == {"structure", "shrinking"}
    # answers at 100%, 80%, 70%, 60% of the first: fine by default, too short for a strict threshold
    a = S.CLEAN["en"][0][1]
    mild = S.to_messages([(q, a[: int(len(a) * k)]) for (q, _), k in zip(S.CLEAN["en"], (1, 0.8, 0.7, 0.6))])
    assert check_shrinking(mild)["passed"]
    strict = CheckThresholds.model_validate({"shrinking": {"min_mean_ratio": 0.8}})
    assert not check_shrinking(mild, strict.shrinking)["passed"]


def test_structure_check_names_the_problem():
    assert not check_structure([])["passed"]
    bad = [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]
    assert "message 2" in check_structure(bad)["reason"]
    empty = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]
    assert "empty" in check_structure(empty)["reason"]
    open_end = S.clean("en")[:-1]
    assert "unanswered" in check_structure(open_end)["reason"]
    assert "expected 5" in check_structure(S.clean("en"), expected_turns=5)["reason"]


def test_units_and_words_do_not_rely_on_spaces():
    assert units("光合作用") == ["光", "合", "作", "用"]
    assert word_count("地震が起きる") == 6
    assert word_count("Hello, wide world!") == 3
    assert word_count("무지개는 왜 생기나요?") == 3
    assert dominant_script([S.CLEAN["ja"][0][1]]) == "dense"
    assert dominant_script([S.CLEAN["ko"][0][1]]) == "hangul"
    assert dominant_script([S.CLEAN["en"][0][1]]) == "spaced"
    # the same sentence with and without spaces is the same text to the similarity measure
    assert jaccard("绿茶 和 红茶", "绿茶和红茶") == 1.0
    assert jaccard("완전히 다른 문장입니다", "무지개는 빛의 굴절") < 0.1


def test_advisory_checks_are_recorded_but_do_not_filter():
    checks = run_checks(S.with_catchphrase("ko"))
    assert decide(checks) == (False, ["catchphrase"])
    assert decide(checks, ["catchphrase"]) == (True, [])
    assert not checks["catchphrase"]["passed"]  # still recorded as failed


def test_a_follow_up_that_quotes_the_answer_is_not_parroting():
    msgs = S.clean("en")
    msgs[4] = {"role": "user", "content": "You mentioned Mount St. Helens in 1980; why did the side of the mountain blow out?"}
    assert check_echo(msgs)["passed"]


@pytest.mark.parametrize("lang", S.LANGS)
def test_an_answer_that_only_repeats_its_question_is_caught(lang):
    msgs = S.clean(lang)
    q = msgs[4]["content"]
    msgs[5] = {"role": "assistant", "content": q + " " + q[: len(q) // 8]} if char_count(q) >= 30 else msgs[5]
    if char_count(q) < 30:  # too short to tell: a one-line question may be answered by a one-line echo of it
        msgs[4] = {"role": "user", "content": q * 3}
        msgs[5] = {"role": "assistant", "content": q * 3}
    r = check_echo(msgs)
    assert not r["passed"] and r["value"]["kind"] == "answer_parrot" and r["value"]["turn"] == 3, r
    msgs[5] = {"role": "assistant", "content": q + " " + S.clean(lang)[5]["content"]}  # restated, then answered
    assert check_echo(msgs)["passed"], check_echo(msgs)
