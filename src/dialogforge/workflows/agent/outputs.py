"""Records written for one finished rollout: SFT samples, the trajectory, and an index line.

SFT sample (one per model call, main turns and auxiliary calls alike):
  {"id", "messages": [exact input messages..., assistant reply], "tools"? (tool_calls mode, main calls),
   "instance", "repeat", "round", "sample_index" (order of the call in the rollout), "step",
   "purpose" ("main" | "observation_summary" | "history_summary"), "reward", "success", "status", "run",
   "format_error" (main calls: the reply held no valid action)}
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ...core.records import AgentSample, Trajectory
from .rollout import RolloutResult


def item_id(instance: str, repeat: int, round_: int) -> str:
    return f"{instance}@r{round_}#{repeat}"


def sample_records(res: RolloutResult, *, item: str, repeat: int, round_: int, run: str) -> list[AgentSample]:
    out = []
    for c in res.calls:
        rec: AgentSample = {
            "id": f"{item}/{c.index}",
            "messages": [*c.messages, c.response],
            "instance": res.task.id, "repeat": repeat, "round": round_, "sample_index": c.index,
            "step": c.step, "purpose": c.purpose, "reward": res.reward, "success": res.success,
            "status": res.status, "run": run}
        if c.tools:
            rec["tools"] = c.tools
        if c.purpose == "main":
            rec["format_error"] = c.format_error  # the reply held no valid action
        out.append(rec)
    return out


def trajectory_record(res: RolloutResult, *, item: str, repeat: int, round_: int, run: str) -> Trajectory:
    calls = []
    for c in res.calls:
        d = asdict(c)
        d["n_messages"] = len(d.pop("messages"))
        d.pop("tools")
        calls.append(d)
    return {  # observations, diff, timings, ...: declared in Trajectory as it grows
        "id": item, "instance": res.task.id, "repeat": repeat, "round": round_, "run": run,
        "status": res.status, "error": res.error, "reward": res.reward, "reward_rule": res.reward_rule,
        "success": res.success, "steps": res.steps, "history": res.history, "tools": res.tools,
        "calls": calls, "observations": res.observations, "context_events": res.context_events,
        "diff": res.diff, "evaluation": res.evaluation, "timings": res.timings, "usage": res.usage(),
        "cost": round(res.cost, 6), "token_counter": res.token_counter, "close_error": res.close_error,
        "task": {"id": res.task.id, "problem_statement": res.task.problem_statement, "metadata": res.task.metadata},
    }


def index_record(res: RolloutResult, *, item: str, repeat: int, round_: int, run: str, n_samples: int) -> dict:
    u = res.usage()
    return {"id": item, "instance": res.task.id, "repeat": repeat, "round": round_, "run": run,
            "status": res.status, "reward": res.reward, "success": res.success, "steps": res.steps,
            "n_samples": n_samples, "n_main": sum(1 for c in res.calls if c.purpose == "main"),
            "diff_lines": res.diff.count("\n"), "prompt_tokens": u["prompt_tokens"],
            "completion_tokens": u["completion_tokens"], "total_s": res.timings.get("total_s")}
