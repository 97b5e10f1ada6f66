"""`annotate rm-trainset` against the fake server with a scripted model: rationales kept only when blind
readings reach the human label, bounded attempts, upsampling, LLaMA-Factory output, cached and resumable."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.testing.fake_server import FakeServer

CD, FA, MN, CR = ("Correct-Detection (CD)", "False-Alarm (FA)", "Missed-Need (MN)", "Correct-Rejection (CR)")
seen: Counter = Counter()


def responder(body: dict):
    text = body["messages"][-1]["content"]
    if "Judging only from this reasoning" in text:              # a reading: sees the rationale, never the label
        assert "reviewed" not in text and "concluded" not in text
        if "UNCLEAR" in text:                                   # readers split on a vague rationale
            seen["read:" + text] += 1
            return json.dumps({"right": seen["read:" + text] % 2 == 1})
        return json.dumps({"right": "LEANS-RIGHT" in text})
    positive = ("would accept" in text and "would not accept" not in text) or "staying quiet was right" in text
    lean = "LEANS-RIGHT" if positive else "LEANS-WRONG"
    if "[hopeless]" in text:
        return "UNCLEAR: the events say little either way."
    if "[once]" in text and "Argue for" not in text:
        seen[text] += 1
        if seen[text] == 1:                                     # the first rationale misses, the second lands
            return "UNCLEAR: the events say little either way."
    return f"{lean}: the user is in the middle of a task and the events point this way."


def item(event: str, task: str | None, valid: bool, cat: str) -> dict:
    return {"obs": [{"time": "1767225600", "event": "The user opens an editor."},
                    {"time": "1767225660", "event": event}],
            "pred_task": task, "valid": valid, "help_needed": True, "annotation": [valid] * 3, "category": cat}


@pytest.fixture
def setup(tmp_path):
    items = [item("The user runs the tests; two fail.", "Explain the failures.", True, CD),
             item("The user reads the error text.", "Fix the failing tests.", True, CD),
             item("The user types a commit message.", "Reformat the repository.", False, FA),
             item("The user searches for the error [once].", None, False, MN),
             item("The user scrolls [hopeless].", None, True, CR)]
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in items))
    return tmp_path, src


def test_rm_trainset_keeps_agreeing_rationales_balances_and_resumes(setup):
    tmp, src = setup
    seen.clear()
    with FakeServer.background(responder=responder) as srv:
        cfg = tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump({
            "endpoints": {"m": {"base_url": srv.base_url, "model": "fake", "max_retries": 1}},
            "roles": {"generator": "m", "judge": "m"}, "store": str(tmp / "store.sqlite"),
            "rm_trainset": {"readings": 3, "attempts": 3}}))
        out = tmp / "rm"
        r = CliRunner().invoke(app, ["annotate", "rm-trainset", str(src), "-o", str(out), "-c", str(cfg), "-q"])
        assert r.exit_code == 0, r.output
        first = srv.count
        sft = [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()]
        dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
        assert sorted(x["category"] for x in sft) == sorted([CD, CD, FA, MN])
        assert [x["category"] for x in dropped] == [CR] and len(dropped[0]["failures"]) == 3    # bounded
        mn = next(x for x in sft if x["category"] == MN)
        assert mn["attempts"] == 2 and mn["readings"] == [False, False, False]
        assert mn["messages"][1]["content"].endswith("staying quiet was wrong; help was needed.")
        # 4 kept: rationale + 3 readings + counter; MN one failed attempt more; CR 3 attempts x (1 + 3)
        assert first == 4 * 5 + 4 + 3 * 4
        # upsampled to the largest category (CD: 2), LLaMA-Factory files and their dataset_info entries
        lf = [json.loads(x) for x in (out / "rm_sft.jsonl").read_text().splitlines()]
        assert len(lf) == 6 and all(row["conversations"][-1]["from"] == "gpt" for row in lf)
        ranking = [json.loads(x) for x in (out / "rm_ranking.jsonl").read_text().splitlines()]
        assert len(ranking) == 6 and all("chosen" in row and "rejected" in row for row in ranking)
        info = json.loads((out / "dataset_info.json").read_text())
        assert info["rm_ranking"].get("ranking") is True and "rm_sft" in info
        # a rerun re-sends nothing: every call is in the run store
        r = CliRunner().invoke(app, ["annotate", "rm-trainset", str(src), "-o", str(out), "-c", str(cfg), "-q"])
        assert r.exit_code == 0, r.output
        assert srv.count == first
        assert len((out / "rm_sft.jsonl").read_text().splitlines()) == 6


def test_rm_trainset_bad_item_named(tmp_path):
    bad = tmp_path / "items.jsonl"
    bad.write_text(json.dumps({"obs": [], "pred_task": None, "valid": True, "category": CR}) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"endpoints": {"m": {"base_url": "http://127.0.0.1:9/v1", "model": "x"}},
                                   "roles": {"generator": "m", "judge": "m"}}))
    r = CliRunner().invoke(app, ["annotate", "rm-trainset", str(bad), "-o", str(tmp_path / "o"), "-c", str(cfg)])
    assert r.exit_code == 2 and "items.jsonl:1" in r.output and "obs" in r.output
