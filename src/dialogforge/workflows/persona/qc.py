"""``check``: the workflow's quality control over dialogues people already have.

Heuristic checks always run (no model needed, the output is rewritten).  With
``judge=True`` each dialogue is also scored by the judge through the engine; that
run is resumable like any other (rerun the same command after an interruption).
With ``repair=True`` dialogues whose catchphrase is a set opening or closing phrase are
repaired (see ``repair.py``) and written to their own file, each with what changed.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Sequence

import orjson
from rich.console import Console

from dialogforge.core.rows import read_records, refuse_overwrite
from dialogforge.engine import Engine
from dialogforge.engine.errors import ConfigError
from dialogforge.engine.runner import Records, run_id_for

from ..kit import override
from .checks import CheckThresholds, run_checks
from .config import AgentConfig, PersonaDef, QualityConfig
from .dialogs_io import read_dialogues
from .judge import judge_check, judge_dialogue
from .prompts import persona_prompts
from .records import build_record
from .repair import known_personas, repair_dialogue, repaired_record
from .summary import print_summary, summarize

_RECORD_KEYS = {"id", "messages", "system", "persona", "seed", "turns", "answer_stats", "judge", "checks", "passed",
                "filter_reasons", "created_at", "cleanup", "language"}


def _record(did: str, d: dict, checks: dict, judge: dict | None, advisory: Sequence[str] = ()) -> dict:
    row = d["row"]
    meta = {k: v for k, v in row.items() if k not in _RECORD_KEYS and k != d["messages_key"]}
    extra: dict[str, Any] = {"meta": meta} if meta else {}
    seed = row.get("seed") if isinstance(row.get("seed"), dict) else None
    persona = row.get("persona") if isinstance(row.get("persona"), str) else None
    return build_record(dialogue_id=did, messages=d["messages"], system=d["system"], persona=persona, seed=seed,
                        judge=judge, checks=checks, extra=extra, advisory=advisory)


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        for r in records:
            f.write(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE))
    tmp.replace(path)


def refuse_folders(*outputs: str | os.PathLike | None) -> None:
    """An output path that is a folder: one line naming it, before anything is written."""
    for p in outputs:
        if p is not None and Path(p).is_dir():
            raise ConfigError(f"output {Path(p).resolve()} is a folder; give a file name")


def quality_from_config(config: str | os.PathLike | None) -> tuple[QualityConfig, AgentConfig]:
    """The quality and judge-agent settings of a config's ``persona:`` section (defaults without one)."""
    q, a, _ = _from_config(config)
    return q, a


def _from_config(config: str | os.PathLike | None) -> tuple[QualityConfig, AgentConfig, dict[str, PersonaDef]]:
    """Quality settings, judge agent and the personas known by name (built-in + the config's)."""
    from .config import AgentsConfig, PersonaConfig
    if config is None:
        return QualityConfig(), AgentsConfig().judge, known_personas()
    from dialogforge.engine.config import load_config

    from ..kit import validate
    cfg = load_config(config)
    section = cfg.extra.get("persona") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{config}: persona: must be a mapping")
    q = validate(QualityConfig, section.get("quality") or {}, source=str(config), lines=cfg.lines,
                 prefix=("persona", "quality"))
    a = validate(AgentsConfig, section.get("agents") or {}, source=str(config), lines=cfg.lines,
                 prefix=("persona", "agents")).judge
    try:  # the personas' own prefixes/suffixes, for the catchphrase check; names of built-ins or definitions
        listed = PersonaConfig._builtin(section.get("personas") or [])
    except ValueError as e:
        raise ConfigError(f"{config}: persona.personas: {e}") from None
    personas = [validate(PersonaDef, p, source=str(config), lines=cfg.lines, prefix=("persona", "personas", i))
                for i, p in enumerate(listed)]
    return q, a, known_personas(personas)


