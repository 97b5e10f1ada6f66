"""`dialogforge generate --executor ray --ray-workers 2`, start to exit, on a local Ray instance it starts itself."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(180)


def test_generate_with_executor_ray_whole_process(tmp_path):
    from dialogforge.testing.fake_server import FakeServer
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(20)))
    with FakeServer.background() as srv:
        outs = {}
        for ex in ("local", "ray"):
            out = tmp_path / f"{ex}.jsonl"
            r = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "generate", str(inp), "-o", str(out),
                                "--base-url", srv.base_url, "--model", "m", "--store", str(tmp_path / f"{ex}.sqlite"),
                                "--executor", ex, *(["--ray-workers", "2"] if ex == "ray" else []), "-q"],
                               capture_output=True, text=True, timeout=150)
            assert r.returncode == 0, r.stderr[-2000:]
            outs[ex] = sorted(json.loads(x)["response"] for x in out.read_text().splitlines())
        assert srv.count == 40  # each executor asked each prompt once
    assert len(outs["ray"]) == 20 and outs["ray"] == outs["local"]
