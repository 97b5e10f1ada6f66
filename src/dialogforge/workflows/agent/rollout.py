"""One rollout: an agent works on one task instance in a fresh environment until it submits or a limit hits.

Every model call (the main turns and the auxiliary summaries) is recorded with the exact
messages it sent, so the SFT samples are the model's real inputs, not a rebuilt history.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from .actions import Action, FormatError, bash_tools, parse_shell_reply, parse_tool_calls
from ..kit import Price
from .config import AgentConfig
from .context import ContextManager, TokenCounter
from .envs.base import Environment, EnvError, EvalResult, ExecResult
from .prompts import Prompts, agent_prompts
from .reward import compute_reward
from .tasks import Task

ChatFn = Callable[..., Awaitable[Any]]  # ItemContext.chat
log = logging.getLogger(__name__)


@dataclass
class CallRecord:
    index: int  # order of the call within the rollout
    step: int  # the main turn it belongs to (auxiliary calls: the turn they served)
    purpose: str  # "main" | "observation_summary" | "history_summary"
    messages: list[dict]  # exactly what was sent
    response: dict  # the assistant message received
    tools: list[dict] | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    cached: bool
    latency: float
    call_id: int | None
    context_tokens_estimate: int | None = None  # our estimate before sending (main calls)
    format_error: bool = False  # the reply held no valid action (main calls)


@dataclass
class RolloutResult:
    task: Task
    status: str = "running"  # submitted | step_limit | token_limit | cost_limit | time_limit | format_error_limit | env_error
    error: str | None = None
    history: list[dict] = field(default_factory=list)  # every message, never compressed
    calls: list[CallRecord] = field(default_factory=list)
    observations: list[dict] = field(default_factory=list)
    context_events: list[dict] = field(default_factory=list)
    diff: str = ""
    evaluation: dict | None = None
    reward: float | None = None
    reward_rule: dict = field(default_factory=dict)
    success: bool | None = None
    steps: int = 0
    cost: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    token_counter: str = ""
    tools: list[dict] | None = None
    close_error: str | None = None  # releasing the environment failed (logged; the result stands)

    def usage(self) -> dict:
        by: dict[str, dict[str, int]] = {}
        for c in self.calls:
            u = by.setdefault(c.purpose, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
            u["calls"] += 1
            u["prompt_tokens"] += c.prompt_tokens
            u["completion_tokens"] += c.completion_tokens
        return {"prompt_tokens": sum(c.prompt_tokens for c in self.calls),
                "completion_tokens": sum(c.completion_tokens for c in self.calls), "by_purpose": by}


class Rollout:
    def __init__(self, task: Task, cfg: AgentConfig, env: Environment, chat: ChatFn, *, sample: int = 0,
                 prompts: Prompts | None = None, counter: TokenCounter | None = None, price: Price | None = None,
                 eval_slots: asyncio.Semaphore | None = None, memo: Callable[[str, Any], Any] | None = None):
        self.task = task
        self.cfg = cfg
        self.env = env
        self.chat = chat
        self.sample = sample
        self.prompts = prompts or agent_prompts(cfg)
        self.counter = counter or TokenCounter(cfg.context.tokenizer, cfg.base_dir)
        self.price = price or cfg.price
        self.tools = bash_tools(cfg.submit_signal) if cfg.action_mode == "tool_calls" else None
        self.res = RolloutResult(task=task, token_counter=self.counter.kind, tools=self.tools)
        self.cm = ContextManager(cfg.context, self.prompts, self.counter, self._aux_call)
        self.step = 0
        self.eval_slots = eval_slots  # shared by concurrent rollouts: measurements are not disturbed
        # engine memo: a rollout resumed after a crash re-runs its commands (to rebuild the workspace)
        # but shows the model the outputs it saw the first time, so every earlier call is a cache hit
        self.memo = memo

    # -- model calls ----------------------------------------------------------------------------
    def _spent_tokens(self) -> int:
        return sum(c.prompt_tokens + c.completion_tokens for c in self.res.calls)

    def _record(self, purpose: str, sent: list[dict], r: Any, tools: list[dict] | None, estimate: int | None) -> CallRecord:
        u = r.usage
        rec = CallRecord(index=len(self.res.calls), step=self.step, purpose=purpose, messages=sent,
                         response=copy.deepcopy(r.message), tools=tools, prompt_tokens=u.prompt_tokens,
                         completion_tokens=u.completion_tokens, finish_reason=r.finish_reason, cached=r.cached,
                         latency=round(r.latency, 4), call_id=r.call_id, context_tokens_estimate=estimate)
        self.res.calls.append(rec)
        if self.price:
            self.res.cost += self.price.cost(u.prompt_tokens, u.completion_tokens)
        return rec

    async def _aux_call(self, messages: list[dict], purpose: str, max_tokens: int) -> Any:
        sent = copy.deepcopy(messages)
        r = await self.chat(sent, role=self.cfg.summary_role, purpose=purpose, sample=self.sample,
                            temperature=0.0, max_tokens=max_tokens)
        self._record(purpose, sent, r, None, None)
        return r

    async def _main_call(self) -> Any:
        estimate, _ = self.cm.estimate()
        sent = copy.deepcopy(self.cm.live)
        kwargs: dict[str, Any] = {"temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens}
        if self.tools:
            kwargs["tools"] = self.tools
        r = await self.chat(sent, role=self.cfg.agent_role, purpose="main", sample=self.sample, **kwargs)
        self._record("main", sent, r, self.tools, estimate)
        return r

    def _append(self, msg: dict) -> None:
        self.cm.live.append(msg)
        self.res.history.append(copy.deepcopy(msg))

    # -- limits ----------------------------------------------------------------------------------
    def _limit_hit(self, t0: float) -> str | None:
        lim = self.cfg.limits
        if self.step >= lim.step_limit:
            return "step_limit"
        if lim.wall_time_s is not None and time.monotonic() - t0 >= lim.wall_time_s:
            return "time_limit"
        if lim.token_limit is not None and self._spent_tokens() >= lim.token_limit:
            return "token_limit"
        if lim.cost_limit is not None and self.price and self.res.cost >= lim.cost_limit:
            return "cost_limit"
        return None

    # -- actions ---------------------------------------------------------------------------------
    async def _run_command(self, action: Action, t0: float) -> str:
        timeout = self.cfg.environment.timeout
        if self.cfg.limits.wall_time_s is not None:
            timeout = max(1.0, min(timeout, self.cfg.limits.wall_time_s - (time.monotonic() - t0)))
        ex = await self.env.execute(action.command, timeout=timeout)
        if self.memo is not None:
            seen = self.memo(f"exec:{self.step}:{len(self.res.observations)}", ex.to_dict())
            ex = ExecResult(**seen)
        shown, info = await self.cm.prepare_observation(ex.output, self.step, self.task.problem_statement)
        self.res.observations.append({"step": self.step, "command": action.command, "returncode": ex.returncode,
                                      "output": ex.output, "duration": round(ex.duration, 4), "timed_out": ex.timed_out,
                                      "capped": ex.truncated, **{k: v for k, v in info.items() if k != "chars"}})
        return self.prompts.render("observation", returncode=ex.returncode, output=shown, timed_out=ex.timed_out)

    def _format_feedback(self, err: FormatError) -> str:
        return self.prompts.render("format_error", reason=err.message, found=err.found)

    async def _turn(self, t0: float) -> str | None:
        """One main call and its actions; returns a final status or None to go on."""
        await self.cm.maybe_compress(self.step, self.task.problem_statement)
        self.step += 1
        r = await self._main_call()
        self._append(r.message)
        self.cm.record_usage(r.usage.prompt_tokens, r.usage.completion_tokens)
        if self.tools is None:
            parsed = parse_shell_reply(r.text, self.cfg.submit_signal)
            if isinstance(parsed, FormatError):
                self.res.calls[-1].format_error = True
                self._append({"role": "user", "content": self._format_feedback(parsed)})
                return self._count_format_error()
            self.format_errors = 0
            if parsed.kind == "submit":
                return "submitted"
            self._append({"role": "user", "content": await self._run_command(parsed, t0)})
            return None
        actions = parse_tool_calls(r.tool_calls, self.cfg.submit_signal)
        if not actions:
            self.res.calls[-1].format_error = True
            self._append({"role": "user", "content": self._format_feedback(FormatError("the reply called no tool"))})
            return self._count_format_error()
        final = None
        any_ok = False
        for a in actions:
            if final is not None:  # calls after submit are not run, but each call id needs an answer
                self._append({"role": "tool", "tool_call_id": a.tool_call_id, "content": "not run: the task was already submitted"})
            elif isinstance(a, FormatError):
                self._append({"role": "tool", "tool_call_id": a.tool_call_id, "content": self._format_feedback(a)})
            elif a.kind == "submit":
                any_ok = True
                final = "submitted"
                self._append({"role": "tool", "tool_call_id": a.tool_call_id, "content": "submitted"})
            else:
                any_ok = True
                self._append({"role": "tool", "tool_call_id": a.tool_call_id, "content": await self._run_command(a, t0)})
        if final:
            return final
        if any_ok:
            self.format_errors = 0
            return None
        self.res.calls[-1].format_error = True
        return self._count_format_error()

    def _count_format_error(self) -> str | None:
        self.format_errors += 1
        return "format_error_limit" if self.format_errors >= self.cfg.limits.format_error_limit else None

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> RolloutResult:
        res = self.res
        t0 = time.monotonic()
        self.format_errors = 0
        try:
            try:
                await self.env.reset()
            except EnvError as e:
                res.status, res.error = "env_error", f"reset: {e}"
            res.timings["reset_s"] = round(time.monotonic() - t0, 4)
            if res.status != "env_error":
                values = {"instance_id": self.task.id, "problem_statement": self.task.problem_statement,
                          "metadata": self.task.metadata, "task": self.task.to_dict()}
                self._append({"role": "system", "content": self.prompts.render("system", **values)})
                self._append({"role": "user", "content": self.prompts.render("instance", **values)})
                t_loop = time.monotonic()
                try:
                    while True:
                        hit = self._limit_hit(t0)
                        if hit:
                            res.status = hit
                            break
                        final = await self._turn(t0)
                        if final:
                            res.status = final
                            break
                except EnvError as e:
                    res.status, res.error = "env_error", f"step {self.step}: {e}"
                res.timings["agent_s"] = round(time.monotonic() - t_loop, 4)
                res.steps = self.step
                res.context_events = [e.to_dict() for e in self.cm.events]
                await self._finish()
        finally:
            try:
                await self.env.close()
            except Exception as e:  # logged and recorded; it must not hide the rollout's own result or error
                res.close_error = f"{type(e).__name__}: {e}"
                log.warning("task %s: closing the environment failed: %s", self.task.id, res.close_error)
            res.timings["total_s"] = round(time.monotonic() - t0, 4)
        return res

    async def _finish(self) -> None:
        res = self.res
        t = time.monotonic()
        try:
            if res.status != "env_error":
                res.diff = await self.env.diff()
                async with self.eval_slots or contextlib.nullcontext():
                    t = time.monotonic()
                    res.timings["eval_start"] = round(time.time(), 4)
                    try:
                        ev = await self.env.evaluate()
                    finally:
                        res.timings["eval_end"] = round(time.time(), 4)
            else:
                ev = EvalResult(success=False, status="env_error", details={"error": res.error})
        except EnvError as e:
            res.status, res.error = "env_error", f"evaluation: {e}"
            ev = EvalResult(success=False, status="env_error", details={"error": str(e)})
        res.timings["eval_s"] = round(time.monotonic() - t, 4)
        submitted = res.status == "submitted"
        res.reward, res.reward_rule = compute_reward(ev, self.cfg.reward, submitted=submitted)
        # success: the task's own check passed on work the agent handed in (the raw check stays in `evaluation`)
        res.success = None if ev.status != "ok" else ev.success and (submitted or not self.cfg.reward.require_submit)
        res.evaluation = ev.to_dict()
