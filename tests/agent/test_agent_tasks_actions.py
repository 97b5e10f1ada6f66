"""Task import + mapping, action parsing, reward tiers, templates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_helpers import EXAMPLES, REPO
from dialogforge.engine.errors import ConfigError, InputError
from dialogforge.workflows.agent.actions import Action, FormatError, parse_shell_reply, parse_tool_calls
from dialogforge.workflows.agent.config import load_agent_config, parse_agent_config
from dialogforge.workflows.agent.envs.base import EvalResult
from dialogforge.workflows.agent.prompts import agent_prompts
from dialogforge.workflows.agent.reward import compute_reward
from dialogforge.workflows.agent.tasks import load_tasks

REALDATA = REPO.parent / "shared" / "realdata"


def test_example_tasks_load_with_resolved_workspaces():
    tasks = load_tasks(EXAMPLES / "tasks.jsonl")
    assert [t.id for t in tasks] == ["dedupe-speed", "primes-speed", "median-fix"]
    for t in tasks:
        assert Path(t.workspace).is_dir() and (Path(t.workspace) / "evaluate.py").is_file()
        assert "tests" in t.protected and t.eval_command
    assert tasks[0].metadata == {"kind": "speedup", "language": "python"}


def test_rocm_agent_instances_import_with_preset():
    src = REALDATA / "rocm_agent" / "rocprim_v5.json"
    if not src.exists():
        pytest.skip("shared realdata not present")
    raw = json.loads(src.read_text())
    tasks = load_tasks(src, "rocm_agent")
    assert len(tasks) == len(raw) == 58
    assert [t.id for t in tasks] == [r["instance_id"] for r in raw]
    t, r = tasks[0], raw[0]
    assert t.problem_statement == r["problem_statement"] and t.image == r["image_name"]
    assert t.metadata["commit_id"] == r["commit_id"] and t.metadata["benchmark_file_path"] == r["benchmark_file_path"]
    assert "instance_id" not in t.metadata and "problem_statement" not in t.metadata
    assert t.workspace is None and t.eval_command is None  # a custom environment supplies these


def test_custom_mapping_with_dotted_path_and_template(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"uid": 7, "spec": {"text": "Do X"}, "test": "test_a"}) + "\n\n"
                 + json.dumps({"uid": 8, "spec": {"text": "Do Y"}, "test": "test_b"}) + "\n")
    tasks = load_tasks(p, {"id": "uid", "problem_statement": "spec.text", "eval_command": "make check T={{ test }}"})
    assert [(t.id, t.problem_statement, t.eval_command) for t in tasks] == \
        [("7", "Do X", "make check T=test_a"), ("8", "Do Y", "make check T=test_b")]
    assert tasks[0].metadata == {"test": "test_a"}


def test_task_errors_name_file_line_and_field(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a", "problem_statement": "x"}\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: missing required field 'problem_statement'"):
        load_tasks(p)
    p.write_text('{"id": "a", "problem_statement": "x"}\n{oops\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: not valid JSON"):
        load_tasks(p)
    p.write_text('{"id": "a", "problem_statement": "x"}\n{"id": "a", "problem_statement": "y"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: duplicate task id 'a' \(first at .*bad.jsonl:1\)"):
        load_tasks(p)
    p.write_text('{"id": "a", "problem_statement": "x", "protected": 3}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:1: field 'protected'"):
        load_tasks(p)
    with pytest.raises(ConfigError, match="unknown task mapping preset 'nope'"):
        load_tasks(p, "nope")
    with pytest.raises(ConfigError, match=r"unknown target field\(s\) \['title'\]"):
        load_tasks(p, {"title": "x"})


def test_shell_block_parsing():
    a = parse_shell_reply("Look first.\n```bash\nls -la\n```\n", "DONE")
    assert isinstance(a, Action) and a.kind == "command" and a.command == "ls -la"
    a = parse_shell_reply("```sh\ncat <<'EOF' > f.py\nx = 1\nEOF\n```", "DONE")
    assert a.command == "cat <<'EOF' > f.py\nx = 1\nEOF"
    assert parse_shell_reply("ok\n```bash\necho DONE\n```", "DONE").kind == "submit"
    e = parse_shell_reply("```bash\nls\n```\nand\n```bash\npwd\n```", "DONE")
    assert isinstance(e, FormatError) and e.found == 2
    assert isinstance(parse_shell_reply("no block here", "DONE"), FormatError)
    assert isinstance(parse_shell_reply("```python\nprint(1)\n```", "DONE"), FormatError)  # not a shell block
    assert isinstance(parse_shell_reply(None, "DONE"), FormatError)


def test_tool_call_parsing():
    calls = [{"id": "1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}},
             {"id": "2", "type": "function", "function": {"name": "bash", "arguments": "{not json"}},
             {"id": "3", "type": "function", "function": {"name": "rm_rf", "arguments": "{}"}},
             {"id": "4", "type": "function", "function": {"name": "submit", "arguments": ""}}]
    out = parse_tool_calls(calls, "DONE")
    assert isinstance(out[0], Action) and out[0].command == "ls" and out[0].tool_call_id == "1"
    assert isinstance(out[1], FormatError) and "not valid JSON" in out[1].message and out[1].tool_call_id == "2"
    assert isinstance(out[2], FormatError) and "unknown tool 'rm_rf'" in out[2].message
    assert isinstance(out[3], Action) and out[3].kind == "submit"
    assert parse_tool_calls(None, "DONE") == []


def test_reward_tiers():
    cfg = parse_agent_config({"reward": {"metric": "speedup", "tiers": [{"min": 1.2, "reward": 0.5}, {"min": 2.0, "reward": 1.0}],
                                         "success_reward": 0.1, "failure_reward": 0.0, "no_metric_reward": 0.8}}).reward
    ok = lambda s: EvalResult(success=True, metrics={"speedup": s})
    assert compute_reward(ok(3.1), cfg)[0] == 1.0
    assert compute_reward(ok(2.0), cfg)[0] == 1.0
    assert compute_reward(ok(1.5), cfg) == (0.5, {"rule": "tier", "metric": "speedup", "value": 1.5, "min": 1.2})
    assert compute_reward(ok(0.9), cfg)[0] == 0.1  # tests pass but slower
    assert compute_reward(EvalResult(success=False, metrics={"speedup": 5.0}), cfg)[0] == 0.0  # tests fail
    assert compute_reward(EvalResult(success=True), cfg) == (0.8, {"rule": "metric_missing", "metric": "speedup"})
    assert compute_reward(EvalResult(success=False, status="env_error"), cfg) == (None, {"rule": "env_error"})
    assert compute_reward(ok(3.0), cfg, submitted=False)[0] == 0.0
    trust = parse_agent_config({"reward": {"use_evaluator_reward": True}}).reward
    assert compute_reward(EvalResult(success=True, reward=0.37), trust)[0] == 0.37


def test_config_errors_and_templates(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("agent:\n  limits: {step_limit: 0}\n  action_mode: telepathy\n")
    with pytest.raises(ConfigError) as ei:
        load_agent_config(p)
    assert "agent.limits.step_limit" in str(ei.value) and "agent.action_mode" in str(ei.value) and str(p) in str(ei.value)
    (tmp_path / "sys.j2").write_text("You work on {{ instance_id }} in {{ action_mode }} mode.")
    p.write_text("agent:\n  templates: {system: sys.j2, instance: 'Do: {{ problem_statement }}'}\n")
    cfg = load_agent_config(p)
    pr = agent_prompts(cfg)
    assert pr.render("system", instance_id="t1") == "You work on t1 in shell_block mode."
    assert pr.render("instance", problem_statement="fix it") == "Do: fix it"
    p.write_text("agent:\n  templates: {system: '{% if %}'}\n")
    with pytest.raises(ConfigError, match="agent.templates.system:1: template syntax error"):
        agent_prompts(load_agent_config(p))
    assert load_agent_config(EXAMPLES / "config.yaml").limits.step_limit == 4
