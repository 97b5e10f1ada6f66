"""Instances x repeats x rounds on the engine's runner.

Each (instance, repeat, round) is one engine item with id "{instance}@r{round}#{repeat}"
(rounds count from 1, repeats from 0). Round r writes to its own files
    OUT/round_{r}/samples.jsonl, trajectories.jsonl, index.jsonl
through its own engine run (run id fixed by OUT and r), so `--round 2` alone and `--rounds 3`
share round 2's progress: finished rollouts are never re-run and never written twice, and no
round touches another round's files. Rounds run concurrently under one worker limit.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from ...core.rows import read_records
from ...engine import Engine, ItemContext, Records, Shippable
from ...engine.errors import ConfigError, InputError
from ...engine.outputs import check_paths
from .config import AgentConfig
from .context import TokenCounter
from .envs import check_environment, make_environment
from .outputs import index_record, item_id, sample_records, trajectory_record
from .prompts import agent_prompts
from .rollout import Rollout
from .shipping import pack_workspaces, unpack_workspaces
from .tasks import Task

OUTPUT_NAMES = ("samples", "trajectories", "index")


def round_outputs(out_dir: str | Path, round_: int) -> dict[str, Path]:
    d = Path(out_dir) / f"round_{round_}"
    return {name: d / f"{name}.jsonl" for name in OUTPUT_NAMES}


def sample_seed(round_: int, repeat: int) -> int:
    """The engine's `sample` for a rollout: distinct per (round, repeat), so none is served another's answers."""
    return round_ * 1000 + repeat


@dataclass
class AgentRunResult:
    out_dir: Path
    rounds: dict[int, Any] = field(default_factory=dict)  # round -> engine RunResult
    summary: dict = field(default_factory=dict)


def rollout_process(cfg: AgentConfig, tasks: list[Task], workers: int, price: Any,
                    packed: dict[str, bytes] | None = None) -> Callable[[dict, ItemContext], Awaitable[Records]]:
    """The per-item function of an agent run, built where it runs (here, or on a Ray worker)."""
    if packed:
        tasks = unpack_workspaces(tasks, packed)
    slots = asyncio.Semaphore(workers)
    n_eval = cfg.environment.eval_concurrency
    eval_slots = asyncio.Semaphore(n_eval) if n_eval else None
    prompts = agent_prompts(cfg)
    counter = TokenCounter(cfg.context.tokenizer, cfg.base_dir)
    by_id = {t.id: t for t in tasks}

    async def process(item: dict, ctx: ItemContext) -> Records:
        task = by_id[item["instance"]]
        r, k = item["round"], item["repeat"]
        async with slots:
            env = make_environment(cfg.environment, task)
            res = await Rollout(task, cfg, env, ctx.chat, sample=sample_seed(r, k), prompts=prompts,
                                counter=counter, price=price, eval_slots=eval_slots, memo=ctx.memo).run()
        samples = sample_records(res, item=ctx.item_id, repeat=k, round_=r, run=ctx.run_id)
        return Records(samples=samples,
                       trajectories=[trajectory_record(res, item=ctx.item_id, repeat=k, round_=r, run=ctx.run_id)],
                       index=[index_record(res, item=ctx.item_id, repeat=k, round_=r, run=ctx.run_id,
                                           n_samples=len(samples))])
    return process


def run_identity(cfg: AgentConfig, tasks: list[Task]) -> dict[str, Any]:
    """What shapes a round's outputs besides the roles' models and sampling parameters (the engine adds those):
    the agent's own sampling and loop settings, the templates' text, the environment, and a hash of the tasks
    (their evaluators and eval commands included). Not concurrency, limits, timeouts, URLs or keys: a rerun
    into the same round with another identity is refused unless --continue."""
    env = cfg.environment
    options = {k: v for k, v in env.options.items() if "url" not in k.lower() and "key" not in k.lower()}
    task_rows = sorted((t.to_dict() for t in tasks), key=lambda d: d["id"])
    return {
        "agent": cfg.model_dump(include={"action_mode", "submit_signal", "temperature", "max_tokens", "context",
                                         "reward", "agent_role", "summary_role"}),
        "templates": dict(agent_prompts(cfg).digests),
        "environment": {"type": env.type, "image": env.image, "env": env.env, "network": env.network,
                        "unsafe_local": env.unsafe_local, "options": options},
        "tasks": hashlib.blake2b(json.dumps(task_rows, sort_keys=True, default=str).encode(),
                                 digest_size=12).hexdigest(),
    }


def _check_index_row(path: Path, n: int, row: dict) -> None:
    """A row of index.jsonl as `agent run` writes it, or one line naming the file, row and field."""
    where = f"{path}: row {n}: not an agent index row"
    missing = [k for k in ("status", "reward", "success", "n_samples") if k not in row]
    if missing:
        raise InputError(f"{where} (missing {missing[0]!r})")
    r, n_samples = row["reward"], row["n_samples"]
    if not isinstance(row["status"], str) or not isinstance(n_samples, int) or isinstance(n_samples, bool) \
            or not (r is None or (isinstance(r, (int, float)) and not isinstance(r, bool))):
        raise InputError(f"{where} (status must be text, reward a number or null, n_samples a count)")


def summarize(out_dir: str | Path, rounds: list[int]) -> dict:
    """Counts by status, successes and mean reward per round, read back from the index files."""
    out: dict[str, Any] = {}
    for r in rounds:
        p = round_outputs(out_dir, r)["index"]
        rows = list(read_records(p, missing_ok=True))
        for i, row in enumerate(rows, 1):
            _check_index_row(p, i, row)
        statuses: dict[str, int] = {}
        for row in rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        rewards = [row["reward"] for row in rows if row["reward"] is not None]
        out[f"round_{r}"] = {
            "rollouts": len(rows), "statuses": statuses, "success": sum(1 for row in rows if row["success"]),
            "mean_reward": round(sum(rewards) / len(rewards), 4) if rewards else None,
            "samples": sum(row["n_samples"] for row in rows),
            # the samples split: one per agent turn, and the auxiliary (summary) calls apart
            "agent_turns": sum(row.get("n_main", row["n_samples"]) for row in rows),
            "auxiliary_calls": sum(row["n_samples"] - row.get("n_main", row["n_samples"]) for row in rows),
        }
    return out


async def run_agent(engine: Engine, cfg: AgentConfig, tasks: list[Task], out_dir: str | Path, *,
                    rounds: list[int] | None = None, repeats: int | None = None, concurrency: int | None = None,
                    retry_failed: bool = False, progress: bool = True, check: bool = True,
                    continue_: bool = False) -> AgentRunResult:
    if not tasks:
        raise ConfigError("no tasks to run")
    check_environment(cfg.environment, tasks)  # before any model call: every task can be scored
    rounds = rounds or list(range(1, cfg.rounds + 1))
    if any(r < 1 for r in rounds):
        raise ConfigError(f"rounds count from 1, got {rounds}")
    repeats = repeats or cfg.repeats
    if engine.run_executor().name == "batch":
        raise ConfigError("agent runs stay live: their sandboxes would wait hours on batch jobs "
                          "(drop --batch / `mode: batch` for the agent's endpoints)")
    price = cfg.price or engine.endpoint_config(cfg.agent_role).price
    out_dir = Path(out_dir)
    for r in rounds:  # outputs that cannot be written: refused before the run store or any model call
        check_paths(round_outputs(out_dir, r))
    store = engine.store_path.resolve()
    # what the agent's commands must not see: the run store and the outputs (the local sandbox hides them)
    hide = [*cfg.environment.hide, str(out_dir.resolve()), *(f"{store}{s}" for s in ("", "-wal", "-shm", "-journal"))]
    cfg = cfg.model_copy(update={"environment": cfg.environment.model_copy(update={"hide": hide})})
    tag = hashlib.blake2b(str(out_dir.resolve()).encode(), digest_size=4).hexdigest()
    # plain data only: the executor may rebuild it on another machine (Ray), workspaces travel packed
    packed = pack_workspaces(tasks) if engine.executor.name == "ray" else None
    process = Shippable(rollout_process, (cfg, tasks, concurrency or cfg.concurrency, price, packed))

    def items(r: int):
        for k in range(repeats):
            for t in tasks:
                yield item_id(t.id, k, r), {"instance": t.id, "repeat": k, "round": r}

    if check:
        await engine.preflight({cfg.agent_role, cfg.summary_role})
    per_round = max(1, concurrency or cfg.concurrency)
    identity = run_identity(cfg, tasks)
    runs = [engine.run(name=f"agent-round{r}", run_id=f"agent-{tag}-round{r}", items=items(r), process=process,
                       output=round_outputs(out_dir, r), concurrency=per_round, retry_failed=retry_failed,
                       total=repeats * len(tasks), progress=progress, check=False,
                       roles=[cfg.agent_role, cfg.summary_role], identity=identity, continue_=continue_)
            for r in rounds]
    results = await asyncio.gather(*runs)
    res = AgentRunResult(out_dir=out_dir, rounds=dict(zip(rounds, results)))
    res.summary = summarize(out_dir, rounds)
    return res
