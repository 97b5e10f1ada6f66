"""The agent's view of a trace: the newest observation in full, older ones in compact form,
trimmed to a token budget by merging adjacent observations and then cutting the oldest."""
from __future__ import annotations

from typing import Any

from .config import HistoryConfig
from .data import Observation
from ..kit import Prompts


def _tokens(text: str) -> int:
    return len(text) // 4 + 1


def _compact(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def trimmed_history(observations: list[Observation], cfg: HistoryConfig) -> tuple[list[dict], dict, int]:
    """(older entries, newest entry, number of older observations left out) within ``cfg.max_tokens``."""
    *older, newest = observations
    new = {"time": newest.time, "event": newest.event}
    budget = cfg.max_tokens - _tokens(newest.event) - 8
    entries: list[dict[str, Any]] = [{"time": o.time, "event": _compact(o.event, cfg.event_chars), "n": 1} for o in older]

    def size(es: list[dict]) -> int:
        return sum(_tokens(e["time"] + e["event"]) + 3 for e in es)

    # 1. merge adjacent observations, oldest first, while over budget (one stamp and one line per pair)
    i = 0
    while size(entries) > budget and i + 1 < len(entries):
        a, b = entries[i], entries[i + 1]
        start = a["time"].split("–")[0]
        entries[i:i + 2] = [{"time": f"{start}–{b['time'].split('–')[-1]}",
                             "event": _compact(f"{a['event']}; {b['event']}", cfg.event_chars * 2), "n": a["n"] + b["n"]}]
        i += 1
    # 2. cut the oldest while still over budget
    omitted = 0
    while entries and size(entries) > budget:
        omitted += entries.pop(0)["n"]
    return [{"time": e["time"], "event": e["event"]} for e in entries], new, omitted


def agent_messages(prompts: Prompts, observations: list[Observation], cfg: HistoryConfig, *,
                   ops: list[str] | None = None, feedback: str | None = None) -> list[dict[str, Any]]:
    """The exact messages the proactive agent is sent for the newest observation."""
    history, new, omitted = trimmed_history(observations, cfg)
    return [{"role": "system", "content": prompts.render("agent_system.j2", ops=ops or [])},
            {"role": "user", "content": prompts.render("agent_turn.j2", history=history, new=new, omitted=omitted,
                                                       feedback=feedback)}]


def judge_messages(prompts: Prompts, observations: list[Observation], proposal: str | None,
                   cfg: HistoryConfig) -> list[dict[str, Any]]:
    """The reward-model role's request: the activity so far and the agent's proposal (None: it stayed quiet)."""
    history, new, omitted = trimmed_history(observations, cfg)
    return [{"role": "user", "content": prompts.render("reward.j2", history=[*history, new], proposal=proposal)}]
