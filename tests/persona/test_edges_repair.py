"""Short openers/closers, a persona's own prefix/suffix out of turn, the median shrink rule, --repair."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.workflows.persona.checks import (CatchphraseThresholds, check_catchphrase, check_shrinking,
                                                  run_checks)
from dialogforge.workflows.persona.config import PersonaDef
from dialogforge.workflows.persona.text import squash

import persona_samples as S

OPENERS = [("en", "The answer is:"), ("en", "Honestly,"), ("en", "Well, you see,"), ("ko", "물론이죠!"),
           ("zh", "好问题！"), ("ja", "なるほど、")]


def _opened(lang: str, opener: str) -> list[dict]:
    return S.to_messages([(q, f"{opener} {a}") for q, a in S.CLEAN[lang]])


@pytest.mark.parametrize("lang,opener", OPENERS)
def test_short_recurring_openers_are_catchphrases(lang: str, opener: str):
    r = check_catchphrase(_opened(lang, opener))
    assert not r["passed"], r
    assert squash(r["value"][0]["phrase"]) == squash(opener) and r["value"][0]["position"] == "opening"


def test_short_recurring_closer_is_a_catchphrase():
    msgs = S.to_messages([(q, f"{a} Anything else, just ask!") for q, a in S.CLEAN["en"]])
    r = check_catchphrase(msgs)
    assert not r["passed"] and r["value"][0]["position"] == "closing"


def test_plain_acknowledgements_are_allowed_and_configurable():
    msgs = _opened("ko", "네,")
    assert check_catchphrase(msgs)["passed"]
    assert not check_catchphrase(msgs, CatchphraseThresholds(allow=[]))["passed"]
    assert check_catchphrase(_opened("en", "Honestly,"), CatchphraseThresholds(allow=["honestly"]))["passed"]


@pytest.mark.parametrize("lang", S.LANGS)
def test_fault_free_control_stays_unflagged(lang: str):
    checks = run_checks(S.clean(lang), expected_turns=4)
    assert all(r["passed"] for r in checks.values()), checks


def test_an_opener_in_only_some_answers_passes():
    turns = S.CLEAN["en"]
    msgs = S.to_messages([(q, f"Honestly, {a}" if i < 2 else a) for i, (q, a) in enumerate(turns)])
    assert check_catchphrase(msgs)["passed"]  # 2 of 4 is not more than half


def _persona(**kw) -> PersonaDef:
    return PersonaDef(name="p", role_name="P", description="d", **kw)


def test_persona_prefix_used_past_the_first_answer():
    turns = S.CLEAN["en"]
    p = _persona(answer_prefixes=["Ahoy there, friend of the sea"])
    first_only = S.to_messages([(q, f"Ahoy there, friend of the sea. {a}" if i == 0 else a)
                                for i, (q, a) in enumerate(turns)])
    assert check_catchphrase(first_only, persona=p)["passed"]
    leaked = S.to_messages([(q, f"Ahoy there, friend of the sea. {a}" if i in (0, 2) else a)
                            for i, (q, a) in enumerate(turns)])
    r = check_catchphrase(leaked, persona=p)
    assert not r["passed"] and r["value"][0]["turns"] == [3]


def test_persona_suffix_outside_its_turns():
    turns = S.CLEAN["en"]
    p = _persona(answer_suffixes=["Fair winds to you"], suffix_turns="last")
    last = S.to_messages([(q, f"{a} Fair winds to you." if i == 3 else a) for i, (q, a) in enumerate(turns)])
    assert check_catchphrase(last, persona=p)["passed"]
    early = S.to_messages([(q, f"{a} Fair winds to you." if i in (1, 3) else a) for i, (q, a) in enumerate(turns)])
    r = check_catchphrase(early, persona=p)
    assert not r["passed"] and r["value"][0]["position"] == "closing" and r["value"][0]["turns"] == [2]


def test_shrinking_against_the_median_of_earlier_answers():
    lengths = [245, 403, 20, 20, 43]
    msgs = S.to_messages([(f"question {i}?", "가" * n) for i, n in enumerate(lengths)])
    r = check_shrinking(msgs)
    assert not r["passed"] and r["value"]["turn"] == 3 and "median" in r["reason"]
    steady = S.to_messages([(f"question {i}?", "가" * n) for i, n in enumerate([245, 403, 90, 120, 200])])
    assert check_shrinking(steady)["passed"]


def test_check_repair_writes_repaired_dialogues_apart(tmp_path):
    closer = "이 정도면 충분히 도움이 되셨을 거예요!"
    tic = S.to_messages([(q, f"{a} {closer}") for q, a in S.CLEAN["ko"]])
    opened = _opened("en", "The answer is:")
    rows = [{"id": "closer", "messages": tic}, {"id": "opener", "messages": opened},
            {"id": "clean", "messages": S.clean("zh")}]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "checked.jsonl"
    res = CliRunner().invoke(app, ["persona", "check", str(src), "-o", str(out), "--repair", "-q"])
    assert res.exit_code == 0, res.output
    checked = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert not checked["closer"]["passed"] and not checked["opener"]["passed"] and checked["clean"]["passed"]
    assert checked["closer"]["messages"] == tic  # the untouched originals stay as they were
    repaired = {r["id"]: r for r in map(json.loads, (tmp_path / "checked.repaired.jsonl").read_text().splitlines())}
    assert set(repaired) == {"closer", "opener"}
    for rid, rec in repaired.items():
        assert rec["passed"], rec["checks"]
        answers = [m["content"] for m in rec["messages"] if m["role"] == "assistant"]
        assert [c["turn"] for c in rec["repair"]["changes"]] == [2, 3, 4]
    ko = [m["content"] for m in repaired["closer"]["messages"] if m["role"] == "assistant"]
    assert ko[0].endswith(closer) and not any(closer in a for a in ko[1:])
    en = [m["content"] for m in repaired["opener"]["messages"] if m["role"] == "assistant"]
    assert en[0].startswith("The answer is:") and en[1] == S.CLEAN["en"][1][1]
    assert "repaired 2 dialogues" in " ".join(res.output.split())
