"""Only an item's own errors fail an item; any other error stops the run with its traceback kept."""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from dialogforge.engine import Engine, ItemFailed, ItemStatus, Records, RunCrashed, RunStatus
from dialogforge.testing.fake_server import FakeServer


def make_engine(srv, tmp_path) -> Engine:
    return Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m", "max_retries": 0,
                                                    "timeout": 5}}}, store=tmp_path / "store.sqlite")


ITEMS = [(f"p{i}", {"prompt": f"question {i}"}) for i in range(20)]


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def test_a_bug_stops_the_run_with_one_line_and_the_traceback_in_the_store(tmp_path):
    broken = {"on": True}
    started = []

    async def process(item, ctx):
        started.append(ctx.item_id)
        r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
        if ctx.item_id == "p5" and broken["on"]:
            return {"id": ctx.item_id, "text": r.text[item["missing_field"]]}  # a bug: KeyError
        return {"id": ctx.item_id, "text": r.text}

    out = tmp_path / "out.jsonl"
    async with FakeServer(latency=0.01) as srv:
        eng = make_engine(srv, tmp_path)
        with pytest.raises(RunCrashed) as exc:
            await eng.run(name="t", items=ITEMS, process=process, output=out, concurrency=2, progress=False)
        msg = str(exc.value)
        assert "\n" not in msg and "KeyError: 'missing_field'" in msg and "test_honest_runner.py:" in msg
        assert "runs show" in msg
        # the run stopped instead of going on item by item
        assert len(started) < len(ITEMS)
        info = eng.store.find_run(exc.value.args[0].split()[1])
        assert info is not None and info.status == RunStatus.CRASHED
        assert "Traceback" in info.error and "missing_field" in info.error
        # no item is marked failed for it; the ones that finished are kept
        st = eng.store.item_statuses(info.run_id)
        assert ItemStatus.FAILED not in st.values() and "p5" not in st
        done_before = {r["id"] for r in lines(out)}
        assert done_before == {k for k, v in st.items() if v == ItemStatus.DONE}
        # fixed: the rerun resumes, p5's answer served from the store
        broken["on"] = False
        before = srv.count
        res = await eng.run(name="t", items=ITEMS, process=process, output=out, concurrency=2, progress=False)
        await eng.aclose()
    assert res.failed == 0 and res.done + res.skipped == len(ITEMS)
    assert srv.count - before == len(ITEMS) - len(done_before) - 1
    assert sorted(r["id"] for r in lines(out)) == sorted(i for i, _ in ITEMS)
    assert eng.store.find_run(info.run_id).status == RunStatus.FINISHED


class Verdict(BaseModel):
    score: int


async def test_item_errors_fail_only_their_item(tmp_path):
    async def process(item, ctx):
        n = int(ctx.item_id[1:])
        if n == 1:
            raise ItemFailed("nothing to say")
        if n == 3:
            await ctx.chat([{"role": "user", "content": "score it"}], schema=Verdict, max_repairs=0)
        r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
        return {"id": ctx.item_id, "text": r.text}

    def responder(body):
        return "not json at all" if "score it" in body["messages"][-1]["content"] else None

    async with FakeServer(responder=responder) as srv:
        eng = make_engine(srv, tmp_path)
        srv.inject(status=400, count=1, message="bad request")  # p0's call is refused by the server
        res = await eng.run(name="t", items=ITEMS[:6], process=process, output=tmp_path / "o.jsonl",
                            concurrency=1, progress=False)
        await eng.aclose()
    fails = dict(eng.store.failures(res.run_id))
    assert set(fails) == {"p0", "p1", "p3"} and "BadRequestError" in fails["p0"] and "ItemFailed" in fails["p1"]
    assert "StructuredOutputError" in fails["p3"]
    assert (res.done, res.failed) == (3, 3) and {r["id"] for r in lines(tmp_path / "o.jsonl")} == {"p2", "p4", "p5"}


async def test_records_name_outputs_explicitly(tmp_path):
    outs = {"a": tmp_path / "a.jsonl", "b": tmp_path / "b.jsonl"}

    async def explicit(item, ctx):
        return Records(a=[{"id": ctx.item_id}], b=[])

    async with FakeServer() as srv:
        eng = make_engine(srv, tmp_path)
        res = await eng.run(name="r", items=ITEMS[:3], process=explicit, output=outs, progress=False)
        assert res.done == 3 and len(lines(outs["a"])) == 3 and not lines(outs["b"])

        async def guessing(item, ctx):  # a plain dict keyed by output names was guessed before: now refused
            return {"a": [{"id": ctx.item_id}], "b": []}

        with pytest.raises(RunCrashed, match="Records"):
            await eng.run(name="r2", items=ITEMS[:3], process=guessing, output=outs | {"a": tmp_path / "a2.jsonl"},
                          progress=False)

        async def one_record(item, ctx):  # one output: a dict is one record, even with an 'output' key
            return {"id": ctx.item_id, "output": ["x"]}

        res = await eng.run(name="r3", items=ITEMS[:2], process=one_record, output=tmp_path / "c.jsonl",
                            progress=False)
        await eng.aclose()
    assert [r["output"] for r in lines(tmp_path / "c.jsonl")] == [["x"], ["x"]]


def test_runs_show_prints_the_traceback_of_a_crashed_run(tmp_path):
    import subprocess
    import sys

    from dialogforge.engine import RunStore
    st = RunStore(tmp_path / "s.sqlite")
    st.begin_run("t-1", "t", {"output": str(tmp_path / "o.jsonl")}, "cmd")
    st.end_run("t-1", RunStatus.CRASHED, 'Traceback (most recent call last):\n  File "x.py", line 3\nKeyError: [oops]')
    st.close()
    r = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "runs", "show", "t-1", "--store",
                        str(tmp_path / "s.sqlite")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "crashed" in r.stdout and "KeyError: [oops]" in r.stdout
