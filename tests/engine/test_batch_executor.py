"""Batch mode over real HTTP: the fake server's files and batches endpoints, rounds, faults, adoption."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dialogforge.engine import ConfigError, Engine, make_executor
from dialogforge.engine.executors.batch_api import jobs
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.generate import GenerateOptions, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persona"))
import persona_fake as F  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def write_prompts(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question number {i}"}) + "\n" for i in range(n)))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def engine_for(srv: FakeServer, store: Path, batch: bool, **opts) -> Engine:
    eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m", "max_retries": 1,
                                                   "timeout": 10, "params": {"seed": 7},
                                                   "price": {"input_per_1m": 2.0, "output_per_1m": 8.0}}}},
                           store=store)
    if batch:
        eng.executor = make_executor("batch", poll=0.05, **opts)
    return eng


async def test_generate_in_batch_mode_matches_live_in_one_round(tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 30)
    out = {}
    async with FakeServer(batch_delay=0.2) as srv:
        for mode in ("live", "batch"):
            eng = engine_for(srv, tmp_path / f"{mode}.sqlite", mode == "batch")
            res = await generate(eng, inp, tmp_path / f"{mode}.jsonl", GenerateOptions(n=2), progress=False)
            await eng.aclose()
            assert (res.done, res.failed) == (30, 0)
            out[mode] = sorted(rows(tmp_path / f"{mode}.jsonl"), key=lambda r: (r["id"], r["sample"]))
        assert srv.batches is not None and srv.batches.created == 1  # single-turn: one round, one job
    assert out["batch"] == out["live"]
    js = jobs(eng.store, res.run_id)
    assert [(j["status"], j["requests"], j["completed"]) for j in js] == [("completed", 60, 60)]
    live_cost = sum(c for (c,) in engine_for(srv, tmp_path / "live.sqlite", False).store.db.execute(
        "SELECT cost FROM calls WHERE response IS NOT NULL"))
    assert js[0]["cost"] == pytest.approx(live_cost / 2)  # batch price: half the live price by default
    calls = list(eng.store.calls(res.run_id))
    assert len(calls) == 60 and all(c["response"] and c["item_id"] for c in calls)  # ordinary calls in the store


async def test_persona_in_batch_rounds_matches_live(tmp_path):
    from dialogforge.workflows import persona
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 6)
    got = {}
    async with FakeServer(responder=F.responder) as srv:
        for mode in ("live", "batch"):
            cfg = F.config(srv.base_url, tmp_path / mode, seeds=seeds, turns=3, concurrency=4)
            engine, pcfg = persona.load(cfg)
            if mode == "batch":
                engine.executor = make_executor("batch", poll=0.02)
            try:
                res = await persona.arun(engine=engine, persona_config=pcfg, date="2026-03-04", progress=False)
            finally:
                await engine.aclose()
            got[mode] = sorted(({k: v for k, v in r.items() if k != "created_at"} for r in F.read_jsonl(res.raw_path)),
                               key=lambda r: r["id"])
        # rewrite, answer, (question, answer) x 2, judge: 7 rounds; judge and generator share none here
        assert srv.batches is not None
        assert 6 <= srv.batches.created <= 8
    assert len(got["live"]) == 6 and got["batch"] == got["live"]


async def test_failed_and_expired_requests_go_to_the_next_round_then_fail(tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 10)
    async with FakeServer() as srv:
        assert srv.batches is not None
        srv.batches.fail_requests(2, status=500, message="overloaded")
        srv.batches.expire_next(1, answered=0.5)  # the first job expires half done
        eng = engine_for(srv, tmp_path / "s.sqlite", True)
        res = await generate(eng, inp, tmp_path / "out.jsonl", progress=False)
        assert (res.done, res.failed) == (10, 0)
        assert srv.batches.created == 2
        # a request that keeps failing fails its item after max_attempts rounds, with the provider's reason
        srv.batches.fail_requests(3, status=500, message="still overloaded")
        inp2 = write_prompts(tmp_path / "in2.jsonl", 1)
        eng2 = engine_for(srv, tmp_path / "s2.sqlite", True, max_attempts=3)
        res2 = await generate(eng2, inp2, tmp_path / "out2.jsonl", progress=False)
        await eng.aclose()
        await eng2.aclose()
    assert (res2.done, res2.failed) == (0, 1)
    fail = rows(tmp_path / "out2.failures.jsonl")[0]
    assert "still overloaded" in fail["error"]


async def test_a_server_without_batches_is_refused_before_anything_runs(tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 3)
    async with FakeServer(batches=False) as srv:
        eng = engine_for(srv, tmp_path / "s.sqlite", True)
        with pytest.raises(ConfigError, match="no files/batches endpoints"):
            await generate(eng, inp, tmp_path / "out.jsonl", progress=False)
        await eng.aclose()
        assert srv.count == 0


async def test_a_round_over_the_provider_limits_is_split_into_several_jobs(tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 25)
    async with FakeServer() as srv:
        assert srv.batches is not None
        srv.batches.max_requests = 10  # the provider refuses bigger files
        eng = engine_for(srv, tmp_path / "s.sqlite", True, max_requests=10)
        res = await generate(eng, inp, tmp_path / "out.jsonl", progress=False)
        await eng.aclose()
        assert (res.done, res.failed) == (25, 0)
        assert srv.batches.created == 3 and srv.batches.stats()["by_status"] == {"completed": 3}
    assert sorted(j["requests"] for j in jobs(eng.store, res.run_id)) == [5, 10, 10]
    # and by bytes: each request line is ~150 bytes here
    inp2 = write_prompts(tmp_path / "in2.jsonl", 6)
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path / "s2.sqlite", True, max_bytes=400)
        res = await generate(eng, inp2, tmp_path / "out2.jsonl", progress=False)
        await eng.aclose()
        assert res.done == 6 and srv.batches is not None and srv.batches.created == 3
