"""Instances x repeats x rounds: separate round files, no collapse, resume, export with zero invalid rows."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from agent_helpers import EXAMPLES, FAST_ENV, REPO, read_jsonl, shell_responder, short_shell_responder
from dialogforge.engine import Engine
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks, parse_agent_config, round_outputs, run_agent

REWARD = {"metric": "speedup", "tiers": [{"min": 2.0, "reward": 1.0}, {"min": 1.2, "reward": 0.5}],
          "success_reward": 0.1, "no_metric_reward": 1.0, "failure_reward": 0.0}


def cfg(**over):
    raw = {"repeats": 4, "rounds": 3, "concurrency": 3, "temperature": 0.7, "max_tokens": 300,
           "limits": {"step_limit": 8}, "environment": {"timeout": 30, "eval_timeout": 60, "env": FAST_ENV}, "reward": REWARD}
    raw.update(over)
    return parse_agent_config(raw)


async def test_three_rounds_four_repeats_all_tasks_then_export(tmp_path):
    tasks = load_tasks(EXAMPLES / "tasks.jsonl")
    out = tmp_path / "out"
    async with FakeServer(responder=short_shell_responder) as srv:
        engine = Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                                   "roles": {"agent": "gen", "summary": "gen"}}, store=tmp_path / "store.sqlite")
        async with engine:
            res = await run_agent(engine, cfg(), tasks, out, progress=False)
        n = 3 * 4 * len(tasks)
        assert sum(r.done for r in res.rounds.values()) == n
        all_samples = []
        for r in (1, 2, 3):
            paths = round_outputs(out, r)
            idx = read_jsonl(paths["index"])
            samples = read_jsonl(paths["samples"])
            assert len(idx) == 4 * len(tasks) and {row["round"] for row in idx} == {r}
            assert {row["status"] for row in idx} == {"submitted"}
            assert all(row["success"] and row["reward"] == 1.0 for row in idx), idx
            assert {s["round"] for s in samples} == {r}
            assert Counter((row["instance"], row["repeat"]) for row in idx) == \
                Counter((t.id, k) for t in tasks for k in range(4))
            all_samples += samples
        # rounds and repeats did not collapse: every call went to the server (distinct `sample` per rollout)
        assert len(srv.requests) == len(all_samples) == n * 2
        assert len({s["id"] for s in all_samples}) == len(all_samples)
        assert res.summary["round_2"]["rollouts"] == 4 * len(tasks)

    # a later `--round 2` invocation finds round 2 finished: nothing re-run, nothing appended
    before = round_outputs(out, 2)["samples"].read_bytes()
    async with FakeServer(responder=shell_responder) as srv2:
        engine = Engine.from_dict({"endpoints": {"gen": {"base_url": srv2.base_url, "model": "scripted"}},
                                   "roles": {"agent": "gen", "summary": "gen"}}, store=tmp_path / "store.sqlite")
        async with engine:
            again = await run_agent(engine, cfg(), tasks, out, rounds=[2], progress=False)
        assert again.rounds[2].done == 0 and again.rounds[2].skipped == 4 * len(tasks)
        assert srv2.requests == []
    assert round_outputs(out, 2)["samples"].read_bytes() == before

    export_mod = pytest.importorskip("dialogforge.formats.export")
    from dialogforge.formats.select import Selection
    inputs = [str(round_outputs(out, r)["samples"]) for r in (1, 2, 3)]
    merged = tmp_path / "merged.jsonl"
    try:
        from dialogforge.formats.merge import merge
    except ImportError:
        merge = None
    if merge is not None:
        merge(inputs, merged)
        rows = read_jsonl(merged)
        assert len(rows) == len(all_samples)
        assert Counter(r.get("round", r.get("metadata", {}).get("round")) for r in rows) == Counter({1: n * 2 // 3, 2: n * 2 // 3, 3: n * 2 // 3})
        inputs = [str(merged)]
    for fmt in ("sharegpt", "openai", "alpaca", "lf-openai", "trl"):
        sel = Selection(min_reward=0.5, only_success=True, per_turn=(fmt == "alpaca"))
        rep = export_mod.export(inputs, tmp_path / f"export.{fmt}.jsonl", fmt, selection=sel)
        assert sum(rep.rejected.values()) == 0, (fmt, dict(rep.rejected))
        assert rep.written > 0, fmt
    rep = export_mod.export(inputs, tmp_path / "aux.jsonl", "openai", selection=Selection(include_auxiliary=True))
    assert sum(rep.rejected.values()) == 0


def write_config(tmp_path, base_url, repeats=2):
    data = {"endpoints": {"gen": {"base_url": base_url, "model": "scripted", "max_retries": 2}},
            "roles": {"agent": "gen", "summary": "gen"},
            "agent": {"tasks": str(EXAMPLES / "tasks.jsonl"), "repeats": repeats, "concurrency": 2,
                      "limits": {"step_limit": 8}, "reward": REWARD,
                      "environment": {"env": FAST_ENV}}}
    p = tmp_path / "agent.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def run_cli(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "dialogforge.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=kw.get("cwd"), timeout=kw.get("timeout", 120))


def test_cli_resume_after_kill_9(tmp_path):
    with FakeServer.background(responder=shell_responder, latency=0.05) as srv:
        config = write_config(tmp_path, srv.base_url)
        out, store = tmp_path / "out", tmp_path / "store.sqlite"
        args = ["agent", "run", str(config), "--out", str(out), "--store", str(store), "-q"]
        sandboxes = tmp_path / "sandboxes"  # a killed run cannot remove its sandboxes: keep them in tmp_path
        sandboxes.mkdir()
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), TMPDIR=str(sandboxes))
        proc = subprocess.Popen([sys.executable, "-m", "dialogforge.cli.main", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        index = round_outputs(out, 1)["index"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if index.exists() and len(index.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        first = read_jsonl(index)
        assert 2 <= len(first) < 6, "the kill should land mid-run"
        sent_before = len(srv.requests)

        done = run_cli(args)
        assert done.returncode == 0, done.stderr
        rows = read_jsonl(index)
        assert rows[: len(first)] == first  # finished rollouts kept as they were, not re-run
        assert Counter(r["id"] for r in rows) == Counter({f"{t}@r1#{k}": 1 for t in ("dedupe-speed", "primes-speed", "median-fix") for k in range(2)})
        samples = read_jsonl(round_outputs(out, 1)["samples"])
        assert len({s["id"] for s in samples}) == len(samples) == sum(r["n_samples"] for r in rows)
        # calls answered before the kill are served from the run store: at most the in-flight ones are re-sent
        assert len(srv.requests) <= len(samples) + 2
        assert len(srv.requests) > sent_before
        said = " ".join(done.stderr.split())
        assert "round 1: 4 rollouts now, 2 earlier" in said and "6 rollouts (submitted: 6)" in said


def test_cli_round_flag_writes_its_own_folder(tmp_path):
    with FakeServer.background(responder=shell_responder) as srv:
        config = write_config(tmp_path, srv.base_url, repeats=1)
        base = ["--out", str(tmp_path / "out"), "--store", str(tmp_path / "s.sqlite"), "-q", "--instance", "median-fix"]
        r1 = run_cli(["agent", "run", str(config), "--round", "1", *base])
        assert r1.returncode == 0, r1.stderr
        first = (tmp_path / "out" / "round_1" / "samples.jsonl").read_bytes()
        r2 = run_cli(["agent", "run", str(config), "--round", "2", *base])
        assert r2.returncode == 0, r2.stderr
        assert (tmp_path / "out" / "round_1" / "samples.jsonl").read_bytes() == first
        s2 = read_jsonl(tmp_path / "out" / "round_2" / "samples.jsonl")
        assert s2 and {s["round"] for s in s2} == {2} and {s["instance"] for s in s2} == {"median-fix"}
    st = run_cli(["agent", "stats", str(tmp_path / "out"), "--json"])
    assert st.returncode == 0, st.stderr
    summary = json.loads(st.stdout)
    assert list(summary) == ["round_1", "round_2"]
    assert summary["round_2"] == {"rollouts": 1, "statuses": {"submitted": 1}, "success": 1, "mean_reward": 1.0,
                                  "samples": len(s2), "agent_turns": sum(s["purpose"] == "main" for s in s2),
                                  "auxiliary_calls": sum(s["purpose"] != "main" for s in s2)}
    assert run_cli(["agent", "stats", str(tmp_path / "nothing")]).returncode == 2
