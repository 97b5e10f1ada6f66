"""Selection flags, per-turn samples, rejects accounting, readers and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.formats import ConversionError, Selection, export, read_record
from formats_samples import agent_sample, persona_dialogue, preference_record, read_jsonl, write_jsonl


def test_selection_flags_count_every_row(tmp_path: Path):
    rows = [agent_sample(0, reward=1.0), agent_sample(1, reward=0.2, success=False),
            agent_sample(2, purpose="observation_summary"), persona_dialogue(0, score=9.0),
            persona_dialogue(1, score=4.0, passed=False)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    r = export(src, tmp_path / "a.jsonl", "sharegpt", selection=Selection(min_reward=0.5))
    assert r.written == 1
    assert r.skipped == {"reward below minimum": 1, "auxiliary (observation_summary)": 1, "no reward": 2}
    r = export(src, tmp_path / "b.jsonl", "sharegpt", selection=Selection(min_score=5))
    assert r.written == 1 and r.skipped["score below minimum"] == 1 and r.skipped["no judge score"] == 2
    r = export(src, tmp_path / "c.jsonl", "sharegpt", selection=Selection(only_success=True, include_auxiliary=True))
    assert r.written == 3 and r.skipped == {"not successful": 2}  # persona `passed` counts as success
    assert r.read == r.written + sum(r.skipped.values()) + sum(r.rejected.values())


def test_per_turn_samples(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [agent_sample(0), persona_dialogue(0)])
    out = tmp_path / "turns.jsonl"
    r = export(src, out, "trl", task="prompt-completion", selection=Selection(per_turn=True), with_metadata=True)
    rows = read_jsonl(out)
    assert r.written == 4
    assert [json.loads(x["metadata"])["turn"] for x in rows] == [0, 1, 0, 1]
    assert rows[0]["completion"][0]["tool_calls"][0]["function"]["name"] == "bash"
    assert rows[2]["prompt"][-1] == {"role": "user", "content": "추천 메뉴가 있나요? (0)"}
    assert json.loads(rows[0]["metadata"])["instance"] == "median"


def test_rejected_rows_are_written_with_reasons(tmp_path: Path):
    bad_args = agent_sample(5)
    bad_args["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{'command': 'ls'}"
    ends_with_user = persona_dialogue(3)
    ends_with_user["messages"].append({"role": "user", "content": "그리고요?"})
    rows = [persona_dialogue(0), bad_args, ends_with_user, {"hello": "world"}, "not json at all"]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    r = export(src, tmp_path / "out.jsonl", "sharegpt")
    assert r.written == 1
    assert r.rejected == {"tool_args": 1, "message_count": 1, "unrecognised": 1, "json": 1}
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [x["line"] for x in rejects] == [2, 3, 4, 5]
    assert rejects[1]["row"]["conversations"][-1]["value"] == "그리고요?"
    assert all(x["reasons"] for x in rejects)


def test_readers_normalise_metadata_and_shapes():
    conv = read_record(persona_dialogue(0, score=7.5))
    assert conv.system.startswith("You are Mina") and conv.metadata["score"] == 7.5
    assert conv.metadata["success"] is True and conv.metadata["persona"] == "Mina"
    sg = read_record({"conversations": [{"from": "system", "value": "sys"}, {"from": "human", "value": "q"},
                                        {"from": "function_call", "value": '[{"name": "a", "arguments": {}}, '
                                                                           '{"name": "b", "arguments": {"x": 1}}]'},
                                        {"from": "observation", "value": "r1\n</tool_response>\n<tool_response>\nr2"},
                                        {"from": "gpt", "value": "done"}], "tools": "[]"})
    assert sg.system == "sys" and [m.role for m in sg.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [m.content for m in sg.messages[2:4]] == ["r1", "r2"]
    assert sg.messages[3].tool_call_id == sg.messages[1].tool_calls[1].id
    alp = read_record({"instruction": "q", "input": "ctx", "output": "a", "history": [["h1", "a1"]], "system": "s"})
    assert [m.content for m in alp.messages] == ["h1", "a1", "q\nctx", "a"] and alp.system == "s"
    pref = read_record(preference_record(0))
    assert pref.is_preference and pref.system == "Answer briefly."
    with pytest.raises(ConversionError, match="unrecognised"):
        read_record({"text": "plain"})
    with pytest.raises(ConversionError) as e:
        read_record({"messages": [{"role": "system", "content": "a"}], "system": "b"})
    assert e.value.code == "system"


def test_cli_export_validate_and_exit_codes(mixed_input: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "cli.jsonl"
    res = runner.invoke(app, ["export", str(mixed_input), "-o", str(out), "--to", "sharegpt", "--min-reward", "0.5"])
    assert res.exit_code == 0, res.output
    assert "2 written" in res.output and "reward" in res.output
    res = runner.invoke(app, ["validate", str(out), "--format", "sharegpt",
                              "--dataset-info", str(tmp_path / "dataset_info.json")])
    assert res.exit_code == 0 and "0 invalid" in res.output
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"conversations": [{"from": "gpt", "value": "x"}]}])
    res = runner.invoke(app, ["validate", str(bad), "-f", "sharegpt", "--json"])
    assert res.exit_code == 1
    report = json.loads(res.output)
    assert report["invalid"] == 1 and report["bad_rows"][0]["index"] == 0
    assert report["bad_rows"][0]["reasons"][0].startswith("role_order")
    unanswered = write_jsonl(tmp_path / "q.jsonl", [{"conversations": [{"from": "human", "value": "x"}]}])
    res = runner.invoke(app, ["export", str(unanswered), "-o", str(tmp_path / "x.jsonl"), "--to", "trl", "--strict"])
    assert res.exit_code == 1 and "1 rejected" in res.output
    res = runner.invoke(app, ["export", str(mixed_input), "-o", str(tmp_path / "y.jsonl"), "--to", "nope"])
    assert res.exit_code == 2 and "unknown format" in res.output


def test_realdata_koalpaca_seeds_export(realdata: Path, tmp_path: Path):
    """KoAlpaca single-turn rows (instruction/output/url) export to every chat format."""
    src = realdata / "lingo_chat" / "koalpaca_v1.1_sample.jsonl"
    n = sum(1 for line in src.read_text(encoding="utf-8").splitlines() if line.strip())
    for fmt in ("sharegpt", "alpaca", "trl", "openai"):
        r = export(src, tmp_path / f"{fmt}.jsonl", fmt)
        assert r.read == n and r.written + sum(r.rejected.values()) == n
        assert r.written >= n - 1, r.rejected


def test_history_summary_after_the_task_is_merged_not_rejected(tmp_path: Path):
    """The agent's history summary is a user message right after the task message."""
    rec = agent_sample(3)
    rec["messages"].insert(2, {"role": "user", "content": "Summary of earlier steps: read stats.py."})
    src = write_jsonl(tmp_path / "in.jsonl", [rec])
    for fmt in ("sharegpt", "trl"):
        r = export(src, tmp_path / f"{fmt}.jsonl", fmt)
        assert r.written == 1 and r.notes == {"consecutive user messages merged into one turn": 1} | (
            {"assistant text beside tool calls dropped (function_call turns carry calls only)": 1}
            if fmt == "sharegpt" else {})
    turn = read_jsonl(tmp_path / "sharegpt.jsonl")[0]["conversations"][0]
    assert turn == {"from": "human", "value": rec["messages"][1]["content"] + "\n\n" + rec["messages"][2]["content"]}
    strict = export(src, tmp_path / "strict.jsonl", "sharegpt", merge_consecutive=False)
    assert strict.written == 0 and strict.rejected == {"role_order": 1}
    assert export(src, tmp_path / "oa.jsonl", "openai").notes == {}  # OpenAI takes any order
