"""The proactive commands against the fake server with scripted replies (see proactive_fake.py)."""
from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
import yaml
from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.proactive.data import load_scenes, load_trace

import proactive_fake as F

runner = CliRunner()


def cli(*args):
    res = runner.invoke(app, ["proactive", *map(str, args), "-q"])
    return res


def metrics(path):
    return {r["split"]: r for r in csv.DictReader(path.open())}


@pytest.fixture
def srv():
    with FakeServer.background(responder=F.responder) as s:
        yield s


def test_scenes_simulate_trainset_eval_chain(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path, simulate={"steps": 2, "candidates": 3, "events_per_step": 2})
    seeds = F.write_seeds(tmp_path / "seeds.yaml")
    r = cli("scenes", seeds, "-o", tmp_path / "scenes.jsonl", "-c", cfg)
    assert r.exit_code == 0, r.output
    rows = F.read_jsonl(tmp_path / "scenes.jsonl")
    assert len(rows) == 3 and len({r["id"] for r in rows}) == 3
    listed = yaml.safe_load((tmp_path / "scenes.yaml").read_text())
    assert [set(s) for s in listed] == [{"environment", "user"}] * 3  # the shape of new_scenes_sample.yaml
    assert set(listed[0]["environment"]) == {"theme", "description", "entities", "agent_ops", "events_example"}
    assert len(load_scenes(tmp_path / "scenes.yaml")) == 3

    n_before = srv.count
    r = cli("scenes", seeds, "-o", tmp_path / "scenes.jsonl", "-c", cfg)  # rerun: nothing made twice
    assert r.exit_code == 0 and srv.count == n_before and len(F.read_jsonl(tmp_path / "scenes.jsonl")) == 3

    r = cli("simulate", tmp_path / "scenes.yaml", "-o", tmp_path / "traces.jsonl", "-n", 2, "-c", cfg)
    assert r.exit_code == 0, r.output
    traces = F.read_jsonl(tmp_path / "traces.jsonl")
    assert len(traces) == 2
    for tr in traces:
        assert 1 <= len(tr["turns"]) <= 2 * 2  # steps x events_per_step
        times = [e["time"] for e in tr["events"]]
        assert times == sorted(times) and all(set(e) == {"source", "time", "tags", "content"} for e in tr["events"])
        assert "user" in {e["source"] for e in tr["events"]}
        [editor] = tr["state"]["entities"]  # the environment's state: status (updated by events), properties
        assert editor["properties"] == {"language": "python"} and editor["status"] in ("edited", "a.py")
        assert tr["state"]["agent_ops"] == ["open(path)"]
        for t in tr["turns"]:
            assert len(t["candidate_task"]) <= 3 and len(t["attempts"]) <= 1 + 2
        pb = load_trace(tmp_path / "traces_test" / f"{tr['id'].replace('/', '_').replace('#', '_')}.json")
        assert [t.observation.event for t in pb] == [t["observation"]["event"] for t in tr["turns"]]
        assert [t.task_status for t in pb] == [t["accepted"] for t in tr["turns"]]
    assert {e["source"] for tr in traces for e in tr["events"]} == {"user", "agent", "environment"}
    samples_sent = Counter(json.dumps(b["messages"]) for b in srv.requests
                           if F.schema_name(b) == "AgentAnswer" and b.get("seed") is not None)
    assert samples_sent  # K agent samples are distinct draws (another seed each)
    assert len({b.get("seed") for b in srv.requests if F.schema_name(b) == "AgentAnswer"}) >= 3

    r = cli("trainset", tmp_path / "traces.jsonl", "-o", tmp_path / "train", "-c", cfg)
    assert r.exit_code == 0, r.output
    samples = F.read_jsonl(tmp_path / "train" / "samples.jsonl")
    n_turns = sum(len(t["turns"]) for t in traces)
    assert len(samples) + len(F.read_jsonl(tmp_path / "train" / "dropped.jsonl")) == n_turns
    sent = {json.dumps(b["messages"]) for b in srv.requests}
    for s in samples:  # exact: the messages are what the agent was sent, the last one its reply
        assert json.dumps(s["messages"][:-1]) in sent and s["messages"][-1]["role"] == "assistant"
        assert 1 <= s["trials"] <= 3 and s["judge"]["accept"] is True
    lf = F.read_jsonl(tmp_path / "train" / "llamafactory.jsonl")
    assert len(lf) == len(samples) and "conversations" in lf[0]
    assert "llamafactory" in json.loads((tmp_path / "train" / "dataset_info.json").read_text())
    assert len(F.read_jsonl(tmp_path / "train" / "trl.jsonl")) == len(samples)

    r = cli("eval", tmp_path / "traces_test", "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 0, r.output
    m = metrics(tmp_path / "ev" / "metrics.csv")
    assert int(m["all"]["turns"]) == n_turns and "all" in r.output
    assert "<img" in (tmp_path / "ev" / "report.html").read_text()


def test_metric_values_equal_a_hand_computation(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path)
    F.marked_trace(tmp_path / "code_1.json", ["[good]", "[good]", "[bad]", "[calm]", "[need]", "[junk]"])
    F.marked_trace(tmp_path / "writing_1.json", ["[calm]", "[bad]"])
    (tmp_path / "code_2.json").write_text(json.dumps([{"observation": {"time": "12", "event": "ok"}},
                                                      {"observation": {"time": "Monday", "event": "x"}}]))
    r = cli("eval", tmp_path / "code_1.json", tmp_path / "code_2.json", tmp_path / "writing_1.json",
            "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 1  # a file was left out
    assert "code_2.json: turn [1]: observation: field 'time' is not a number of seconds: 'Monday'" in " ".join(r.output.split())
    m = metrics(tmp_path / "ev" / "metrics.csv")
    c = m["coding"]
    # TP=2 (two accepted proposals), FP=1, TN=1, FN=1, one unparseable turn
    assert [int(c[k]) for k in ("turns", "TP", "FP", "TN", "FN", "failed")] == [6, 2, 1, 1, 1, 1]
    assert float(c["recall"]) == pytest.approx(2 / 3, abs=1e-4)       # TP/(TP+FN)
    assert float(c["precision"]) == pytest.approx(2 / 3, abs=1e-4)    # TP/(TP+FP)
    assert float(c["accuracy"]) == pytest.approx(3 / 5, abs=1e-4)     # (TP+TN)/all judged
    assert float(c["false_alarm"]) == pytest.approx(1 / 3, abs=1e-4)  # FP/(TP+FP)
    assert float(c["f1"]) == pytest.approx(2 / 3, abs=1e-4)
    w = m["writing"]
    assert [int(w[k]) for k in ("TP", "FP", "TN", "FN", "failed")] == [0, 1, 1, 0, 0]
    assert w["recall"] == "" and float(w["false_alarm"]) == 1.0  # 0/0 is empty, not 0
    a = m["all"]
    assert [int(a[k]) for k in ("turns", "TP", "FP", "TN", "FN", "failed")] == [8, 2, 2, 2, 1, 1]
    assert float(a["accuracy"]) == pytest.approx(4 / 7, abs=1e-4)
    fails = F.read_jsonl(tmp_path / "ev" / "results.failures.jsonl")
    assert len(fails) == 1 and "unparseable agent answer" in fails[0]["error"]


def test_predictions_of_published_and_test_traces(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path)
    pub = tmp_path / "model_a.json"
    pub.write_text(json.dumps([
        {"observation": {"time": "1", "event": "e [calm]"}, "agent_response": ["null"]},
        {"observation": {"time": "2", "event": "e [need]"}, "agent_response": ["null"]},
        {"observation": {"time": "3", "event": "e"}, "agent_response": ["GOOD: a", "BAD: b"]}]))
    test = F.marked_trace(tmp_path / "t.json", ["[calm]", "[need]"])
    data = json.loads(test.read_text())
    data[0]["agent_response"]["candidate_task"] = ["GOOD: one", "GOOD: two", "BAD: three"]
    test.write_text(json.dumps(data))
    (tmp_path / "splits.json").write_text(json.dumps({"published": {"files": ["model_a.json"], "theme": "x"},
                                                      "bench": {"files": ["t.json"], "theme": "y"}}))
    n0 = srv.count
    r = cli("eval", "--predictions", "--splits", tmp_path / "splits.json", "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 0, r.output
    assert srv.count - n0 == 4 + 4  # every prediction judged, no agent call
    m = metrics(tmp_path / "ev" / "metrics.csv")
    assert [int(m["published"][k]) for k in ("TP", "FP", "TN", "FN")] == [1, 1, 1, 1]
    # t.json: turn 0 holds 3 candidates; turn 1 an empty list = no proposal, and help was needed
    assert [int(m["bench"][k]) for k in ("predictions", "TP", "FP", "TN", "FN")] == [4, 2, 1, 0, 1]
    missing = tmp_path / "nopred.json"
    missing.write_text(json.dumps([{"observation": {"time": "1", "event": "e"}}]))
    r = cli("eval", "--predictions", missing, "-o", tmp_path / "ev2", "-c", cfg)
    assert r.exit_code == 2 and "turn [0]: missing field 'agent_response'" in " ".join(r.output.split())
    assert not (tmp_path / "ev2").exists()  # nothing could be evaluated: no output folder


def test_reward_model_evaluation_per_category(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path)

    def item(event, pred, valid, cat):
        return {"obs": [{"time": "Day 1, 8:00 PM", "event": "start"}, {"time": "Day 1, 8:05 PM", "event": event}],
                "pred_task": pred, "valid": valid, "help_needed": True, "annotation": [valid],
                "category": cat}
    rows = [item("e", "GOOD: x", True, "Correct-Detection (CD)"),
            item("e", "BAD: x", False, "False-Alarm (FA)"),
            item("e [need]", None, False, "Missed-Need (MN)"),
            item("e [calm]", None, True, "Correct-Rejection (CR)"),
            item("e [need]", None, True, "Correct-Rejection (CR)"),        # the judge gets this one wrong
            item("e [judgejunk]", None, True, "Correct-Rejection (CR)")]   # unparseable: counted wrong
    f = tmp_path / "test_data.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = cli("eval", "--reward-items", f, "-o", tmp_path / "rm", "-c", cfg)
    assert r.exit_code == 0, r.output
    [overall] = csv.DictReader((tmp_path / "rm" / "reward_metrics.csv").open())
    assert int(overall["items"]) == 6 and int(overall["unparseable"]) == 1
    assert float(overall["accuracy"]) == pytest.approx(4 / 6, abs=1e-4)
    # valid is positive: TP=2 (CD, CR calm), FN=2 (wrong CR, unparseable CR), FP=0, TN=2
    assert float(overall["precision"]) == 1.0 and float(overall["recall"]) == pytest.approx(0.5)
    cats = {r["category"]: r for r in csv.DictReader((tmp_path / "rm" / "reward_categories.csv").open())}
    assert {k: float(v["accuracy"]) for k, v in cats.items()} == pytest.approx(
        {"CD": 1.0, "FA": 1.0, "MN": 1.0, "CR": 1 / 3}, abs=1e-4)
    assert cats["CR"]["unparseable"] == "1"


def test_trainset_trials_are_bounded_counting_every_failure(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path, trainset={"max_trials": 3})
    F.marked_trace(tmp_path / "code_9.json", ["[bad]", "[junk]", "[good]"])
    r = cli("trainset", tmp_path / "code_9.json", "-o", tmp_path / "train", "-c", cfg, "--to", "none")
    assert r.exit_code == 0, r.output
    dropped = {d["turn"]: d for d in F.read_jsonl(tmp_path / "train" / "dropped.jsonl")}
    assert set(dropped) == {0, 1}
    assert len(dropped[0]["failures"]) == 3 and all(f.startswith("rejected") for f in dropped[0]["failures"])
    assert len(dropped[1]["failures"]) == 3 and all("unparseable" in f for f in dropped[1]["failures"])
    agent_calls = [b for b in srv.requests if F.schema_name(b) == "AgentAnswer"]
    assert len(agent_calls) == 3 + 3 + 1  # never more than max_trials per turn
    [s] = F.read_jsonl(tmp_path / "train" / "samples.jsonl")
    assert s["turn"] == 2 and s["target"].startswith("GOOD") and s["trials"] == 1


def test_config_errors_and_template_override(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path, simulate={"stepz": 3})
    F.marked_trace(tmp_path / "code_1.json", ["[good]"])
    r = cli("eval", tmp_path / "code_1.json", "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 2 and "proactive.simulate.stepz" in " ".join(r.output.split())
    cfg = F.write_config(srv.base_url, tmp_path, templates={"agent_turn": "Now: {{ new.event }} (ours)"})
    r = cli("eval", tmp_path / "code_1.json", "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 0, r.output
    sent = [b["messages"][-1]["content"] for b in srv.requests if F.schema_name(b) == "AgentAnswer"]
    assert sent == ["Now: The user does step 0 [good] (ours)"]
    cfg = F.write_config(srv.base_url, tmp_path, templates={"agent_tunr": "x"})
    r = cli("eval", tmp_path / "code_1.json", "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 2 and "unknown template" in r.output


def test_rerun_with_other_settings_is_refused_unless_continue(tmp_path, srv):
    seeds = F.write_seeds(tmp_path / "seeds.yaml")
    cfg = F.write_config(srv.base_url, tmp_path)
    assert cli("scenes", seeds, "-o", tmp_path / "scenes.jsonl", "-c", cfg, "-n", 1).exit_code == 0
    cfg = F.write_config(srv.base_url, tmp_path, templates={"scene_user": "Describe the person; task {{ task }}."})
    r = cli("scenes", seeds, "-o", tmp_path / "scenes.jsonl", "-c", cfg)
    assert r.exit_code == 2 and "templates" in r.output
    r = cli("scenes", seeds, "-o", tmp_path / "scenes.jsonl", "-c", cfg, "--continue")
    assert r.exit_code == 0, r.output
    assert len(F.read_jsonl(tmp_path / "scenes.jsonl")) == 3  # the first scene kept, the other two made


def test_trainset_names_a_bad_file_and_runs_the_others(tmp_path, srv):
    cfg = F.write_config(srv.base_url, tmp_path)
    F.marked_trace(tmp_path / "code_1.json", ["[good]"])
    (tmp_path / "code_2.json").write_text(json.dumps([{"observation": {"time": "1", "event": ["not", "text"]}}]))
    (tmp_path / "sim.jsonl").write_text(json.dumps({"id": "s1", "turns": [{"observation": {"event": "x"}}]}) + "\n")
    r = cli("trainset", tmp_path / "code_1.json", tmp_path / "code_2.json", tmp_path / "sim.jsonl", "-o",
            tmp_path / "train", "-c", cfg, "--to", "none")
    out = " ".join(r.output.split())
    assert r.exit_code == 1
    assert "code_2.json: turn [0]: observation: field 'event' must be a string" in out
    assert "sim.jsonl:1: field 'turns[0].observation' must hold time and event" in out
    [s] = F.read_jsonl(tmp_path / "train" / "samples.jsonl")
    assert s["trace"] == "code_1"


def test_realdata_proactivebench_evaluates(realdata, tmp_path, srv):
    pb = realdata / "proactivebench"
    cfg = F.write_config(srv.base_url, tmp_path, concurrency=32)
    r = cli("eval", "--predictions", pb / "test_data", "-o", tmp_path / "ev", "-c", cfg)
    assert r.exit_code == 0, r.output
    from dialogforge.workflows.proactive.data import load_trace
    files = sorted((pb / "test_data").glob("*.json"))
    turns = [t for f in files for t in load_trace(f)]
    m = metrics(tmp_path / "ev" / "metrics.csv")
    assert set(m) == {"coding", "writing", "all"}
    a = m["all"]
    assert int(a["turns"]) == len(turns) and int(a["failed"]) == 0
    assert int(a["predictions"]) == sum(len(t.predictions) for t in turns)  # every candidate judged; [] -> one null
    assert sum(int(a[k]) for k in ("TP", "FP", "TN", "FN")) == int(a["predictions"])
    r = cli("eval", "--reward-items", pb / "reward_data" / "test_data.jsonl", "-o", tmp_path / "rm", "-c", cfg)
    assert r.exit_code == 0, r.output
    cats = {row["category"]: row for row in csv.DictReader((tmp_path / "rm" / "reward_categories.csv").open())}
    assert set(cats) == {"CD", "FA", "MN", "CR"} and all(int(c["items"]) == 30 for c in cats.values())
    cfg = F.write_config(srv.base_url, tmp_path, simulate={"steps": 1, "candidates": 2})
    for i, scenes in enumerate(("new_scenes_sample.yaml", "gym_scene_example.yaml")):  # simulation input as it is
        r = cli("simulate", pb / scenes, "-o", tmp_path / f"sim{i}.jsonl", "-n", 1, "-c", cfg)
        assert r.exit_code == 0, r.output
        [tr] = F.read_jsonl(tmp_path / f"sim{i}.jsonl")
        assert tr["turns"] and tr["scene"]["user"]["goal"]
