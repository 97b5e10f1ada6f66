"""kill -9 of `dialogforge persona run` mid-run, then a rerun: every dialogue exactly once, and no
finished call is sent again (counted at the server and in the run store)."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import yaml

from dialogforge.testing.fake_server import FakeServer

import persona_fake as F

DATE = "2026-05-06"
# DF_PERSONA_KILL_SIZE=200x4 runs the full-size variant (about 10 s); CI runs 40 x 3.
SEEDS, TURNS = (int(x) for x in os.environ.get("DF_PERSONA_KILL_SIZE", "40x3").split("x"))
CONC = 8
PER_DIALOGUE = 1 + TURNS + (TURNS - 1) + 1  # rewrite, answers, follow-ups, judge


def _cmd(cfg_path):
    return [sys.executable, "-m", "dialogforge.cli.main", "persona", "run", str(cfg_path), "--date", DATE, "--quiet"]


def test_kill_9_then_resume(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", SEEDS)
    with FakeServer.background(responder=F.responder, latency=0.03) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=TURNS, concurrency=CONC)
        cfg_path = tmp_path / "c.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
        proc = subprocess.Popen(_cmd(cfg_path), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while srv.count < SEEDS * PER_DIALOGUE // 3 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first_run = srv.count
        raw_path = tmp_path / "raw" / f"persona_raw_{DATE}.jsonl"
        partial = F.read_jsonl(raw_path) if raw_path.exists() else []
        assert len(partial) < SEEDS
        print("killed after", first_run, "requests with", len(partial), "dialogues written")

        done = subprocess.run(_cmd(cfg_path), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        raw = F.read_jsonl(raw_path)
        assert len(raw) == SEEDS and len({r["id"] for r in raw}) == SEEDS
        assert all(len(r["messages"]) == 2 * TURNS and all(m["content"].strip() for m in r["messages"]) for r in raw)
        filt = F.read_jsonl(tmp_path / "filtered" / f"persona_filtered_{DATE}.jsonl")
        assert {r["id"] for r in filt} == {r["id"] for r in raw if r["passed"]}

        bodies = Counter(json.dumps(b, sort_keys=True) for b in srv.requests)
        assert len(bodies) == SEEDS * PER_DIALOGUE  # every distinct call reached the server
        resent = sum(c - 1 for c in bodies.values())
        # only calls in flight at the kill (at most one per dialogue in flight) can be sent again
        assert resent <= CONC, resent
        print("total requests", srv.count, "distinct", len(bodies), "resent", resent)
        assert srv.count - first_run < SEEDS * PER_DIALOGUE  # the rerun did not start over
        db = sqlite3.connect(tmp_path / "store.sqlite")
        twice = db.execute("SELECT COUNT(*) FROM (SELECT cache_key FROM calls WHERE error IS NULL AND cache_key IS NOT "
                           "NULL GROUP BY cache_key HAVING COUNT(*) > 1)").fetchone()[0]
        assert twice == 0  # no call that had finished was made again
        summary = json.loads((tmp_path / "raw" / f"persona_summary_{DATE}.json").read_text())
        assert summary["dialogues"] == SEEDS and summary["failed"] == 0
