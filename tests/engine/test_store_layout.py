"""The segment layout (store version 8): reads byte-equal to what was sent and received, a version-7 store
migrated on open (its rows still read, resumed and rebuilt from), lookups through the index, and a size guard."""
from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path

import orjson
import pytest

from dialogforge.engine import Engine, Records, RunStore
from dialogforge.testing.fake_server import FakeServer

FIXTURES = Path(__file__).parent / "fixtures"
RUN = "v7-0123456789"


def v7_store(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite"
    db = sqlite3.connect(path)
    db.executescript((FIXTURES / "store_v7.sql").read_text().replace("@DIR@", str(tmp_path)))
    db.close()
    (tmp_path / "out.jsonl").write_bytes((FIXTURES / "store_v7.out.jsonl").read_bytes())
    return path


def b64(s: str | None) -> bytes | None:
    return None if s is None else base64.b64decode(s)


async def dialogue(item, ctx):  # the process make_store_v7.py ran
    msgs = [{"role": "system", "content": f"You are persona {ctx.item_id}, patient and exact. " * 6}]
    for t in range(3):
        msgs.append({"role": "user", "content": f"Turn {t} of {ctx.item_id}: what about topic {t}? \u00e9\u4e2d"})
        r = await ctx.chat(msgs, purpose="persona")
        msgs.append({"role": "assistant", "content": r.text})
    await ctx.chat([{"role": "user", "content": "Rate: " + " | ".join(m["content"] for m in msgs)}], purpose="judge")
    return {"id": ctx.item_id, "messages": msgs}


async def test_a_version_7_store_is_migrated_reads_byte_equal_resumes_and_rebuilds(tmp_path):
    path = v7_store(tmp_path)
    expected = orjson.loads((FIXTURES / "store_v7.expected.json").read_bytes())
    st = RunStore(path)
    assert st.migrated[0] == "m008_segments"
    got = {str(c["id"]): c for c in st.calls(RUN, raw=True)}
    assert got.keys() == expected["calls"].keys()
    for cid, want in expected["calls"].items():
        assert got[cid]["request"] == b64(want["request"]) == st.request_bytes(int(cid))
        assert got[cid]["response"] == b64(want["response"]) and got[cid]["error"] == want["error"]
    for cid, key in expected["keys"].items():
        assert st.lookup(key) == orjson.loads(b64(expected["calls"][cid]["response"]) or b"null")
    assert st.item_statuses(RUN) == {"d0": "done", "d1": "done", "d2": "done", "d3": "failed"}
    (info,) = st.runs()
    assert (info.done, info.failed) == (3, 1)
    st.close()

    (tmp_path / "out.jsonl").unlink()  # lost: rebuilt from the migrated lines, then the new item appended
    async with FakeServer() as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}}, store=path)
        res = await eng.run(name="v7", run_id=RUN, items=[(f"d{i}", {}) for i in range(5)], process=dialogue,
                            output=tmp_path / "out.jsonl", progress=False)
        await eng.aclose()
        sent = [orjson.dumps(b) for b in srv.requests]
    assert (res.done, res.skipped, res.skipped_failed) == (1, 3, 1)
    assert len(sent) == 4 and all(b"d4" in s for s in sent)  # only the new item asked anything
    out = (tmp_path / "out.jsonl").read_bytes()
    assert out.startswith((FIXTURES / "store_v7.out.jsonl").read_bytes()) and out.count(b"\n") == 4
    calls = list(eng.store.calls(RUN, raw=True))  # old inline rows and new segment rows, in order
    assert [c["request"] for c in calls[len(expected["calls"]):]] == sent
    assert [c["request"] for c in calls[:len(expected["calls"])]] == [b64(w["request"]) for w in
                                                                       expected["calls"].values()]


