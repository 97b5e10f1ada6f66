"""`dialogforge proactive ...`: scenes from seed tasks, simulated traces, the agent's training set, evaluation."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .common import (BaseUrlOpt, BatchFileOpt, BatchOpt, BatchPollOpt, ConfigOpt, ContinueOpt, KeyEnvOpt, ModelOpt,
                     StoreOpt, console, escape, friendly_errors, make_engine, print_result, run_async, use_executor)

QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress display.")
RetryOpt = typer.Option(False, "--retry-failed", help="Run only the items that failed before.")
JobsOpt = typer.Option(None, "--concurrency", "-j", min=1, help="Items in flight at once (proactive.concurrency).")


def _inputs(*paths: Optional[Path]) -> None:
    """A path the user named that is not there: refused before the run store or any output exists."""
    from ..engine.errors import InputError
    for p in paths:
        if p is not None and not p.exists():
            raise InputError(f"{p}: not found")


def _setup(config: Optional[Path], base_url, model, api_key_env, store, overrides: dict[str, Any]):
    from ..workflows.proactive.config import proactive_config, with_overrides
    engine = make_engine(config, base_url, model, api_key_env, store)
    return engine, with_overrides(proactive_config(engine.config), **overrides)


def _run(engine, coro_fn):
    async def main():
        try:
            return await coro_fn()
        finally:
            await engine.aclose()
    return run_async(main)


def register(app: typer.Typer) -> None:
    pa = typer.Typer(help="Proactive-assistant data: scenes, simulated activity traces, the agent's training set, "
                          "ProactiveBench evaluation.", no_args_is_help=True)
    app.add_typer(pa, name="proactive")

    @pa.command("scenes")
    @friendly_errors
    def scenes_cmd(
        seeds: Path = typer.Argument(..., help="seedtask.yaml: {scene: {tasks: [...], sample_events: [...]}}."),
        output: Path = typer.Option(..., "--output", "-o", help="Scenes JSONL (scenes.yaml is written beside it)."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Make at most this many scenes."),
        per_task: Optional[int] = typer.Option(None, "--per-task", min=1, help="Scenes per (scene, seed task)."),
        tasks_per_scene: Optional[int] = typer.Option(None, "--tasks-per-scene", min=1, help="Seed tasks used per scene."),
        concurrency: Optional[int] = JobsOpt, retry_failed: bool = RetryOpt, continue_: bool = ContinueOpt,
        config: Optional[Path] = ConfigOpt, base_url: Optional[str] = BaseUrlOpt, model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt, store: Optional[Path] = StoreOpt, quiet: bool = QuietOpt,
    ) -> None:
        """Build scenes (environment + user) from seed tasks; each written once as it is made (resumable)."""
        from ..workflows.proactive.data import load_seedtasks
        from ..workflows.proactive.scenes import make_scenes, yaml_path
        load_seedtasks(seeds)  # a missing or malformed file fails before the run store exists
        engine, cfg = _setup(config, base_url, model, api_key_env, store,
                             {"scenes.per_task": per_task, "scenes.tasks_per_scene": tasks_per_scene,
                              "concurrency": concurrency})
        res = _run(engine, lambda: make_scenes(engine, cfg, seeds, output, limit=limit, retry_failed=retry_failed, continue_=continue_,
                                               progress=not quiet))
        print_result(res, "scenes")
        console.print(escape(f"scenes: {output}\nyaml: {yaml_path(output)}"), highlight=False)
        if res.failures_remain:  # failed now or earlier: not done until they are retried
            raise typer.Exit(1)

    @pa.command("simulate")
    @friendly_errors
    def simulate_cmd(
        scenes: Path = typer.Argument(..., help="Scenes: our scenes JSONL, new_scenes_sample.yaml or one scene config."),
        output: Path = typer.Option(..., "--output", "-o", help="Traces JSONL (one finished trace a line)."),
        test_traces: Optional[Path] = typer.Option(None, "--test-traces",
                                                   help="Folder of ProactiveBench test traces (default OUTPUT_test/)."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Simulate at most this many scenes."),
        steps: Optional[int] = typer.Option(None, "--steps", min=1, help="User activity steps per trace."),
        candidates: Optional[int] = typer.Option(None, "--candidates", "-k", min=0, help="Candidate tasks per turn (K)."),
        judge: Optional[str] = typer.Option(None, "--judge", help="Who rules on proposals: user or reward."),
        concurrency: Optional[int] = JobsOpt, retry_failed: bool = RetryOpt, continue_: bool = ContinueOpt,
        config: Optional[Path] = ConfigOpt, base_url: Optional[str] = BaseUrlOpt, model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt, store: Optional[Path] = StoreOpt, quiet: bool = QuietOpt,
    ) -> None:
        """Simulate user activity, environment events and the proactive agent on each scene (resumable mid-trace)."""
        from ..workflows.proactive.data import load_scenes
        from ..workflows.proactive.simulate import simulate
        load_scenes(scenes)  # a missing or malformed file fails before the run store exists
        engine, cfg = _setup(config, base_url, model, api_key_env, store,
                             {"simulate.steps": steps, "simulate.candidates": candidates, "simulate.judge": judge,
                              "concurrency": concurrency})
        res, tdir, n = _run(engine, lambda: simulate(engine, cfg, scenes, output, test_traces=test_traces,
                                                     limit=limit, retry_failed=retry_failed, continue_=continue_, progress=not quiet))
        print_result(res, "traces")
        console.print(escape(f"traces: {output}\ntest traces: {tdir} ({n} files)"), highlight=False)
        if res.failures_remain:  # failed now or earlier: not done until they are retried
            raise typer.Exit(1)

    @pa.command("trainset")
    @friendly_errors
    def trainset_cmd(
        traces: list[Path] = typer.Argument(..., help="Traces JSONL from `simulate`, or test-trace JSON files/folders."),
        out_dir: Path = typer.Option(..., "--output", "-o", help="Folder: samples.jsonl, dropped.jsonl, exports."),
        to: str = typer.Option("llamafactory,trl", "--to", help="Exports, comma-separated (llamafactory, trl; "
                                                                "'none' for samples only)."),
        max_trials: Optional[int] = typer.Option(None, "--max-trials", min=1, help="Agent proposals per turn."),
        history_tokens: Optional[int] = typer.Option(None, "--history-tokens", min=1, help="History budget in tokens."),
        concurrency: Optional[int] = JobsOpt, retry_failed: bool = RetryOpt, continue_: bool = ContinueOpt,
        config: Optional[Path] = ConfigOpt, base_url: Optional[str] = BaseUrlOpt, model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt, store: Optional[Path] = StoreOpt, quiet: bool = QuietOpt,
    ) -> None:
        """The agent's training conversations from traces, targets judged by the reward model, exported."""
        from ..workflows.proactive.trainset import make_trainset
        _inputs(*traces)
        engine, cfg = _setup(config, base_url, model, api_key_env, store,
                             {"trainset.max_trials": max_trials, "history.max_tokens": history_tokens,
                              "concurrency": concurrency})
        exports = tuple(x.strip() for x in to.split(",") if x.strip() and x.strip() != "none")
        res = _run(engine, lambda: make_trainset(engine, cfg, traces, out_dir, export_to=exports,
                                                 retry_failed=retry_failed, continue_=continue_, progress=not quiet))
        for err in res.bad_files.values():
            console.print(f"[red]left out[/] {escape(err)}", highlight=False, soft_wrap=True)
        print_result(res.run, "traces")
        n_samples = sum(1 for ln in res.samples.read_bytes().splitlines() if ln.strip()) if res.samples.exists() else 0
        n_dropped = sum(1 for ln in res.dropped.read_bytes().splitlines() if ln.strip()) if res.dropped.exists() else 0
        console.print(escape(f"samples: {res.samples} ({n_samples}); turns dropped after all trials: {n_dropped} "
                             f"({res.dropped})"), highlight=False)
        for name, rep in res.exports.items():
            console.print(escape(f"{name}: {rep.output} ({rep.written} written, {sum(rep.rejected.values())} rejected)"),
                          highlight=False)
        if res.run.failures_remain or res.bad_files:
            raise typer.Exit(1)

    @pa.command("eval")
    @friendly_errors
    def eval_cmd(
        traces: Optional[list[Path]] = typer.Argument(None, help="Test-trace JSON files or folders."),
        out_dir: Path = typer.Option(..., "--output", "-o", help="Folder: results.jsonl, metrics.csv, report.html."),
        predictions: bool = typer.Option(False, "--predictions", help="Score the predictions the files hold "
                                                                     "(agent_response) instead of running an agent."),
        splits: Optional[Path] = typer.Option(None, "--splits", help="splits.json: {split: {files: [...], theme}}."),
        reward_items: Optional[Path] = typer.Option(None, "--reward-items",
                                                    help="Evaluate the reward model on these items instead."),
        concurrency: Optional[int] = JobsOpt, retry_failed: bool = RetryOpt, continue_: bool = ContinueOpt,
        config: Optional[Path] = ConfigOpt, base_url: Optional[str] = BaseUrlOpt, model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt, store: Optional[Path] = StoreOpt, quiet: bool = QuietOpt,
        batch: bool = BatchOpt, batch_poll: float = BatchPollOpt, batch_file: Optional[Path] = BatchFileOpt,
    ) -> None:
        """Score a proactive agent (or given predictions, or the reward model) per split: CSV, table, HTML plot."""
        from ..engine.errors import InputError
        from ..workflows.proactive.evaluate import evaluate, evaluate_reward
        if not traces and not splits and not reward_items:
            raise InputError("give test-trace files or folders, --splits, or --reward-items")
        _inputs(*(traces or []), splits, reward_items)
        engine, cfg = _setup(config, base_url, model, api_key_env, store, {"concurrency": concurrency})
        use_executor(engine, "local", batch=batch, batch_poll=batch_poll, batch_file=batch_file)
        if reward_items:
            res = _run(engine, lambda: evaluate_reward(engine, cfg, reward_items, out_dir,
                                                       retry_failed=retry_failed, continue_=continue_, progress=not quiet))
        else:
            res = _run(engine, lambda: evaluate(engine, cfg, list(traces or []), out_dir, predictions=predictions,
                                                splits=splits, retry_failed=retry_failed, continue_=continue_, progress=not quiet))
        for f, err in res.bad_files.items():
            console.print(f"[red]left out[/] {escape(err)}", highlight=False, soft_wrap=True)
        from rich.console import Console
        out = Console()
        if not out.is_terminal:
            out = Console(width=140)  # a file or a pipe gets the whole table
        out.print(res.table.rich())
        for t in res.extra:
            out.print(t.rich())
        console.print(escape(f"csv: {res.csv}\nreport: {res.html}\nresults: {res.results}"), highlight=False)
        # failed turns (an agent's unparseable answer included) are a measured outcome: the table counts them
        if res.bad_files:
            raise typer.Exit(1)
