"""--executor ray on a local Ray instance started here (two worker actors, bounded CPUs and time)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from dialogforge.engine import Engine, make_executor  # noqa: E402
from dialogforge.testing.fake_server import FakeServer  # noqa: E402
from dialogforge.workflows.generate import GenerateOptions, generate  # noqa: E402

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def write_prompts(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question number {i}"}) + "\n" for i in range(n)))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def engine_for(srv: FakeServer, store: Path, executor: str) -> Engine:
    eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m", "max_retries": 1,
                                                   "timeout": 10, "concurrency": 8}}}, store=store)
    if executor == "ray":
        eng.executor = make_executor("ray", workers=2)
    return eng


async def test_generate_on_ray_matches_local(ray_instance, tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 12)
    outs = {}
    async with FakeServer(latency=0.01) as srv:
        for ex in ("local", "ray"):
            eng = engine_for(srv, tmp_path / f"{ex}.sqlite", ex)
            res = await generate(eng, inp, tmp_path / f"{ex}.jsonl", GenerateOptions(n=2), progress=False)
            await eng.aclose()
            assert (res.done, res.failed) == (12, 0)
            outs[ex] = sorted(rows(tmp_path / f"{ex}.jsonl"), key=lambda r: (r["id"], r["sample"]))
            calls = list(eng.store.calls(res.run_id))
            assert len(calls) == 24 and all(c["item_id"] for c in calls)  # the driver logged every call
    for r in outs["local"] + outs["ray"]:
        r.pop("model", None)
    assert outs["ray"] == outs["local"]


async def test_killed_worker_loses_and_duplicates_nothing(ray_instance, tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 40)
    out = tmp_path / "out.jsonl"
    async with FakeServer(latency=0.15) as srv:
        eng = engine_for(srv, tmp_path / "s.sqlite", "ray")
        executor = eng.executor
        run = asyncio.ensure_future(generate(eng, inp, out, GenerateOptions(n=2), concurrency=8, progress=False))
        while srv.count < 12:
            await asyncio.sleep(0.05)
        victim = executor.actors[0]  # type: ignore[attr-defined]
        pid = await victim.pid.remote()
        os.kill(pid, signal.SIGKILL)
        res = await asyncio.wait_for(run, 180)
        await eng.aclose()
    assert executor.replaced >= 1  # type: ignore[attr-defined]
    assert (res.done, res.failed) == (40, 0)
    got = rows(out)
    assert sorted((r["id"], r["sample"]) for r in got) == sorted((f"p{i}", k) for i in range(40) for k in range(2))
    keys = [k for (k,) in eng.store.db.execute(
        "SELECT cache_key FROM calls WHERE run_id=? AND response IS NOT NULL", (res.run_id,))]
    assert len(keys) == len(set(keys)) == 80  # no call whose answer reached the driver was sent again


def _strip(rec: dict, volatile: tuple[str, ...]) -> dict:
    return {k: (_strip(v, volatile) if isinstance(v, dict) else v) for k, v in rec.items() if k not in volatile}


async def test_persona_run_on_ray_matches_local(ray_instance, tmp_path):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persona"))
    import persona_fake as F
    from dialogforge.workflows import persona

    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 8)
    got = {}
    async with FakeServer(responder=F.responder) as srv:
        for ex in ("local", "ray"):
            cfg = F.config(srv.base_url, tmp_path / ex, seeds=seeds, turns=2, concurrency=8)
            engine, pcfg = persona.load(cfg)
            if ex == "ray":
                engine.executor = make_executor("ray", workers=2)
            try:
                res = await persona.arun(engine=engine, persona_config=pcfg, date="2026-03-04", progress=False)
            finally:
                await engine.aclose()
            got[ex] = sorted((_strip(r, ("latency", "created_at")) for r in F.read_jsonl(res.raw_path)),
                             key=lambda r: r["id"])
    assert len(got["local"]) == 8
    assert got["ray"] == got["local"]


async def test_agent_run_on_ray_matches_local(ray_instance, tmp_path):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
    from agent_helpers import EXAMPLES, FAST_ENV, read_jsonl, short_shell_responder
    from dialogforge.workflows.agent import load_tasks, parse_agent_config, round_outputs, run_agent

    tasks = load_tasks(EXAMPLES / "tasks.jsonl")
    cfg = parse_agent_config({"repeats": 2, "rounds": 1, "concurrency": 4, "max_tokens": 300,
                              "limits": {"step_limit": 8},
                              "environment": {"timeout": 30, "eval_timeout": 60, "env": FAST_ENV}})
    got = {}
    async with FakeServer(responder=short_shell_responder) as srv:
        for ex in ("local", "ray"):
            engine = Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                                       "roles": {"agent": "gen", "summary": "gen"}}, store=tmp_path / f"{ex}.sqlite")
            if ex == "ray":
                engine.executor = make_executor("ray", workers=2)
            async with engine:
                res = await run_agent(engine, cfg, tasks, tmp_path / ex, progress=False)
            assert res.rounds[1].done == 2 * len(tasks)
            paths = round_outputs(tmp_path / ex, 1)
            got[ex] = {name: sorted((_strip(r, ("total_s", "timings", "run")) for r in
                                     read_jsonl(paths[name])), key=lambda r: json.dumps(r, sort_keys=True))
                       for name in ("samples", "index")}
    assert len(got["local"]["samples"]) == 2 * len(tasks) * 2
    assert got["ray"] == got["local"]
