"""`dialogforge runs` share column, `runs prune` (refusals, --dry-run, VACUUM), `runs calls` as Parquet."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.testing.fake_server import FakeServer

ENV = {"COLUMNS": "200"}


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env=ENV)


def _generate(tmp_path, srv, store, name, n):
    src = tmp_path / f"{name}.in.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"{name} prompt number {i}: " + "tell me more. " * 20}) + "\n"
                           for i in range(n)))
    r = _cli("generate", src, "-o", tmp_path / f"{name}.jsonl", "--base-url", srv.base_url, "--model", "m",
             "--store", store, "-q")
    assert r.exit_code == 0, r.output
    listed = _cli("runs", "--store", store)
    return next(line.split()[1] for line in listed.output.splitlines() if f"{name}.jsonl" in line)


def test_share_column_prune_and_refusals(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeServer() as srv:
        srv.inject(status=500, count=2, retry_after=0)
        small = _generate(tmp_path, srv, store, "small", 3)
        big = _generate(tmp_path, srv, store, "big", 30)
    listed = _cli("runs", "--store", store)
    assert listed.exit_code == 0 and "share" in listed.output and "store" in listed.output
    pct = {rid: float(next(t for t in line.split() if t.endswith("%"))[:-1])
           for line in listed.output.splitlines() for rid in (small, big) if rid in line}
    # 33 small calls compress to a few pages: the store's own pages (one or two per table) are much of this file
    assert 0 < pct[small] < pct[big] and 20 < pct[small] + pct[big] <= 100, listed.output
    other = float(listed.output.split("not owned by any run")[1].split("(")[1].split("%")[0])
    assert abs(pct[small] + pct[big] + other - 100) < 0.5, listed.output  # the column and the rest sum to the file

    for bad, said in (("nope", "no run 'nope'"), ("generate-", "matches 2 runs")):
        r = _cli("runs", "prune", bad, "--store", store)
        assert r.exit_code != 0 and said in r.output and "nothing changed" in r.output, r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1

    size = store.stat().st_size
    dry = _cli("runs", "prune", big, "--dry-run", "--store", store)
    assert dry.exit_code == 0 and "would drop 30 request bodies" in dry.output and "nothing changed" in dry.output
    assert store.stat().st_size == size
    # sizes said honestly: the stored forms before compression, and about what they take compressed (less)
    assert "uncompressed, about" in dry.output and "compressed as stored" in dry.output, dry.output
    from dialogforge.engine.store import RunStore
    st = RunStore(store)
    plan = st.prune(big, dry_run=True)
    st.close()
    assert 0 < plan.stored < plan.bytes, (plan.stored, plan.bytes)
    r = _cli("runs", "prune", big, "--store", store)
    assert r.exit_code == 0 and "dropped 30 request bodies" in r.output and "(VACUUM)" in r.output, r.output
    # never larger; smaller only by whole pages: a generate request's text is also in its output line, which
    # the segment compresses against it, so a pruned request frees little more than its JSON frame
    assert store.stat().st_size <= size
    listed = _cli("runs", "--store", store)
    assert "finished (pruned)" in listed.output
    show = _cli("runs", "show", big, "--store", store)
    assert show.exit_code == 0 and "request bodies pruned" in show.output, show.output

    jsonl = tmp_path / "calls.jsonl"
    r = _cli("runs", "calls", big, "-o", jsonl, "--store", store)
    assert r.exit_code == 0 and "request bodies pruned" in r.output
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 30 and all(c["request"] is None and c["response"]["choices"] for c in rows)
    pq_rows = pq.read_table(_written(tmp_path, store, big)).to_pylist()
    assert [json.loads(r["response"]) for r in pq_rows] == [c["response"] for c in rows]
    assert all(r["request"] is None for r in pq_rows)


def _written(tmp_path, store, run):
    path = tmp_path / "pruned.parquet"
    r = _cli("runs", "calls", run, "-o", path, "--store", store)
    assert r.exit_code == 0 and "request bodies pruned" in r.output, r.output
    return path


def test_calls_as_parquet_match_the_jsonl(tmp_path):
    store = tmp_path / "s.sqlite"
    with FakeServer() as srv:
        run = _generate(tmp_path, srv, store, "gen", 5)
    jsonl, parquet, other = tmp_path / "c.jsonl", tmp_path / "c.parquet", tmp_path / "c.data"
    assert _cli("runs", "calls", run, "-o", jsonl, "--store", store).exit_code == 0
    r = _cli("runs", "calls", run, "-o", parquet, "--store", store)
    assert r.exit_code == 0 and "5 calls written" in r.output and "(parquet)" in r.output, r.output
    assert _cli("runs", "calls", run, "-o", other, "--format", "parquet", "--store", store).exit_code == 0
    want = [json.loads(line) for line in jsonl.read_text().splitlines()]
    table = pq.read_table(parquet)
    assert pq.read_table(other).equals(table)
    got = table.to_pylist()
    assert len(got) == len(want) == 5
    for g, w in zip(got, want):
        assert json.loads(g.pop("request")) == w.pop("request")
        assert json.loads(g.pop("response")) == w.pop("response")
        assert g == w
    import datasets
    ds = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 5 and ds[0]["id"] == want[0]["id"] and json.loads(ds[0]["request"])["model"] == "m"

    bad = _cli("runs", "calls", run, "--format", "csv", "-o", other, "--store", store)
    assert bad.exit_code != 0 and "--format 'csv': use jsonl or parquet" in bad.output
    alone = _cli("runs", "calls", run, "--format", "parquet", "--store", store)
    assert alone.exit_code != 0 and "needs --output" in alone.output

    # a typo'd --item or --purpose is said, not written as an empty file
    item, purpose = want[0]["item_id"], want[0]["purpose"]
    for flags, said in ((["--item", "typo"], "--item 'typo'"), (["--purpose", "jduge"], "--purpose 'jduge'"),
                        (["--item", item, "--purpose", "jduge"], "--purpose 'jduge'")):
        out = tmp_path / "none.jsonl"
        r = _cli("runs", "calls", run, *flags, "-o", out, "--store", store)
        assert r.exit_code != 0 and said in r.output and "nothing written" in r.output, r.output
        assert not out.exists() and "Traceback" not in r.output
    r = _cli("runs", "calls", run, "--item", item, "--purpose", purpose, "-o", tmp_path / "one.jsonl", "--store", store)
    assert r.exit_code == 0 and "1 calls written" in r.output, r.output
