"""TRL and OpenAI fine-tuning exports, and rows that break their rules."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogforge.formats import export, validate
from formats_samples import BASH_TOOL, agent_sample, persona_dialogue, preference_record, read_jsonl, write_jsonl


def test_trl_conversational_with_tools(mixed_input: Path, tmp_path: Path):
    out = tmp_path / "trl.jsonl"
    r = export(mixed_input, out, "trl", train_on="all")
    assert r.written == 5 and not r.rejected and r.dataset_info_path is None
    row = read_jsonl(out)[1]
    assert set(row) == {"messages", "tools"}
    assert row["messages"][0] == {"role": "system", "content": "You repair small Python projects."}
    call = row["messages"][2]["tool_calls"][1]
    assert call == {"id": "d1", "type": "function", "function": {"name": "find_symbol",
                                                                 "arguments": {"name": "mean", "kind": "fn"}}}
    assert row["messages"][2]["content"] == "I will look at the function first."
    assert [m.get("tool_call_id") for m in row["messages"][3:5]] == ["c1", "d1"]
    assert row["tools"][0] == BASH_TOOL  # a list: TRL 0.24 hands the column to the chat template as it is
    text = export(mixed_input, tmp_path / "trl_text.jsonl", "trl", tools_as_list=False, train_on="all")
    assert text.written == 5 and json.loads(read_jsonl(tmp_path / "trl_text.jsonl")[0]["tools"])[0] == BASH_TOOL


@pytest.mark.parametrize("task,keys", [("prompt-completion", {"prompt", "completion", "tools"}),
                                       ("preference", {"prompt", "chosen", "rejected"}),
                                       ("kto", {"prompt", "completion", "label", "tools"})])
def test_trl_tasks(task: str, keys: set, tmp_path: Path):
    rows = [agent_sample(0), preference_record(3)] if task != "preference" else [preference_record(3)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / f"{task}.jsonl"
    r = export(src, out, "trl", task=task)
    written = read_jsonl(out)
    if task == "kto":  # the agent row's prompt ends with a tool result: TRL 0.24's KTO trainer raises on it
        assert r.rejected == {"prompt_end": 1} and r.written == 2
        r = export(src, out, "trl", task=task, tool_prompts="keep")
        written = read_jsonl(out)
    assert r.written == len(written) and not r.rejected
    assert set(written[0]) == keys
    if task == "prompt-completion":
        assert written[0]["prompt"][-1]["role"] == "tool"
        assert written[0]["completion"] == [{"role": "assistant", "content": agent_sample(0)["messages"][-1]["content"]}]
    if task == "kto":
        assert [w["label"] for w in written] == [True, True, False]
        assert not validate(out, "trl").ok  # validate holds TRL 0.24's rule by default
        return
    assert validate(out, "trl").ok


def test_openai_fine_tuning_rows(mixed_input: Path, tmp_path: Path):
    out = tmp_path / "openai.jsonl"
    r = export(mixed_input, out, "openai")
    assert r.written == 5 and not r.rejected
    row = read_jsonl(out)[1]
    assert set(row) == {"messages", "tools"} and row["tools"][0] == BASH_TOOL
    calls = row["messages"][2]["tool_calls"]
    assert [c["id"] for c in calls] == ["c1", "d1"] and isinstance(calls[0]["function"]["arguments"], str)
    assert json.loads(calls[1]["function"]["arguments"]) == {"name": "mean", "kind": "fn"}
    assert [m["tool_call_id"] for m in row["messages"] if m["role"] == "tool"] == ["c1", "d1"]
    # ShareGPT input without call ids gets ids and linked tool results
    sg = tmp_path / "sg.jsonl"
    export(mixed_input, sg, "sharegpt")
    back = tmp_path / "back.jsonl"
    assert export(sg, back, "openai").written == 5
    msgs = read_jsonl(back)[0]["messages"]
    assert msgs[2]["tool_calls"][0]["id"] == msgs[3]["tool_call_id"]
    assert validate(back, "openai").ok


def test_openai_preference_rows(tmp_path: Path):
    out = tmp_path / "dpo.jsonl"
    export(write_jsonl(tmp_path / "p.jsonl", [preference_record(1)]), out, "openai", task="preference")
    [row] = read_jsonl(out)
    assert row["input"]["messages"][-1] == {"role": "user", "content": "What is 1 + 1?"}
    assert row["preferred_output"] == [{"role": "assistant", "content": "2."}]
    assert validate(out, "openai").ok


def _msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


CALL = {"id": "a", "type": "function", "function": {"name": "bash", "arguments": {"command": "ls"}}}
TRL_BAD = [
    ({"messages": _msgs(("user", "q"), ("assistant", "a")), "prompt": _msgs(("user", "q"))}, "columns"),
    ({"messages": _msgs(("user", "q"), ("user", "q2"), ("assistant", "a"))}, "role_order"),
    ({"messages": _msgs(("user", "q"))}, "no_assistant"),
    ({"messages": _msgs(("user", "q"), ("wizard", "a"))}, "role"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]}, "content_type"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                   {"role": "tool", "content": "x", "tool_call_id": "a"}, {"role": "assistant", "content": "ok"}]},
     "content_null"),
    ({"messages": [{"role": "user", "content": "q"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {**CALL, "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
                   {"role": "tool", "content": "x"}, {"role": "assistant", "content": "done"}]}, "tool_args"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"},
                   {"role": "assistant", "content": "done"}]}, "orphan_tool"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                   {"role": "assistant", "content": "done"}]}, "unanswered_call"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                   {"role": "tool", "content": "x"}, {"role": "assistant", "content": "ok"}],
      "tools": [{"type": "function", "function": {"name": "grep"}}]}, "unknown_tool"),
    ({"messages": _msgs(("user", "q"), ("assistant", "a")), "tools": json.dumps([BASH_TOOL])}, "tools_type"),
    ({"messages": _msgs(("user", "q"), ("assistant", "a")), "tools": "[{broken"}, "tools_type"),
    ({"messages": _msgs(("user", "q"), ("assistant", "a")), "tools": [{"name": "bash"}]}, "tools_schema"),
    ({"prompt": _msgs(("user", "q")), "completion": _msgs(("user", "a"))}, "role_order"),
    ({"prompt": _msgs(("user", "q")), "completion": _msgs(("assistant", "a")), "label": "good"}, "label"),
    ({"prompt": _msgs(("user", "q")), "chosen": [], "rejected": _msgs(("assistant", "b"))}, "messages_type"),
    ({"messages": _msgs(("user", "q"), ("assistant", "a"), ("system", "late"), ("user", "q"), ("assistant", "b"))},
     "system_position"),
    # issue 10: rows that load but train wrongly, or that TRL 0.24 refuses
    ({"messages": _msgs(("user", "q"), ("assistant", "a"), ("user", "unanswered"))}, "role_order"),
    ({"messages": _msgs(("assistant", "hello"), ("user", "q"), ("assistant", "a"))}, "role_order"),
    ({"prompt": _msgs(("user", "q")), "completion": _msgs(("assistant", "a"), ("user", "q2"))}, "role_order"),
    ({"prompt": _msgs(("user", "q"), ("assistant", "a")), "chosen": _msgs(("assistant", "b")),
      "rejected": _msgs(("assistant", "c"))}, "prompt_end"),
    ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                 {"role": "tool", "content": "x", "tool_call_id": "a"}],
      "chosen": _msgs(("assistant", "b")), "rejected": _msgs(("assistant", "c"))}, "prompt_end"),
    ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                 {"role": "tool", "content": "x", "tool_call_id": "a"}],
      "completion": _msgs(("assistant", "b")), "label": True}, "prompt_end"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]},
                   {"role": "tool", "content": "x", "tool_call_id": "a"}, {"role": "assistant", "content": "ok"}]},
     "tool_args"),
]


@pytest.mark.parametrize("row,code", TRL_BAD, ids=[f"{i}-{c}" for i, (_, c) in enumerate(TRL_BAD)])
def test_trl_rule_breakers(row: dict, code: str, tmp_path: Path):
    path = write_jsonl(tmp_path / "t.jsonl", [row])
    r = validate(path, "trl")
    assert r.invalid == 1 and r.bad[0].index == 0
    assert code in [x.split(":")[0] for x in r.bad[0].reasons]


OPENAI_BAD = [
    ({"messages": _msgs(("user", "q"))}, "no_assistant"),
    ({"messages": _msgs(("user", "q"), ("assistant", "a")), "reward": 1.0}, "extra_key"),
    ({"messages": [{"role": "user", "content": "q", "score": 2}, {"role": "assistant", "content": "a"}]},
     "message_keys"),
    ({"messages": [{"role": "user", "content": "q"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "x", "content": "r"}]}, "tool_call"),
    ({"messages": [{"role": "user", "content": "q"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "a", "type": "function", "function": {"name": "bash", "arguments": "{bad"}}]},
                   {"role": "tool", "tool_call_id": "a", "content": "r"}]}, "tool_args"),
    ({"messages": [{"role": "user", "content": "q"},
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "a", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "b", "content": "r"},
                   {"role": "assistant", "content": "ok"}]}, "orphan_tool"),
    ({"messages": _msgs(("user", "q"), ("assistant", "a")), "tools": json.dumps([BASH_TOOL])}, "tools_type"),
]


@pytest.mark.parametrize("row,code", OPENAI_BAD, ids=[f"{i}-{c}" for i, (_, c) in enumerate(OPENAI_BAD)])
def test_openai_rule_breakers(row: dict, code: str, tmp_path: Path):
    r = validate(write_jsonl(tmp_path / "o.jsonl", [row]), "openai")
    assert r.invalid == 1
    assert code in [x.split(":")[0] for x in r.bad[0].reasons]


def test_trl_prompt_completion_round_trip(tmp_path: Path):
    """A TRL file read back gives the same conversations."""
    src = write_jsonl(tmp_path / "in.jsonl", [agent_sample(4), persona_dialogue(2)])
    a = tmp_path / "a.jsonl"
    export(src, a, "trl", task="prompt-completion")
    b = tmp_path / "b.jsonl"
    export(a, b, "trl", train_on="all")
    c = tmp_path / "c.jsonl"
    export(src, c, "trl", train_on="all")
    assert read_jsonl(b) == read_jsonl(c)


def _call_row(args: dict) -> dict:
    call = {"id": "a", "type": "function", "function": {"name": "bash", "arguments": args}}
    return {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
                                                             "tool_calls": [call]},
                         {"role": "tool", "content": "x", "tool_call_id": "a"}, {"role": "assistant", "content": "ok"}]}


def test_validate_catches_argument_types_that_change_between_rows(tmp_path: Path):
    path = write_jsonl(tmp_path / "t.jsonl", [_call_row({"command": "ls", "timeout": 30}),
                                              _call_row({"command": "ls", "timeout": "30"}),
                                              _call_row({"command": "ls", "opts": {"depth": [1, "two"]}})])
    r = validate(path, "trl")
    assert r.valid == 1 and [b.index for b in r.bad] == [1, 2]
    assert r.by_reason == {"arg_types": 2}
    assert "'timeout' is string here but number in messages[1]" in r.bad[0].reasons[0]


def test_export_coerces_arguments_to_the_tool_schema_and_refuses_rows_that_stay_mixed(tmp_path: Path):
    tool = {"type": "function", "function": {"name": "bash", "parameters": {"type": "object", "properties": {
        "command": {"type": "string"}, "timeout": {"type": "integer"}, "verbose": {"type": "boolean"}}}}}
    rows = []
    for i, args in enumerate([{"command": "ls", "timeout": 30}, {"command": "ls", "timeout": "45", "verbose": "true"},
                              {"command": 7, "timeout": 5}, {"command": "ls", "depth": 2},
                              {"command": "ls", "depth": "deep"}]):
        rec = agent_sample(i)
        rec["tools"] = [tool]
        rec["messages"][2]["tool_calls"] = [{"id": f"c{i}", "type": "function",
                                             "function": {"name": "bash", "arguments": json.dumps(args)}}]
        rec["messages"][3:-1] = [{"role": "tool", "tool_call_id": f"c{i}", "content": "ok"}]
        rows.append(rec)
    out = tmp_path / "trl.jsonl"
    r = export(write_jsonl(tmp_path / "in.jsonl", rows), out, "trl", train_on="all")
    written = [row["messages"][2]["tool_calls"][0]["function"]["arguments"] for row in read_jsonl(out)]
    assert written == [{"command": "ls", "timeout": 30}, {"command": "ls", "timeout": 45, "verbose": True},
                       {"command": "7", "timeout": 5}, {"command": "ls", "depth": 2}]
    assert r.rejected == {"arg_types": 1}  # `depth` has no schema type: 2 then "deep" cannot share a column
    assert r.notes["tool-call argument values converted to their schema's type"] == 3
    assert validate(out, "trl").ok


def test_train_on_last_per_format(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [agent_sample(0)])
    r = export(src, tmp_path / "o.jsonl", "openai")
    assert r.train_on == "last"
    msgs = read_jsonl(tmp_path / "o.jsonl")[0]["messages"]
    assert [m.get("weight") for m in msgs if m["role"] == "assistant"] == [0, None]
    assert validate(tmp_path / "o.jsonl", "openai").ok
    r = export(src, tmp_path / "t.jsonl", "trl")
    row = read_jsonl(tmp_path / "t.jsonl")[0]
    assert set(row) == {"prompt", "completion", "tools"} and row["completion"][0]["role"] == "assistant"
    assert "completion (the last reply) only" in r.trainer_note
    readme = (tmp_path / "t.README.md").read_text()
    assert "last assistant reply" in readme and "--train-on last" in readme
    r = export(src, tmp_path / "w.jsonl", "trl", train_on="all")
    assert set(read_jsonl(tmp_path / "w.jsonl")[0]) == {"messages", "tools"}


def test_format_error_replies_are_not_sft_targets_by_default(tmp_path: Path):
    from dialogforge.formats import Selection
    bad = agent_sample(1)
    bad["format_error"] = True
    src = write_jsonl(tmp_path / "in.jsonl", [agent_sample(0), bad])
    r = export(src, tmp_path / "a.jsonl", "trl")
    assert r.written == 1 and list(r.skipped.values()) == [1] and "format error" in next(iter(r.skipped))
    r = export(src, tmp_path / "b.jsonl", "trl", selection=Selection(keep_format_errors=True))
    assert r.written == 2 and not r.skipped


def test_validate_newer_trl_accepts_tool_prompts_and_text_tools(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [agent_sample(0)])
    out = tmp_path / "kto.jsonl"
    export(src, out, "trl", task="kto", tool_prompts="keep", tools_as_list=False)
    strict = validate(out, "trl")
    assert not strict.ok and set(strict.by_reason) <= {"tools_type", "prompt_end"}
    assert validate(out, "trl", newer_trl=True).ok
    with pytest.raises(Exception, match="TRL files only"):
        validate(out, "sharegpt", newer_trl=True)
