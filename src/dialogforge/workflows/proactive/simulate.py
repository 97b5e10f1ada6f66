"""``proactive simulate``: scenes -> activity traces, with three roles on the engine.

- the **environment** expands the scene into a state (clock, entities with status and operations, the
  agent's operations with arguments), turns each user activity into timestamped events with entity
  updates, and reports the outcome of each agent operation;
- the **simulated user** (profile and goal from the scene) does a bounded number of activity steps and
  rules on each proposal (accept, or reject with a reason); ``simulate.judge: reward`` lets the
  reward-model role rule instead;
- the **proactive agent** answers each observation (purpose, thoughts, proposed task or none,
  response). After a rejection it retries with the reason, up to ``proposal_retries``; after an
  acceptance it carries the task out as operations, up to ``exec_steps``. Each observation also gets
  ``candidates`` agent samples: the K candidate tasks of the test-trace form.

Every event (source, simulated time, tags, content) is recorded in the run store as it happens
(``ctx.memo``), and every call is logged, so a killed run replays a half-finished trace from the store
without sending a finished call again. Steps, retries, operations and tokens are all bounded.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson

from dialogforge.core.rows import refuse_overwrite
from dialogforge.engine import Engine, ItemContext, RunResult

from .calls import AgentReply, ask_agent, judge
from .config import ProactiveConfig, run_identity
from .data import Observation, Scene, dump_trace, load_scenes
from .history import agent_messages, judge_messages
from ..kit import Prompts
from .prompts import proactive_prompts


class Simulation:
    """One scene played out into one trace."""

    def __init__(self, cfg: ProactiveConfig, prompts: Prompts, ctx: ItemContext, scene: Scene):
        self.cfg, self.prompts, self.ctx, self.scene = cfg, prompts, ctx, scene
        self.events: list[dict[str, Any]] = []
        self.turns: list[dict[str, Any]] = []
        self.observations: list[Observation] = []
        self.status: dict[str, str] = {}
        self.clock = 0.0
        self.ops: list[str] = []

    # --- events -------------------------------------------------------------------------------
    def event(self, source: str, content: str, tags: list[str], seconds: float = 1.0) -> dict[str, Any]:
        """Advance the simulated clock and record the event in the run store as it happens."""
        self.clock += max(0.0, seconds)
        ev = {"source": source, "time": round(self.clock, 3), "tags": tags, "content": content}
        ev = self.ctx.memo(f"event:{len(self.events)}", ev)
        self.events.append(ev)
        return ev

    def state_text(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.status.items()) or "(nothing yet)"

    def recent(self, n: int = 8) -> list[str]:
        return [e["content"] for e in self.events[-n:] if e["source"] != "agent" or "proposal" not in e["tags"]]

    async def _structured(self, part: str, prompt: str, schema: type, purpose: str) -> Any:
        call = getattr(self.cfg.calls, part)
        r = await self.ctx.chat([{"role": "user", "content": prompt}], role=call.role, purpose=purpose,
                                schema=schema, **call.request())
        return r.parsed

    # --- the run ------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        env, user = self.scene.environment, self.scene.user
        S = self.cfg.schemas()
        state = await self._structured("environment", self.prompts.render("env_state.j2", env=env), S.EnvState,
                                       "env_state")
        self.clock = float(state.start_time)
        self.status = {e.name: e.status for e in state.entities}
        self.ops = [f"{o.name}({', '.join(o.arguments)})" for o in state.agent_ops]
        sim = self.cfg.simulate
        finished = False
        for step in range(1, sim.steps + 1):
            act = await self._structured(
                "user", self.prompts.render("user_activity.j2", user=user, recent=self.recent(), step=step,
                                            steps=sim.steps), S.Activity, "user_activity")
            batch = await self._structured(
                "environment", self.prompts.render("env_events.j2", env=env, state=self.state_text(),
                                                   activity=act.activity, max_events=sim.events_per_step),
                S.EventBatch, "env_events")
            for e in batch.events[: sim.events_per_step]:
                self.status.update({u.name: u.status for u in e.updates})
                ev = self.event("user", e.event, ["activity", f"step:{step}"], e.seconds)
                await self.observe(Observation(time=_stamp(ev["time"]), event=ev["content"]))
            if act.done:
                finished = True
                break
        return {"events": self.events, "turns": self.turns, "finished": finished,
                "state": {"start_time": state.start_time, "agent_ops": self.ops,
                          "entities": [{**e.model_dump(), "status": self.status.get(e.name, e.status)}
                                       for e in state.entities]}}

    async def observe(self, obs: Observation) -> None:
        """One turn: K agent samples, the main answer ruled on, retried after rejection, executed after acceptance."""
        self.observations.append(obs)
        hist = self.cfg.history
        msgs = agent_messages(self.prompts, self.observations, hist, ops=self.ops)
        k = max(1, self.cfg.simulate.candidates)
        replies: list[AgentReply] = list(await asyncio.gather(
            *(ask_agent(self.ctx, self.cfg, msgs, sample=s, purpose="agent" if s == 0 else "candidate") for s in range(k))))
        candidates: list[str] = []
        for r in replies[: self.cfg.simulate.candidates]:
            if r.answer and r.answer.proposed_task and r.answer.proposed_task not in candidates:
                candidates.append(r.answer.proposed_task)
        turn: dict[str, Any] = {"observation": obs.model_dump(), "candidate_task": candidates, "attempts": [],
                                "accepted": False, "agent_errors": sum(1 for r in replies if r.answer is None)}
        reply = replies[0]
        for attempt in range(self.cfg.simulate.proposal_retries + 1):
            task = reply.answer.proposed_task if reply.answer else None
            entry: dict[str, Any] = {"proposal": task, "error": reply.error}
            turn["attempts"].append(entry)
            if task is None:
                break
            self.event("agent", task, ["proposal", f"attempt:{attempt}"])
            verdict = await self.rule(task)
            entry.update(accept=verdict.accept, reason=verdict.reason)
            self.event("user", verdict.reason or ("accepted" if verdict.accept else "declined"),
                       ["judgement", "accept" if verdict.accept else "reject"])
            if verdict.accept:
                turn["accepted"] = True
                turn["operations"] = await self.execute(task)
                break
            if attempt < self.cfg.simulate.proposal_retries:
                retry = agent_messages(self.prompts, self.observations, hist, ops=self.ops,
                                       feedback=verdict.reason or "not helpful now")
                reply = await ask_agent(self.ctx, self.cfg, retry, purpose=f"agent_retry{attempt + 1}")
        self.turns.append(turn)

    async def rule(self, task: str) -> Any:
        if self.cfg.simulate.judge == "reward":
            return await judge(self.ctx, self.cfg,
                               judge_messages(self.prompts, self.observations, task, self.cfg.history))
        prompt = self.prompts.render("user_judge.j2", user=self.scene.user, recent=self.recent(), proposal=task)
        return await self._structured("user", prompt, self.cfg.schemas().Judgement, "user_judge")

    async def execute(self, task: str) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        call, S = self.cfg.calls.agent, self.cfg.schemas()
        for _ in range(self.cfg.simulate.exec_steps):
            prompt = self.prompts.render("agent_execute.j2", env=self.scene.environment, task=task, ops=self.ops,
                                         done_ops=done)
            r = await self.ctx.chat([{"role": "user", "content": prompt}], role=call.role, purpose="agent_execute",
                                    schema=S.Operation, **call.request())
            op = r.parsed
            if op.finished or not op.operation:
                break
            args = ", ".join(f"{k}={v}" for k, v in op.arguments.items())
            res = await self._structured(
                "environment", self.prompts.render("env_operation.j2", env=self.scene.environment,
                                                   state=self.state_text(), operation=op.operation, arguments=args),
                S.OperationResult, "env_operation")
            self.status.update({u.name: u.status for u in res.updates})
            self.event("agent", f"{op.operation}({args})", ["operation"])
            self.event("environment", res.event, ["operation_result"])
            done.append({"operation": f"{op.operation}({args})", "result": res.event})
        return done


def to_test_trace(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """A simulation trace in ProactiveBench test-trace form (what `annotate` imports)."""
    return [{"observation": {"time": str(t["observation"]["time"]), "event": t["observation"]["event"]},
             "agent_response": {"candidate_task": list(t["candidate_task"])},
             "task_status": bool(t["accepted"])} for t in trace["turns"]]


def write_test_traces(traces_path: Path, out_dir: Path) -> int:
    """Each finished trace of ``traces_path`` as ``out_dir/<id>.json`` (rewritten atomically)."""
    n = 0
    if not traces_path.exists():
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for line in traces_path.read_bytes().splitlines():
        if line.strip():
            trace = orjson.loads(line)
            dump_trace(to_test_trace(trace), out_dir / f"{_safe(trace['id'])}.json")
            n += 1
    return n


def _stamp(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


async def simulate(engine: Engine, cfg: ProactiveConfig, scenes_path: str | os.PathLike, output: str | os.PathLike,
                   *, test_traces: str | os.PathLike | None = None, limit: int | None = None,
                   retry_failed: bool = False, progress: bool = True,
                   continue_: bool = False) -> tuple[RunResult, Path, int]:
    refuse_overwrite([scenes_path], {"-o": output})
    scenes = dict(load_scenes(scenes_path)[:limit])
    prompts = proactive_prompts(cfg)

    async def process(item: dict, ctx: ItemContext) -> dict[str, Any]:
        scene = scenes[item["scene"]]
        body = await Simulation(cfg, prompts, ctx, scene).run()
        return {"id": ctx.item_id, "scene": scene.model_dump(), **body}

    out = Path(output)
    items = [(sid, {"scene": sid}) for sid in scenes]
    parts = ["environment", "user", "agent"] + (["reward"] if cfg.simulate.judge == "reward" else [])
    res = await engine.run(name="proactive-simulate", items=items, process=process, output=out,
                           concurrency=cfg.concurrency, retry_failed=retry_failed, total=len(items),
                           progress=progress, roles=cfg.roles(*parts), continue_=continue_,
                           identity=run_identity(cfg, prompts, ("calls", "simulate", "history", "limits"),
                                                 [Path(scenes_path)]))
    tdir = Path(test_traces) if test_traces else out.with_name(out.stem + "_test")
    return res, tdir, write_test_traces(out, tdir)
