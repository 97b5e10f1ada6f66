"""`dialogforge demo` (what `make demo` runs): real dialogues on the embedded model, end to end."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from dialogforge.engine.backends.embedded import available as embedded_available

pytestmark = [pytest.mark.skipif(not embedded_available(), reason="the embedded extra is not installed"),
              pytest.mark.slow]  # the whole demo, twice: minutes on 2 cores (`make test-slow`)


def read_jsonl(p):
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def test_demo_makes_dialogues_scores_filtered_set_export_and_report(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "dialogforge.cli.main", "demo", "--out", str(out), "--limit", "2"]
    env = {**os.environ, "DIALOGFORGE_HOME": str(tmp_path / "home")}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("persona dialogues: ") == 1, r.stderr  # the summary tables, once
    [raw] = list((out / "persona" / "raw").glob("persona_raw_*.jsonl"))
    dialogues = read_jsonl(raw)
    assert len(dialogues) == 2
    for d in dialogues:
        roles = [m["role"] for m in d["messages"]]
        assert roles[:4] == ["user", "assistant", "user", "assistant"] and len(roles) >= 6
        assert all(m["content"].strip() for m in d["messages"])
        assert d["judge"] is None or 1.0 <= d["judge"]["score"] <= 5.0
        assert set(d["checks"]) >= {"catchphrase", "shrinking", "echo"}
    [filtered] = list((out / "persona" / "filtered").glob("persona_filtered_*.jsonl"))
    kept = read_jsonl(filtered)
    assert {d["id"] for d in kept} == {d["id"] for d in dialogues if d["passed"]}
    assert len(read_jsonl(out / "llamafactory" / "persona_sharegpt.jsonl")) == len(kept)
    if kept:  # the tiny model sometimes fails every check; an empty set is not registered
        info = json.loads((out / "llamafactory" / "dataset_info.json").read_text())
        assert info["dialogforge_persona_demo"]["formatting"] == "sharegpt"
    assert "<img" in (out / "persona_report.html").read_text()

    calls = sqlite3.connect(out / "store.sqlite").execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr
    assert len(read_jsonl(raw)) == 2  # the day file gains nothing
    assert sqlite3.connect(out / "store.sqlite").execute("SELECT COUNT(*) FROM calls").fetchone()[0] == calls
