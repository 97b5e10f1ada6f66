"""CLI: import-tasks with presets/mappings, and `agent run TASKS --base-url` without a config file."""
from __future__ import annotations

import json
import os
import subprocess
import sys


from agent_helpers import EXAMPLES, REPO, read_jsonl, shell_responder
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks


def run_cli(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "dialogforge.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_import_tasks_with_field_mapping(tmp_path, realdata):
    out = tmp_path / "tasks.jsonl"
    src = realdata / "rocm_agent" / "rocprim_v5.json"
    r = run_cli(["agent", "import-tasks", str(src), "--mapping", "rocm_agent", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    assert "imported 58 tasks" in " ".join(r.stderr.split())
    rows = read_jsonl(out)
    assert len(rows) == 58 and rows[0]["id"] == json.loads(src.read_text())[0]["instance_id"]
    # the normalised file reads back with the default mapping, unchanged
    assert [t.to_dict() for t in load_tasks(out)] == rows
    # a preset plus a field override: an eval command built from the instance's own fields
    r = run_cli(["agent", "import-tasks", str(src), "--mapping", "rocm_agent", "-o", str(out),
                 "--field", "eval_command=./run_bench.sh {{ benchmark_file }}"])
    assert r.returncode == 0, r.stderr
    assert read_jsonl(out)[0]["eval_command"] == "./run_bench.sh benchmark_block_adjacent_difference"


def test_import_tasks_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instance_id": "a", "problem_statement": "x"}\n{"instance_id": "b"}\n')
    r = run_cli(["agent", "import-tasks", str(bad), "--mapping", "swe", "-o", str(tmp_path / "o.jsonl")])
    assert r.returncode == 2
    assert f"{bad}:2: missing required field 'problem_statement'" in " ".join(r.stderr.split())


def test_run_a_tasks_file_against_a_base_url(tmp_path):
    with FakeServer.background(responder=shell_responder) as srv:
        r = run_cli(["agent", "run", str(EXAMPLES / "tasks.jsonl"), "--base-url", srv.base_url, "--model", "m",
                     "--instance", "median-fix", "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s.sqlite"), "-q"])
        assert r.returncode == 0, r.stderr
        [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
        assert traj["status"] == "submitted" and traj["success"] is True and traj["reward"] == 1.0
        assert len(srv.requests) == 5 and all(b["model"] == "m" for b in srv.requests)
    r = run_cli(["agent", "run", str(EXAMPLES / "tasks.jsonl"), "--instance", "nope", "--out", str(tmp_path / "o2")])
    assert r.returncode == 2 and "--instance: not in" in " ".join(r.stderr.split())


def test_run_and_stats_show_agent_turns_and_auxiliary_calls_apart(tmp_path):
    with FakeServer.background(responder=shell_responder) as srv:
        r = run_cli(["agent", "run", str(EXAMPLES / "config.yaml"), "--base-url", srv.base_url, "--model", "m",
                     "--instance", "dedupe-speed", "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s.sqlite"),
                     "-q"])
        assert r.returncode == 0, r.stderr
    samples = read_jsonl(tmp_path / "out" / "round_1" / "samples.jsonl")
    main = sum(1 for s in samples if s["purpose"] == "main")
    text = f"{main} agent-turn samples + {len(samples) - main} auxiliary (summary) calls"
    assert text in " ".join(r.stdout.split() + r.stderr.split())
    r = run_cli(["agent", "stats", str(tmp_path / "out")])
    assert r.returncode == 0 and text in r.stdout
    r = run_cli(["agent", "stats", str(tmp_path / "out"), "--json"])
    s = json.loads(r.stdout)["round_1"]
    assert (s["agent_turns"], s["auxiliary_calls"], s["samples"]) == (main, len(samples) - main, len(samples))


def test_run_refuses_tasks_without_evaluation_before_any_call(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "ok", "problem_statement": "p", "eval_command": "true"}\n'
                     '{"id": "no-check-3", "problem_statement": "p"}\n')
    with FakeServer.background(responder=shell_responder) as srv:
        r = run_cli(["agent", "run", str(tasks), "--base-url", srv.base_url, "--model", "m",
                     "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s.sqlite"), "-q"])
        assert not srv.requests
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "task no-check-3: no eval_command or evaluator" in lines[0]
