"""Export semantics against a hand-built set of annotations: CD / FA / MN / CR, the reject-all case, ties."""
from __future__ import annotations

import json

from sqlalchemy import select

from dialogforge.annotate import db, work
from dialogforge.annotate.export import CD, CR, FA, MN, export, split_by_trace
from dialogforge.annotate.importer import import_files
from dialogforge.annotate.project import Settings, open_project


def _trace(turn_cands: list[int]) -> list[dict]:
    return [{"observation": {"time": str(1717000000 + i), "event": f"event {i}"},
             "agent_response": {"candidate_task": [f"task {i}.{j}" for j in range(n)]}}
            for i, n in enumerate(turn_cands)]


def _users(proj, names):
    with proj.Session.begin() as s:
        for n in names:
            s.add(db.User(username=n, pw_hash=None))
    with proj.Session() as s:
        return {u.username: u.id for u in s.scalars(select(db.User))}


def _annotate(proj, uid, answers):
    """answers: per asked turn (help, accepted, reject_all)."""
    trace_id = work.assign(proj.Session, uid, proj.settings)
    with proj.Session.begin() as s:
        for turn, (help_, acc, rej) in zip(work.asked_turns(s, trace_id), answers):
            work.save_answer(s, uid, turn, work.Submitted(help_, acc, rej), proj.settings)
    return trace_id


def test_majority_semantics(tmp_path, db_url):
    proj = open_project(tmp_path / "p", db_url, settings=Settings(annotators=3))
    f = tmp_path / "code_1.json"
    f.write_text(json.dumps(_trace([3, 0, 2, 2])))
    import_files(proj, [f])
    ids = _users(proj, ["a", "b", "c"])
    plan = {
        "a": [(True, [0, 1], False), (False, [], False), (True, [], True), (True, [], True)],
        "b": [(True, [0], False), (False, [], False), (False, [], True), (True, [], True)],
        "c": [(False, [], True), (False, [], False), (False, [], True), (True, [], True)],
    }
    for name in "abc":
        _annotate(proj, ids[name], plan[name])
    rep = export(proj.Session, tmp_path / "out", test_size=0.0)
    items = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    got = [(len(it["obs"]), it["pred_task"], it["valid"], it["help_needed"], it["annotation"], it["category"])
           for it in items]
    assert got == [
        (1, "task 0.0", True, True, [True, True, False], CD),
        (1, "task 0.1", False, True, [True, False, False], FA),
        (1, "task 0.2", False, True, [False, False, False], FA),
        (1, None, False, True, [False, False, True], MN),
        (2, None, True, False, [True, True, True], CR),           # a turn without candidates: only the question
        (3, "task 2.0", False, False, [False, False, False], FA),  # everyone chose reject-all ...
        (3, "task 2.1", False, False, [False, False, False], FA),
        (3, None, True, False, [False, True, True], CR),          # ... and the null item is still there
        (4, "task 3.0", False, True, [False, False, False], FA),
        (4, "task 3.1", False, True, [False, False, False], FA),
        (4, None, False, True, [False, False, False], MN),        # reject-all and help was needed
    ]
    assert list(items[0]) == ["obs", "pred_task", "valid", "help_needed", "annotation", "category"]
    assert items[3]["obs"] == [{"time": "1717000000", "event": "event 0"}]
    assert rep.items == {CD: 1, FA: 6, MN: 2, CR: 2} and not rep.ties
    proj.close()


def test_ties_left_out_and_counted(tmp_path):
    proj = open_project(tmp_path / "p", settings=Settings(annotators=2))
    f = tmp_path / "code_1.json"
    f.write_text(json.dumps(_trace([2])))
    import_files(proj, [f])
    ids = _users(proj, ["a", "b"])
    _annotate(proj, ids["a"], [(True, [0, 1], False)])
    _annotate(proj, ids["b"], [(False, [1], False)])
    rep = export(proj.Session, tmp_path / "out", test_size=0.0, min_annotators=2)
    items = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    # task 0: 1 yes / 1 no -> tie; task 1 accepted by both, but the help question ties -> left out too
    assert items == []
    assert rep.ties == {"candidate": 1, "help": 2}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["ties_left_out"] == {"candidate": 1, "help": 2}
    # an unfinished trace is not exported with the default 3 annotators
    rep3 = export(proj.Session, tmp_path / "out3", test_size=0.0, min_annotators=3)
    assert rep3.traces_incomplete == 1 and sum(rep3.items.values()) == 0
    proj.close()


def test_split_by_trace_stratified_and_seeded():
    groups = {}
    cats = [CD, FA, MN, CR]
    for t in range(40):
        groups[f"t{t}"] = [{"category": cats[(t + k) % 4]} for k in range(3 + t % 5)]
    train, test = split_by_trace(groups, 0.25, seed=7)
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(groups)
    assert split_by_trace(groups, 0.25, seed=7) == (train, test)
    assert split_by_trace(groups, 0.25, seed=8) != (train, test)
    for c in cats:
        total = sum(1 for g in groups.values() for it in g if it["category"] == c)
        in_test = sum(1 for n in test for it in groups[n] if it["category"] == c)
        assert abs(in_test / total - 0.25) < 0.08, (c, in_test, total)


def test_export_of_real_traces_has_the_real_reward_item_form(realdata, tmp_path):
    """Real ProactiveBench traces in, three annotators, export: each row has the keys and value types of
    reward_data/test_data.jsonl, and proactive's reward-item reader (the consumer) loads the file."""
    import random

    from dialogforge.workflows.proactive.data import load_reward_items
    proj = open_project(tmp_path / "p", settings=Settings(annotators=3))
    import_files(proj, sorted((realdata / "proactivebench" / "test_data").glob("code_1*.json"))[:2])
    ids = _users(proj, ["a", "b", "c"])
    rng = random.Random(3)
    for name in "abc":
        while (trace_id := work.assign(proj.Session, ids[name], proj.settings)) is not None:
            with proj.Session.begin() as s:
                for turn in work.asked_turns(s, trace_id):
                    acc = [j for j in range(len(turn.candidates)) if rng.random() < 0.4]
                    work.save_answer(s, ids[name], turn, work.Submitted(rng.random() < 0.5, acc,
                                                                        bool(turn.candidates) and not acc),
                                     proj.settings)
    rep = export(proj.Session, tmp_path / "out", test_size=0.5, seed=1)
    real = json.loads((realdata / "proactivebench" / "reward_data" / "test_data.jsonl").read_text().splitlines()[0])
    rows = [json.loads(x) for part in ("train", "test")
            for x in (tmp_path / "out" / f"{part}.jsonl").read_text().splitlines()]
    assert rep.traces_used == 2 and len(rows) == sum(rep.items.values()) > 0
    for row in rows:
        assert list(row) == list(real)
        assert all(set(o) == {"time", "event"} for o in row["obs"])
        assert isinstance(row["valid"], bool) and isinstance(row["help_needed"], bool)
        assert len(row["annotation"]) == 3 and row["category"] in (CD, FA, MN, CR)
    assert len(load_reward_items(tmp_path / "out" / "train.jsonl")) == rep.split["train"]["items"]
    train = {r["obs"][0]["event"] for r in rows[: rep.split["train"]["items"]]}
    test = {r["obs"][0]["event"] for r in rows[rep.split["train"]["items"]:]}
    assert train.isdisjoint(test)                         # whole traces on one side (first events differ by trace)
    proj.close()
