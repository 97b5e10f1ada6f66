"""`dialogforge agent run` and `dialogforge agent import-tasks`."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Optional

import typer

from ..engine.errors import ConfigError
from .common import (BaseUrlOpt, ContinueOpt, ExecutorOpt, KeyEnvOpt, ModelOpt, RayAddressOpt, RayWorkersOpt,
                     StoreOpt, check_executor_flags, console, escape, friendly_errors, parse_fields, require_rows,
                     run_async, use_executor)


def _mapping(preset: Optional[str], fields: list[str] | None):
    from ..workflows.agent.tasks import resolve_mapping
    extra = parse_fields(fields)
    if not extra:
        return preset or "default"
    base = resolve_mapping(preset or "default")
    base.update(extra)
    return base


def samples_text(s: dict) -> str:
    """Agent turns and auxiliary (summary) calls apart: both are samples, only the first are the agent's."""
    return f"{s['agent_turns']} agent-turn samples + {s['auxiliary_calls']} auxiliary (summary) calls"


def register(app: typer.Typer) -> None:
    agent_app = typer.Typer(help="Agent rollouts in real environments -> trajectories, rewards, exact SFT samples.",
                            no_args_is_help=True)
    app.add_typer(agent_app, name="agent")

    @agent_app.command("run")
    @friendly_errors
    def run_cmd(
        source: Path = typer.Argument(..., help="A YAML config (engine + `agent:` section) or a tasks JSON/JSONL file."),
        out: Path = typer.Option(Path("agent-output"), "--out", "-o", help="Output folder; round r goes to OUT/round_r/."),
        tasks: Optional[Path] = typer.Option(None, "--tasks", help="Tasks file (overrides agent.tasks)."),
        mapping: Optional[str] = typer.Option(None, "--mapping", help="Task field preset: default, rocm_agent, swe."),
        field: Optional[list[str]] = typer.Option(None, "--field", help="Map task fields: id=instance_id ..."),
        rounds: Optional[int] = typer.Option(None, "--rounds", min=1, help="Run rounds 1..N (default: agent.rounds)."),
        round_: Optional[int] = typer.Option(None, "--round", min=1, help="Run only this round (writes OUT/round_N/)."),
        repeats: Optional[int] = typer.Option(None, "--repeats", min=1, help="Rollouts per instance and round."),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", min=1, help="Rollouts in flight at once."),
        step_limit: Optional[int] = typer.Option(None, "--step-limit", min=1, help="Override agent.limits.step_limit."),
        action_mode: Optional[str] = typer.Option(None, "--action-mode", help="shell_block or tool_calls."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1, help="Override agent.max_tokens (per reply)."),
        instance: Optional[list[str]] = typer.Option(None, "--instance", help="Run only these instance ids."),
        base_url: Optional[str] = BaseUrlOpt,
        model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt,
        store: Optional[Path] = StoreOpt,
        executor: str = ExecutorOpt,
        ray_address: Optional[str] = RayAddressOpt,
        ray_workers: Optional[int] = RayWorkersOpt,
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Re-run only rollouts that failed before."),
        continue_: bool = ContinueOpt,
        unsafe_local: bool = typer.Option(False, "--unsafe-local", help="Run the local environment's commands "
                                          "unconfined, without the bubblewrap sandbox (environment.unsafe_local)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        """Run the agent on every task instance x repeats x rounds; resumable after any interruption."""
        from ..engine import Engine
        from ..engine.config import load_config
        from ..workflows.agent.config import AgentConfig, resolve_path
        from ..workflows.agent.envs import check_environment
        from ..workflows.agent.run import run_agent
        from ..workflows.agent.tasks import load_tasks
        from ..workflows.kit import load_section, override

        is_config = source.suffix.lower() in (".yaml", ".yml")
        config = load_config(source if is_config else None)  # the one read of the file
        cfg = load_section(config, "agent", AgentConfig)
        if action_mode is not None and action_mode not in ("shell_block", "tool_calls"):
            raise ConfigError(f"--action-mode must be shell_block or tool_calls, got {action_mode!r}")
        cfg = override(cfg, {"limits.step_limit": step_limit, "action_mode": action_mode, "max_tokens": max_tokens,
                             "environment.unsafe_local": True if unsafe_local else None},
                       prefix=("agent",))
        if tasks is not None:
            tasks_path = tasks
        elif not is_config:
            tasks_path = source
        elif cfg.tasks:
            tasks_path = resolve_path(cfg, cfg.tasks)
        else:
            raise ConfigError(f"{source}: no tasks: set agent.tasks or pass --tasks")
        task_list = load_tasks(tasks_path, _mapping(mapping, field) if (mapping or field) else cfg.task_mapping)
        if instance:
            wanted = set(instance)
            missing = wanted - {t.id for t in task_list}
            if missing:
                raise ConfigError(f"--instance: not in {tasks_path}: {', '.join(sorted(missing))}")
            task_list = [t for t in task_list if t.id in wanted]
        if rounds is not None and round_ is not None:
            raise ConfigError("use either --rounds N or --round R, not both")
        round_list = [round_] if round_ is not None else list(range(1, (rounds or cfg.rounds) + 1))
        if not task_list:
            raise ConfigError(f"{tasks_path}: no tasks to run")
        check_environment(cfg.environment, task_list)  # every task can be scored: checked before the run store exists
        check_executor_flags(executor, ray_address, ray_workers)
        engine = Engine.from_config(config, base_url=base_url, model=model, api_key_env=api_key_env, store=store,
                                    roles=[cfg.agent_role, cfg.summary_role])
        use_executor(engine, executor, ray_address, ray_workers)

        async def main():
            try:
                return await run_agent(engine, cfg, task_list, out, rounds=round_list, repeats=repeats,
                                       concurrency=concurrency, retry_failed=retry_failed, progress=not quiet,
                                       continue_=continue_)
            finally:
                await engine.aclose()

        result = run_async(main)
        failed = 0
        for r, rr in result.rounds.items():
            failed += rr.failed + rr.skipped_failed
            s = result.summary[f"round_{r}"]
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s["statuses"].items())) or "none"
            msg = (f"[green]round {r}[/]: {rr.done} rollouts now, {rr.skipped} earlier · in {escape(str(out / f'round_{r}'))}: "
                   f"{s['rollouts']} rollouts ({statuses}), {s['success']} passed the check, mean reward {s['mean_reward']}, "
                   f"{samples_text(s)}")
            if rr.failed:
                msg += f" · [red]{rr.failed} failed[/] (see {escape(str(rr.failures_path))}; rerun with --retry-failed)"
            if rr.skipped_failed:
                msg += f" · [red]{rr.skipped_failed} failed earlier[/] (--retry-failed to retry)"
            console.print(msg, highlight=False)
        if failed:
            raise typer.Exit(1)

    @agent_app.command("stats")
    @friendly_errors
    def stats_cmd(
        out: Path = typer.Argument(Path("agent-output"), help="The --out folder of `agent run`."),
        as_json: bool = typer.Option(False, "--json", help="Print the numbers as one JSON object."),
    ) -> None:
        """Per round: rollouts by status, successes, mean reward, agent-turn samples and auxiliary calls apart."""
        from ..workflows.agent.run import summarize
        rounds = sorted(int(p.name.split("_", 1)[1]) for p in out.glob("round_*")
                        if p.is_dir() and p.name.split("_", 1)[1].isdigit())
        if not rounds:
            raise ConfigError(f"{out}: no round_N folders (is this the --out folder of `agent run`?)")
        summary = summarize(out, rounds)
        if as_json:
            typer.echo(json.dumps(summary))
            return
        for name, s in summary.items():
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s["statuses"].items())) or "none"
            typer.echo(f"{name}: {s['rollouts']} rollouts ({statuses}), {s['success']} successful, "
                       f"mean reward {s['mean_reward']}, {samples_text(s)}")

    @agent_app.command("pairs")
    @friendly_errors
    def pairs_cmd(
        out: Path = typer.Argument(Path("agent-output"), help="The --out folder of `agent run` (or a samples file)."),
        output: Path = typer.Option(..., "--output", "-o", help="Preference records JSONL to write."),
        min_margin: float = typer.Option(0.5, "--min-margin", min=0.0, help="Least reward difference between the two."),
        max_per_instance: int = typer.Option(4, "--max-per-instance", min=0, help="Pairs per instance and round (0: all)."),
    ) -> None:
        """Preference pairs from repeats: same exact input, replies from a higher- and a lower-reward rollout."""
        from ..formats.jsonl import JsonlWriter
        from ..workflows.agent.pairs import preference_pairs, samples_files
        from ..core.rows import refuse_overwrite
        files = samples_files(out)  # a wrong folder fails here, before the output file exists
        require_rows(*files)
        refuse_overwrite(files, {"-o": output})
        pairs = preference_pairs(files, min_margin=min_margin, max_per_instance=max_per_instance or None)
        first = next(pairs, None)  # every samples file is read here: a bad one fails before the output exists
        if first is None:  # nothing to write: no empty file, and not a success
            console.print(f"[bold red]no pairs[/]: no two scored repeats of an instance differ by --min-margin "
                          f"{min_margin} in reward with a reply that differs; {escape(str(output))} not written",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        with JsonlWriter(output) as w:
            for rec in itertools.chain([first], pairs):
                w.write(rec)
        out = escape(str(output))
        console.print(f"[green]pairs[/]: {w.count} written to {out} · export them with "
                      f"`dialogforge export {out} -o dpo.jsonl --to sharegpt --task preference`", highlight=False)

    @agent_app.command("import-tasks")
    @friendly_errors
    def import_cmd(
        source: Path = typer.Argument(..., help="Task instances, JSON list or JSONL, in any field layout."),
        output: Path = typer.Option(..., "--output", "-o", help="Normalised tasks JSONL to write."),
        mapping: Optional[str] = typer.Option(None, "--mapping", help="Preset: default, rocm_agent, swe."),
        field: Optional[list[str]] = typer.Option(None, "--field", help="OURS=THEIRS, e.g. id=instance_id; "
                                                  "THEIRS may be a dotted path or a {{template}}."),
    ) -> None:
        """Read task instances with a field mapping and write them in dialogforge's task format."""
        from ..core.rows import refuse_overwrite
        from ..workflows.agent.tasks import load_tasks, write_tasks
        refuse_overwrite([source], {"-o": output})
        task_list = load_tasks(source, _mapping(mapping, field))
        output.parent.mkdir(parents=True, exist_ok=True)
        write_tasks(task_list, output)
        no_ws = sum(1 for t in task_list if not t.workspace)
        no_eval = sum(1 for t in task_list if not (t.eval_command or t.evaluator))
        console.print(f"[green]imported[/] {len(task_list)} tasks -> {escape(str(output))}"
                      + (f" · {no_ws} without a workspace, {no_eval} without an evaluation"
                         " (a custom environment must supply them)" if no_ws or no_eval else ""), highlight=False)
        if task_list:
            console.print(escape(json.dumps({k: v for k, v in task_list[0].to_dict().items() if k != "metadata"})[:300]),
                          highlight=False)
