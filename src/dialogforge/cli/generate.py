"""`dialogforge generate`: single-turn generation over a file of prompts."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import (BaseUrlOpt, BatchFileOpt, BatchOpt, BatchPollOpt, ConfigOpt, ContinueOpt, ExecutorOpt,
                     KeyEnvOpt, ModelOpt, RayAddressOpt, RayWorkersOpt, StoreOpt, check_executor_flags, friendly_errors,
                     make_engine, parse_fields, print_result, require_rows, run_async, use_executor)


def register(app: typer.Typer) -> None:
    @app.command("generate")
    @friendly_errors
    def generate_cmd(
        input: Path = typer.Argument(..., help="JSONL or JSON list; rows with `prompt` or `messages`."),
        output: Path = typer.Option(..., "--output", "-o", help="Output JSONL (appended; resumable)."),
        config: Optional[Path] = ConfigOpt,
        base_url: Optional[str] = BaseUrlOpt,
        model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt,
        system: Optional[str] = typer.Option(None, "--system", help="System prompt added to every row."),
        concurrency: int = typer.Option(64, "--concurrency", "-j", min=1, help="Items in flight at once."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1,
                                                    help="Most tokens per response (overrides the config)."),
        temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0,
                                                       help="Sampling temperature (overrides the config)."),
        n: Optional[int] = typer.Option(None, "--n", min=1, help="Samples per prompt (default 1)."),
        field: Optional[list[str]] = typer.Option(None, "--field", help="Map fields: prompt=question, id=uid."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Run only the items that failed before."),
        keep_input: bool = typer.Option(False, "--keep-input", help="Copy each input row into its output row."),
        continue_: bool = ContinueOpt,
        store: Optional[Path] = StoreOpt,
        executor: str = ExecutorOpt,
        ray_address: Optional[str] = RayAddressOpt,
        ray_workers: Optional[int] = RayWorkersOpt,
        batch: bool = BatchOpt,
        batch_poll: float = BatchPollOpt,
        batch_file: Optional[Path] = BatchFileOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
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
            raise typer.Exit(1)
