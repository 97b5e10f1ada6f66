"""LLM access against the loopback fake server: retries, limits, keys, structured output, cache."""
from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel, Field

from dialogforge.engine import Engine
from dialogforge.engine.errors import BadRequestError, RateLimitError, StructuredOutputError
from dialogforge.testing.fake_server import FakeServer


def engine_for(srv: FakeServer, tmp_path, **endpoint) -> Engine:
    ep = {"base_url": srv.base_url, "model": "m", "max_retries": 4, "timeout": 5, **endpoint}
    return Engine.from_dict({"endpoints": {"main": ep}, "roles": {"generator": "main"}},
                            store=tmp_path / "store.sqlite")


USER = [{"role": "user", "content": "hello"}]


async def test_retries_429_honouring_retry_after(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path)
        srv.inject(status=429, count=2, retry_after=0.3)
        t0 = time.monotonic()
        r = await eng.chat(USER)
        elapsed = time.monotonic() - t0
        await eng.aclose()
    assert r.text and r.finish_reason == "stop"
    assert srv.count == 3
    assert elapsed >= 0.55  # two waits of Retry-After 0.3 s
    assert eng.stats.retries == 2


async def test_retries_500_and_dropped_connection(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path)
        srv.inject(status=503, count=1, retry_after=0)
        srv.inject(drop=True, count=1)
        r = await eng.chat(USER)
        await eng.aclose()
    assert r.text
    assert srv.count == 3


async def test_4xx_fails_at_once_with_server_message(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path)
        srv.inject(status=400, count=1, message="max_tokens is too large")
        with pytest.raises(BadRequestError, match="max_tokens is too large"):
            await eng.chat(USER)
        await eng.aclose()
    assert srv.count == 1


async def test_gives_up_after_max_retries(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path, max_retries=2)
        srv.inject(status=429, count=10, retry_after=0)
        with pytest.raises(RateLimitError):
            await eng.chat(USER)
        await eng.aclose()
    assert srv.count == 3


async def test_aimd_backs_off_on_429_and_recovers(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path, concurrency=16)
        llm = eng.llm("generator")
        srv.inject(status=429, count=1, retry_after=0)
        await eng.chat(USER)
        assert 8 <= llm.limiter.limit < 9  # halved once, then one success added 1/8
        await asyncio.gather(*(eng.chat([{"role": "user", "content": f"q{i}"}]) for i in range(40)))
        assert llm.limiter.limit > 10  # additive increase after successes
        await eng.aclose()


async def test_keys_rotate_and_never_reach_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_A_API_KEY", "sk-secret-aaaa")
    monkeypatch.setenv("TEAM_B_API_KEY", "sk-secret-bbbb")
    async with FakeServer(api_keys={"sk-secret-aaaa", "sk-secret-bbbb"}) as srv:
        eng = engine_for(srv, tmp_path, key_names=["TEAM_A", "TEAM_B"])
        srv.inject(status=500, count=1, message="upstream said sk-secret-aaaa failed")
        await asyncio.gather(*(eng.chat([{"role": "user", "content": f"q{i}"}]) for i in range(20)))
        await eng.aclose()
    assert srv.keys_seen["sk-secret-aaaa"] >= 9 and srv.keys_seen["sk-secret-bbbb"] >= 9
    eng.store.drain()
    assert sum(1 for _ in eng.store.db.execute('SELECT 1 FROM calls')) >= 21  # the calls are there
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.sqlite*"))
    assert b"sk-secret" not in raw


async def test_missing_key_env_is_a_config_error(tmp_path):
    from dialogforge.engine.errors import ConfigError
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path, api_key_env="NOPE_API_KEY")
        with pytest.raises(ConfigError, match="NOPE_API_KEY"):
            eng.llm("generator")


async def test_rpm_bucket_paces_requests_per_key(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path, rpm=600)  # 10/s with a 10-second burst of 100
        t0 = time.monotonic()
        await asyncio.gather(*(eng.chat([{"role": "user", "content": f"q{i}"}]) for i in range(115)))
        elapsed = time.monotonic() - t0
        await eng.aclose()
    assert srv.count == 115
    assert elapsed >= 1.3  # 15 beyond the burst at 10/s


class Verdict(BaseModel):
    score: float = Field(ge=1, le=5)
    feedback: str