async def test_reads_are_byte_equal_to_what_was_sent_and_received_after_reopening(tmp_path):
    tools = [{"type": "function", "function": {"name": "look", "parameters": {"type": "object", "properties": {}}}}]
    answers: dict[str, dict] = {}

    async def process(item, ctx):
        msgs = [{"role": "user", "content": f"{item['q']} \u2603 \U0001f600 \"quoted\" \\ {ctx.item_id}"}]
        for t in range(4):
            r = await ctx.chat(msgs, purpose="talk", tools=tools if t % 2 else None, temperature=0.5 + t / 10)
            answers[r.call_id] = r.raw  # the body as received
            msgs += [{"role": "assistant", "content": r.text}, {"role": "user", "content": f"and {t}?"}]
        return Records(output=[{"id": ctx.item_id, "messages": msgs}], other=[{"id": ctx.item_id}])

    items = [(f"i{k}", {"q": f"question {k} " * (k % 5 + 1)}) for k in range(40)]
    outs = {"output": tmp_path / "o.jsonl", "other": tmp_path / "other.jsonl"}
    async with FakeServer() as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}},
                               store=tmp_path / "store.sqlite")
        res = await eng.run(name="eq", items=items, process=process, output=outs, concurrency=7, progress=False)
        await eng.aclose()
        sent = sorted(orjson.dumps(b) for b in srv.requests)
    eng.store.close()
    st = RunStore(tmp_path / "store.sqlite")  # cold: nothing cached from the run
    calls = list(st.calls(res.run_id, raw=True))
    assert sorted(c["request"] for c in calls) == sent and len(sent) == 160
    for c in calls:
        assert st.request_bytes(c["id"]) == c["request"]
    keys = [k for (k,) in st.db.execute("SELECT cache_key FROM calls WHERE run_id=?", (res.run_id,))]
    assert len(set(keys)) == 160 and all(st.lookup(k) == answers[k] for k in keys)
    assert sorted(c["response"] for c in calls) == sorted(orjson.dumps(v) for v in answers.values())
    for name, path in outs.items():  # what rebuild would write is the file, byte for byte
        (file_id, size) = st.open_file(str(path))
        assert b"".join(d for _, d in st.appended(file_id)) == path.read_bytes() and size == path.stat().st_size
    st.close()


def test_a_lookup_is_an_index_probe(tmp_path):
    st = RunStore(tmp_path / "s.sqlite")
    plan = " ".join(r[-1] for r in st.db.execute(
        "EXPLAIN QUERY PLAN SELECT seg FROM call_log WHERE k1=? AND k2=? AND (rlen IS NOT NULL OR response IS NOT NULL)",
        (1, 2)))
    assert "call_key" in plan and not hasattr(st, "_keys")
    st.close()


async def test_store_bytes_per_output_byte_stay_small(tmp_path):
    """A size guard (not a timing): single calls and 10-turn dialogues, the empty store's pages subtracted."""
    async def single(item, ctx):
        r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
        return {"id": ctx.item_id, "prompt": item["prompt"], "response": r.text, "model": "m"}

    async def talk(item, ctx):
        msgs = [{"role": "system", "content": f"You are {ctx.item_id}, a careful assistant."}]
        for t in range(10):
            msgs.append({"role": "user", "content": f"Turn {t}: tell me more about {item['topic']}."})
            msgs.append({"role": "assistant", "content": (await ctx.chat(msgs, purpose="dialogue")).text})
        return {"id": ctx.item_id, "messages": msgs}

    RunStore(tmp_path / "empty.sqlite").close()
    empty = (tmp_path / "empty.sqlite").stat().st_size
    cases = [("single", single, [(f"p{i}", {"prompt": f"Question {i}: explain item {i} in two sentences."})
                                 for i in range(1500)], 1.2),
             ("talk", talk, [(f"d{i}", {"topic": f"subject {i}"}) for i in range(60)], 1.0)]
    async with FakeServer() as srv:
        for name, process, items, bound in cases:
            store = tmp_path / f"{name}.sqlite"
            eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}}, store=store)
            out = tmp_path / f"{name}.jsonl"
            await eng.run(name=name, items=items, process=process, output=out, concurrency=32, progress=False)
            await eng.aclose()
            eng.store.close()
            grown = sum(p.stat().st_size for p in (store, Path(f"{store}-wal")) if p.exists()) - empty
            assert grown / out.stat().st_size <= bound, (name, grown, out.stat().st_size)


