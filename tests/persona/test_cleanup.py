"""Clean-up of generated answers and questions."""
from __future__ import annotations

from dialogforge.workflows.persona.cleanup import clean_answer, clean_question
from dialogforge.workflows.persona.dialogue import force_prefix, force_suffix


def test_echoed_question_is_removed():
    text, fixes = clean_answer("Why is the sky blue?\n\nSunlight scatters off air molecules, blue the most.",
                               question="Why is the sky blue?")
    assert text == "Sunlight scatters off air molecules, blue the most."
    assert fixes == ["echoed_question"]


def test_echo_with_label_and_korean():
    q = "무지개는 왜 생기나요?"
    text, fixes = clean_answer("질문: 무지개는 왜 생기나요?\n빛이 물방울에서 꺾이기 때문이에요.", question=q)
    assert text == "빛이 물방울에서 꺾이기 때문이에요."
    assert "echoed_question" in fixes


def test_answer_that_only_mentions_the_question_topic_is_kept():
    q = "Why is the sky blue?"
    a = "The sky is blue because air scatters short wavelengths more strongly."
    assert clean_answer(a, question=q) == (a, [])


def test_speaker_label_quotes_headings_and_empty_paragraphs():
    raw = 'Orbit: "## Blue skies\n\nAir scatters blue light.\n\n\n\n   \n\nThat is Rayleigh scattering."'
    text, fixes = clean_answer(raw, names=["Orbit"])
    assert text == "Air scatters blue light.\n\nThat is Rayleigh scattering."
    assert set(fixes) == {"speaker_label", "headings", "quotes", "empty_paragraphs"}


def test_inner_quotes_survive():
    a = 'He called it "the blue hour" and "the golden hour".'
    assert clean_answer(a)[0] == a
    assert clean_answer("「東京は日本の首都です。」")[0] == "東京は日本の首都です。"
    assert clean_answer('"Unbalanced start of a sentence.')[0] == "Unbalanced start of a sentence."


def test_heading_only_answer_keeps_its_words():
    assert clean_answer("# Yes, it is safe")[0] == "Yes, it is safe"


def test_empty_answer_stays_empty():
    assert clean_answer(None)[0] == ""
    assert clean_answer('  ""  ')[0] == ""


def test_question_cleanup_keeps_the_first_paragraph():
    text, fixes = clean_question('User: "How hot is lava?"\n\nLava is around 1000 degrees.')
    assert text == "How hot is lava?"
    assert set(fixes) == {"speaker_label", "extra_paragraphs", "quotes"}
    assert clean_question("질문: 용암은 얼마나 뜨거워요?")[0] == "용암은 얼마나 뜨거워요?"


def test_forced_prefix_and_suffix_are_added_once():
    assert force_prefix("Lava is hot.", "Oh dear.") == "Oh dear. Lava is hot."
    assert force_prefix("Oh dear! Lava is hot.", "Oh dear.") == "Oh dear! Lava is hot."
    assert force_suffix("Lava is hot.", "Sigh...") == "Lava is hot. Sigh..."
    assert force_suffix("Lava is hot. Sigh.", "Sigh...") == "Lava is hot. Sigh."
    assert force_prefix("x", None) == "x"
