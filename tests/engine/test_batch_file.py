"""--batch-file rounds through an offline runner, and `dialogforge batch import`.

The offline runner here stands in for `vllm run-batch`: it reads the request file and writes the
output file in the same form, answering each body as the fake server's chat endpoint would.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from dialogforge.engine import InputError, RunStore
from dialogforge.engine.executors import BatchFileWritten, make_executor
from dialogforge.engine.executors.offline import import_output
from dialogforge.testing.fake_server import FakeServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persona"))
import persona_fake as F  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def run_batch_offline(requests: Path, output: Path, responder=None) -> int:
    """What `vllm run-batch -i requests -o output` does, with the fake server's answers."""
    srv = FakeServer(responder=responder)
    rows = []
    for line in requests.read_bytes().splitlines():
        req = orjson.loads(line)
        assert req["method"] == "POST" and req["url"] == "/v1/chat/completions"
        message, finish, usage = srv.reply(req["body"])
        body = {"id": "x", "object": "chat.completion", "model": req["body"]["model"], "usage": usage,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
        rows.append({"id": f"vllm-{len(rows)}", "custom_id": req["custom_id"],
                     "response": {"status_code": 200, "request_id": "r", "body": body}, "error": None})
    output.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return len(rows)


async def test_persona_rounds_through_a_batch_file_match_live(tmp_path):
    from dialogforge.workflows import persona
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 5)
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path / "live", seeds=seeds, turns=2, concurrency=4)
        engine, pcfg = persona.load(cfg)
        try:
            live = await persona.arun(engine=engine, persona_config=pcfg, date="2026-03-04", progress=False)
        finally:
            await engine.aclose()
        sent_live = srv.count
    # offline: the server is gone (a URL nobody listens on); every round goes through the file
    cfg = F.config("http://127.0.0.1:9/v1", tmp_path / "off", seeds=seeds, turns=2, concurrency=4)
    reqs, outp = tmp_path / "round.jsonl", tmp_path / "round.out.jsonl"
    rounds = 0
    while True:
        engine, pcfg = persona.load(cfg)
        engine.executor = make_executor("batch", file=reqs)
        try:
            res = await persona.arun(engine=engine, persona_config=pcfg, date="2026-03-04", progress=False)
            break
        except BatchFileWritten as e:
            assert str(reqs) in str(e)
            rounds += 1
            assert rounds < 10
            n = run_batch_offline(reqs, outp, F.responder)
            imported = import_output(engine.store, outp)
            assert imported.answered == n and imported.failed == 0
        finally:
            await engine.aclose()
    # rewrite, answer, question, answer, judge
    assert rounds == 5
    strip = lambda rows: sorted(({k: v for k, v in r.items() if k != "created_at"} for r in rows),  # noqa: E731
                                key=lambda r: r["id"])
    assert strip(F.read_jsonl(res.raw_path)) == strip(F.read_jsonl(live.raw_path))
    assert sent_live == 5 * 5


def test_cli_batch_file_exit_3_import_and_bad_lines(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(4)))
    store, reqs, outp = tmp_path / "s.sqlite", tmp_path / "reqs.jsonl", tmp_path / "out.jsonl"
    gen = [sys.executable, "-m", "dialogforge.cli.main", "generate", str(inp), "-o", str(tmp_path / "answers.jsonl"),
           "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--store", str(store), "--batch-file", str(reqs), "-q"]
    first = subprocess.run(gen, capture_output=True, text=True, timeout=60)
    assert first.returncode == 3, first.stderr
    assert "4 request(s) written to" in first.stderr and "batch import" in first.stderr
    run_batch_offline(reqs, outp)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(outp.read_text().splitlines()[0] + "\n" + '{"custom_id": "nope", "response": {}}\n')
    imp = [sys.executable, "-m", "dialogforge.cli.main", "batch", "import", "--store", str(store)]
    refused = subprocess.run([*imp, str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and f"{bad}:2: custom_id 'nope'" in refused.stderr
    assert subprocess.run([*imp, str(outp)], capture_output=True, text=True, timeout=60).returncode == 0
    done = subprocess.run(gen, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["p0", "p1", "p2", "p3"] and all(r["response"] for r in rows)
    with pytest.raises(InputError):
        import_output(RunStore(store), tmp_path / "missing.jsonl")
