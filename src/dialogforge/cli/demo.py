"""`dialogforge demo`: the main job, offline, on the embedded model (what `make demo` runs).

It runs the persona-dialogue workflow on `examples/persona/demo.yaml`: our own English seeds
expanded into multi-turn dialogues, scored by a judge, checked, and split into raw and
filtered day files under `demo-output/persona/`.
"""
from __future__ import annotations

from pathlib import Path

import typer

from .common import console, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @friendly_errors
    def demo_cmd(out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes."),
                 limit: int = typer.Option(None, "--limit", "-n", help="Seeds to use (default: the config's)."),
                 ) -> None:
        """Persona dialogues from example seeds, offline on the embedded SmolLM2-135M model."""
        from ..engine.loop import install_fast_loop
        from ..workflows.persona import run_demo
        console.print("[bold]dialogforge demo[/]: persona dialogues from examples/persona/seeds.jsonl on the "
                      "embedded SmolLM2-135M model (no server, no network). The tiny model writes weak text and "
                      "is no judge worth trusting; the point is to see the whole pipeline work.")
        install_fast_loop()
        kwargs = {"limit": limit} if limit else {}
        res = run_demo(out_dir, **kwargs)
        from ..workflows.persona.summary import print_summary
        print_summary(res.summary, console)
        console.print(f"[green]done[/]: raw dialogues  {res.raw_path}", highlight=False)
        console.print(f"      filtered set   {res.filtered_path}", highlight=False)
        console.print(f"      summary        {res.summary_path}", highlight=False)
        # the rest of the pipeline: a LLaMA-Factory training file with its dataset_info.json, and a report
        from ..formats import export, report
        train = out_dir / "llamafactory" / "persona_sharegpt.jsonl"
        rep = export(res.filtered_path, train, "sharegpt", dataset_info=train.parent / "dataset_info.json",
                     dataset_name="dialogforge_persona_demo")
        if rep.written:
            console.print(f"      LLaMA-Factory  {train} ({rep.written} rows, {sum(rep.rejected.values())} rejected) "
                          f"+ dataset_info.json", highlight=False)
        else:
            console.print("      LLaMA-Factory  no dialogue passed the checks this time, so nothing was exported "
                          "(an empty dataset is not registered in dataset_info.json)", highlight=False)
        html, _ = report(res.raw_path, out_dir / "persona_report.html", title="dialogforge demo: persona dialogues")
        console.print(f"      report         {html}", highlight=False)