async def test_structured_output_repairs_invalid_answers(tmp_path):
    replies = iter(['{"score": 9, "feedback": "too high"}', "not json at all", '{"score": 3.5, "feedback": "fine"}'])
    async with FakeServer(responder=lambda body: next(replies)) as srv:
        eng = engine_for(srv, tmp_path)
        r = await eng.chat(USER, schema=Verdict)
        await eng.aclose()
    assert r.parsed == Verdict(score=3.5, feedback="fine")
    assert srv.count == 3
    fmt = srv.requests[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["properties"]["score"]["maximum"] == 5
    repair = srv.requests[1]["messages"][-1]["content"]
    assert "score" in repair and "not a valid JSON" in repair


async def test_structured_output_never_invents_a_value(tmp_path):
    async with FakeServer(responder=lambda body: "I refuse") as srv:
        eng = engine_for(srv, tmp_path)
        with pytest.raises(StructuredOutputError):
            await eng.chat(USER, schema=Verdict, max_repairs=1)
        await eng.aclose()
    assert srv.count == 2


async def test_cache_serves_identical_calls_and_sample_index_splits_them(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path)
        a = await eng.chat(USER, temperature=0.7)
        b = await eng.chat(USER, temperature=0.7)
        c = await eng.chat(USER, temperature=0.7, sample=1)
        d = await eng.chat(USER, temperature=0.2)
        await eng.aclose()
    assert not a.cached and b.cached and not c.cached and not d.cached
    assert a.text == b.text
    assert srv.count == 3


async def test_a_new_sample_is_a_new_draw_even_with_a_fixed_seed(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path, params={"seed": 7, "temperature": 0.8})
        a = await eng.chat(USER)
        b = await eng.chat(USER, sample=2)
        await eng.aclose()
    assert [r["seed"] for r in srv.requests] == [7, 9]
    assert a.text != b.text


async def test_streaming_assembles_text_and_tool_calls(tmp_path):
    call = {"id": "call_1", "type": "function", "function": {"name": "run_shell", "arguments": '{"cmd": "ls -la"}'}}
    async with FakeServer(responder=lambda body: {"content": None, "tool_calls": [call]}) as srv:
        eng = engine_for(srv, tmp_path)
        tools = [{"type": "function", "function": {"name": "run_shell", "parameters": {"type": "object"}}}]
        r = await eng.chat(USER, tools=tools, stream=True)
        await eng.aclose()
    assert srv.requests[0]["stream"] is True and srv.requests[0]["tools"] == tools
    assert r.finish_reason == "tool_calls"
    assert r.tool_calls == [call]
    assert r.message["tool_calls"] == [call]


async def test_wrong_model_is_reported_before_the_run(tmp_path):
    from dialogforge.engine.errors import ConfigError
    async with FakeServer(models=["served-model"]) as srv:
        eng = engine_for(srv, tmp_path, model="typo-model")
        with pytest.raises(ConfigError, match="does not serve model 'typo-model'.*served-model"):
            await eng.preflight(["generator"])
        await eng.aclose()


async def test_unreachable_endpoint_is_one_clear_error(tmp_path):
    from dialogforge.engine.errors import ConfigError
    eng = Engine.from_dict({"endpoints": {"main": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}},
                           store=tmp_path / "s.sqlite")
    with pytest.raises(ConfigError, match="unreachable"):
        await eng.preflight(["generator"])
    await eng.aclose()


async def test_timeouts_are_retried_then_reported(tmp_path):
    from dialogforge.engine.errors import APITimeoutError
    async with FakeServer(latency=0.5) as srv:
        eng = engine_for(srv, tmp_path, timeout=0.1, max_retries=1)
        with pytest.raises(APITimeoutError):
            await eng.chat(USER)
        await eng.aclose()
    assert srv.count == 2  # the first try and one retry


async def test_tpm_bucket_paces_tokens_per_key(tmp_path):
    long_answer = " ".join(["word"] * 250)  # the server counts ~251 completion tokens
    async with FakeServer(responder=lambda body: long_answer) as srv:
        # 6,000 tokens a minute = 100/s with a 1,000-token burst; each call is estimated at ~280 tokens
        # before it is sent and charged its real usage after, so six calls need ~1,500 tokens
        eng = engine_for(srv, tmp_path, tpm=6000)
        t0 = time.monotonic()
        await asyncio.gather(*(eng.chat([{"role": "user", "content": f"q{i}"}], max_tokens=250) for i in range(6)))
        elapsed = time.monotonic() - t0
        await eng.aclose()
    assert srv.count == 6
    assert elapsed >= 4.0  # ~500 tokens beyond the burst, refilled at 100 tokens/s


async def test_cost_follows_configured_prices_and_is_logged(tmp_path):
    async with FakeServer() as srv:
        eng = engine_for(srv, tmp_path, price={"input_per_1m": 2.0, "output_per_1m": 8.0})
        r = await eng.chat(USER)
        await eng.aclose()
    expected = (r.usage.prompt_tokens * 2.0 + r.usage.completion_tokens * 8.0) / 1e6
    assert eng.stats.cost == pytest.approx(expected) and expected > 0
    logged = eng.store.db.execute("SELECT cost FROM calls WHERE error IS NULL").fetchone()[0]
    assert logged == pytest.approx(expected)
