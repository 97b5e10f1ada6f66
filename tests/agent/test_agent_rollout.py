"""Rollouts against the fake server with scripted agents: diff, reward, exact SFT inputs, aux calls."""
from __future__ import annotations

import pytest

from agent_helpers import EXAMPLES, FAST_ENV, read_jsonl, shell_responder, short_shell_responder, tool_responder
from dialogforge.engine import Engine
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks, parse_agent_config, run_agent

REWARD = {"metric": "speedup", "tiers": [{"min": 2.0, "reward": 1.0}, {"min": 1.2, "reward": 0.5}],
          "success_reward": 0.1, "no_metric_reward": 1.0, "failure_reward": 0.0}


def make_engine(srv, tmp_path):
    return Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                             "roles": {"agent": "gen", "summary": "gen"}}, store=tmp_path / "store.sqlite")


def agent_cfg(**over):
    raw = {"repeats": 1, "concurrency": 1, "temperature": 0.0, "max_tokens": 300,
           "limits": {"step_limit": 8},
           "context": {"observation_max_chars": 1000, "observation_summary_tokens": 600,
                       "max_context_tokens": 450, "keep_recent_messages": 2},
           "environment": {"type": "local", "timeout": 30, "eval_timeout": 60, "env": FAST_ENV}, "reward": REWARD}
    raw.update(over)
    return parse_agent_config(raw)


def requests_in_order(srv):
    return [b for b in srv.requests]