async def acheck(input: str | os.PathLike, output: str | os.PathLike, *, judge: bool = False,
                 engine: Engine | None = None, config: str | os.PathLike | None = None,
                 thresholds: CheckThresholds | None = None, min_score: float | None = None,
                 judge_role: str | None = None, filtered: str | os.PathLike | None = None,
                 summary_path: str | os.PathLike | None = None, concurrency: int = 16, progress: bool = True,
                 console: Console | None = None, prompts_dir: str | os.PathLike | None = None,
                 repair: bool = False, repaired: str | os.PathLike | None = None, repair_keep: int = 1) -> dict:
    console = console or Console(stderr=True)
    quality, judge_agent, personas = _from_config(config)
    t = thresholds or quality.checks
    ms = min_score if min_score is not None else quality.min_score
    if judge_role:
        judge_agent = override(judge_agent, {"role": judge_role}, prefix=("persona", "agents", "judge"))
    out, inp = Path(output).resolve(), Path(input).resolve()
    filt = Path(filtered).resolve() if filtered else None
    summ = Path(summary_path) if summary_path else out.with_name(out.stem + ".summary.json")
    refuse_folders(out, filt, summ, repaired)
    refuse_overwrite([inp], {"-o": out, "--filtered": filt, "--summary": summ, "--repaired": repaired})
    dialogues = list(read_dialogues(inp))

    def persona_of(d: dict) -> PersonaDef | None:
        name = d["row"].get("persona")
        return personas.get(name) if isinstance(name, str) else None

    if not judge:
        records = [_record(did, d, run_checks(d["messages"], t, persona=persona_of(d)), None, quality.advisory)
                   for did, d in dialogues]
        _write_jsonl(out, records)
        if filt is not None:
            _write_jsonl(filt, [r for r in records if r["passed"]])
        failed = 0
    else:
        if engine is None:
            raise ConfigError("check with a judge needs an engine (a config, or --base-url/--model)")
        prompts = persona_prompts(prompts_dir=Path(prompts_dir) if prompts_dir is not None else None)
        by_id = dict(dialogues)

        async def process(item: dict, ctx: Any) -> Records:
            d = by_id[ctx.item_id]
            checks = run_checks(d["messages"], t, persona=persona_of(d))
            err: str | None
            if not any(m["role"] == "assistant" for m in d["messages"]):
                j, err = None, "nothing to judge: no assistant message"
            else:
                j, err = await judge_dialogue(ctx, prompts, judge_agent, d["messages"], persona=item.get("persona"))
            checks["judge"] = judge_check(j, err, ms)
            rec = _record(ctx.item_id, d, checks, j, quality.advisory)
            out_recs = Records(output=[rec])
            if filt is not None:
                out_recs["filtered"] = [rec] if rec["passed"] else []
            return out_recs

        outputs: dict[str, Path] = {"output": out}
        if filt is not None:
            outputs["filtered"] = filt
        rid = run_id_for("persona-check", {**outputs, "input": inp})
        items = [(did, {"persona": d["row"].get("persona") if isinstance(d["row"].get("persona"), str) else None})
                 for did, d in dialogues]
        res = await engine.run(name="persona-check", items=items, process=process, output=outputs, run_id=rid,
                               concurrency=concurrency, total=len(items), progress=progress, roles=[judge_agent.role])
        records = _read(out, {did for did, _ in dialogues})
        failed = res.failed + res.skipped_failed
    summary = summarize(records, failed=failed)
    summary.update({"input": str(inp), "output": str(out), "judge": judge, "min_score": ms})
    if repair:
        rep = Path(repaired) if repaired else out.with_name(out.stem + ".repaired.jsonl")
        fixed = _repair_all(records, t, personas, repair_keep, quality.advisory)
        _write_jsonl(rep, fixed)
        summary["repair"] = {"path": str(rep), "repaired": len(fixed), "passed_after": sum(r["passed"] for r in fixed),
                             "changes": sum(len(r["repair"]["changes"]) for r in fixed)}
    summ.parent.mkdir(parents=True, exist_ok=True)
    summ.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    summary["summary_path"] = str(summ)
    if progress:
        print_summary(summary, console, title="persona check")
    return summary


def _repair_all(records: list[dict], t: CheckThresholds, personas: dict[str, PersonaDef], keep: int,
                advisory: Sequence[str]) -> list[dict]:
    """Repaired copies of the records whose catchphrase is an edge phrase (the originals stay as they are)."""
    out = []
    for r in records:
        persona = personas.get(r["persona"]) if isinstance(r.get("persona"), str) else None
        done = repair_dialogue(r["messages"], r.get("checks") or {}, t, persona=persona, keep=keep)
        if done is not None:
            out.append(repaired_record(r, *done, advisory=advisory))
    return out


def _read(path: Path, ids: set[str]) -> list[dict]:
    return [r for r in read_records(path, missing_ok=True) if str(r.get("id")) in ids]


def check(input: str | os.PathLike, output: str | os.PathLike, *, judge: bool = False,
          config: str | os.PathLike | None = None, base_url: str | None = None, model: str | None = None,
          api_key_env: str | None = None, store: str | os.PathLike | None = None, engine: Engine | None = None,
          **kwargs: Any) -> dict:
    """Run the checks over existing dialogues and write each with its results, plus ``<output>.summary.json``.

    Returns the summary. ``judge=True`` scores with the ``judge`` role of ``config`` (or of
    ``base_url``/``model``); other keywords: thresholds, min_score, judge_role, filtered, summary_path,
    concurrency, progress, prompts_dir.
    """
    async def main() -> dict:
        eng = engine
        if judge and eng is None:
            eng = Engine.load(config, base_url=base_url, model=model, api_key_env=api_key_env, store=store)
        try:
            return await acheck(input, output, judge=judge, engine=eng, config=config, **kwargs)
        finally:
            if eng is not None:
                await eng.aclose()
    return asyncio.run(main())
