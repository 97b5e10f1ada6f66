"""The runner: streaming output exactly once, failures, retry-failed, resume after kill -9."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dialogforge.engine import Engine, ItemFailed, Records, read_items
from dialogforge.testing.fake_server import FakeServer


def write_prompts(path: Path, n: int) -> Path:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i}", "prompt": f"question number {i}"}) + "\n")
    return path


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def make_engine(srv, tmp_path) -> Engine:
    return Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m", "max_retries": 1,
                                                    "timeout": 5}}}, store=tmp_path / "store.sqlite")


async def test_multi_call_items_and_named_outputs(tmp_path):
    async def process(item, ctx):
        a = await ctx.chat([{"role": "user", "content": item["prompt"]}], purpose="main")
        b = await ctx.chat([{"role": "user", "content": "judge: " + a.text}], purpose="judge")
        rec = {"id": ctx.item_id, "answer": a.text, "verdict": b.text}
        return Records(raw=[rec], kept=[rec] if int(ctx.item_id[1:]) % 2 == 0 else [])

    async with FakeServer() as srv:
        eng = make_engine(srv, tmp_path)
        res = await eng.run(name="t", items=read_items(write_prompts(tmp_path / "in.jsonl", 10)), process=process,
                            output={"raw": tmp_path / "raw.jsonl", "kept": tmp_path / "kept.jsonl"}, progress=False)
        await eng.aclose()
    assert res.done == 10 and res.failed == 0
    assert sorted(ids_in(tmp_path / "raw.jsonl")) == sorted(f"p{i}" for i in range(10))
    assert sorted(ids_in(tmp_path / "kept.jsonl")) == sorted(f"p{i}" for i in range(0, 10, 2))
    purposes = {c["purpose"] for c in eng.store.calls(res.run_id)}
    assert purposes == {"main", "judge"}
    assert all(c["item_id"] for c in eng.store.calls(res.run_id))


async def test_failures_file_and_retry_failed(tmp_path):
    flaky = {"p3", "p7"}

    async def process(item, ctx):
        if ctx.item_id in flaky:
            raise ItemFailed("the seed answer is empty")
        r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
        return {"id": ctx.item_id, "response": r.text}

    inp = write_prompts(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    async with FakeServer() as srv:
        eng = make_engine(srv, tmp_path)
        res = await eng.run(name="t", items=read_items(inp), process=process, output=out, progress=False)
        assert (res.done, res.failed) == (8, 2)
        fails = [json.loads(l) for l in (tmp_path / "out.failures.jsonl").read_text().splitlines()]
        assert {f["id"] for f in fails} == flaky
        assert all("seed answer is empty" in f["error"] for f in fails)
        # a plain rerun does nothing new; --retry-failed runs only the failed items
        res = await eng.run(name="t", items=read_items(inp), process=process, output=out, progress=False)
        assert (res.done, res.skipped, res.skipped_failed) == (0, 8, 2)
        flaky.clear()
        before = srv.count
        res = await eng.run(name="t", items=read_items(inp), process=process, output=out, progress=False,
                            retry_failed=True)
        assert res.done == 2 and srv.count - before == 2
        await eng.aclose()
    assert sorted(ids_in(out)) == sorted(f"p{i}" for i in range(10))
    assert not (tmp_path / "out.failures.jsonl").exists()


async def test_uncommitted_tail_is_cut_on_resume(tmp_path):
    async def process(item, ctx):
        r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
        return {"id": ctx.item_id, "response": r.text}

    inp = write_prompts(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"
    async with FakeServer() as srv:
        eng = make_engine(srv, tmp_path)
        await eng.run(name="t", items=read_items(inp), process=process, output=out, progress=False)
        # a crash between writing lines and committing them leaves a tail (here: half a line)
        with out.open("ab") as f:
            f.write(b'{"id": "p9", "respo')
        write_prompts(inp, 7)
        res = await eng.run(name="t", items=read_items(inp), process=process, output=out, progress=False)
        await eng.aclose()
    assert res.done == 2 and res.skipped == 5
    assert sorted(ids_in(out)) == sorted(f"p{i}" for i in range(7))


def test_bad_input_names_file_and_line(tmp_path):
    from dialogforge.engine.errors import InputError
    p = tmp_path / "bad.jsonl"
    p.write_text('{"prompt": "ok"}\n\n{"prompt": "broken"\n')
    with pytest.raises(InputError, match=r"bad.jsonl:3: not valid JSON"):
        list(read_items(p))
    p.write_text('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: duplicate item id '1'"):
        list(read_items(p))
    with pytest.raises(InputError, match="missing field 'instruction'"):
        list(read_items(p, require=("instruction",)))


def test_json_list_and_field_mapping(tmp_path):
    p = tmp_path / "in.json"
    p.write_text(json.dumps([{"uid": "a", "question": "q1"}, {"uid": "b", "question": "q2"}]))
    items = list(read_items(p, id_field="uid", fields={"prompt": "question"}))
    assert [i for i, _ in items] == ["a", "b"]
    assert items[0][1]["prompt"] == "q1"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dialogforge.cli.main", *args]


def test_kill_9_then_rerun_finishes_exactly_once_without_resending(tmp_path):
    """A real `dialogforge generate` process is killed with SIGKILL mid-run, then rerun."""
    n, conc = 300, 16
    inp = write_prompts(tmp_path / "in.jsonl", n)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    with FakeServer(latency=0.02) as srv:
        args = _cli("generate", str(inp), "-o", str(out), "--base-url", srv.base_url, "--model", "m", "-j",
                    str(conc), "-q")
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.stat().st_size > 0 and len(out.read_bytes().splitlines()) >= 60:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = srv.count
        assert 60 <= first < n, "the kill should land mid-run"
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        total = srv.count
        prompts = [r["messages"][-1]["content"] for r in srv.requests]
    got = ids_in(out)
    assert sorted(got) == sorted(f"p{i}" for i in range(n)), "every item exactly once"
    # only calls in flight at the kill (no response received yet) may be sent twice
    resent = total - n
    assert 0 <= resent <= conc
    assert len(prompts) - len(set(prompts)) == resent


def test_cli_generate_runs_and_show(tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    with FakeServer() as srv:
        r = subprocess.run(_cli("generate", str(inp), "-o", str(out), "--base-url", srv.base_url, "--model", "m",
                                "--n", "2", "--system", "Be brief.", "--max-tokens", "20"),
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        progress = " ".join(r.stderr.split())  # not a terminal: a plain progress line, no live bar
        assert "generate: 4/4 done" in progress and "items/s" in progress and "tok/s" in progress
        assert srv.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
        assert srv.requests[0]["max_tokens"] == 20
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(rows) == 8 and {r["sample"] for r in rows} == {0, 1}
    assert all(r["usage"]["completion_tokens"] > 0 and r["finish_reason"] == "stop" for r in rows)
    listing = subprocess.run(_cli("runs"), env=env, capture_output=True, text=True, timeout=60)
    assert "generate-" in listing.stdout
    run_id = next(w for w in listing.stdout.split() if w.startswith("generate-"))
    show = subprocess.run(_cli("runs", "show", run_id), env=env, capture_output=True, text=True, timeout=60)
    assert show.returncode == 0 and "main" in show.stdout and " 8 " in show.stdout
    dump = tmp_path / "calls.jsonl"
    calls = subprocess.run(_cli("runs", "calls", run_id, "--item", "p1", "-o", str(dump)), env=env,
                           capture_output=True, text=True, timeout=60)
    assert calls.returncode == 0, calls.stderr
    logged = [json.loads(l) for l in dump.read_text().splitlines()]
    assert len(logged) == 2 and {c["item_id"] for c in logged} == {"p1"}
    assert logged[0]["request"]["messages"][-1]["content"] == "question number 1"
    assert logged[0]["response"]["choices"][0]["message"]["content"]


def test_cli_reports_bad_config_and_unreachable_server_in_one_line(tmp_path):
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    inp = write_prompts(tmp_path / "in.jsonl", 2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("endpoints:\n  main:\n    base_url: http://x/v1\n    model: m\n    concurrency: zero\n")
    r = subprocess.run(_cli("generate", str(inp), "-o", str(tmp_path / "o.jsonl"), "-c", str(cfg)),
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "endpoints.main.concurrency" in r.stderr
    r = subprocess.run(_cli("generate", str(inp), "-o", str(tmp_path / "o.jsonl"), "--base-url",
                            "http://127.0.0.1:9/v1", "--model", "m"), env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "unreachable" in r.stderr and "Traceback" not in r.stderr


async def test_memo_replays_values_when_an_item_runs_again(tmp_path):
    import random
    seen = []

    async def process(item, ctx):
        v = ctx.memo("roll", random.random())
        seen.append(v)
        if len(seen) == 1:
            raise ItemFailed("crash after recording")
        return {"id": ctx.item_id, "roll": v}

    async with FakeServer() as srv:
        eng = make_engine(srv, tmp_path)
        items = [("a", {"prompt": "x"})]
        await eng.run(name="t", items=items, process=process, output=tmp_path / "o.jsonl", progress=False)
        await eng.run(name="t", items=items, process=process, output=tmp_path / "o.jsonl", progress=False,
                      retry_failed=True)
        await eng.aclose()
    assert len(seen) == 2 and seen[0] == seen[1]


def test_bad_line_at_the_end_is_reported_before_any_request(tmp_path):
    inp = write_prompts(tmp_path / "in.jsonl", 50)
    with inp.open("a") as f:
        f.write('{"id": "p50", "prompt": \n')
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    with FakeServer() as srv:
        r = subprocess.run(_cli("generate", str(inp), "-o", str(tmp_path / "o.jsonl"), "--base-url", srv.base_url,
                                "--model", "m", "-q"), env=env, capture_output=True, text=True, timeout=60)
        assert srv.count == 0
    assert r.returncode == 2 and "in.jsonl:51: not valid JSON" in r.stderr
