"""`dialogforge generate`: single-turn generation over a file of prompts.

Its parameters are declared as data (cli/options.py), so that the console script can run it without importing
typer (cli/main.py); `register` makes the same declaration a typer command for `--help` and every error.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from . import options as o
from .common import (check_executor_flags, friendly_errors, make_engine, parse_fields, print_result, require_rows,
                     run_async, use_executor)

if TYPE_CHECKING:
    import typer

PARAMS: dict[str, o.Param] = {
    "input": o.Param(Path, "JSONL or JSON list; rows with `prompt` or `messages`.", required=True),
    "output": o.Param(Path, "Output JSONL (appended; resumable).", ("--output", "-o"), required=True),
    "config": o.CONFIG,
    "base_url": o.BASE_URL,
    "model": o.MODEL,
    "api_key_env": o.KEY_ENV,
    "system": o.Param(str, "System prompt added to every row.", ("--system",)),
    "concurrency": o.Param(int, "Items in flight at once.", ("--concurrency", "-j"), default=64, min=1),
    "max_tokens": o.Param(int, "Most tokens per response (overrides the config).", ("--max-tokens",), min=1),
    "temperature": o.Param(float, "Sampling temperature (overrides the config).", ("--temperature",), min=0.0),
    "n": o.Param(int, "Samples per prompt (default 1).", ("--n",), min=1),
    "field": o.Param(str, "Map fields: prompt=question, id=uid.", ("--field",), multiple=True),
    "retry_failed": o.Param(bool, "Run only the items that failed before.", ("--retry-failed",), default=False),
    "keep_input": o.Param(bool, "Copy each input row into its output row.", ("--keep-input",), default=False),
    "continue_": o.CONTINUE,
    "store": o.STORE,
    "executor": o.EXECUTOR,
    "ray_address": o.RAY_ADDRESS,
    "ray_workers": o.RAY_WORKERS,
    "batch": o.BATCH,
    "batch_poll": o.BATCH_POLL,
    "batch_file": o.BATCH_FILE,
    "quiet": o.Param(bool, "No progress display.", ("--quiet", "-q"), default=False),
}


@friendly_errors
def generate_cmd(input: Path, output: Path, config: Optional[Path], base_url: Optional[str], model: Optional[str],
                 api_key_env: Optional[str], system: Optional[str], concurrency: int, max_tokens: Optional[int],
                 temperature: Optional[float], n: Optional[int], field: Optional[list[str]], retry_failed: bool,
                 keep_input: bool, continue_: bool, store: Optional[Path], executor: str, ray_address: Optional[str],
                 ray_workers: Optional[int], batch: bool, batch_poll: float, batch_file: Optional[Path],
                 quiet: bool) -> None:
    """Generate one response (or --n) per prompt; resumable, every call logged."""
    from ..workflows.generate import generate, options_from_config
    require_rows(input)  # before the run store or the output exists
    check_executor_flags(executor, ray_address, ray_workers, batch, batch_file)
    engine = make_engine(config, base_url, model, api_key_env, store, roles=["generator"])
    use_executor(engine, executor, ray_address, ray_workers, batch, batch_poll, batch_file)
    # a `generate:` config section gives defaults; flags win
    opts = options_from_config(engine, system=system, n=n, fields=parse_fields(field), keep_input=keep_input,
                               params={"max_tokens": max_tokens, "temperature": temperature})

    async def main():
        try:
            return await generate(engine, input, output, opts, concurrency=concurrency,
                                  retry_failed=retry_failed, progress=not quiet, continue_=continue_)
        finally:
            await engine.aclose()
    result = run_async(main)
    print_result(result)
    if result.failures_remain:  # failed now or earlier: not done until they are retried
        raise SystemExit(1)


COMMAND = generate_cmd


def register(app: typer.Typer) -> None:
    app.command("generate")(o.typer_command(generate_cmd, PARAMS))
