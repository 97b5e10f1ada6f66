"""The proactive file formats load as they are; bad input names the file, the index and the field."""
from __future__ import annotations

import json

import pytest

from dialogforge.engine.errors import InputError
from dialogforge.workflows.proactive.data import (load_reward_items, load_scenes, load_seedtasks, load_splits,
                                                  load_trace)
from dialogforge.workflows.proactive.history import trimmed_history
from dialogforge.workflows.proactive.config import HistoryConfig
from dialogforge.workflows.proactive.data import Observation


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def turn(t="1717000000.5", event="The user types.", cands=None):
    return {"observation": {"time": t, "event": event}, "agent_response": {"candidate_task": cands or []},
            "task_status": bool(cands)}


def test_test_trace_and_published_predictions(tmp_path):
    f = _write(tmp_path / "code_1.json", [turn(cands=["A", "B"]), turn(), {
        "observation": {"time": "1717000009", "event": "x"}, "agent_response": ["null"]}, {
        "observation": {"time": "1717000010", "event": "y"}, "agent_response": ["Do X", "Do Y"]}])
    turns = load_trace(f)
    assert [t.predictions for t in turns] == [["A", "B"], [None], [None], ["Do X", "Do Y"]]
    assert turns[0].observation.time == "1717000000.5" and turns[0].task_status is True


@pytest.mark.parametrize("bad,expect", [
    ({"observation": {"time": "soon", "event": "e"}}, "turn [1]: observation: field 'time' is not a number"),
    ({"observation": {"time": "1"}}, "turn [1]: observation: missing field 'event'"),
    ({"observation": {"time": "1", "event": 3}}, "turn [1]: observation: field 'event' must be a string"),
    ({"agent_response": {"candidate_task": []}}, "turn [1]: missing field 'observation'"),
    ({"observation": {"time": "1", "event": "e"}, "agent_response": {"candidate_task": "x", "y": 1}}, None),
    ({"observation": {"time": "1", "event": "e"}, "agent_response": {"candidate_task": [1]}},
     "turn [1]: field 'agent_response.candidate_task[0]' must be a string"),
    ({"observation": {"time": "1", "event": "e"}, "agent_response": {}},
     "turn [1]: missing field 'agent_response.candidate_task'"),
    ({"observation": {"time": "1", "event": "e"}, "task_status": "yes"}, "turn [1]: field 'task_status'"),
    ("not an object", "turn [1]: expected a JSON object"),
])
def test_bad_turns_are_named(tmp_path, bad, expect):
    f = _write(tmp_path / "t.json", [turn(), bad])
    if expect is None:
        assert load_trace(f)[1].predictions == ["x"]
        return
    with pytest.raises(InputError) as e:
        load_trace(f)
    assert str(f) in str(e.value) and expect in str(e.value)


def test_reward_items_and_categories(tmp_path):
    f = tmp_path / "r.jsonl"
    rows = [{"obs": [{"time": "1", "event": "e"}], "pred_task": None, "valid": True, "help_needed": False,
             "annotation": [True], "category": "Correct-Rejection (CR)"},
            {"obs": [{"time": "1", "event": "e"}], "pred_task": "T", "valid": "no", "category": "False-Alarm (FA)"}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(InputError, match=r"r.jsonl:2: field 'valid'"):
        load_reward_items(f)
    f.write_text(json.dumps(rows[0]) + "\n")
    [item] = load_reward_items(f)
    assert item.code == "CR" and item.pred_task is None


def test_seedtasks_scenes_splits(tmp_path):
    s = tmp_path / "seed.yaml"
    s.write_text("coding:\n  tasks: [a, b]\n  sample_events: [e]\nwriting:\n  tasks: []\n")
    with pytest.raises(InputError, match="'writing.tasks' is empty"):
        load_seedtasks(s)
    one = tmp_path / "gym.yaml"
    one.write_text("environment: {theme: t, description: d, entities: [x], agent_ops: ['op()'], events_example: []}\n"
                   "eventSink: {out_file: x.jsonl}\nuser: {description: u, goal: g, theme: t}\n")
    [(sid, scene)] = load_scenes(one)
    assert sid == "scene_0" and scene.user.goal == "g"
    one.write_text("- environment: {theme: t, description: d, entities: [], agent_ops: [o]}\n  user: {goal: g, description: d}\n")
    with pytest.raises(InputError, match=r"scene \[0\]: field 'environment.entities'"):
        load_scenes(one)
    sp = _write(tmp_path / "splits.json", {"mine": {"files": ["a.json"], "theme": "x"}, "bad": {"files": []}})
    with pytest.raises(InputError, match="'bad.files'"):
        load_splits(sp)


def test_history_is_trimmed_to_budget_oldest_first():
    obs = [Observation(time=str(1000 + i), event=f"event number {i} " + "word " * 20) for i in range(60)]
    cfg = HistoryConfig(max_tokens=300, event_chars=60)
    older, new, omitted = trimmed_history(obs, cfg)
    assert new["event"] == obs[-1].event  # the newest in full
    size = sum(len(e["time"] + e["event"]) // 4 + 4 for e in older)
    assert size <= 300 and omitted > 0
    assert "–" in older[0]["time"]  # adjacent observations merged before any was cut
    assert older[-1]["time"].endswith(str(1058))  # the most recent older observation is kept
    small = trimmed_history(obs[:3], HistoryConfig(max_tokens=5000))
    assert small[2] == 0 and len(small[0]) == 2


def test_realdata_proactivebench_loads(realdata):
    pb = realdata / "proactivebench"
    traces = sorted((pb / "test_data").glob("*.json"))
    assert len(traces) == 6
    for f in traces:
        turns = load_trace(f)
        assert turns and all(t.predictions for t in turns)
        assert any(t.predictions == [None] for t in turns)  # empty candidate lists are "no proposal"
    items = load_reward_items(pb / "reward_data" / "test_data.jsonl")
    assert len(items) == 120 and {i.code for i in items} == {"CD", "FA", "MN", "CR"}
    seeds = load_seedtasks(pb / "seedtask.yaml")
    assert {"codingassistant", "writingassistant", "dailyassistant"} <= set(seeds)
    assert len(load_scenes(pb / "new_scenes_sample.yaml")) >= 1
    assert len(load_scenes(pb / "gym_scene_example.yaml")) == 1
