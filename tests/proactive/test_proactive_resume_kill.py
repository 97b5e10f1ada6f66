"""kill -9 of `dialogforge proactive simulate` mid-trace, then a rerun: every trace exactly once, the half-made
traces resume from the run store (events as memos, calls from the log), and no finished call is sent again."""
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

import proactive_fake as F

SCENES, STEPS, CONC, K = 6, 4, 3, 3


def _scenes(path):
    path.write_text(yaml.safe_dump([
        {"environment": {"theme": f"Theme {i}", "description": f"Desk number {i} with a laptop.",
                         "entities": ["Editor", "Browser"], "agent_ops": ["open(path)"], "events_example": []},
         "user": {"goal": f"Finish job {i}", "description": f"Person {i}, a programmer."}} for i in range(SCENES)]))
    return path


def test_kill_9_mid_simulation_then_resume(tmp_path):
    scenes = _scenes(tmp_path / "scenes.yaml")
    with FakeServer.background(responder=F.responder, latency=0.03) as srv:
        cfg = F.write_config(srv.base_url, tmp_path, concurrency=CONC,
                             simulate={"steps": STEPS, "candidates": K, "events_per_step": 2})
        cmd = [sys.executable, "-m", "dialogforge.cli.main", "proactive", "simulate", str(scenes), "-o",
               str(tmp_path / "traces.jsonl"), "-c", str(cfg), "-q"]
        env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while srv.count < 60 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first_run = srv.count
        partial = F.read_jsonl(tmp_path / "traces.jsonl")
        assert len(partial) < SCENES
        db = sqlite3.connect(tmp_path / "store.sqlite")
        memo_items = {r[0] for r in db.execute("SELECT DISTINCT item_id FROM memos WHERE key LIKE 'event:%'")}
        half_made = memo_items - {t["id"] for t in partial}
        assert half_made, "no trace was mid-way at the kill"
        db.close()

        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr

        traces = F.read_jsonl(tmp_path / "traces.jsonl")
        assert len(traces) == SCENES and len({t["id"] for t in traces}) == SCENES
        bodies = Counter(json.dumps(b, sort_keys=True) for b in srv.requests)
        resent = sum(c - 1 for c in bodies.values())
        assert resent <= CONC * K, resent  # only calls in flight at the kill can be sent again
        assert srv.count - first_run < len(bodies)  # the rerun did not start over
        db = sqlite3.connect(tmp_path / "store.sqlite")
        twice = db.execute("SELECT COUNT(*) FROM (SELECT cache_key FROM calls WHERE error IS NULL AND cache_key IS NOT "
                           "NULL GROUP BY cache_key HAVING COUNT(*) > 1)").fetchone()[0]
        dup = db.execute("SELECT purpose, item_id FROM calls WHERE error IS NULL AND cache_key IN (SELECT cache_key FROM "
                         "calls WHERE error IS NULL GROUP BY cache_key HAVING COUNT(*) > 1)").fetchall()
        assert twice == 0, dup  # no call that had finished was made again
        for t in traces:  # the events the store kept are the trace's events, in order
            memo = [json.loads(v) for (v,) in db.execute(
                "SELECT value FROM memos WHERE item_id=? AND key LIKE 'event:%' ORDER BY CAST(substr(key, 7) AS INT)",
                (t["id"],))]
            assert memo == t["events"]
        assert len(list((tmp_path / "traces_test").glob("*.json"))) == SCENES
