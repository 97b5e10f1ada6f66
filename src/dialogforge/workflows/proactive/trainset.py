"""``proactive trainset``: traces -> the agent's training conversations, exported through ``formats``.

For every turn of a trace, the agent is sent the instructions and the observations so far (history
trimmed to ``history.max_tokens``); its answer (a proposal or none) is ruled on by the reward-model role.
A rejected or unusable answer is retried with the reason as feedback, within ``trainset.max_trials``
trials per turn that count every failure: an API error, an unparseable answer, a judge that cannot be
parsed, a rejection. A turn whose trials run out is written to the dropped file with every reason.

A sample is exact, as in the agent workflow: ``messages`` are the very messages the agent was sent
plus its reply. Samples go to ``samples.jsonl``; ``formats.export`` writes LLaMA-Factory (ShareGPT +
dataset_info.json) and TRL files from them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogforge.engine import APIError, Engine, ItemContext, Records, RunResult, StructuredOutputError
from dialogforge.core.errors import InputError
from dialogforge.core.rows import iter_lines

from .calls import ask_agent, judge
from .config import ProactiveConfig, run_identity
from .data import Observation, load_trace
from .history import agent_messages, judge_messages
from ..kit import Prompts
from .prompts import proactive_prompts

EXPORTS = {"llamafactory": "sharegpt", "trl": "trl"}


def load_traces(paths: list[Path], bad: dict[str, str]) -> list[tuple[str, list[Observation]]]:
    """Traces as (id, observations): our simulation JSONL (one trace a line) or ProactiveBench
    test-trace JSON files (one trace a file); a folder means its *.json and *.jsonl files.
    A file that does not load goes into ``bad`` (file -> the error naming file, index and field)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".json", ".jsonl"))
        elif p.is_file():
            files.append(p)
        else:
            bad[str(p)] = f"input not found: {p}"
    out: list[tuple[str, list[Observation]]] = []
    for f in files:
        try:
            out += _simulation_traces(f) if f.suffix == ".jsonl" else [(f.stem, [t.observation for t in load_trace(f)])]
        except InputError as e:
            bad[str(f)] = str(e)
    return out


def _simulation_traces(f: Path) -> list[tuple[str, list[Observation]]]:
    out = []
    for line in iter_lines(f):
        where = line.where(f)
        rec = line.record
        if rec is None:
            raise InputError(f"{where}: {line.error}")
        turns = rec.get("turns")
        if not isinstance(turns, list):
            raise InputError(f"{where}: missing field 'turns' (a simulation trace from `proactive simulate`)")
        obs = []
        for i, t in enumerate(turns):
            o = t.get("observation") if isinstance(t, dict) else None
            if not isinstance(o, dict) or not isinstance(o.get("event"), str) or "time" not in o:
                raise InputError(f"{where}: field 'turns[{i}].observation' must hold time and event")
            obs.append(Observation(time=str(o["time"]), event=o["event"]))
        if obs:
            out.append((str(rec.get("id", f"{f.stem}:{line.lineno}")), obs))
    return out


@dataclass
class TurnResult:
    sample: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)


class TrainsetMaker:
    def __init__(self, cfg: ProactiveConfig, prompts: Prompts):
        self.cfg, self.prompts = cfg, prompts

    async def process(self, item: dict, ctx: ItemContext) -> Records:
        obs = [Observation.model_validate(o) for o in item["observations"]]
        samples, dropped = [], []
        for i in range(len(obs)):
            r = await self.turn(ctx, obs[: i + 1], i)
            if r.sample is not None:
                samples.append(r.sample)
            else:
                dropped.append({"id": f"{ctx.item_id}/{i}", "trace": ctx.item_id, "turn": i, "failures": r.failures})
        return Records(samples=samples, dropped=dropped)

    async def turn(self, ctx: ItemContext, obs: list[Observation], i: int) -> TurnResult:
        cfg = self.cfg
        res = TurnResult()
        feedback: str | None = None
        for trial in range(cfg.trainset.max_trials):  # every failure counts against the bound
            msgs = agent_messages(self.prompts, obs, cfg.history, feedback=feedback)
            try:
                reply = await ask_agent(ctx, cfg, msgs, sample=trial, purpose=f"turn{i}")
            except APIError as e:
                res.failures.append(f"agent call: {e}")
                continue
            if reply.answer is None:
                res.failures.append(reply.error or "unparseable agent answer")
                feedback = "the reply was not a JSON object with purpose, thoughts, proposed_task and response"
                continue
            task = reply.answer.proposed_task
            try:
                verdict = await judge(ctx, cfg, judge_messages(self.prompts, obs, task, cfg.history),
                                      purpose=f"turn{i}_reward")
            except (APIError, StructuredOutputError) as e:
                res.failures.append(f"reward model: {e}")
                continue
            if not verdict.accept:
                res.failures.append(f"rejected: {verdict.reason}")
                feedback = verdict.reason or "the reward model judged this answer wrong for the moment"
                continue
            res.sample = {"id": f"{ctx.item_id}/{i}",
                          "messages": [*reply.messages, {"role": "assistant", "content": reply.text}],
                          "purpose": "main", "trace": ctx.item_id, "turn": i, "target": task, "trials": trial + 1,
                          "failures": list(res.failures), "judge": verdict.model_dump(), "run": ctx.run_id}
            return res
        return res


@dataclass
class TrainsetResult:
    run: RunResult
    samples: Path
    dropped: Path
    exports: dict[str, Any] = field(default_factory=dict)
    bad_files: dict[str, str] = field(default_factory=dict)  # file -> why it was left out


async def make_trainset(engine: Engine, cfg: ProactiveConfig, inputs: list[Path], out_dir: str | os.PathLike, *,
                        export_to: tuple[str, ...] = ("llamafactory", "trl"), retry_failed: bool = False,
                        progress: bool = True, continue_: bool = False) -> TrainsetResult:
    unknown = [name for name in export_to if name not in EXPORTS]
    if unknown:  # before any model call: the exports come after the run
        raise InputError(f"unknown export {unknown[0]!r} (choose from {', '.join(EXPORTS)})")
    bad: dict[str, str] = {}
    traces = load_traces(inputs, bad)
    if not traces:
        raise InputError("no traces in " + ", ".join(map(str, inputs)) + "".join(f"; {e}" for e in bad.values()))
    out = Path(out_dir)
    outputs = {"samples": out / "samples.jsonl", "dropped": out / "dropped.jsonl"}
    prompts = proactive_prompts(cfg)
    maker = TrainsetMaker(cfg, prompts)
    items = [(tid, {"observations": [o.model_dump() for o in obs]}) for tid, obs in traces]
    res = await engine.run(name="proactive-trainset", items=items, process=maker.process, output=outputs,
                           concurrency=cfg.concurrency, retry_failed=retry_failed, total=len(items), progress=progress,
                           roles=cfg.roles("agent", "reward"), continue_=continue_,
                           identity=run_identity(cfg, prompts, ("calls", "history", "trainset", "limits"), inputs))
    result = TrainsetResult(res, outputs["samples"], outputs["dropped"], bad_files=bad)
    from dialogforge import formats
    for name in export_to:
        if outputs["samples"].exists() and outputs["samples"].stat().st_size:
            # one assistant reply per sample: the target, trained on alone
            rep = formats.export(outputs["samples"], out / f"{name}.jsonl", EXPORTS[name], train_on="last")
            result.exports[name] = rep
    return result
