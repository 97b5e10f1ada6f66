"""#9: output rows a user thinks are lost come back from the run store; what dialogforge did not write is kept;
another model is another run unless --continue; failures left make a rerun exit non-zero."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialogforge.engine import Engine, ItemFailed, RunChanged
from dialogforge.testing.fake_server import FakeServer

ITEMS = [(f"p{i}", {"prompt": f"question {i}"}) for i in range(12)]


async def process(item, ctx):
    r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
    return {"id": ctx.item_id, "text": r.text}


def make_engine(srv, tmp_path, model="m") -> Engine:
    return Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": model, "max_retries": 0}}},
                            store=tmp_path / "store.sqlite")


async def first_run(srv, tmp_path) -> tuple[Engine, Path, bytes]:
    eng = make_engine(srv, tmp_path)
    out = tmp_path / "out.jsonl"
    await eng.run(name="t", items=ITEMS, process=process, output=out, progress=False)
    return eng, out, out.read_bytes()


async def rerun(eng, out, capsys):
    res = await eng.run(name="t", items=ITEMS, process=process, output=out, progress=False)
    return res, " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("how", ["deleted", "moved", "cut-at-a-line", "cut-mid-line", "emptied"])
async def test_lost_rows_are_rebuilt_from_the_store_without_a_request(tmp_path, capsys, how):
    async with FakeServer() as srv:
        eng, out, before = await first_run(srv, tmp_path)
        sent = srv.count
        if how == "deleted":
            out.unlink()
        elif how == "moved":
            out.rename(tmp_path / "elsewhere.jsonl")
        elif how == "cut-at-a-line":
            out.write_bytes(b"".join(before.splitlines(keepends=True)[:5]))
        elif how == "cut-mid-line":
            out.write_bytes(before[: len(before) // 2 + 7])
        else:
            out.write_bytes(b"")
        res, err = await rerun(eng, out, capsys)
        assert srv.count == sent  # nothing sent again
        await eng.aclose()
    assert out.read_bytes() == before
    assert res.skipped == len(ITEMS) and res.done == 0
    want = {"deleted": "was missing", "moved": "was missing", "emptied": "was emptied"}.get(how, "was cut short")
    assert f"{out} {want}: restored" in err and "no request sent" in err


async def test_a_tail_dialogforge_did_not_write_moves_to_a_foreign_file(tmp_path, capsys):
    async with FakeServer() as srv:
        eng, out, before = await first_run(srv, tmp_path)
        mine = b'{"id": "mine", "note": "added by hand"}\n'
        with out.open("ab") as f:
            f.write(mine)
        res, err = await rerun(eng, out, capsys)
        assert out.read_bytes() == before and (tmp_path / "out.jsonl.foreign-1").read_bytes() == mine
        assert "moved them to out.jsonl.foreign-1" in err
        # a second hand-written tail goes to the next free name; new items still append after ours
        with out.open("ab") as f:
            f.write(b'{"half a li')
        more = [*ITEMS, ("p99", {"prompt": "one more"})]
        res = await eng.run(name="t", items=more, process=process, output=out, progress=False)
        await eng.aclose()
    assert (tmp_path / "out.jsonl.foreign-2").read_bytes() == b'{"half a li'
    assert res.done == 1 and out.read_bytes().startswith(before)
    assert [json.loads(x)["id"] for x in out.read_bytes().splitlines()][-1] == "p99"


async def test_a_file_with_a_row_taken_out_is_kept_aside_and_rebuilt(tmp_path, capsys):
    async with FakeServer() as srv:
        eng, out, before = await first_run(srv, tmp_path)
        rows = before.splitlines(keepends=True)
        edited = b"".join(rows[:3] + rows[4:])
        out.write_bytes(edited)
        res, err = await rerun(eng, out, capsys)
        await eng.aclose()
    assert out.read_bytes() == before and (tmp_path / "out.jsonl.foreign-1").read_bytes() == edited
    assert f"differs from what dialogforge wrote at byte {len(b''.join(rows[:3]))}" in err
    assert "is rebuilt: restored 12 row(s)" in err


async def test_another_model_is_another_run_unless_continue(tmp_path):
    out = tmp_path / "out.jsonl"
    async with FakeServer() as srv:
        eng, out, before = await first_run(srv, tmp_path)
        await eng.aclose()
        # what does not shape outputs (concurrency, the URL's port, keys) is the same run
        same = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url + "/", "model": "m",
                                                        "concurrency": 3, "max_retries": 5}}},
                                store=tmp_path / "store.sqlite")
        res = await same.run(name="t", items=ITEMS, process=process, output=out, progress=False, concurrency=2)
        assert res.skipped == len(ITEMS)
        await same.aclose()
        other = make_engine(srv, tmp_path, model="m2")
        with pytest.raises(RunChanged, match=r"models\.generator\.model 'm' -> 'm2'.*--continue"):
            await other.run(name="t", items=ITEMS, process=process, output=out, progress=False)
        assert out.read_bytes() == before
        more = [*ITEMS, ("p99", {"prompt": "one more"})]
        res = await other.run(name="t", items=more, process=process, output=out, progress=False, continue_=True)
        await other.aclose()
    assert (res.done, res.skipped) == (1, len(ITEMS))
    assert json.loads(out.read_bytes().splitlines()[-1])["id"] == "p99"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dialogforge.cli.main", *args]


def test_generate_cli_rebuilds_refuses_a_changed_run_and_exits_nonzero_while_failures_remain(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"q {i}"}) + "\n" for i in range(6))
                   + '{"id": "bad", "text": "no prompt field"}\n')
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    with FakeServer() as srv:
        args = ["generate", str(inp), "-o", str(out), "--base-url", srv.base_url, "-q"]
        first = subprocess.run(_cli(*args, "--model", "m"), env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 1 and "1 failed" in first.stderr
        before, sent = out.read_bytes(), srv.count
        out.unlink()
        again = subprocess.run(_cli(*args, "--model", "m"), env=env, capture_output=True, text=True, timeout=60)
        assert srv.count == sent and out.read_bytes() == before
        assert "restored 6 row(s) from the run store" in " ".join(again.stderr.split())
        assert again.returncode == 1 and "1 failed earlier" in again.stderr  # a failure remains
        changed = subprocess.run(_cli(*args, "--model", "m2"), env=env, capture_output=True, text=True, timeout=60)
        assert changed.returncode == 2 and "--continue" in changed.stderr and "Traceback" not in changed.stderr
        assert len(changed.stderr.strip().splitlines()) == 1 and srv.count == sent
        inp.write_text(inp.read_text().replace("q 0", "q zero"))
        edited = subprocess.run(_cli(*args, "--model", "m"), env=env, capture_output=True, text=True, timeout=60)
        assert edited.returncode == 2 and "input" in edited.stderr
    assert out.read_bytes() == before
