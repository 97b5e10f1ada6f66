"""`dialogforge demo`: the main job, offline, on the embedded model (what `make demo` runs)."""
from __future__ import annotations

from pathlib import Path

import typer

from .common import console, friendly_errors, make_engine, print_result, run_async

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @friendly_errors
    def demo_cmd(out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes.")) -> None:
        """Run the demo job offline on the embedded SmolLM2-135M model."""
        from ..workflows.generate import GenerateOptions, generate
        engine = make_engine(None, None, None, None, out_dir / "store.sqlite")
        console.print("[bold]dialogforge demo[/]: single-turn answers for examples/prompts.jsonl on the embedded model")

        async def main():
            try:
                return await generate(engine, EXAMPLES / "prompts.jsonl", out_dir / "answers.jsonl",
                                      GenerateOptions(params={"max_tokens": 96, "temperature": 0.7}), concurrency=4)
            finally:
                await engine.aclose()
        print_result(run_async(main))
        console.print(f"answers: {out_dir / 'answers.jsonl'}")
