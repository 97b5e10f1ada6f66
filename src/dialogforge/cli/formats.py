"""`dialogforge export | validate | merge | dedup | report`: training formats and dataset tools."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..formats.registry import help_text
from .common import escape as esc
from .common import friendly_errors, require_rows

out = Console()
err = Console(stderr=True)

FORMAT_HELP = help_text() + "; hf is a save_to_disk folder, parquet one file"


def _counts(title: str, counter: dict, style: str) -> None:
    if counter:
        out.print(title)
        for k, v in sorted(counter.items(), key=lambda kv: -kv[1]):
            out.print(f"  [{style}]{v:>8}[/]  {esc(str(k))}", highlight=False)


def _nothing_done(done: int, bad: int, why: str, *made: Any) -> None:
    """Exit 1 when bad rows left nothing to write: a run that produced nothing is not a success, and the
    empty files it made (`made`: output, clusters report, HTML) are removed, not left behind."""
    if not done and bad:
        for p in made:
            if p and Path(p).is_file():
                Path(p).unlink()
        err.print(f"[bold red]error:[/] {why}", highlight=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("export")
    @friendly_errors
    def export_cmd(
        inputs: list[Path] = typer.Argument(..., help="JSONL/JSON files (or folders of them) our workflows wrote."),
        output: Path = typer.Option(..., "--output", "-o", help="Output file (folder for --to hf)."),
        to: str = typer.Option(..., "--to", "-t", help=FORMAT_HELP),
        task: str = typer.Option("sft", "--task", help="sft | preference | kto | prompt-completion (trl)."),
        layout: str = typer.Option("trl", "--layout",
                                   help="Row layout inside hf/parquet output: " + help_text(rows_only=True)),
        min_reward: Optional[float] = typer.Option(None, "--min-reward", help="Keep samples with reward >= this."),
        min_score: Optional[float] = typer.Option(None, "--min-score", help="Keep samples with judge score >= this."),
        only_success: bool = typer.Option(False, "--only-success", help="Keep successful (or passed) samples only."),
        include_auxiliary: bool = typer.Option(False, "--include-auxiliary",
                                               help="Keep agent calls whose purpose is not 'main' (summaries)."),
        per_turn: bool = typer.Option(False, "--per-turn", help="One sample per assistant turn (prefix + reply)."),
        dataset_info: Optional[Path] = typer.Option(None, "--dataset-info",
                                                    help="LLaMA-Factory dataset_info.json to update "
                                                         "(default: beside the output)."),
        dataset_name: Optional[str] = typer.Option(None, "--dataset-name", help="Entry name (default: output stem)."),
        rejects: Optional[Path] = typer.Option(None, "--rejects", help="Rejected rows with reasons "
                                                                       "(default: beside the output, *.rejects.jsonl)."),
        tools_as_text: bool = typer.Option(False, "--tools-as-text",
                                           help="trl: tools as JSON text (newer TRL only) instead of a list of "
                                                "schemas (loads in TRL 0.24 and later)."),
        tool_prompts: str = typer.Option("refuse", "--tool-prompts",
                                         help="trl preference/kto rows whose prompt ends with a tool result: "
                                              "refuse (TRL 0.24 raises on them) | keep (TRL after 0.24)."),
        train_on: str = typer.Option("auto", "--train-on",
                                     help="SFT targets: last (the last reply of each row) | all (every reply) | "
                                          "auto (last for per-turn agent samples, else all)."),
        keep_format_errors: bool = typer.Option(False, "--keep-format-errors",
                                                help="Keep agent replies that held no valid action as SFT targets."),
        with_metadata: bool = typer.Option(False, "--with-metadata",
                                           help="Add a `metadata` column (JSON text) with reward, score, provenance."),
        no_merge_consecutive: bool = typer.Option(False, "--no-merge-consecutive",
                                                  help="Reject back-to-back user turns (e.g. a history summary "
                                                       "after the task) instead of joining them where the target "
                                                       "needs alternating roles."),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any row is rejected."),
    ) -> None:
        """Convert workflow outputs to a training format; every row is validated as it is written."""
        require_rows(*inputs)
        from ..formats import Selection, export
        from ..core.errors import InputError
        from ..formats.export import registers_dataset_info
        if (dataset_info or dataset_name) and not registers_dataset_info(to, layout):
            raise InputError(f"--dataset-info/--dataset-name go with LLaMA-Factory files (sharegpt, lf-openai, alpaca, "
                             f"or parquet of those), not {to}" + (f" of {layout}" if to in ("hf", "parquet") else ""))
        sel = Selection(min_reward=min_reward, min_score=min_score, only_success=only_success,
                        include_auxiliary=include_auxiliary, per_turn=per_turn, keep_format_errors=keep_format_errors)
        r = export(inputs, output, to, task=task, selection=sel, layout=layout, rejects=rejects,
                   dataset_info=dataset_info, dataset_name=dataset_name, tools_as_list=not tools_as_text,
                   tool_prompts=tool_prompts, with_metadata=with_metadata, merge_consecutive=not no_merge_consecutive,
                   train_on=train_on)
        rejected = sum(r.rejected.values())
        out.print(f"[bold]export[/] {r.read} rows read -> [green]{r.written} written[/] to {esc(str(r.output))} "
                  f"({to}, {task}); {sum(r.skipped.values())} skipped by selection, "
                  f"[{'red' if rejected else 'green'}]{rejected} rejected[/]")
        _counts("skipped by selection:", dict(r.skipped), "yellow")
        _counts("rejected (reason: count):", dict(r.rejected), "red")
        _counts("normalised (counted):", dict(r.notes), "cyan")
        if r.rejects_path:
            out.print(f"rejected rows and their reasons: {esc(str(r.rejects_path))}")
        if r.dataset_info_path:
            out.print(f"dataset_info entry {r.dataset_name!r} written to {esc(str(r.dataset_info_path))}")
        if r.trainer_note:
            out.print(f"[bold]training:[/] {esc(str(r.trainer_note))}", highlight=False)
        if r.readme_path:
            out.print(f"what this file is and how to train on it: {esc(str(r.readme_path))}")
        if r.json_features is False:
            err.print("[yellow]note:[/] this `datasets` has no Json feature; nested columns are stored as JSON text")
        if strict and rejected:
            raise typer.Exit(1)
        _nothing_done(r.written, rejected, "nothing written: every row read was rejected (their reasons are in the "
                      "rejects file)", r.output)

    @app.command("validate")
    @friendly_errors
    def validate_cmd(
        file: Path = typer.Argument(..., help="Training file (JSONL or JSON list)."),
        fmt: str = typer.Option(..., "--format", "-f", help=help_text(rows_only=True)),
        task: Optional[str] = typer.Option(None, "--task", help="sft | preference | kto | prompt-completion "
                                                                "(default: from the first row)."),
        dataset_info: Optional[Path] = typer.Option(None, "--dataset-info",
                                                    help="Check against this dataset_info.json entry."),
        dataset: Optional[str] = typer.Option(None, "--dataset", help="Entry name in --dataset-info."),
        rejects: Optional[Path] = typer.Option(None, "--rejects", help="Write every bad row with its reasons here."),
        newer_trl: bool = typer.Option(False, "--newer-trl", help="trl: rules of TRL releases after 0.24 (JSON-text "
                                                                   "tools, prompts ending with a tool result) "
                                                                   "instead of 0.24's."),
        show: int = typer.Option(20, "--show", min=0, help="Bad rows to print."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Check every row against the target's rules; exit 1 when any row is bad."""
        require_rows(file)  # a missing or empty file: one line, and no --rejects file left behind
        from ..formats import validate
        r = validate(file, fmt, task=task, dataset_info=dataset_info, dataset=dataset, rejects=rejects,
                     newer_trl=newer_trl)
        if as_json:
            typer.echo(orjson.dumps(r.to_dict(), option=orjson.OPT_INDENT_2).decode())
        else:
            colour = "green" if r.ok else "red"
            out.print(f"[bold]{esc(str(file))}[/] as {fmt} ({r.task}): {r.rows} rows, [green]{r.valid} valid[/], "
                      f"[{colour}]{r.invalid} invalid[/]")
            _counts("invalid rows by first reason:", dict(r.by_reason), "red")
            for b in r.bad[:show]:
                where = f" (line {b.lineno})" if b.lineno else ""
                out.print(f"  row {b.index}{esc(where)}: " + esc("; ".join(b.reasons)), highlight=False)
            if r.invalid > min(show, len(r.bad)):
                out.print(f"  ... {r.invalid - min(show, len(r.bad))} more" +
                          (f" in {r.rejects_path}" if r.rejects_path else " (use --rejects FILE to list all)"))
            for p in r.file_problems:
                out.print(f"[red]file:[/] {esc(str(p))}", highlight=False)
        if not r.ok:
            raise typer.Exit(1)

    @app.command("merge")
    @friendly_errors
    def merge_cmd(
        inputs: list[Path] = typer.Argument(..., help="Run/round outputs (JSONL files or folders)."),
        output: Path = typer.Option(..., "--output", "-o", help="Merged JSONL."),
        run: Optional[list[str]] = typer.Option(None, "--run", help="Run name per input, in order "
                                                                    "(default: the records' own, else file stem)."),
    ) -> None:
        """Combine runs and rounds into one dataset, keeping provenance; drops only exact repeats."""
        require_rows(*inputs)
        from ..formats import merge
        r = merge(inputs, output, runs=run)
        t = Table(title=f"merged into {r.output}", title_justify="left")
        for col in ("file", "run", "rows", "kept", "duplicates", "bad lines"):
            t.add_column(col)
        for f in r.files:
            t.add_row(f.path, f.run, str(f.rows), str(f.kept), str(f.duplicates), str(f.bad))
        out.print(t)
        out.print(f"{r.kept} records kept, {r.duplicates} exact repeats (same provenance and content) dropped")
        _counts("records per run/round:", dict(r.rounds), "green")
        for b in r.bad_lines:
            out.print(f"[red]bad line[/] {esc(str(b))}", highlight=False)
        _nothing_done(r.kept, sum(f.bad for f in r.files), "nothing merged: no line of the inputs could be read",
                      r.output)

    @app.command("dedup")
    @friendly_errors
    def dedup_cmd(
        input: Path = typer.Argument(..., help="JSONL dataset."),
        output: Path = typer.Option(..., "--output", "-o", help="Deduplicated JSONL."),
        threshold: float = typer.Option(0.85, "--threshold", min=0.0, max=1.0, help="Near-duplicate Jaccard similarity (0-1]."),
        ngram: int = typer.Option(5, "--ngram", min=1, help="Character n-gram size for shingles."),
        num_perm: int = typer.Option(128, "--num-perm", min=1, help="MinHash permutations."),
        text: str = typer.Option("all", "--text", help="What to compare: all | assistant | last | prompt."),
        keep: str = typer.Option("first", "--keep", help="Which cluster member to keep: first | best (score, reward)."),
        exact: bool = typer.Option(True, "--exact/--no-exact", help="Exact dedup on normalised text."),
        near: bool = typer.Option(True, "--near/--no-near", help="Near-duplicate dedup with MinHash LSH."),
        clusters: Optional[Path] = typer.Option(None, "--clusters", help="Clusters report "
                                                                         "(default: beside the output, *.clusters.json)."),
    ) -> None:
        """Remove exact and near duplicates; every cluster and the member kept go to a JSON report."""
        require_rows(input)
        from ..formats import dedup
        r = dedup(input, output, exact=exact, near=near, threshold=threshold, ngram=ngram, num_perm=num_perm,
                  text=text, keep=keep, clusters=clusters)
        out.print(f"[bold]dedup[/] {r.rows} rows -> [green]{r.kept} kept[/]; removed {r.exact_removed} exact and "
                  f"{r.near_removed} near duplicates in {len(r.clusters)} clusters; clusters: {r.clusters_path}")
        if r.uncompared:
            out.print(f"[yellow]{r.uncompared} records of an unknown shape were kept without comparing[/]")
        for u in r.unreadable:
            out.print(f"[red]not written[/] (not a JSON object) {esc(str(u))}", highlight=False)
        _nothing_done(r.kept, len(r.unreadable), "nothing written: no line of the input could be read", r.output,
                      r.clusters_path)

    @app.command("report")
    @friendly_errors
    def report_cmd(
        dataset: Path = typer.Argument(..., help="JSONL dataset (any format export or our workflows write)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="HTML file (default: DATASET.report.html)."),
        clusters: Optional[Path] = typer.Option(None, "--clusters", help="Clusters JSON from `dialogforge dedup`."),
        title: Optional[str] = typer.Option(None, "--title", help="Report title."),
    ) -> None:
        """Write a self-contained HTML report with plots, and print a short summary."""
        require_rows(dataset)
        from ..formats import report
        from ..formats.report import summary_rows
        path, st = report(dataset, output, clusters=clusters, title=title)
        t = Table(title=f"{dataset}", title_justify="left", show_header=False)
        t.add_column(style="dim")
        t.add_column()
        for k, v in summary_rows(st):
            t.add_row(k, v)
        out.print(t)
        _nothing_done(st.rows - st.unreadable, st.unreadable, "no report: no line of the dataset could be read", path)
        out.print(f"report: {esc(str(path))}")