async def test_shell_rollout_diff_reward_and_exact_samples(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "dedupe-speed"]
    async with FakeServer(responder=shell_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            res = await run_agent(engine, agent_cfg(), tasks, tmp_path / "out", progress=False)
        assert res.rounds[1].done == 1 and res.rounds[1].failed == 0
        out = tmp_path / "out" / "round_1"
        samples = read_jsonl(out / "samples.jsonl")
        [traj] = read_jsonl(out / "trajectories.jsonl")
        [idx] = read_jsonl(out / "index.jsonl")

        # outcome: submitted, the change measured as a >2x speedup with green tests -> top tier
        assert traj["status"] == "submitted"
        assert traj["success"] is True and traj["reward"] == 1.0
        assert traj["evaluation"]["metrics"]["speedup"] >= 2.0
        assert traj["reward_rule"]["rule"] == "tier"
        assert "-    seen = []" in traj["diff"] and "+    seen = set()" in traj["diff"]
        assert "+++ b/dedupe.py" in traj["diff"] and "tests/" not in traj["diff"]
        assert idx["status"] == "submitted" and idx["n_samples"] == len(samples)

        # every request the server received is exactly one sample's input, in order
        reqs = requests_in_order(srv)
        assert len(reqs) == len(samples)
        samples.sort(key=lambda s: s["sample_index"])
        for body, s in zip(reqs, samples):
            assert s["messages"][:-1] == body["messages"]
            assert s["messages"][-1]["role"] == "assistant"
        purposes = [s["purpose"] for s in samples]
        assert "observation_summary" in purposes and "history_summary" in purposes
        main = [s for s in samples if s["purpose"] == "main"]
        assert len(main) == traj["steps"] == 5
        assert all(s["reward"] == 1.0 and s["success"] is True and s["round"] == 1 and s["repeat"] == 0 for s in samples)
        assert [s["format_error"] for s in main] == [False] * 5 and all("format_error" not in s for s in samples
                                                                         if s["purpose"] != "main")
        # after the history summary the model saw a rebuilt context, and the sample holds that one
        rebuilt = [s for s in main if any("were condensed" in (m.get("content") or "") for m in s["messages"])]
        assert rebuilt, "a main call after compression must carry the summary message"
        for s in samples:  # roles alternate: the summary is joined to the task, never a second user turn
            roles = [m["role"] for m in s["messages"]]
            assert not any(a == b == "user" for a, b in zip(roles, roles[1:])), roles
        assert len(rebuilt[-1]["messages"]) < len(traj["history"])
        # the full history keeps every message, never compressed
        assert sum(1 for m in traj["history"] if m["role"] == "assistant") == 5
        assert [c["purpose"] for c in traj["calls"]] == purposes
        assert traj["usage"]["by_purpose"]["main"]["calls"] == 5
        kinds = {e["kind"] for e in traj["context_events"]}
        assert {"observation_summary", "history_summary"} <= kinds
        for e in traj["context_events"]:
            if e["kind"] == "history_summary":  # measured by the server on the next call: smaller than before
                assert e["after_tokens"] < e["before_tokens"]
        # the run store logged each call, in order, under its own purpose
        engine.store.flush()
        logged = list(engine.store.calls(traj["run"], traj["id"]))
        assert [c["purpose"] for c in logged] == purposes
        assert all(c["request"]["messages"] == s["messages"][:-1] for c, s in zip(logged, samples))
        obs = traj["observations"]
        assert [o["returncode"] for o in obs][:2] == [0, 0] and len(obs) == 4
        assert obs[1].get("summarized") is True


async def test_tool_call_rollout_records_tools_and_tool_messages(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    cfg = agent_cfg(action_mode="tool_calls", context={"observation_max_chars": 4000})
    async with FakeServer(responder=tool_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, cfg, tasks, tmp_path / "out", progress=False)
        samples = sorted(read_jsonl(tmp_path / "out" / "round_1" / "samples.jsonl"), key=lambda s: s["sample_index"])
        [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
        assert traj["status"] == "submitted" and traj["success"] is True and traj["reward"] == 1.0
        assert traj["reward_rule"]["rule"] == "metric_missing"
        assert "+        return (ordered[mid - 1] + ordered[mid]) / 2" in traj["diff"]
        assert len(samples) == len(srv.requests) == 5
        for body, s in zip(srv.requests, samples):
            assert s["messages"][:-1] == body["messages"]
            assert s["tools"] == body["tools"]
            assert {t["function"]["name"] for t in s["tools"]} == {"bash", "submit"}
        last = samples[-1]["messages"]
        assert last[-1]["tool_calls"][0]["function"]["name"] == "submit"
        tool_msgs = [m for m in traj["history"] if m["role"] == "tool"]
        assert [m["tool_call_id"] for m in tool_msgs] == [f"call_{i}" for i in range(1, 6)]
        assert tool_msgs[0]["content"].startswith("exit code: 0")


async def test_env_error_is_recorded_not_reward_zero(tmp_path):
    tasks = load_tasks(EXAMPLES / "tasks.jsonl")[:1]
    tasks[0].workspace = str(tmp_path / "missing-folder")
    async with FakeServer(responder=shell_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, agent_cfg(), tasks, tmp_path / "out", progress=False)
        [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
        assert traj["status"] == "env_error" and traj["reward"] is None and traj["success"] is None
        assert "missing-folder" in traj["error"]
        assert srv.requests == []  # no model call was made for a sandbox that never came up


async def test_step_limit_and_format_errors(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]

    def chatty(body):  # never gives a command block
        return "I think the bug is in the median function."
    async with FakeServer(responder=chatty) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, agent_cfg(limits={"step_limit": 5, "format_error_limit": 3}), tasks,
                            tmp_path / "out", progress=False)
        [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
        assert traj["status"] == "format_error_limit" and traj["steps"] == 3
        # evaluated as it stands: tests still fail, never submitted -> failure reward, but recorded as success False
        assert traj["success"] is False and traj["reward"] == 0.0
        assert "could not be run" in traj["history"][3]["content"]
        samples = read_jsonl(tmp_path / "out" / "round_1" / "samples.jsonl")
        assert [s["format_error"] for s in samples if s["purpose"] == "main"] == [True, True, True]

    def looper(body):
        return "Listing again.\n```bash\nls\n```"
    async with FakeServer(responder=looper) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, agent_cfg(limits={"step_limit": 3}), tasks, tmp_path / "out2", progress=False)
        [traj] = read_jsonl(tmp_path / "out2" / "round_1" / "trajectories.jsonl")
        assert traj["status"] == "step_limit" and traj["steps"] == 3 and len(srv.requests) == 3
        assert traj["reward_rule"]["rule"] == "not_submitted" and traj["diff"] == "" and traj["success"] is False


async def test_tool_mode_samples_export_as_function_call_and_observation(tmp_path):
    export_mod = pytest.importorskip("dialogforge.formats.export")
    from dialogforge.formats.select import Selection
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id != "primes-speed"]
    cfg = agent_cfg(action_mode="tool_calls", repeats=2, concurrency=2, context={})
    async with FakeServer(responder=tool_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, cfg, tasks, tmp_path / "out", progress=False)
    samples = tmp_path / "out" / "round_1" / "samples.jsonl"
    assert len(read_jsonl(samples)) == 2 * 2 * 5
    rep = export_mod.export([str(samples)], tmp_path / "sg.jsonl", "sharegpt", selection=Selection(only_success=True))
    assert rep.written == 20 and sum(rep.rejected.values()) == 0
    rows = read_jsonl(tmp_path / "sg.jsonl")
    last = max(rows, key=lambda r: len(r["conversations"]))
    tags = [t["from"] for t in last["conversations"]]
    assert tags[0] == "human" and "function_call" in tags and "observation" in tags and tags[-1] == "function_call"
    assert "bash" in last["tools"]
    rep = export_mod.export([str(samples)], tmp_path / "oa.jsonl", "openai", selection=Selection(min_reward=1.0))
    assert rep.written == 20 and sum(rep.rejected.values()) == 0
    oa = read_jsonl(tmp_path / "oa.jsonl")
    assert any(m.get("tool_calls") for r in oa for m in r["messages"]) and all(r.get("tools") for r in oa)
    # Alpaca has no place for tool calls: tool-mode samples are refused by name, never written half-empty
    rep = export_mod.export([str(samples)], tmp_path / "al.jsonl", "alpaca", selection=Selection(per_turn=True))
    assert rep.written == 0 and set(rep.rejected) == {"alpaca_tools"}


async def test_token_cost_and_wall_time_limits(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]

    def looper(body):
        return "Again.\n```bash\nsleep 0.3; ls\n```"
    cases = [({"token_limit": 900}, "token_limit", {}),
             ({"cost_limit": 0.001}, "cost_limit", {"price": {"input_per_1m": 1.0, "output_per_1m": 2.0}}),
             ({"wall_time_s": 1.0}, "time_limit", {})]
    for i, (limits, status, extra) in enumerate(cases):
        async with FakeServer(responder=looper) as srv:
            engine = make_engine(srv, tmp_path)
            async with engine:
                await run_agent(engine, agent_cfg(limits={"step_limit": 50, **limits}, **extra), tasks,
                                tmp_path / f"out{i}", progress=False)
            [traj] = read_jsonl(tmp_path / f"out{i}" / "round_1" / "trajectories.jsonl")
            assert traj["status"] == status, (status, traj["status"])
            assert 1 <= traj["steps"] < 50 and traj["reward"] == 0.0
            spent = traj["usage"]["prompt_tokens"] + traj["usage"]["completion_tokens"]
            if status == "token_limit":  # stops at the first call that reaches the limit
                before_last = spent - sum(c["prompt_tokens"] + c["completion_tokens"] for c in traj["calls"][-1:])
                assert spent >= 900 > before_last
            if status == "cost_limit":
                assert traj["cost"] >= 0.001
                assert traj["cost"] == pytest.approx(sum(c["prompt_tokens"] * 1e-6 + c["completion_tokens"] * 2e-6
                                                         for c in traj["calls"]), abs=1e-6)
            if status == "time_limit":
                assert traj["timings"]["agent_s"] < 3.0


async def test_model_error_fails_the_item_and_retry_failed_reruns_it(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    async with FakeServer(responder=shell_responder) as srv:
        srv.inject(status=400, count=1, message="context length exceeded")
        engine = make_engine(srv, tmp_path)
        async with engine:
            res = await run_agent(engine, agent_cfg(), tasks, tmp_path / "out", progress=False)
            assert res.rounds[1].failed == 1 and res.rounds[1].done == 0
            fails = read_jsonl(res.rounds[1].failures_path)
            assert fails[0]["id"] == "median-fix@r1#0" and "context length exceeded" in fails[0]["error"]
            assert not (tmp_path / "out" / "round_1" / "trajectories.jsonl").read_text()
            again = await run_agent(engine, agent_cfg(), tasks, tmp_path / "out", retry_failed=True, progress=False)
            assert again.rounds[1].done == 1
        [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
        assert traj["status"] == "submitted" and traj["reward"] == 1.0


async def test_eval_concurrency_serialises_evaluations(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    cfg = agent_cfg(repeats=4, concurrency=4, context={},
                    environment={"env": FAST_ENV, "eval_concurrency": 1})
    async with FakeServer(responder=short_shell_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, cfg, tasks, tmp_path / "out", progress=False)
    trajs = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
    spans = sorted((t["timings"]["eval_start"], t["timings"]["eval_end"]) for t in trajs)
    assert len(spans) == 4 and all(t["success"] for t in trajs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
