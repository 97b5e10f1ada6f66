"""`dialogforge generate --executor ray --ray-workers 2`, start to exit, on a local Ray instance it starts itself;
the driver killed with -9 mid-run, then rerun: every item once, no answered call sent again."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(240)


def test_generate_with_executor_ray_whole_process_and_driver_kill(tmp_path):
    from dialogforge.testing.fake_server import FakeServer
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(30)))

    def cli(ex: str) -> list[str]:
        return [sys.executable, "-m", "dialogforge.cli.main", "generate", str(inp), "-o", str(tmp_path / f"{ex}.jsonl"),
                "--base-url", srv.base_url, "--model", "m", "--store", str(tmp_path / f"{ex}.sqlite"), "-j", "4",
                "--executor", ex, *(["--ray-workers", "2"] if ex == "ray" else []), "-q"]

    with FakeServer.background(latency=0.3) as srv:
        assert subprocess.run(cli("local"), capture_output=True, timeout=120).returncode == 0
        first = subprocess.Popen(cli("ray"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = time.time() + 150
        while srv.count < 30 + 8 and time.time() < deadline:  # the driver is past its start, items are flowing
            assert first.poll() is None
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        first.wait()
        r = subprocess.run(cli("ray"), capture_output=True, text=True, timeout=150)
        assert r.returncode == 0, r.stderr[-2000:]
    rows = {ex: [json.loads(x) for x in (tmp_path / f"{ex}.jsonl").read_text().splitlines()] for ex in ("local", "ray")}
    assert sorted(r["id"] for r in rows["ray"]) == sorted(f"p{i}" for i in range(30))  # each once
    assert sorted(r["response"] for r in rows["ray"]) == sorted(r["response"] for r in rows["local"])
    db = sqlite3.connect(tmp_path / "ray.sqlite")
    keys = [k for (k,) in db.execute("SELECT cache_key FROM calls WHERE response IS NOT NULL")]
    assert len(keys) == len(set(keys)) == 30  # no call whose answer reached the driver was sent again
