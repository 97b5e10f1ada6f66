"""Each run's share of the store from counters (`run_sizes`): they agree with the exact page walk (dbstat)
after a generate run, a multi-turn dialogue run, a prune and a migration; the listing never reads dbstat."""
from __future__ import annotations

import asyncio
import json
import sqlite3

from typer.testing import CliRunner

from dialogforge.cli import runs as runs_cli
from dialogforge.cli.main import app
from dialogforge.engine import Engine, Records
from dialogforge.engine.store import RunStore
from dialogforge.testing.fake_server import FakeServer


# A run's estimated bytes are within this much of the exact walk's figure (of the larger of the two, plus a few
# pages for a run too small for its rows to fill them): the counters weigh rows and segments by fixed factors.
TOLERANCE = 0.15
SLACK_PAGES = 3


async def _dialogues(srv, store, out, n):
    """A persona-shaped run: multi-turn dialogues (each request repeats the history) and a judge call each."""
    async def process(item, ctx):
        msgs = [{"role": "system", "content": f"You are persona {ctx.item_id}. " * 8}]
        for t in range(4):
            msgs.append({"role": "user", "content": f"Question {t} of {ctx.item_id}: tell me about topic {t}."})
            msgs.append({"role": "assistant", "content": (await ctx.chat(msgs, purpose="persona")).text})
        v = await ctx.chat([{"role": "user", "content": f"Rate this dialogue:\n{msgs}"}], purpose="judge")
        return Records(output=[{"id": ctx.item_id, "messages": msgs, "verdict": v.text}])

    eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}}, store=store)
    try:
        return await eng.run(name="dlg", items=[(f"d{i}", {}) for i in range(n)], process=process, output=out,
                             concurrency=4, progress=False)
    finally:
        await eng.aclose()
        eng.store.close()


def _agree(st: RunStore) -> dict[str, tuple[int, int]]:
    est, ex = st.shares(), st.shares(exact_sizes=True)
    assert est.approx and not ex.approx
    assert set(est.runs) == set(ex.runs)
    assert sum(est.runs.values()) + est.other == est.file_bytes == ex.file_bytes  # the listing sums to the file
    assert est.free_bytes == ex.free_bytes <= est.other
    page = st.db.execute("PRAGMA page_size").fetchone()[0]
    for rid in ex.runs:
        a, b = est.runs[rid], ex.runs[rid]
        assert abs(a - b) <= TOLERANCE * max(a, b) + SLACK_PAGES * page, (rid, a, b)
    return {rid: (est.runs[rid], ex.runs[rid]) for rid in ex.runs}


def _generate(tmp_path, srv, store, n):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"prompt number {i}: " + "tell me more. " * 10}) + "\n"
                           for i in range(n)))
    r = CliRunner().invoke(app, ["generate", str(src), "-o", str(tmp_path / "gen.jsonl"), "--base-url", srv.base_url,
                                 "--model", "m", "--store", str(store), "-q"])
    assert r.exit_code == 0, r.output


def test_counters_agree_with_the_page_walk_after_runs_a_prune_and_a_migration(tmp_path):
    db = tmp_path / "store.sqlite"
    with FakeServer() as srv:
        srv.inject(status=500, count=2, retry_after=0)
        _generate(tmp_path, srv, db, 400)
        dlg = asyncio.run(_dialogues(srv, db, tmp_path / "dlg.jsonl", 32))
    st = RunStore(db)
    (gen,) = [r.run_id for r in st.runs() if r.run_id != dlg.run_id]
    sizes = _agree(st)
    assert set(sizes) == {gen, dlg.run_id}
    st.prune(dlg.run_id)  # segments rewritten, failed attempts gone: counted again from the data
    after = _agree(st)
    assert after[dlg.run_id][0] < sizes[dlg.run_id][0]
    counters = st.db.execute("SELECT run, seg, rows FROM run_sizes ORDER BY run").fetchall()
    st.close()

    # a store from before the counters (version 8): migration 9 counts them once from the data
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE run_sizes")
    raw.execute("PRAGMA user_version = 8")
    raw.commit()
    raw.close()
    st = RunStore(db)
    assert "m009_run_sizes" in st.migrated
    assert st.db.execute("SELECT run, seg, rows FROM run_sizes ORDER BY run").fetchall() == counters
    _agree(st)
    st.close()


def test_the_listing_reads_counters_not_the_pages(tmp_path, monkeypatch):
    db = tmp_path / "store.sqlite"
    with FakeServer() as srv:
        _generate(tmp_path, srv, db, 20)
    seen: list[str] = []

    class Traced(RunStore):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.db.set_trace_callback(seen.append)

    monkeypatch.setattr(runs_cli, "RunStore", Traced)
    env = {"COLUMNS": "200"}
    listed = CliRunner().invoke(app, ["runs", "--store", str(db)], env=env)
    assert listed.exit_code == 0 and "approx." in listed.output and "generate-" in listed.output, listed.output
    assert seen and not [s for s in seen if "dbstat" in s.lower()]
    seen.clear()
    exact = CliRunner().invoke(app, ["runs", "--exact-sizes", "--store", str(db)], env=env)
    assert exact.exit_code == 0 and "exact, walked page by page" in exact.output, exact.output
    assert [s for s in seen if "dbstat" in s.lower()]  # the trace does see a walk when one is asked for
