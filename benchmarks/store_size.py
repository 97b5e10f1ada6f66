"""Run store bytes per output byte (#15): the store file and its WAL after the run ends, against every
file the run wrote. Runs the real workflows through their Python API against the local fake server.

    .venv/bin/python benchmarks/store_size.py generate --n 20000
    .venv/bin/python benchmarks/store_size.py persona --n 300 --turns 10 [--judge]
    .venv/bin/python benchmarks/store_size.py agent --n 24 --turns 20
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "persona"))  # the scripted persona model the tests use
sys.path.insert(0, str(REPO / "tests" / "agent"))  # and the agent tests' helpers


def sizes(store: Path, outputs: list[Path]) -> tuple[int, int]:
    st = sum(p.stat().st_size for p in (store, Path(f"{store}-wal")) if p.exists())
    return st, sum(p.stat().st_size for p in outputs if p.is_file())


def bench_generate(tmp: Path, n: int, concurrency: int = 256) -> tuple[int, int, float]:
    from dialogforge.engine import Engine
    from dialogforge.testing.fake_server import FakeServer
    from dialogforge.workflows.generate import GenerateOptions, generate
    inp = tmp / "prompts.jsonl"
    with inp.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i}", "prompt": f"Question {i}: explain item {i} in two sentences."}) + "\n")
    out = tmp / "answers.jsonl"
    with FakeServer.background() as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}},
                               store=tmp / "store.sqlite")
        t0 = time.perf_counter()

        async def main():
            try:
                await generate(eng, inp, out, GenerateOptions(), concurrency=concurrency, progress=False)
            finally:
                await eng.aclose()
        asyncio.run(main())
        dt = time.perf_counter() - t0
    eng.store.close()
    st, o = sizes(tmp / "store.sqlite", [out])
    return st, o, dt


def bench_persona(tmp: Path, n: int, turns: int, judge: bool, concurrency: int = 64) -> tuple[int, int, float]:
    import persona_fake as F

    from dialogforge.testing.fake_server import FakeServer
    from dialogforge.workflows import persona
    seeds = F.write_seeds(tmp / "seeds.jsonl", n)
    with FakeServer.background(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp, seeds=seeds, turns=turns, concurrency=concurrency)
        cfg["persona"]["quality"]["judge"] = judge
        t0 = time.perf_counter()
        res = persona.run(cfg, progress=False, store=tmp / "store.sqlite")
        dt = time.perf_counter() - t0
    outs = [res.raw_path, res.filtered_path, res.summary_path]
    st, o = sizes(tmp / "store.sqlite", outs)
    return st, o, dt


def agent_responder(steps: int):
    """A scripted agent that looks around for ``steps - 1`` steps (real commands, real output), then submits."""
    from agent_helpers import SIGNAL, main_step

    looks = ["ls -la", "cat *.py", "head -c 1500 tests/*.py", "python3 -m unittest 2>&1 | tail -5", "wc -l *.py",
             "grep -n def *.py", "python3 bench.py 2>&1 | tail -3"]

    def respond(body: dict):
        step = main_step(body)
        cmd = f"echo {SIGNAL}" if step >= steps else looks[(step - 1) % len(looks)]
        return f"STEP {step}: I check the workspace before changing anything.\n\n```bash\n{cmd}\n```"
    return respond


def bench_agent(tmp: Path, n: int, steps: int, concurrency: int = 8) -> tuple[int, int, float]:
    from agent_helpers import EXAMPLES, FAST_ENV

    from dialogforge.engine import Engine
    from dialogforge.testing.fake_server import FakeServer
    from dialogforge.workflows.agent import load_tasks, parse_agent_config, run_agent
    tasks = load_tasks(EXAMPLES / "tasks.jsonl")
    cfg = parse_agent_config({"repeats": max(1, n // len(tasks)), "concurrency": concurrency, "temperature": 0.7,
                              "limits": {"step_limit": steps + 1},
                              "environment": {"type": "local", "timeout": 30, "eval_timeout": 60, "env": FAST_ENV}})
    out = tmp / "out"
    with FakeServer.background(responder=agent_responder(steps)) as srv:
        eng = Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                                "roles": {"agent": "gen", "summary": "gen"}}, store=tmp / "store.sqlite")
        t0 = time.perf_counter()

        async def main():
            async with eng:
                await run_agent(eng, cfg, tasks, out, progress=False)
        asyncio.run(main())
        dt = time.perf_counter() - t0
    eng.store.close()
    trajs = [json.loads(line) for line in (out / "round_1" / "trajectories.jsonl").read_text().splitlines()]
    steps_done = sorted({t["steps"] for t in trajs})
    print(f"{len(trajs)} rollouts, steps per rollout {steps_done}, status {sorted({t['status'] for t in trajs})}")
    st, o = sizes(tmp / "store.sqlite", [p for p in out.rglob("*") if p.is_file()])
    return st, o, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["generate", "persona", "agent"])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--turns", type=int, default=10, help="persona: turns per dialogue; agent: steps per rollout")
    ap.add_argument("--judge", action="store_true")
    ap.add_argument("-j", "--concurrency", type=int, default=None,
                    help="items at once (default: generate 256, persona 64, agent 8); fewer means smaller commits")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if a.what == "generate":
            st, o, dt = bench_generate(Path(d), a.n, a.concurrency or 256)
            label = f"generate, {a.n:,} single calls, -j {a.concurrency or 256}"
        elif a.what == "agent":
            st, o, dt = bench_agent(Path(d), a.n, a.turns, a.concurrency or 8)
            label = f"agent run, {a.n} rollouts, {a.turns} steps, -j {a.concurrency or 8}"
        else:
            st, o, dt = bench_persona(Path(d), a.n, a.turns, a.judge, a.concurrency or 64)
            label = (f"persona run, {a.n} dialogues, {a.turns} turns, judge {'on' if a.judge else 'off'},"
                     f" -j {a.concurrency or 64}")
    print(f"| {label} | {o / 1e6:.2f} MB | {st / 1e6:.2f} MB | {st / o:.2f}x | {dt:.1f} s |")


if __name__ == "__main__":
    main()
