"""`dialogforge demo`: the main job, offline, on the embedded model (what `make demo` runs).

It runs the persona-dialogue workflow on `examples/persona/demo.yaml`: our own English seeds
expanded into multi-turn dialogues, scored by a judge, checked, and split into raw and
filtered day files under `demo-output/persona/`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import console, escape, friendly_errors


def demo_cmd(out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes."),
             limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1,
                                                 help="Seeds to use (default: the config's 6)."),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display or summary tables."),
             ) -> None:
    """Persona dialogues from example seeds, offline on the embedded SmolLM2-135M model."""
    from ..workflows.persona import run_demo
    console.print("[bold]dialogforge demo[/]: persona dialogues from examples/persona/seeds.jsonl on the "
                  "embedded SmolLM2-135M model (no server, no network). The tiny model writes weak text and "
                  "is no judge worth trusting; the point is to see the whole pipeline work.")
    kwargs = {"limit": limit} if limit else {}
    res = run_demo(out_dir, progress=not quiet, console=console, **kwargs)  # prints its summary tables once
    if quiet:
        s = res.summary
        console.print(f"{s['dialogues']} dialogues, {s['kept']} kept, {s['dropped']} dropped", highlight=False)
    p = escape
    console.print(f"[green]done[/]: raw dialogues  {p(str(res.raw_path))}", highlight=False)
    console.print(f"      filtered set   {p(str(res.filtered_path))}", highlight=False)
    console.print(f"      summary        {p(str(res.summary_path))}", highlight=False)
    # the rest of the pipeline: a LLaMA-Factory training file with its dataset_info.json, and a report
    from ..formats import export, report
    train = out_dir / "llamafactory" / "persona_sharegpt.jsonl"
    rep = export(res.filtered_path, train, "sharegpt", dataset_info=train.parent / "dataset_info.json",
                 dataset_name="dialogforge_persona_demo")
    if rep.written:
        console.print(f"      LLaMA-Factory  {p(str(train))} ({rep.written} rows, {sum(rep.rejected.values())} "
                      f"rejected) + dataset_info.json", highlight=False)
    else:
        console.print("      LLaMA-Factory  no dialogue passed the checks this time, so nothing was exported "
                      "(an empty dataset is not registered in dataset_info.json)", highlight=False)
    html, _ = report(res.raw_path, out_dir / "persona_report.html", title="dialogforge demo: persona dialogues")
    console.print(f"      report         {p(str(html))}", highlight=False)


HELP = ("Persona dialogues from example seeds, offline on the embedded SmolLM2-135M model.\n\n"
        "What `make demo` runs: example seeds become multi-turn dialogues, a judge scores them, the checks run, "
        "the filtered set is exported for LLaMA-Factory and an HTML report is drawn, all under --out.")


def register(app: typer.Typer) -> None:
    app.command("demo", help=HELP)(friendly_errors(demo_cmd))
