"""A short run of benchmarks/annotate_load.py (the 20-annotator, 2-minute figures are in benchmarks/README.md):
a real `dialogforge annotate serve` process, annotators over HTTP, one of them walking away mid-trace."""
from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "annotate_load.py"


def test_short_load_no_double_place_no_lost_answer_abandoned_lease_returns(tmp_path):
    spec = importlib.util.spec_from_file_location("annotate_load", BENCH)
    load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load)
    res = load.run(annotators=5, seconds=6, lease_minutes=0.05, abandoners=1, think=0.02, traces=30,
                   workdir=tmp_path, late_seconds=4)
    assert res["errors"] == [] and res["problems"] == []
    assert res["answers_acked"] > 20 and res["answers_lost"] == 0
    assert res["abandoned"] == 1 and res["abandoned_returned"] == 1
    assert res["pages"]["GET turn"]["n"] > 20