async def test_pruning_a_run_that_shares_segments_keeps_the_other_run_byte_equal(tmp_path):
    async def process(item, ctx):
        msgs = [{"role": "user", "content": f"{ctx.item_id}: say something about {item['t']}"}]
        for _ in range(3):
            r = await ctx.chat(msgs)
            msgs += [{"role": "assistant", "content": r.text}, {"role": "user", "content": "go on"}]
        return {"id": ctx.item_id, "messages": msgs}

    async with FakeServer() as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}},
                               store=tmp_path / "store.sqlite")
        a, b = await asyncio.gather(*(
            eng.run(name=n, items=[(f"{n}{i}", {"t": f"{n} topic {i}"}) for i in range(20)], process=process,
                    output=tmp_path / f"{n}.jsonl", concurrency=5, progress=False) for n in ("a", "b")))
        await eng.aclose()
        sent = sorted(orjson.dumps(x) for x in srv.requests)
    st = eng.store
    shared = st.db.execute("SELECT COUNT(DISTINCT seg) FROM call_log GROUP BY seg HAVING COUNT(DISTINCT run) > 1"
                           ).fetchall()
    assert shared, "the two runs' calls should share group commits"
    keep = [(c["request"], c["response"]) for c in st.calls(b.run_id, raw=True)]
    lines_b = (tmp_path / "b.jsonl").read_bytes()
    st.prune(a.run_id)
    assert [(c["request"], c["response"]) for c in st.calls(b.run_id, raw=True)] == keep
    assert all(c["request"] == b"" and c["response"] for c in st.calls(a.run_id, raw=True))
    assert sorted(r for r, _ in keep) == [s for s in sent if b'"content":"b' in s] and len(keep) == 60
    for name in ("a", "b"):  # both outputs still rebuild byte-equal from the lines
        (fid, _) = st.open_file(str(tmp_path / f"{name}.jsonl"))
        assert b"".join(d for _, d in st.appended(fid)) == (tmp_path / f"{name}.jsonl").read_bytes()
    assert (tmp_path / "b.jsonl").read_bytes() == lines_b
    st.close()


def test_a_failed_group_commit_leaves_no_segment_naming_a_lost_dictionary(tmp_path, monkeypatch):
    from dialogforge.engine.store import blobs
    monkeypatch.setattr(blobs, "DICT_SAMPLE", 64)  # the first commit makes the session's dictionary
    st = RunStore(tmp_path / "s.sqlite")
    st.db.execute("CREATE TEMP TRIGGER boom BEFORE INSERT ON call_log WHEN NEW.item = 'boom'"
                  " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")

    def call(item: str, n: int) -> None:
        st.log_call(run_id="r", item_id=item, purpose="main", endpoint="e", model="m", cache_key=f"{n:032x}",
                    request=orjson.dumps({"messages": [{"role": "user", "content": f"{item} asks {n} " * 20}]}),
                    response={"choices": [{"message": {"content": f"answer {n} " * 20}}]})

    with pytest.raises(sqlite3.IntegrityError, match="disk trouble"):
        call("boom", 1)
    assert st.db.execute("SELECT COUNT(*) FROM dicts").fetchone()[0] == 0
    for n in range(2, 5):
        call("ok", n)
    st.close()
    again = RunStore(tmp_path / "s.sqlite")
    got = [c["request"]["messages"][0]["content"] for c in again.calls("r")]
    assert got == [f"ok asks {n} " * 20 for n in range(2, 5)]
    assert again.lookup(f"{3:032x}") == {"choices": [{"message": {"content": "answer 3 " * 20}}]}
    assert again.lookup(f"{1:032x}") is None
    again.close()


def test_an_upgrade_of_a_big_store_says_so_once(tmp_path, monkeypatch, capsys):
    from dialogforge.engine.store import migrations
    monkeypatch.setattr(migrations, "BIG", 10)  # the fixture has 17 calls
    path = v7_store(tmp_path)
    RunStore(path).close()
    err = capsys.readouterr().err
    assert f"upgrading the run store from version 7 to {migrations.latest()} (17 calls" in err and str(path) in err
    RunStore(path).close()  # already upgraded: nothing said
    assert capsys.readouterr().err == ""
