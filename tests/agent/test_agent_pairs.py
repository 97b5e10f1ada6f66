"""Preference pairs from repeats: exact shared inputs, the better rollout's reply chosen."""
from __future__ import annotations

import json
import subprocess
import sys

from agent_helpers import EXAMPLES, SIGNAL, main_step, plan_for, read_jsonl
from test_agent_rollout import agent_cfg, make_engine

from dialogforge.formats import export
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks, run_agent
from dialogforge.workflows.agent.pairs import preference_pairs, samples_files


async def test_pairs_from_repeats_export_as_preference_data(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    seen_first_step = []

    def responder(body):
        task = body["messages"][1]["content"]
        step = main_step(body)
        if step == 1:
            seen_first_step.append(1)
            if len(seen_first_step) % 2 == 0:  # every second rollout gives up at once
                return f"STEP 1: nothing to do here.\n\n```bash\necho {SIGNAL}\n```"
        plan = plan_for(task, short=True)
        return f"STEP {step}: next.\n\n```bash\n{plan[min(step, len(plan)) - 1]}\n```"

    async with FakeServer(responder=responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, agent_cfg(repeats=2, context={}), tasks, tmp_path / "out", progress=False)
    index = read_jsonl(tmp_path / "out" / "round_1" / "index.jsonl")
    assert sorted(r["reward"] for r in index) == [0.0, 1.0]

    pairs = list(preference_pairs(samples_files(tmp_path / "out"), min_margin=0.5))
    assert len(pairs) == 1
    [p] = pairs
    samples = read_jsonl(tmp_path / "out" / "round_1" / "samples.jsonl")
    first = [s for s in samples if s["step"] == 1]
    assert len(first) == 2 and first[0]["messages"][:-1] == first[1]["messages"][:-1] == p["messages"]
    assert "sed -i" in p["chosen"][0]["content"] and SIGNAL in p["rejected"][0]["content"]
    assert (p["reward_chosen"], p["reward_rejected"]) == (1.0, 0.0)
    assert not list(preference_pairs(samples_files(tmp_path / "out"), min_margin=1.5))  # margin respected

    pairs_file = tmp_path / "pairs.jsonl"
    r = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "agent", "pairs", str(tmp_path / "out"),
                        "-o", str(pairs_file)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["id"] for line in pairs_file.read_text().splitlines()] == [p["id"]]
    rep = export(pairs_file, tmp_path / "dpo.jsonl", "sharegpt", task="preference")
    assert rep.written == 1 and not rep.rejected
    row = read_jsonl(tmp_path / "dpo.jsonl")[0]
    assert row["chosen"]["from"] == "gpt" and row["rejected"]["from"] == "gpt"
    assert len(row["conversations"]) % 2 == 1  # an odd-length prompt, as LLaMA-Factory's ranking data needs
