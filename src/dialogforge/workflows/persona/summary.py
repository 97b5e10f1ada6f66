"""Run summaries: kept/dropped counts per reason, judge score histogram, per-persona and per-turn numbers."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table

BINS = [(1.0 + 0.5 * i, 1.5 + 0.5 * i) for i in range(8)]  # 1.0-1.5 ... 4.5-5.0


def _bin(score: float) -> str:
    for lo, hi in BINS:
        if score < hi or hi == 5.0:
            return f"{lo:.1f}-{hi:.1f}"
    return f"{BINS[-1][0]:.1f}-{BINS[-1][1]:.1f}"


def summarize(records: Iterable[dict], *, failed: int = 0) -> dict[str, Any]:
    """Summary of dialogue records (raw records: kept and dropped). ``failed``: items with no record."""
    n = kept = 0
    reasons: Counter[str] = Counter()
    hist: Counter[str] = Counter({f"{lo:.1f}-{hi:.1f}": 0 for lo, hi in BINS})
    unscored = 0
    scores: list[float] = []
    personas: dict[str, Counter[str]] = defaultdict(Counter)
    chars_by_turn: dict[int, list[int]] = defaultdict(list)
    turns: list[int] = []
    for r in records:
        n += 1
        ok = bool(r.get("passed"))
        kept += ok
        reasons.update(r.get("filter_reasons") or [])
        j = r.get("judge")
        if j and j.get("score") is not None:
            s = float(j["score"])
            scores.append(s)
            hist[_bin(s)] += 1
        else:
            unscored += 1
        p = r.get("persona") or "(none)"
        personas[p]["dialogues"] += 1
        personas[p]["kept"] += ok
        for st in r.get("answer_stats") or []:
            chars_by_turn[int(st["turn"])].append(int(st["chars"]))
        turns.append(int(r.get("turns") or 0))
    return {
        "dialogues": n,
        "kept": kept,
        "dropped": n - kept,
        "failed": failed,
        "dropped_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "score_histogram": dict(hist),
        "unscored": unscored,
        "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
        "by_persona": {k: dict(v) for k, v in sorted(personas.items())},
        "mean_turns": round(sum(turns) / len(turns), 2) if turns else None,
        "mean_answer_chars_by_turn": {t: round(sum(v) / len(v), 1) for t, v in sorted(chars_by_turn.items())},
    }


def print_summary(summary: dict[str, Any], console: Console | None = None, title: str = "persona dialogues") -> None:
    console = console or Console(stderr=True)
    s = summary
    console.print(f"[bold]{title}[/]: {s['dialogues']} dialogues, [green]{s['kept']} kept[/], "
                  f"[yellow]{s['dropped']} dropped[/]" + (f", [red]{s['failed']} failed[/]" if s.get("failed") else ""),
                  highlight=False)
    if s["dropped_by_reason"]:
        t = Table("reason", "dropped", title="dropped by check (a dialogue can fail several)")
        for k, v in s["dropped_by_reason"].items():
            t.add_row(k, str(v))
        console.print(t)
    if any(s["score_histogram"].values()):
        width = max(s["score_histogram"].values())
        t = Table("judge score", "dialogues", "", title=f"judge scores (mean {s['mean_score']})")
        for k, v in s["score_histogram"].items():
            t.add_row(k, str(v), "#" * round(20 * v / width) if width else "")
        if s["unscored"]:
            t.add_row("unscored", str(s["unscored"]), "")
        console.print(t)
