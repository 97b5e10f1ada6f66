"""`dialogforge persona ...`: persona dialogues (run), quality control of existing dialogues (check),
import of the older generator's config (import-config), and the built-in personas (personas)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..engine.errors import ConfigError
from .common import (BaseUrlOpt, BatchFileOpt, BatchOpt, BatchPollOpt, ContinueOpt, ExecutorOpt, KeyEnvOpt,
                     ModelOpt, RayAddressOpt, RayWorkersOpt, StoreOpt, check_executor_flags, console, friendly_errors,
                     escape, make_engine, print_result, require_rows, run_async, use_executor)


def _parse_turns(value: Optional[str]) -> int | tuple[int, int] | None:
    if value is None:
        return None
    v = value.replace(" ", "")
    try:
        if "-" in v:
            lo, hi = v.split("-", 1)
            return int(lo), int(hi)
        return int(v)
    except ValueError:
        raise ConfigError(f"--turns expects N or MIN-MAX (e.g. 4 or 3-5), got {value!r}") from None


def register(app: typer.Typer) -> None:
    persona_app = typer.Typer(help="Persona dialogues: multi-turn generation from single-turn seeds, with quality control.",
                              no_args_is_help=True)
    app.add_typer(persona_app, name="persona")

    @persona_app.command("run")
    @friendly_errors
    def run_cmd(
        config: Path = typer.Argument(..., help="YAML config with endpoints, roles and a `persona:` section."),
        seeds: Optional[Path] = typer.Option(None, "--seeds", help="Seed file (overrides persona.seeds.path)."),
        limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="Use at most this many seeds."),
        start: Optional[int] = typer.Option(None, "--start", min=0, help="Skip this many seeds first (after shuffling)."),
        shuffle_seed: Optional[int] = typer.Option(None, "--shuffle-seed", help="Shuffle the seeds with this seed."),
        turns: Optional[str] = typer.Option(None, "--turns", help="Turns per dialogue: N or MIN-MAX."),
        persona: Optional[list[str]] = typer.Option(None, "--persona", "-p",
                                                    help="Persona name(s) to use (configured or built-in)."),
        min_score: Optional[float] = typer.Option(None, "--min-score", help="Judge score needed for the filtered set."),
        judge: Optional[bool] = typer.Option(None, "--judge/--no-judge", help="Score with the judge (config default)."),
        rewrite: Optional[bool] = typer.Option(None, "--rewrite/--no-rewrite", help="Rewrite seed questions first."),
        raw_dir: Optional[Path] = typer.Option(None, "--raw-dir", help="Folder of the raw day files."),
        filtered_dir: Optional[Path] = typer.Option(None, "--filtered-dir", help="Folder of the filtered day files."),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", min=1, help="Dialogues in flight at once."),
        date: Optional[str] = typer.Option(None, "--date", help="Day-file date YYYY-MM-DD (default: today, UTC)."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Run only the dialogues that failed before."),
        continue_: bool = ContinueOpt,
        base_url: Optional[str] = BaseUrlOpt,
        model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt,
        store: Optional[Path] = StoreOpt,
        executor: str = ExecutorOpt,
        ray_address: Optional[str] = RayAddressOpt,
        ray_workers: Optional[int] = RayWorkersOpt,
        batch: bool = BatchOpt,
        batch_poll: float = BatchPollOpt,
        batch_file: Optional[Path] = BatchFileOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        """Make persona dialogues from seeds into date-stamped raw and filtered JSONL (resumable)."""
        from ..engine import Engine
        from ..engine.config import load_config
        from ..workflows.persona.config import load_persona_config
        from ..workflows.persona.workflow import apply_overrides, arun
        overrides = dict(seeds=seeds, limit=limit, start=start, shuffle_seed=shuffle_seed, turns=_parse_turns(turns),
                         personas=persona, min_score=min_score, judge=judge, rewrite_question=rewrite,
                         raw_dir=raw_dir, filtered_dir=filtered_dir, concurrency=concurrency)
        parsed = load_config(config)
        # the section and the flags over it are checked before the run store exists
        pcfg = apply_overrides(load_persona_config(parsed), **{k: v for k, v in overrides.items() if v is not None})
        check_executor_flags(executor, ray_address, ray_workers, batch, batch_file)
        engine = Engine.from_config(parsed, base_url=base_url, model=model, api_key_env=api_key_env, store=store)
        use_executor(engine, executor, ray_address, ray_workers, batch, batch_poll, batch_file)

        async def main():
            try:
                return await arun(engine=engine, persona_config=pcfg, date=date, retry_failed=retry_failed,
                                  progress=not quiet, console=console, continue_=continue_)
            finally:
                await engine.aclose()
        res = run_async(main)
        if res.engine_result is not None:
            print_result(res.engine_result, "dialogues")
        console.print(escape(f"raw: {res.raw_path}\nfiltered: {res.filtered_path}\nsummary: {res.summary_path}"),
                      highlight=False)
        if res.engine_result is not None and res.engine_result.failures_remain:
            raise typer.Exit(1)

    @persona_app.command("check")
    @friendly_errors
    def check_cmd(
        input: Path = typer.Argument(..., help="Dialogues: JSONL or JSON list; messages as role/content "
                                               "(or `contents`), or ShareGPT from/value."),
        output: Path = typer.Option(..., "--output", "-o", help="Each dialogue with its check results (JSONL)."),
        judge: bool = typer.Option(False, "--judge", help="Also score each dialogue with the judge model."),
        config: Optional[Path] = typer.Option(None, "--config", "-c",
                                              help="Config: endpoints/roles for the judge, persona.quality thresholds."),
        min_score: Optional[float] = typer.Option(None, "--min-score", min=1.0, max=5.0,
                                                  help="Judge score (1-5) needed to pass."),
        judge_role: Optional[str] = typer.Option(None, "--judge-role", help="Engine role the judge uses (default judge)."),
        filtered: Optional[Path] = typer.Option(None, "--filtered", help="Also write the passing dialogues here."),
        summary: Optional[Path] = typer.Option(None, "--summary", help="Summary JSON (default OUTPUT.summary.json)."),
        concurrency: int = typer.Option(16, "--concurrency", "-j", min=1, help="Dialogues judged at once."),
        repair: bool = typer.Option(False, "--repair", help="Remove a recurring set opening/closing phrase from the "
                                                            "answers after the first --repair-keep, recheck, and write "
                                                            "those dialogues to --repaired with their changes."),
        repaired: Optional[Path] = typer.Option(None, "--repaired", help="Repaired dialogues "
                                                                         "(default OUTPUT.repaired.jsonl)."),
        repair_keep: int = typer.Option(1, "--repair-keep", min=0, help="Answers that keep the set phrase."),
        base_url: Optional[str] = BaseUrlOpt,
        model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt,
        store: Optional[Path] = StoreOpt,
        batch: bool = BatchOpt,
        batch_poll: float = BatchPollOpt,
        batch_file: Optional[Path] = BatchFileOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        """Run the persona quality checks over dialogues you already have."""
        require_rows(input)
        from ..workflows.persona.dialogs_io import read_dialogues
        from ..workflows.persona.qc import acheck, refuse_folders
        refuse_folders(output, filtered, summary, repaired)
        judge_only = {"--min-score": min_score, "--judge-role": judge_role, "--base-url": base_url, "--model": model,
                      "--api-key-env": api_key_env, "--store": store}
        if not judge and any(v is not None for v in judge_only.values()):
            given = [k for k, v in judge_only.items() if v is not None]
            raise ConfigError(f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} with --judge: without it "
                              "the checks make no model call")
        if judge:  # every dialogue readable before the run store exists
            for _ in read_dialogues(input.resolve()):
                pass
        engine = make_engine(config, base_url, model, api_key_env, store) if judge else None
        if (batch or batch_file) and engine is None:
            raise ConfigError("--batch and --batch-file go with --judge (the checks without it make no model calls)")
        if engine is not None:
            use_executor(engine, "local", batch=batch, batch_poll=batch_poll, batch_file=batch_file)

        async def main():
            try:
                return await acheck(input, output, judge=judge, engine=engine, config=config, min_score=min_score,
                                    judge_role=judge_role, filtered=filtered, summary_path=summary,
                                    concurrency=concurrency, progress=not quiet, console=console,
                                    repair=repair, repaired=repaired, repair_keep=repair_keep)
            finally:
                if engine is not None:
                    await engine.aclose()
        s = run_async(main)
        console.print(escape(f"{s['kept']} of {s['dialogues']} passed · output: {output} · summary: {s['summary_path']}"),
                      highlight=False)
        if "repair" in s:
            r = s["repair"]
            console.print(f"repaired {r['repaired']} dialogues ({r['changes']} phrases removed), "
                          f"{r['passed_after']} now pass · {r['path']}", highlight=False)
        if s.get("failed"):  # dialogues the judge could not score (now or earlier): not done until retried
            raise typer.Exit(1)

    @persona_app.command("import-config")
    @friendly_errors
    def import_cmd(
        old: Path = typer.Argument(..., help="The older persona generator's YAML config."),
        output: Path = typer.Option(..., "--output", "-o", help="Where to write the dialogforge config."),
    ) -> None:
        """Convert an older multi-turn persona generator config; prints what was and was not mapped."""
        from ..workflows.persona.import_config import write_imported
        _, mapped, skipped = write_imported(old, output)
        for m in mapped:
            console.print(f"[green]mapped[/]  {escape(m)}", highlight=False)
        for s in skipped:
            console.print(f"[yellow]not mapped[/]  {escape(s)}", highlight=False)
        console.print(escape(f"wrote {output}"), highlight=False)

    from .demo import demo_cmd  # one demo: `persona demo` is `dialogforge demo`, same flags
    persona_app.command("demo", help="The same as `dialogforge demo` (same flags).")(friendly_errors(demo_cmd))

    @persona_app.command("personas")
    def personas_cmd() -> None:
        """List the built-in personas (usable by name under persona.personas)."""
        from ..workflows.persona.personas import BUILTIN_PERSONAS
        for name, p in BUILTIN_PERSONAS.items():
            console.print(f"[bold]{name}[/] ({p['role_name']}, {p['language'] or 'language of the question'}): "
                          f"{p['description']}", highlight=False)
