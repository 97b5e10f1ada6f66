"""`persona run --batch`, killed with -9 while a later round's job is out: the rerun adopts it, no round is
submitted twice, and the dialogues equal a live run's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from dialogforge.testing.fake_server import FakeServer

import persona_fake as F

pytestmark = pytest.mark.timeout(240)


def _run(cfg_path, *extra, **kw):
    return subprocess.Popen([sys.executable, "-m", "dialogforge.cli.main", "persona", "run", str(cfg_path),
                             "--date", "2026-03-04", "-q", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kw)


def test_persona_batch_rounds_survive_kill_9(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 4)
    with FakeServer.background(responder=F.responder, batch_delay=1.0) as srv:
        assert srv.batches is not None
        paths = {}
        for mode in ("live", "batch"):
            cfg = F.config(srv.base_url, tmp_path / mode, seeds=seeds, turns=2, concurrency=4)
            paths[mode] = tmp_path / f"{mode}.yaml"
            paths[mode].write_text(yaml.safe_dump(cfg))
        live = _run(paths["live"])
        assert live.wait(120) == 0, live.stdout.read() if live.stdout else ""
        batch_args = ("--batch", "--batch-poll", "0.05")
        p = _run(paths["batch"], *batch_args)
        while srv.batches.created < 2:  # round 2's job is out, not yet answered
            assert p.poll() is None, p.stdout.read() if p.stdout else ""
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        p = _run(paths["batch"], *batch_args)
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0, out
        assert "adopting" in out
        # rewrite, answer, follow-up question, answer, judge: five rounds, each submitted once
        assert srv.batches.created == 5
    strip = lambda rows: sorted(({k: v for k, v in r.items() if k != "created_at"} for r in rows),  # noqa: E731
                                key=lambda r: r["id"])
    raw = lambda mode: next((tmp_path / mode / "raw").glob("*_raw_2026-03-04.jsonl"))  # noqa: E731
    got, want = strip(F.read_jsonl(raw("batch"))), strip(F.read_jsonl(raw("live")))
    assert len(want) == 4 and got == want
