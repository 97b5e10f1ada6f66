"""Memory stays flat with the number of items (#15): input ids, resume state, the run loop.

Not timed: tracemalloc counts the bytes Python allocates, so these hold on a loaded machine.
The figures at 1,000,000 items are benchmarks/generate_million.py's (benchmarks/README.md)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from dialogforge.core import idset
from dialogforge.core.rows import read_items
from dialogforge.engine import Engine, InputError
from dialogforge.engine.runner import PAGE
from dialogforge.testing.fake_server import FakeServer


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "prompt": f"question {i}"}) + "\n" for i in ids))
    return path


@pytest.fixture
def few_exact(monkeypatch):
    """Only the first 100 ids kept exactly: the hashed form is what the tests see past them."""
    monkeypatch.setattr(idset, "EXACT", 100)


@pytest.mark.parametrize("n,dup,orig", [(3000, 2500, 1200), (3000, 2500, 40), (3000, 90, 7), (3000, 700, 699),
                                        (3000, 2999, 2998)])
def test_a_repeated_id_names_both_rows_wherever_they_are(tmp_path, few_exact, n, dup, orig):
    ids = [f"x{i}" for i in range(n)]
    ids[dup] = ids[orig]
    p = write_ids(tmp_path / "in.jsonl", ids)
    got = []
    with pytest.raises(InputError, match=rf"in.jsonl:{dup + 1}: duplicate item id 'x{orig}' "
                                         rf"\(first at .*in.jsonl:{orig + 1}\)"):
        for item in read_items(p):
            got.append(item)
    assert [i for i, _ in got] == ids[:dup], "every row before the repeat is read, none after"


def test_a_repeated_id_in_a_json_list_names_both_items(tmp_path, few_exact):
    ids = [f"x{i}" for i in range(1500)]
    ids[1400] = ids[300]
    p = tmp_path / "in.json"
    p.write_text(json.dumps([{"id": i} for i in ids]))
    with pytest.raises(InputError, match=r"in.json: item \[1400\]: duplicate item id 'x300' "
                                         r"\(first at .*in.json: item \[300\]\)"):
        list(read_items(p))


def test_two_ids_whose_hashes_collide_are_not_a_repeat(tmp_path, monkeypatch):
    """Past the exact ids a hash match is only a candidate: the file itself decides."""
    monkeypatch.setattr(idset, "EXACT", 50)
    import numpy as np
    monkeypatch.setattr(idset.SeenIds, "_hashes",
                        lambda self, ids: (setattr(self, "_np", np),
                                           np.array([int(i[1:]) // 2 for i in ids], dtype=np.int64))[1])
    ids = [f"x{i}" for i in range(600)]  # x2k and x2k+1 share a hash
    p = write_ids(tmp_path / "in.jsonl", ids)
    assert [i for i, _ in read_items(p)] == ids
    ids[555] = ids[100]
    write_ids(p, ids)
    with pytest.raises(InputError, match=r"in.jsonl:556: duplicate item id 'x100' \(first at .*in.jsonl:101\)"):
        list(read_items(p))


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_ids_stays_flat_with_the_number_of_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(idset, "EXACT", 1000)
    small = write_ids(tmp_path / "small.jsonl", [f"item-{i}" for i in range(2_000)])
    big = write_ids(tmp_path / "big.jsonl", [f"item-{i}" for i in range(40_000)])
    import numpy  # noqa: F401  (imported once, outside the measurement)
    peaks = [_peak(lambda p=p: sum(1 for _ in read_items(p))) for p in (small, big)]
    # 38,000 more ids: 8-byte hashes, merged (a set of them would be ~4 MB)
    assert peaks[1] - peaks[0] < 38_000 * 24, peaks


async def _run(tmp_path: Path, n: int, inp: Path) -> int:
    """Run (then rerun, all done) n items through the runner without a model; the rerun's peak bytes."""
    async def process(item, ctx):
        return {"id": ctx.item_id, "text": item["prompt"]}
    eng = Engine.from_dict({}, store=tmp_path / f"store{n}.sqlite")
    out = tmp_path / f"out{n}.jsonl"
    try:
        res = await eng.run(name="flat", items=read_items(inp), process=process, output=out, progress=False,
                            check=False, concurrency=64)
        assert res.done == n
        tracemalloc.start()
        res = await eng.run(name="flat", items=read_items(inp), process=process, output=out, progress=False,
                            check=False, concurrency=64)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert res.skipped == n and res.done == 0
    finally:
        await eng.aclose()
    assert sum(1 for _ in out.open("rb")) == n
    return peak


