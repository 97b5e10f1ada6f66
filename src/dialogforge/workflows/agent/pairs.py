"""Preference pairs from repeated rollouts: the same exact input, two replies, two rewards.

Repeats of one instance start from the same messages. Walking two rollouts' main calls step
by step, as long as the inputs are identical the replies are comparable; at the first step
where the replies differ, the reply of the rollout that earned more reward is `chosen` and
the other `rejected`. A pair is made only from exact inputs (what the model saw, after any
context compression), never from a reconstructed history; once the inputs differ, the two
rollouts are no longer comparable and yield no pair.

    dialogforge agent pairs runs/agent -o pairs.jsonl --min-margin 0.5
    dialogforge export pairs.jsonl -o dpo.jsonl --to sharegpt --task preference
"""
from __future__ import annotations

import itertools
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

from ...core.records import PreferencePair
from ...engine.errors import InputError
from ...engine.io import iter_lines


def _rollouts(samples_paths: Iterable[str | os.PathLike]) -> dict[tuple, dict[tuple, dict]]:
    """{(round, instance): {(run, repeat): {"reward", "steps": [main samples by step]}}}."""
    groups: dict[tuple, dict[tuple, dict]] = defaultdict(dict)
    for path in samples_paths:
        for line in iter_lines(path):
            rec = line.record
            if rec is None:
                raise InputError(f"{line.where(path)}: {line.error}")
            if rec.get("purpose", "main") != "main" or rec.get("reward") is None:
                continue  # auxiliary calls and rollouts without a reward (environment errors) make no pairs
            missing = [k for k in ("round", "instance", "repeat", "sample_index", "step", "messages") if k not in rec]
            if missing:
                raise InputError(f"{line.where(path)}: not an agent SFT sample (missing {missing[0]!r})")
            if not isinstance(rec["messages"], list) or not rec["messages"]:
                raise InputError(f"{line.where(path)}: field 'messages' must be a non-empty list")
            if not isinstance(rec["reward"], (int, float)) or isinstance(rec["reward"], bool):
                raise InputError(f"{line.where(path)}: field 'reward' must be a number")
            if not all(isinstance(rec[k], (str, int)) for k in ("round", "instance", "repeat")) \
                    or not isinstance(rec["sample_index"], int) or not isinstance(rec.get("run"), (str, type(None))):
                raise InputError(f"{line.where(path)}: fields round, instance and repeat must be text or numbers, "
                                 "sample_index a number, run text")
            roll = groups[(rec["round"], rec["instance"])].setdefault((rec.get("run"), rec["repeat"]),
                                                                       {"reward": rec["reward"], "steps": []})
            roll["steps"].append(rec)
    for rolls in groups.values():
        for r in rolls.values():
            r["steps"].sort(key=lambda s: s["sample_index"])
    return groups


def _first_divergence(a: list[dict], b: list[dict]) -> tuple[dict, dict] | None:
    for sa, sb in zip(a, b):
        if sa["messages"][:-1] != sb["messages"][:-1] or sa.get("tools") != sb.get("tools"):
            return None  # different inputs: not comparable from here on
        if sa["messages"][-1] != sb["messages"][-1]:
            return sa, sb
    return None


def preference_pairs(samples_paths: Iterable[str | os.PathLike], *, min_margin: float = 0.5,
                     max_per_instance: int | None = 4) -> Iterator[dict[str, Any]]:
    """Yield preference records (`messages` + `chosen` + `rejected`) from agent SFT sample files."""
    for (round_, instance), rolls in sorted(_rollouts(samples_paths).items(), key=lambda kv: str(kv[0])):
        ranked = sorted(rolls.items(), key=lambda kv: (-kv[1]["reward"], str(kv[0])))
        made: set[str] = set()
        for (ka, a), (kb, b) in itertools.combinations(ranked, 2):
            if max_per_instance is not None and len(made) >= max_per_instance:
                break
            margin = a["reward"] - b["reward"]
            if margin < min_margin:
                continue
            hit = _first_divergence(a["steps"], b["steps"])
            if hit is None:
                continue
            sa, sb = hit
            fingerprint = repr((sa["messages"], sb["messages"][-1]))
            if fingerprint in made:
                continue
            made.add(fingerprint)
            rec: PreferencePair = {
                "id": f"{instance}@r{round_}#{ka[1]}>{kb[1]}/{sa['step']}",
                "messages": sa["messages"][:-1], "chosen": [sa["messages"][-1]], "rejected": [sb["messages"][-1]],
                "instance": instance, "round": round_, "step": sa["step"], "reward_chosen": a["reward"],
                "reward_rejected": b["reward"], "margin": round(margin, 6), "run": sa.get("run"),
                "repeats": [ka[1], kb[1]],
            }
            if sa.get("tools"):
                rec["tools"] = sa["tools"]
            yield rec


def samples_files(out: str | os.PathLike) -> list[Path]:
    """The samples files of an `agent run` output folder (every round), or the file itself."""
    p = Path(out)
    if p.is_file():
        return [p]
    files = sorted(p.glob("round_*/samples.jsonl"))
    if not files:
        raise InputError(f"{p}: no round_N/samples.jsonl (is this the --out folder of `agent run`?)")
    return files
