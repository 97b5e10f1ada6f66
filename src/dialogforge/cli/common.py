"""Shared CLI plumbing: engine options, error reporting, .env loading."""
from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import typer
from rich.console import Console

from ..core.errors import DialogforgeError

if TYPE_CHECKING:  # the engine (aiohttp, the runner) loads only for commands that call a model
    from ..engine import Engine

console = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config with endpoints and roles.", exists=False)
BaseUrlOpt = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (overrides the config).")
ModelOpt = typer.Option(None, "--model", help="Model name on that server (overrides the config).")
KeyEnvOpt = typer.Option(None, "--api-key-env", help="Environment variable that holds the API key.")
ContinueOpt = typer.Option(False, "--continue", help="Go on into outputs made with other settings (model, "
                           "sampling, templates, inputs) instead of refusing; finished items stay as they are.")
StoreOpt = typer.Option(None, "--store", help="Run store (SQLite). Default: .dialogforge/store.sqlite or $DIALOGFORGE_HOME.")
ExecutorOpt = typer.Option("local", "--executor", help="Where items run: local (default) or ray.")
RayAddressOpt = typer.Option(None, "--ray-address",
                             help="Ray cluster to join from one of its nodes: auto, or the head's HOST:6379; "
                                  "default: a local Ray instance.")
RayWorkersOpt = typer.Option(None, "--ray-workers", help="Ray worker actors (default: one per CPU of the cluster).")


BatchOpt = typer.Option(False, "--batch", help="Batch mode: uncached calls go out as provider batch jobs, round by "
                        "round (about half the price; hours, not minutes). Same as `mode: batch` on the endpoints.")
BatchPollOpt = typer.Option(30.0, "--batch-poll", help="Seconds between looks at a running batch job.")
BatchFileOpt = typer.Option(None, "--batch-file", help="Offline batch round: write the calls every waiting item needs "
                            "to FILE (vLLM run-batch input) and stop (exit 3); `dialogforge batch import OUT` then "
                            "rerun goes one round further.")


def use_executor(engine: Engine, executor: str, ray_address: Optional[str] = None, ray_workers: Optional[int] = None,
                 batch: bool = False, batch_poll: float = 30.0, batch_file: Optional[Path] = None) -> None:
    """Point the engine's runs at the executor the flags name (engine/executors)."""
    from ..engine import make_executor
    if executor != "ray" and (ray_address or ray_workers):
        raise DialogforgeError("--ray-address and --ray-workers go with --executor ray")
    if (batch or batch_file) and executor != "local":
        raise DialogforgeError(f"batch mode is its own executor; it does not combine with --executor {executor}")
    if batch and batch_file:
        raise DialogforgeError("use either --batch (a provider's Batch API) or --batch-file (offline), not both")
    if batch_file:
        engine.executor = make_executor("batch", file=batch_file)
        return
    if batch or any(c.mode == "batch" for c in engine.config.endpoints.values()):
        eps = None if batch else [n for n, c in engine.config.endpoints.items() if c.mode == "batch"]
        engine.executor = make_executor("batch", endpoints=eps, poll=batch_poll)
        return
    opts = {k: v for k, v in {"address": ray_address, "workers": ray_workers}.items() if v}
    engine.executor = make_executor(executor, **opts)


def make_engine(config: Optional[Path], base_url: Optional[str], model: Optional[str], api_key_env: Optional[str],
                store: Optional[Path], roles: list[str] | None = None) -> "Engine":
    from ..engine import Engine
    return Engine.load(config, base_url=base_url, model=model, api_key_env=api_key_env, store=store, roles=roles)


def friendly_errors(fn: Callable) -> Callable:
    """Turn our own errors into one red line and exit code 2, instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DialogforgeError as e:
            if getattr(e, "exit_code", None) == 3:  # BatchFileWritten: not an error, the run waits on a batch file
                console.print(f"[yellow]batch file:[/] {e}", highlight=False, soft_wrap=True)
                raise typer.Exit(3) from None
            console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)  # one greppable line
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/] — finished items are saved; rerun the same command to resume")
            raise typer.Exit(130) from None
    return wrapper


def run_async(coro_fn: Callable[[], Any]) -> Any:
    from ..engine.loop import install_fast_loop
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    install_fast_loop()
    return asyncio.run(coro_fn())


def parse_fields(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs or []:
        if "=" not in p:
            raise DialogforgeError(f"--field expects OURS=THEIRS (e.g. prompt=question), got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def print_result(result: Any, what: str = "items") -> None:
    msg = f"[green]done[/]: {result.done} {what} written"
    if result.skipped:
        msg += f", {result.skipped} already finished earlier"
    if result.failed:
        msg += f", [red]{result.failed} failed[/] (see {result.failures_path}; rerun with --retry-failed)"
    if result.skipped_failed:
        msg += f", [red]{result.skipped_failed} failed earlier[/] (--retry-failed to retry)"
    console.print(msg + f" · run {result.run_id}", highlight=False)
