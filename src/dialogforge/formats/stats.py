"""Streaming statistics of a dataset, the numbers behind `dialogforge report`."""
from __future__ import annotations

import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..core.errors import InputError
from ..core.records import meta as metafield
from .conversation import ConversionError
from .jsonl import iter_lines
from .readers import read_record

RESERVOIR = 5000  # values kept per distribution; counts and means use every row
MAX_TURN = 12  # turns from here on share one bucket


class Reservoir:
    """A uniform sample of a stream, plus exact count / sum / min / max."""

    def __init__(self, size: int = RESERVOIR, seed: int = 0):
        self.values: list[float] = []
        self.size, self.n, self.total = size, 0, 0.0
        self.lo, self.hi = float("inf"), float("-inf")
        self._rng = random.Random(seed)

    def add(self, v: float) -> None:
        self.n += 1
        self.total += v
        self.lo, self.hi = min(self.lo, v), max(self.hi, v)
        if len(self.values) < self.size:
            self.values.append(v)
        else:
            j = self._rng.randrange(self.n)
            if j < self.size:
                self.values[j] = v

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass
class DatasetStats:
    path: str
    rows: int = 0
    unreadable: int = 0
    conversations: int = 0
    preference_pairs: int = 0
    with_tools: int = 0
    tool_calls: int = 0
    roles: Counter = field(default_factory=Counter)
    turns: Counter = field(default_factory=Counter)  # assistant turns per conversation -> count
    lengths: dict = field(default_factory=lambda: defaultdict(Reservoir))  # (role, turn) -> chars
    scores: Reservoir = field(default_factory=Reservoir)
    rewards: Reservoir = field(default_factory=Reservoir)
    passed: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    purposes: Counter = field(default_factory=Counter)
    success: Counter = field(default_factory=Counter)
    rounds: Counter = field(default_factory=Counter)
    duplicates: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "unreadable": self.unreadable, "conversations": self.conversations,
            "preference_pairs": self.preference_pairs, "with_tools": self.with_tools, "tool_calls": self.tool_calls,
            "roles": dict(self.roles), "mean_assistant_turns": _mean_counter(self.turns),
            "mean_score": self.scores.mean, "scored": self.scores.n, "mean_reward": self.rewards.mean,
            "rewarded": self.rewards.n, "passed": dict(self.passed), "reasons": dict(self.reasons.most_common()),
            "purposes": dict(self.purposes), "success": dict(self.success), "rounds": dict(self.rounds),
            "duplicates": self.duplicates,
        }


def _mean_counter(c: Counter) -> float | None:
    n = sum(c.values())
    return sum(k * v for k, v in c.items()) / n if n else None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _reasons(meta: dict[str, Any]) -> list[str]:
    for v in (metafield(meta, "filter_reasons"), metafield(meta, "reasons")):
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return list(v)
    checks = metafield(meta, "checks")
    if isinstance(checks, dict):
        return [name for name, r in checks.items() if isinstance(r, dict) and r.get("passed") is False]
    return []


def collect(path: str | os.PathLike, *, clusters: str | os.PathLike | None = None) -> DatasetStats:
    st = DatasetStats(str(path))
    for line in iter_lines(path):
        st.rows += 1
        if line.record is None:
            st.unreadable += 1
            continue
        try:
            conv = read_record(line.record)
        except ConversionError:
            st.unreadable += 1
            continue
        st.conversations += 1
        meta = conv.metadata
        st.preference_pairs += conv.is_preference
        st.with_tools += bool(conv.tools)
        seen: Counter = Counter()
        for m in conv.messages + list(conv.chosen or []):
            st.roles[m.role] += 1
            st.tool_calls += len(m.tool_calls or ())
            if m.content is not None and m.role in ("user", "assistant"):
                st.lengths[(m.role, min(seen[m.role], MAX_TURN))].add(len(m.content))
            seen[m.role] += 1
        st.turns[seen["assistant"]] += 1
        if (s := _num(metafield(meta, "score"))) is not None:
            st.scores.add(s)
        if (r := _num(metafield(meta, "reward"))) is not None:
            st.rewards.add(r)
        if isinstance(passed := metafield(meta, "passed"), bool):
            st.passed["passed" if passed else "filtered out"] += 1
        st.reasons.update(_reasons(meta))
        if (purpose := metafield(meta, "purpose")) is not None:
            st.purposes[str(purpose)] += 1
        if isinstance(success := metafield(meta, "success"), bool):
            st.success["success" if success else "failure"] += 1
        if (round_ := metafield(meta, "round")) is not None:
            st.rounds[str(round_)] += 1
    if clusters:
        st.duplicates = _duplicates(clusters)
    return st


def _duplicates(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = orjson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{path}: not a clusters file from `dialogforge dedup` (not valid JSON: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("clusters", []), list):
        raise InputError(f"{path}: not a clusters file from `dialogforge dedup` (no 'clusters' list)")
    sizes = Counter(len(c.get("members", [])) for c in data.get("clusters", []))
    types = Counter(c.get("type", "?") for c in data.get("clusters", []))
    return {"rows": data.get("rows"), "kept": data.get("kept"), "exact_removed": data.get("exact_removed"),
            "near_removed": data.get("near_removed"), "cluster_sizes": dict(sorted(sizes.items())),
            "cluster_types": dict(types), "threshold": data.get("threshold")}
