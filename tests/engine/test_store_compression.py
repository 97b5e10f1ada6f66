"""The store keeps a multi-turn history once, not once per call, and reads every request back byte-equal."""
from __future__ import annotations

import orjson

from dialogforge.engine import Engine, Records
from dialogforge.testing.fake_server import FakeServer


async def test_multi_turn_requests_cost_little_and_read_back_byte_equal(tmp_path):
    turns = 12

    async def process(item, ctx):
        msgs = [{"role": "system", "content": f"You are persona {ctx.item_id}. " * 20}]
        for t in range(turns):
            msgs.append({"role": "user", "content": f"Question {t} of item {ctx.item_id}: tell me about topic {t}."})
            r = await ctx.chat(msgs, purpose="persona")
            msgs.append({"role": "assistant", "content": r.text})
        dialogue = "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
        await ctx.chat([{"role": "user", "content": f"Rate this dialogue:\n{dialogue}"}], purpose="judge")
        return Records(output=[{"id": ctx.item_id, "messages": msgs}])

    items = [(f"d{i}", {}) for i in range(6)]
    async with FakeServer() as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}},
                               store=tmp_path / "store.sqlite")
        res = await eng.run(name="mt", items=items, process=process, output=tmp_path / "o.jsonl", concurrency=3,
                            progress=False)
        await eng.aclose()
        sent = [orjson.dumps(r) for r in srv.requests]
    got = [c["request"] for c in eng.store.calls(res.run_id, raw=True)]
    assert sorted(got) == sorted(sent) and len(got) == len(items) * (turns + 1)
    for c in eng.store.calls(res.run_id, raw=True):
        assert eng.store.request_bytes(c["id"]) == c["request"]
    # every stored byte of the run (requests, responses and output lines are compressed together in segments)
    stored = eng.store.db.execute("SELECT (SELECT SUM(length(data)) FROM segments)"
                                  " + (SELECT COALESCE(SUM(length(data)), 0) FROM dicts)").fetchone()[0]
    raw = sum(len(s) for s in sent)
    assert stored * 8 < raw, (stored, raw)  # the history is not paid again on every turn
    # a cache hit still returns the stored answer
    (key,) = eng.store.db.execute("SELECT cache_key FROM calls WHERE purpose='judge' LIMIT 1").fetchone()
    assert eng.store.lookup(key)["choices"][0]["message"]["content"]


async def test_identical_requests_in_flight_at_once_are_sent_once(tmp_path):
    async def process(item, ctx):
        r = await ctx.chat([{"role": "user", "content": "the same question for everyone"}])
        return {"id": ctx.item_id, "text": r.text}

    async with FakeServer(latency=0.05) as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}},
                               store=tmp_path / "store.sqlite")
        res = await eng.run(name="same", items=[(f"i{k}", {}) for k in range(8)], process=process,
                            output=tmp_path / "o.jsonl", concurrency=8, progress=False)
        await eng.aclose()
        assert srv.count == 1 and res.done == 8
