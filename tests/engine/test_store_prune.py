"""`RunStore.prune` and `RunStore.shares`: a pruned run still resumes, rebuilds its outputs and serves the cache."""
from __future__ import annotations

import asyncio
import hashlib

import pytest

from dialogforge.engine import DialogforgeError, Engine, Records
from dialogforge.engine.store import PruneRefused, RunStore
from dialogforge.testing.fake_server import FakeServer

TURNS = 4


async def process(item, ctx):
    msgs = [{"role": "system", "content": f"You are persona {ctx.item_id}. " * 8}]
    for t in range(TURNS):
        msgs.append({"role": "user", "content": f"Question {t} of {ctx.item_id}: tell me about topic {t}."})
        r = await ctx.chat(msgs, purpose="persona")
        msgs.append({"role": "assistant", "content": r.text})
    dialogue = "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
    v = await ctx.chat([{"role": "user", "content": f"Rate this dialogue:\n{dialogue}"}], purpose="judge")
    return Records(output=[{"id": ctx.item_id, "messages": msgs, "verdict": v.text}])


ITEMS = [(f"d{i}", {}) for i in range(8)]


async def _run(srv, store, out, items=ITEMS, **kw):
    eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}}, store=store)
    try:
        return await eng.run(name="dlg", items=items, process=process, output=out, concurrency=4, progress=False,
                             **kw)
    finally:
        await eng.aclose()
        eng.store.close()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_pruned_run_resumes_rebuilds_and_still_serves_the_cache(tmp_path):
    db, out = tmp_path / "store.sqlite", tmp_path / "a.jsonl"
    async with FakeServer() as srv:
        srv.inject(status=500, count=3, retry_after=0, message="flaky upstream")
        res = await _run(srv, db, out)
        assert res.done == len(ITEMS)
        sent, made = srv.count, out.read_bytes()
        answered = len(ITEMS) * (TURNS + 1)
        assert sent == answered + 3

        st = RunStore(db)
        before = sum(st.disk_bytes())
        dry = st.prune(res.run_id, dry_run=True)
        assert (dry.requests, dry.failed) == (answered, 3) and dry.bytes > 0 and dry.file_after is None
        assert sum(st.disk_bytes()) == before and all(c["request"] for c in st.calls(res.run_id))

        plan = st.prune(res.run_id[:-2])  # a unique prefix names it
        assert (plan.requests, plan.failed) == (answered, 3)
        assert plan.file_after is not None and plan.file_after < before, (before, plan.file_after)
        calls = list(st.calls(res.run_id))
        assert len(calls) == answered and all(c["request"] is None and c["response"] for c in calls)
        with pytest.raises(DialogforgeError, match="dropped by `runs prune`"):
            st.request_bytes(calls[0]["id"])
        summary = st.run_summary(res.run_id)
        assert sum(p["errors"] for p in summary["by_purpose"]) == 3  # the dropped attempts still count
        assert summary["call_errors"][0]["count"] == 3 and "flaky upstream" in summary["call_errors"][0]["error"]
        assert st.prune(res.run_id).requests == 0  # a second prune has nothing left to drop
        assert not st.db.execute("SELECT name FROM sqlite_schema WHERE name LIKE 'prune_%'").fetchall()  # no index left
        st.close()

        again = await _run(srv, db, out)  # the same command: every item skipped, nothing sent
        assert again.done == 0 and again.skipped == len(ITEMS) and srv.count == sent
        out.unlink()
        rebuilt = await _run(srv, db, out)  # a deleted output comes back byte-equal from the store
        assert out.read_bytes() == made and srv.count == sent and rebuilt.done == 0

        other = tmp_path / "b.jsonl"  # another run asking the same: every call a cache hit
        res_b = await _run(srv, db, other)
        assert res_b.done == len(ITEMS) and srv.count == sent
        assert sorted(other.read_bytes().splitlines()) == sorted(made.splitlines())  # order: finishing order


async def test_prune_refuses_unknown_ambiguous_and_unfinished_runs_and_changes_nothing(tmp_path):
    db = tmp_path / "store.sqlite"
    async with FakeServer(latency=0.2) as srv:
        await _run(srv, db, tmp_path / "a.jsonl", items=ITEMS[:2])
        await _run(srv, db, tmp_path / "b.jsonl", items=ITEMS[:2])
        running = asyncio.create_task(_run(srv, db, tmp_path / "c.jsonl", items=ITEMS[:4]))
        await asyncio.sleep(0.5)
        st = RunStore(db)
        rows = {r.run_id: r.status for r in st.runs()}
        live = next(r for r, s in rows.items() if s == "running")
        snapshot = (st.db.execute("SELECT COUNT(*), SUM(length(request)) FROM calls").fetchone())
        with pytest.raises(PruneRefused, match="still running"):
            st.prune(live)
        with pytest.raises(PruneRefused, match="no run 'nope'"):
            st.prune("nope")
        with pytest.raises(PruneRefused, match="matches 3 runs"):
            st.prune("dlg-")
        assert st.db.execute("SELECT COUNT(*), SUM(length(request)) FROM calls").fetchone() == snapshot
        # a finished run is pruned meanwhile, but the file is not rewritten under the running one
        plan = st.prune(str(tmp_path / "a.jsonl"))
        assert plan.requests == 2 * (TURNS + 1) and plan.file_after is None and live in plan.not_vacuumed
        res = await running
        assert res.done == 4 and (tmp_path / "c.jsonl").read_text().count("\n") == 4
        again = st.prune(str(tmp_path / "a.jsonl"))  # once it has ended, a second prune rewrites the file
        assert again.requests == 0 and again.file_after is not None and again.file_after <= again.file_before
        st.close()


async def test_each_run_has_a_share_and_the_shares_add_up_to_the_file(tmp_path):
    db = tmp_path / "store.sqlite"
    async with FakeServer() as srv:
        small = await _run(srv, db, tmp_path / "small.jsonl", items=ITEMS[:2])
        big = await _run(srv, db, tmp_path / "big.jsonl", items=[(f"x{i}", {}) for i in range(16)])
    st = RunStore(db)
    sh = st.shares()
    assert set(sh.runs) == {small.run_id, big.run_id}
    assert 0 < sh.runs[small.run_id] < sh.runs[big.run_id]
    # 8x the items; a bigger run costs less per item (its calls compress against each other and a dictionary)
    assert 3 < sh.runs[big.run_id] / sh.runs[small.run_id] < 16
    assert sum(sh.runs.values()) + sh.other == sh.file_bytes
    RunStore(tmp_path / "empty.sqlite").close()  # a store's own pages: one or two per table and index
    empty = (tmp_path / "empty.sqlite").stat().st_size
    assert sum(sh.runs.values()) > 0.5 * (sh.file_bytes - empty)  # most of what the runs added is theirs
    assert 0 < sh.percent(small.run_id) < sh.percent(big.run_id) < 100
    st.prune(big.run_id)
    after = st.shares()
    assert after.runs[big.run_id] < sh.runs[big.run_id] and after.file_bytes < sh.file_bytes
    st.close()