async def test_a_rerun_over_finished_items_stays_flat(tmp_path, monkeypatch):
    """The resume state is asked of the store a page at a time, not loaded as one set of every id."""
    monkeypatch.setattr(idset, "EXACT", 1000)
    import numpy  # noqa: F401
    small, big = 2_000, 20_000
    peaks = [await _run(tmp_path, n, write_ids(tmp_path / f"in{n}.jsonl", [f"item-{i}" for i in range(n)]))
             for n in (small, big)]
    # a dict of every finished id and its status would be ~2 MB more at 20,000
    assert peaks[1] - peaks[0] < (big - small) * 24, peaks


def test_kill_9_then_rerun_over_several_pages_is_exact(tmp_path):
    """Resume state read in pages: a real `dialogforge generate` killed mid-run over more than two pages."""
    n, conc = 2 * PAGE + 300, 32
    inp = write_ids(tmp_path / "in.jsonl", [f"p{i}" for i in range(n)])
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    with FakeServer(latency=0.02) as srv:
        args = [sys.executable, "-m", "dialogforge.cli.main", "generate", str(inp), "-o", str(out), "--base-url",
                srv.base_url, "--model", "m", "-j", str(conc), "-q"]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_bytes().splitlines()) >= PAGE + 100:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert PAGE < srv.count < n, "the kill should land mid-run, past the first page"
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        total = srv.count
    got = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(got) == sorted(f"p{i}" for i in range(n)), "every item exactly once"
    assert 0 <= total - n <= conc, "only calls in flight at the kill are sent again"


async def test_a_generate_run_keeps_nothing_per_item_once_it_ends(tmp_path):
    """The whole path (client, cache, store commits, output lines): what a run leaves allocated does not grow
    with its items (the store's delta chains once kept every item's request and response)."""
    from dialogforge.workflows.generate import GenerateOptions, generate
    kept = []
    async with FakeServer(latency=0.0, keep_requests=False) as srv:
        for n in (300, 2_300):
            inp = write_ids(tmp_path / f"in{n}.jsonl", [f"q{i}" for i in range(n)])
            eng = Engine.from_dict({"endpoints": {"m": {"base_url": srv.base_url, "model": "m"}}},
                                   store=tmp_path / f"s{n}.sqlite")
            tracemalloc.start()
            try:
                res = await generate(eng, inp, tmp_path / f"out{n}.jsonl", GenerateOptions(), progress=False)
                eng.store.drain()
                import gc
                gc.collect()
                kept.append(tracemalloc.get_traced_memory()[0])
            finally:
                tracemalloc.stop()
                await eng.aclose()
            assert res.done == n
    assert kept[1] - kept[0] < 2_000 * 100, kept  # was ~8 KB an item


async def test_a_rerun_of_the_same_command_checks_the_input_once_not_twice(tmp_path, monkeypatch):
    """generate's pass over the input before any request is skipped when the run last started with these very
    bytes (its identity holds their hash); other input is still checked first."""
    from dialogforge.workflows import generate as gen
    checked = []
    real = gen._check_input
    monkeypatch.setattr(gen, "_check_input", lambda *a: checked.append(a[0]) or real(*a))
    inp = write_ids(tmp_path / "in.jsonl", [f"q{i}" for i in range(40)])
    out = tmp_path / "out.jsonl"
    async with FakeServer(latency=0.0) as srv:
        async def run(**kw):
            eng = Engine.from_dict({"endpoints": {"m": {"base_url": srv.base_url, "model": "m"}}},
                                   store=tmp_path / "s.sqlite")
            try:
                return await gen.generate(eng, inp, out, gen.GenerateOptions(), progress=False, **kw)
            finally:
                await eng.aclose()
        assert (await run()).done == 40 and len(checked) == 1
        res = await run()
        assert (res.done, res.skipped, len(checked)) == (0, 40, 1)
        sent = srv.count
        write_ids(inp, [f"q{i}" for i in range(40)] + ["q3"])  # other bytes: checked before anything is sent
        with pytest.raises(InputError, match=r"in.jsonl:41: duplicate item id 'q3' \(first at .*in.jsonl:4\)"):
            await run(continue_=True)
        assert len(checked) == 2 and srv.count == sent
    assert sorted(json.loads(x)["id"] for x in out.read_text().splitlines()) == sorted(f"q{i}" for i in range(40))
