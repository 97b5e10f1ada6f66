"""`annotate export`: majority labels -> reward items (the form of ProactiveBench's reward_data), split by trace.

Per candidate task, among the annotators who finished the trace: accepted by a strict majority -> valid,
Correct-Detection (CD); rejected by a strict majority -> invalid, False-Alarm (FA). Per annotated turn, one
null-proposal item from the majority answer to "did the user need help?": needed -> Missed-Need (MN, staying
quiet was wrong), not needed -> Correct-Rejection (CR) — whether or not candidates were shown or all rejected.
`annotation` holds one boolean per annotator (accepted the candidate / judged quiet right); `help_needed` is the
turn's majority answer. A tie on either vote leaves the item out and is counted in the report.
"""
from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DBSession

from . import db

CD, FA, MN, CR = ("Correct-Detection (CD)", "False-Alarm (FA)", "Missed-Need (MN)", "Correct-Rejection (CR)")
CATEGORIES = (CD, FA, MN, CR)


@dataclass
class ExportReport:
    items: Counter = field(default_factory=Counter)          # category -> items
    ties: Counter = field(default_factory=Counter)           # "candidate" / "help" -> items left out
    traces_used: int = 0
    traces_incomplete: int = 0                                # fewer finished annotators than required
    split: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"items": dict(self.items), "ties_left_out": dict(self.ties), "traces_used": self.traces_used,
                "traces_incomplete": self.traces_incomplete, "split": self.split}


def _majority(votes: list[bool]) -> bool | None:
    yes = sum(votes)
    if 2 * yes > len(votes):
        return True
    if 2 * (len(votes) - yes) > len(votes):
        return False
    return None


def trace_items(turns: list[db.Turn], answers: list[dict[int, db.Answer]], report: ExportReport) -> list[dict]:
    """Reward items of one trace; `answers` holds one turn-id -> answer map per finished annotator."""
    items: list[dict] = []
    obs: list[dict[str, str]] = []
    for turn in turns:
        obs.append({"time": turn.time, "event": turn.event})
        if not turn.asked:
            continue
        got = [a[turn.id] for a in answers if turn.id in a]
        if not got:
            continue
        helps = [a.help_needed for a in got]
        help_needed = _majority(helps)
        for j, task in enumerate(turn.candidates):
            votes = [j in a.accepted and not a.reject_all for a in got]
            valid = _majority(votes)
            if valid is None or help_needed is None:
                report.ties["candidate" if valid is None else "help"] += 1
                continue
            items.append(_item(obs, task, valid, help_needed, votes, CD if valid else FA))
        if help_needed is None:
            report.ties["help"] += 1
            continue
        quiet_right = [not h for h in helps]
        items.append(_item(obs, None, not help_needed, help_needed, quiet_right, MN if help_needed else CR))
    for it in items:
        report.items[it["category"]] += 1
    return items


def _item(obs: list[dict], task: str | None, valid: bool, help_needed: bool, votes: list[bool], cat: str) -> dict:
    return {"obs": list(obs), "pred_task": task, "valid": valid, "help_needed": help_needed,
            "annotation": list(votes), "category": cat}


def collect(s: DBSession, min_annotators: int, report: ExportReport) -> dict[str, list[dict]]:
    """trace name -> its items, for every trace with at least `min_annotators` finished annotators."""
    finished: dict[int, list[int]] = defaultdict(list)
    for slot in s.scalars(select(db.Slot).where(db.Slot.done_at.is_not(None)).order_by(db.Slot.slot)):
        finished[slot.trace_id].append(slot.user_id)
    out: dict[str, list[dict]] = {}
    for trace in s.scalars(select(db.Trace).order_by(db.Trace.id)):
        users = finished.get(trace.id, [])
        if len(users) < min_annotators:
            report.traces_incomplete += 1
            continue
        turns = list(s.scalars(select(db.Turn).where(db.Turn.trace_id == trace.id).order_by(db.Turn.idx)))
        answers = []
        for uid in users:
            rows = s.scalars(select(db.Answer).where(db.Answer.trace_id == trace.id, db.Answer.user_id == uid))
            answers.append({a.turn_id: a for a in rows})
        out[f"{trace.id}:{trace.name}"] = trace_items(turns, answers, report)
        report.traces_used += 1
    return out


def split_by_trace(groups: dict[str, list[dict]], test_size: float, seed: int) -> tuple[list[str], list[str]]:
    """Whole traces to train or test, so that each category's share in test comes near `test_size`.

    Traces are visited in a seeded random order; each goes to test when that brings the per-category test
    counts closer to their targets (squared distance), else to train. Deterministic for a seed."""
    if not 0 <= test_size < 1:
        raise ValueError("--test-size must be a fraction in [0, 1)")
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    counts = {n: Counter(it["category"] for it in groups[n]) for n in names}
    total: Counter = sum(counts.values(), Counter())
    target = {c: test_size * total[c] for c in CATEGORIES}
    cur: Counter = Counter()
    test: list[str] = []

    def dist(c: Counter) -> float:
        return sum((c[k] - target[k]) ** 2 for k in CATEGORIES)

    for n in names:
        if test_size > 0 and dist(cur + counts[n]) < dist(cur):
            cur += counts[n]
            test.append(n)
    train = [n for n in names if n not in set(test)]
    return sorted(train), sorted(test)


def export(session_factory: Any, out_dir: Path, *, test_size: float = 0.2, seed: int = 0,
           min_annotators: int = 3) -> ExportReport:
    report = ExportReport()
    with session_factory() as s:
        groups = collect(s, min_annotators, report)
    train, test = split_by_trace(groups, test_size, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for part, names in (("train", train), ("test", test)):
        rows = [it for n in names for it in groups[n]]
        tmp = out_dir / f".{part}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            for it in rows:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
        tmp.replace(out_dir / f"{part}.jsonl")
        report.split[part] = {"traces": len(names), "items": len(rows),
                              "by_category": dict(Counter(it["category"] for it in rows))}
    (out_dir / "report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report
