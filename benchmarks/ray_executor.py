"""--executor ray against the local executor, on this machine.

The local Ray instance (2 CPUs) is started once first and timed on its own; each figure below
is then one whole run (`run_agent` / `generate`), the Ray actors' start included.

1. CPU-heavy agent rollouts: the example tasks (edit, then a timed evaluation in the sandbox)
   x repeats, scripted agent behind the fake server; rollouts/s for local, Ray with 1 worker and
   Ray with 2 workers.
2. Per-item overhead of the Ray path on single-call items: `generate` over N prompts with a
   zero-latency server, local vs Ray (2 workers); (t_ray - t_local) / N.

    .venv/bin/python benchmarks/ray_executor.py --repeats 4 --prompts 400
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
sys.path.insert(0, str(REPO / "tests" / "agent"))

from agent_helpers import EXAMPLES, FAST_ENV, short_shell_responder  # noqa: E402

from dialogforge.engine import Engine, make_executor  # noqa: E402
from dialogforge.testing.fake_server import FakeServer  # noqa: E402
from dialogforge.workflows.agent import load_tasks, parse_agent_config, run_agent  # noqa: E402
from dialogforge.workflows.generate import GenerateOptions, generate  # noqa: E402


def executor_for(kind: str):
    if kind == "local":
        return make_executor("local")
    return make_executor("ray", workers=int(kind.split("-")[1]))


async def agent_rollouts(kind: str, repeats: int, tmp: Path) -> tuple[int, float]:
    tasks = load_tasks(EXAMPLES / "tasks.jsonl")
    cfg = parse_agent_config({"repeats": repeats, "rounds": 1, "concurrency": 8, "max_tokens": 300,
                              "limits": {"step_limit": 8},
                              "environment": {"timeout": 60, "eval_timeout": 120, "env": FAST_ENV}})
    async with FakeServer(responder=short_shell_responder) as srv:
        engine = Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                                   "roles": {"agent": "gen", "summary": "gen"}}, store=tmp / f"{kind}.sqlite")
        engine.executor = executor_for(kind)
        t0 = time.perf_counter()
        async with engine:
            res = await run_agent(engine, cfg, tasks, tmp / kind, progress=False)
        dt = time.perf_counter() - t0
    assert res.rounds[1].failed == 0, res.rounds[1]
    return res.rounds[1].done, dt


async def single_calls(kind: str, n: int, tmp: Path) -> float:
    tmp.mkdir(parents=True, exist_ok=True)
    inp = tmp / "prompts.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(n)))
    async with FakeServer(keep_requests=False) as srv:
        engine = Engine.from_dict({"endpoints": {"m": {"base_url": srv.base_url, "model": "m"}}},
                                  store=tmp / f"gen-{kind}.sqlite")
        engine.executor = executor_for(kind)
        t0 = time.perf_counter()
        async with engine:
            res = await generate(engine, inp, tmp / f"gen-{kind}.jsonl", GenerateOptions(), concurrency=64,
                                 progress=False)
        dt = time.perf_counter() - t0
    assert res.done == n
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=8, help="rollouts per example task")
    ap.add_argument("--prompts", type=int, default=400, help="single-call items for the overhead figure")
    args = ap.parse_args()
    import ray
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"local Ray instance started in {time.perf_counter() - t0:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # a run of one single-call item: what starting the actors (and a run) costs
        start = {k: asyncio.run(single_calls(k, 1, tmp / k)) for k in ("local", "ray-1", "ray-2")}
        print("one-item run (start-up): " + ", ".join(f"{k} {v:.2f} s" for k, v in start.items()), flush=True)
        print("agent rollouts (example tasks, timed evaluation in each sandbox):")
        for kind in ("local", "ray-1", "ray-2"):
            done, dt = asyncio.run(agent_rollouts(kind, args.repeats, tmp))
            steady = dt - start[kind]
            print(f"  {kind:6s} {done} rollouts in {dt:6.1f} s = {done / dt:5.2f} rollouts/s "
                  f"({done / steady:5.2f}/s without the start-up)", flush=True)
        print(f"single-call items ({args.prompts} prompts, zero-latency server):")
        t_local = asyncio.run(single_calls("local", args.prompts, tmp))
        t_ray = asyncio.run(single_calls("ray-2", args.prompts, tmp))
        per = ((t_ray - start["ray-2"]) - (t_local - start["local"])) / (args.prompts - 1) * 1000
        print(f"  local {t_local:6.2f} s, ray-2 {t_ray:6.2f} s: {per:.1f} ms more per item once the actors run",
              flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
