"""LLaMA-Factory exports: exact layouts, dataset_info.json, and rows that break each rule."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogforge.formats import export, merge_dataset_info, validate
from dialogforge.formats.rules.llamafactory import LFRules, LFSpec
from formats_samples import agent_sample, persona_dialogue, preference_record, read_jsonl, write_jsonl
from lf_reference import trains_on

GOOD_TURNS = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]


def test_sharegpt_agent_layout_and_dataset_info(mixed_input: Path, tmp_path: Path):
    out = tmp_path / "lf" / "agent_sft.jsonl"
    r = export(mixed_input, out, "sharegpt")
    assert (r.read, r.written, sum(r.rejected.values())) == (6, 5, 0)
    assert r.skipped == {"auxiliary (history_summary)": 1}
    rows = read_jsonl(out)
    parallel = rows[1]
    assert [t["from"] for t in parallel["conversations"]] == ["human", "function_call", "observation", "gpt"]
    calls = json.loads(parallel["conversations"][1]["value"])
    assert calls == [{"name": "bash", "arguments": {"command": "grep -n median stats_1.py"}},
                     {"name": "find_symbol", "arguments": {"name": "mean", "kind": "fn"}}]
    assert parallel["conversations"][2]["value"] == \
        "12: def median(xs):  # file 1\n</tool_response>\n<tool_response>\nstats.py:30"
    assert parallel["system"] == "You repair small Python projects."
    tools = json.loads(parallel["tools"])
    assert [t["name"] for t in tools] == ["bash", "find_symbol"] and "type" not in tools[0]
    assert tools[1]["parameters"]["properties"]["kind"] == {"enum": ["fn", "class"]}
    assert r.notes  # the assistant's words beside its tool calls are counted, not silently lost
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert r.train_on == "last" and "mask_history: true" in info["agent_sft"].pop("description")
    assert info == {"agent_sft": {
        "file_name": "agent_sft.jsonl", "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}}}
    entry = info["agent_sft"]
    assert all(trains_on(row, entry) for row in rows)
    assert validate(out, "sharegpt", dataset_info=tmp_path / "lf" / "dataset_info.json").ok


def test_lf_openai_messages_with_tags(mixed_input: Path, tmp_path: Path):
    out = tmp_path / "msgs.jsonl"
    export(mixed_input, out, "lf-openai", dataset_name="agent_msgs")
    rows = read_jsonl(out)
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "function_call", "tool", "assistant"]
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["agent_msgs"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "messages", "tools": "tools"}
    assert entry["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant", "observation_tag": "tool",
                             "function_tag": "function_call", "system_tag": "system"}
    assert all(trains_on(row, entry) for row in rows)


def test_alpaca_puts_system_in_system_and_history_in_pairs(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [persona_dialogue(0), agent_sample(0)])
    out = tmp_path / "alpaca.jsonl"
    r = export(src, out, "alpaca")
    assert r.written == 1 and r.rejected == {"alpaca_tools": 1}
    [row] = read_jsonl(out)
    assert row == {"system": "You are Mina, a cheerful barista who keeps answers short.",
                   "instruction": "달지 않은 음료는요?", "input": "",
                   "output": "그럼 산미가 좋은 아메리카노를 추천해요.",
                   "history": [["추천 메뉴가 있나요? (0)", "오늘은 바닐라 라떼가 인기예요!"]]}
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["alpaca"]
    assert entry["columns"] == {"prompt": "instruction", "query": "input", "response": "output",
                                "system": "system", "history": "history"}
    assert trains_on(row, entry)
    rejects = read_jsonl(tmp_path / "alpaca.rejects.jsonl")
    assert rejects[0]["line"] == 2 and "alpaca_tools" in rejects[0]["reasons"][0]


@pytest.mark.parametrize("fmt", ["sharegpt", "lf-openai", "alpaca"])
def test_preference_exports_are_ranking(fmt: str, tmp_path: Path):
    src = write_jsonl(tmp_path / "pref.jsonl", [preference_record(i) for i in range(3)])
    out = tmp_path / f"{fmt}_pref.jsonl"
    r = export(src, out, fmt, task="preference")
    assert r.written == 3
    entry = json.loads((tmp_path / "dataset_info.json").read_text())[f"{fmt}_pref"]
    assert entry["ranking"] is True
    assert entry["columns"]["chosen"] == "chosen" and entry["columns"]["rejected"] == "rejected"
    rows = read_jsonl(out)
    if fmt == "alpaca":
        assert rows[1]["chosen"] == "2." and rows[0]["system"] == "Answer briefly."
    else:
        key = "conversations" if fmt == "sharegpt" else "messages"
        assert len([m for m in rows[0][key] if m.get("role", m.get("from")) != "system"]) % 2 == 1
    assert all(trains_on(row, entry) for row in rows)


def test_kto_from_pairs_and_from_success(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [preference_record(2), persona_dialogue(0, passed=False)])
    out = tmp_path / "kto.jsonl"
    r = export(src, out, "sharegpt", task="kto")
    rows = read_jsonl(out)
    assert r.written == 3 and [row["kto_tag"] for row in rows] == [True, False, False]
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["kto"]
    assert entry["columns"]["kto_tag"] == "kto_tag" and "ranking" not in entry
    assert all(trains_on(row, entry) for row in rows)


def test_dataset_info_merge_keeps_other_entries(tmp_path: Path):
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
                                "zzz": {"file_name": "z.json", "formatting": "sharegpt"}}, indent=2))
    src = write_jsonl(tmp_path / "in.jsonl", [persona_dialogue(0)])
    export(src, tmp_path / "data" / "mine.jsonl", "sharegpt", dataset_info=info, dataset_name="mine")
    export(src, tmp_path / "data" / "mine.jsonl", "sharegpt", dataset_info=info, dataset_name="mine")
    merged = json.loads(info.read_text())
    assert list(merged) == ["alpaca_en_demo", "zzz", "mine"]
    assert merged["alpaca_en_demo"] == {"file_name": "alpaca_en_demo.json"}
    assert merged["mine"]["file_name"] == "data/mine.jsonl"
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(Exception, match="refusing to overwrite"):
        merge_dataset_info(bad, "x", {})


SHAREGPT_BAD = [
    ({"conversations": [{"from": "gpt", "value": "hello"}, {"from": "human", "value": "hi"}]}, "role_order"),
    ({"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]}, "role_order"),
    ({"conversations": [{"from": "user", "value": "hi"}, {"from": "gpt", "value": "x"}]}, "role_order"),
    ({"conversations": GOOD_TURNS + [{"from": "human", "value": "more?"}]}, "message_count"),
    ({"conversations": []}, "empty"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": None}]}, "content_type"),
    ({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "  "}]}, "empty_reply"),
    ({"conversations": [{"from": "human"}, {"from": "gpt", "value": "x"}]}, "message_keys"),
    ({"messages": GOOD_TURNS}, "missing_column"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{not json"},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}, "tool_call"),
    ({"conversations": [{"from": "human", "value": "q"},
                        {"from": "function_call", "value": '{"name": "bash", "arguments": "{\\"command\\": \\"ls\\"}"}'},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}, "tool_args"),
    ({"conversations": [{"from": "human", "value": "q"},
                        {"from": "function_call", "value": '{"name": "rm", "arguments": {}}'},
                        {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}],
      "tools": json.dumps([{"name": "bash", "parameters": {"type": "object", "properties": {}}}])}, "unknown_tool"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": '{"name": "x", "arguments": {}}'},
                        {"from": "human", "value": "r"}, {"from": "gpt", "value": "a"}]}, "unanswered_call"),
    ({"conversations": GOOD_TURNS, "tools": [{"name": "bash"}]}, "tools_type"),
    ({"conversations": GOOD_TURNS, "tools": json.dumps([{"name": "bash"}])}, "tools_schema"),
    ({"conversations": GOOD_TURNS, "system": 3}, "system_type"),
]


@pytest.mark.parametrize("row,code", SHAREGPT_BAD, ids=[c for _, c in SHAREGPT_BAD])
def test_sharegpt_rule_breakers_are_reported_with_index_and_reason(row: dict, code: str, tmp_path: Path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"conversations": GOOD_TURNS}, row, "{oops"])
    rejects = tmp_path / "rejects.jsonl"
    r = validate(path, "sharegpt", task="sft", rejects=rejects)
    assert (r.rows, r.valid, r.invalid) == (3, 1, 2)
    assert r.by_reason[code] == 1 and r.by_reason["json"] == 1
    assert r.bad[0].index == 1 and r.bad[0].lineno == 2 and r.bad[0].reasons[0].startswith(code)
    assert [x["index"] for x in read_jsonl(rejects)] == [1, 2]


@pytest.mark.parametrize("row", [row for row, _ in SHAREGPT_BAD])
def test_every_row_llamafactory_would_skip_is_rejected(row: dict):
    entry = {"file_name": "x.jsonl", "formatting": "sharegpt",
             "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}
    if not trains_on(row, entry):
        assert LFRules(LFSpec.from_entry(entry)).check(row)


PREF_BAD = [
    ({"conversations": GOOD_TURNS, "chosen": {"from": "gpt", "value": "a"},
      "rejected": {"from": "gpt", "value": "b"}}, "message_count"),
    ({"conversations": GOOD_TURNS[:1], "chosen": {"from": "human", "value": "a"},
      "rejected": {"from": "gpt", "value": "b"}}, "pair"),
    ({"conversations": GOOD_TURNS[:1], "chosen": "a", "rejected": "b"}, "pair"),
]


@pytest.mark.parametrize("row,code", PREF_BAD, ids=[c for _, c in PREF_BAD])
def test_preference_rule_breakers(row: dict, code: str, tmp_path: Path):
    r = validate(write_jsonl(tmp_path / "p.jsonl", [row]), "sharegpt", task="preference")
    assert r.invalid == 1 and r.by_reason[code] == 1


ALPACA_BAD = [
    ({"instruction": "q", "input": "", "output": None}, "missing_response"),
    ({"instruction": "q", "input": "", "output": "a", "history": [["only one"]]}, "history"),
    ({"instruction": "", "input": "", "output": "a"}, "empty_prompt"),
    ({"instruction": "q", "input": "", "output": "a", "kto_tag": "yes"}, "kto_tag"),
]


@pytest.mark.parametrize("row,code", ALPACA_BAD, ids=[c for _, c in ALPACA_BAD])
def test_alpaca_rule_breakers(row: dict, code: str, tmp_path: Path):
    task = "kto" if "kto_tag" in row else "sft"
    good = {"instruction": "q", "input": "", "output": "a", **({"kto_tag": True} if task == "kto" else {})}
    r = validate(write_jsonl(tmp_path / "a.jsonl", [good, row]), "alpaca", task=task)
    assert r.invalid == 1 and r.bad[0].index == 1 and r.by_reason[code] == 1


def test_declared_column_missing_and_column_type_drift(tmp_path: Path):
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"d": {"file_name": "d.jsonl", "formatting": "sharegpt",
                                      "columns": {"messages": "conversations", "tools": "tools"}}}))
    path = write_jsonl(tmp_path / "d.jsonl", [{"conversations": GOOD_TURNS, "system": "s"},
                                              {"conversations": GOOD_TURNS, "system": ["s"]}])
    r = validate(path, "sharegpt", dataset_info=info, dataset="d")
    assert r.file_problems and "tools" in r.file_problems[0]
    assert r.by_reason == {"column_type": 1} and r.bad[0].index == 1


def test_alpaca_refuses_an_empty_reply_in_history(tmp_path: Path):
    rec = persona_dialogue(0)
    rec["messages"][1]["content"] = ""
    r = export(write_jsonl(tmp_path / "in.jsonl", [rec]), tmp_path / "a.jsonl", "alpaca")
    assert r.written == 0 and r.rejected == {"empty_reply": 1}
    bad = {"instruction": "q2", "input": "", "output": "a2", "history": [["q1", ""]]}
    v = validate(write_jsonl(tmp_path / "v.jsonl", [bad]), "alpaca")
    assert v.by_reason == {"empty_reply": 1}


def test_per_turn_rows_tell_llamafactory_to_mask_history(mixed_input: Path, tmp_path: Path):
    from typer.testing import CliRunner
    from dialogforge.cli.main import app
    out = tmp_path / "lf" / "agent.jsonl"
    res = CliRunner().invoke(app, ["export", str(mixed_input), "-o", str(out), "--to", "sharegpt"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "mask_history: true" in res.output
    assert "mask_history: true" in (tmp_path / "lf" / "agent.README.md").read_text()
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert "mask_history: true" in info["agent"]["description"]
