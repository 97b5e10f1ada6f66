"""The fake server's OpenAI files and batches endpoints, driven by the official openai SDK."""
from __future__ import annotations

import asyncio
import io

import openai
import orjson
import pytest

from dialogforge.testing.fake_server import FakeServer, default_reply


def _jsonl(rows: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def _requests(n: int, model: str = "m") -> list[dict]:
    return [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": model, "messages": [{"role": "user", "content": f"question {i}"}], "seed": i}}
            for i in range(n)]


async def _submit(client: openai.AsyncOpenAI, rows: list[dict], **meta: str):
    f = await client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(rows))), purpose="batch")
    return await client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                       completion_window="24h", metadata=meta or None)


async def _wait(client: openai.AsyncOpenAI, batch_id: str, timeout: float = 10.0):
    for _ in range(int(timeout / 0.05)):
        b = await client.batches.retrieve(batch_id)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            return b
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch {batch_id} still {b.status}")


def _lines(data: bytes) -> list[dict]:
    return [orjson.loads(ln) for ln in data.splitlines() if ln.strip()]


async def test_batch_round_trip_answers_like_the_chat_endpoint():
    async with FakeServer(batch_delay=0.3) as srv:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k")
        rows = _requests(5)
        b = await _submit(client, rows, run="run-1", round="3")
        assert b.status == "in_progress" and b.metadata == {"run": "run-1", "round": "3"}
        assert (await client.batches.retrieve(b.id)).status == "in_progress"  # the delay holds
        done = await _wait(client, b.id)
        assert done.status == "completed" and done.request_counts.completed == 5 and done.error_file_id is None
        out = _lines((await client.files.content(done.output_file_id)).content)
        assert sorted(o["custom_id"] for o in out) == [f"r{i}" for i in range(5)]
        for o in out:
            body = next(r["body"] for r in rows if r["custom_id"] == o["custom_id"])
            assert o["response"]["status_code"] == 200
            assert o["response"]["body"]["choices"][0]["message"]["content"] == default_reply(body)
        listed = await client.batches.list()
        assert [x.id for x in listed.data] == [b.id]
        assert srv.batches is not None and srv.batches.created == 1


async def test_partial_failures_and_expiry_go_to_the_error_file():
    async with FakeServer() as srv:
        assert srv.batches is not None
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k")
        srv.batches.fail_requests(2, status=500, message="overloaded")
        done = await _wait(client, (await _submit(client, _requests(6))).id)
        assert done.status == "completed"
        assert (done.request_counts.completed, done.request_counts.failed) == (4, 2)
        errs = _lines((await client.files.content(done.error_file_id)).content)
        assert [e["response"]["status_code"] for e in errs] == [500, 500]
        assert errs[0]["response"]["body"]["error"]["message"] == "overloaded"

        srv.batches.expire_next(answered=0.5)
        exp = await _wait(client, (await _submit(client, _requests(4))).id)
        assert exp.status == "expired" and exp.request_counts.completed == 2
        errs = _lines((await client.files.content(exp.error_file_id)).content)
        assert {e["custom_id"] for e in errs} == {"r2", "r3"}
        assert all(e["error"]["code"] == "batch_expired" for e in errs)


async def test_limits_paging_and_bad_input_are_refused():
    async with FakeServer() as srv:
        assert srv.batches is not None
        srv.batches.max_requests = 3
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k")
        too_many = await _submit(client, _requests(4))
        assert too_many.status == "failed" and too_many.errors.data[0].code == "too_many_requests"
        bad = _requests(2)
        bad[1]["url"] = "/v1/embeddings"
        refused = await _submit(client, bad)
        assert refused.status == "failed" and refused.errors.data[0].line == 2
        ids = [(await _submit(client, _requests(1))).id for _ in range(3)]
        page = await client.batches.list(limit=2)
        assert page.has_more and len(page.data) == 2 and page.data[0].id == ids[-1]
        every = [b.id async for b in client.batches.list(limit=2)]  # the SDK pages with after=
        assert len(every) == 5 and set(ids) <= set(every)
        with pytest.raises(openai.BadRequestError):
            await client.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="fine-tune")


async def test_a_server_without_batches_answers_404():
    async with FakeServer(batches=False) as srv:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k")
        with pytest.raises(openai.NotFoundError):
            await client.batches.list()
