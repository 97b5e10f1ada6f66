"""Executor flags that do not fit together are refused in one line, before anything runs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("flags, message", [
    (["--ray-address", "auto"], "--ray-address and --ray-workers go with --executor ray"),
    (["--executor", "ray", "--batch"], "does not combine with --executor ray"),
    (["--batch", "--batch-file", "f.jsonl"], "either --batch"),
    (["--executor", "spark"], "unknown executor 'spark'"),
])
def test_bad_executor_flags(tmp_path, flags, message):
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"prompt": "hi"}) + "\n")
    r = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "generate", str(inp), "-o", str(tmp_path / "o.jsonl"),
                        "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--store", str(tmp_path / "s.sqlite"),
                        *flags], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o.jsonl").exists()
    assert not (tmp_path / "s.sqlite").exists()  # refused before the run store is created
