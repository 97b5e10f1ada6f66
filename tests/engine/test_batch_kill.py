"""kill -9 of `dialogforge generate --batch` right after the batch is created, and again between submit and
download: the reruns adopt the job, nothing is submitted twice, and the outputs equal a live run's."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)


def _stats(base: str) -> dict:
    with urllib.request.urlopen(base.replace("/v1", "") + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dialogforge.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_kill_after_create_and_before_download_submits_nothing_twice(tmp_path):
    port_file = tmp_path / "port"
    srv = subprocess.Popen([sys.executable, "-m", "dialogforge.testing.fake_server", "--port-file", str(port_file),
                            "--batch-delay", "4"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if port_file.exists():
                break
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port_file.read_text()}/v1"
        inp = tmp_path / "in.jsonl"
        inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(25)))
        common = ["generate", str(inp), "--base-url", base, "--model", "m", "--n", "2", "-q"]
        batch = [*common, "-o", str(tmp_path / "batch.jsonl"), "--store", str(tmp_path / "b.sqlite"), "--batch",
                 "--batch-poll", "0.1"]

        # 1. killed the moment the provider has the batch (its id may not be in the store yet)
        p = _cli(*batch)
        while _stats(base)["batches"]["created"] < 1:
            assert p.poll() is None, p.stdout.read() if p.stdout else ""
            time.sleep(0.005)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        # 2. the rerun adopts the job and waits on it; killed again before the answers are downloaded
        p = _cli(*batch)
        time.sleep(1.5)
        assert p.poll() is None
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert _stats(base)["batches"]["created"] == 1
        # 3. the last rerun finishes from the same job
        p = _cli(*batch)
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
        assert "adopting" in out or "submitted" not in out
        assert _stats(base)["batches"]["created"] == 1  # nothing submitted twice

        show = _cli("runs", "show", "generate", "--store", str(tmp_path / "b.sqlite"))
        text, _ = show.communicate(timeout=30)
        assert "batch jobs" in text and "completed" in text and "batch total: $" in text, text

        live = _cli(*common, "-o", str(tmp_path / "live.jsonl"), "--store", str(tmp_path / "l.sqlite"))
        assert live.wait(60) == 0
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
    got = sorted(rows(tmp_path / "batch.jsonl"), key=lambda r: (r["id"], r["sample"]))
    want = sorted(rows(tmp_path / "live.jsonl"), key=lambda r: (r["id"], r["sample"]))
    assert len(got) == 50 and got == want
