"""``run``: seeds -> persona dialogues -> date-stamped raw and filtered JSONL + a summary.

Day files: ``<raw_dir>/<prefix>_raw_<YYYY-MM-DD>.jsonl`` and
``<filtered_dir>/<prefix>_filtered_<YYYY-MM-DD>.jsonl`` (UTC date).  A dialogue
already in the day's raw file is not made again, and the engine's runner writes
each dialogue of a run exactly once, also across a kill and rerun.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from dialogforge.core.rows import iter_lines
from dialogforge.engine import Engine, RunResult, Shippable
from dialogforge.engine.errors import ConfigError, InputError
from dialogforge.engine.outputs import check_paths

from ..kit import override
from .config import PersonaConfig, load_persona_config
from .dialogue import DialogueMaker
from .judge import warn_if_same
from .prompts import persona_prompts
from .seeds import dialogue_items, load_seeds
from .summary import print_summary, summarize

RUN_NAME = "persona"


@dataclass
class PersonaRunResult:
    raw_path: Path
    filtered_path: Path
    summary_path: Path
    summary: dict[str, Any]
    engine_result: RunResult | None
    already_in_day_file: int = 0
    items: int = 0
    warnings: list[str] = field(default_factory=list)


def load(config: str | os.PathLike | dict, *, base_url: str | None = None, model: str | None = None,
         api_key_env: str | None = None, store: str | os.PathLike | None = None) -> tuple[Engine, PersonaConfig]:
    """The engine and the validated persona section of one config (a YAML path or a dict)."""
    if isinstance(config, dict):
        engine = Engine.from_dict(config, store=store)
        if base_url or model or api_key_env:
            from dialogforge.engine.config import with_overrides
            engine = Engine(with_overrides(engine.config, base_url=base_url, model=model, api_key_env=api_key_env),
                            store)
    else:
        engine = Engine.load(config, base_url=base_url, model=model, api_key_env=api_key_env, store=store)
    return engine, load_persona_config(engine.config)


OVERRIDES = ("seeds", "limit", "start", "shuffle_seed", "turns", "personas", "raw_dir", "filtered_dir", "min_score",
             "judge", "concurrency", "rewrite_question")


def apply_overrides(cfg: PersonaConfig, **over: Any) -> PersonaConfig:
    """Command-line knobs over the config. Paths given here are taken from the current directory."""
    unknown = sorted(set(over) - set(OVERRIDES))
    if unknown:
        raise TypeError(f"unknown persona override(s): {', '.join(unknown)} (known: {', '.join(OVERRIDES)})")
    personas = None
    if over.get("personas"):
        have = {p.name: p.model_dump() for p in cfg.personas}
        personas = [have.get(n, n) for n in over["personas"]]  # unknown names fall back to the built-ins
    path = {k: str(Path(over[k]).resolve()) if over.get(k) else None for k in ("seeds", "raw_dir", "filtered_dir")}
    return override(cfg, {
        "seeds.path": path["seeds"], "seeds.limit": over.get("limit"), "seeds.start": over.get("start"),
        "seeds.shuffle_seed": over.get("shuffle_seed"), "turns": over.get("turns"), "personas": personas,
        "output.raw_dir": path["raw_dir"], "output.filtered_dir": path["filtered_dir"],
        "quality.min_score": over.get("min_score"), "quality.judge": over.get("judge"),
        "concurrency": over.get("concurrency"), "rewrite_question": over.get("rewrite_question"),
    }, prefix=("persona",))


def run_identity(cfg: PersonaConfig, prompts: Any) -> dict[str, Any]:
    """What shapes the dialogues (see engine.identity): the persona settings, the templates' text and the
    seeds' content; not which slice of the seeds (start, limit), the output folders or the concurrency."""
    from dialogforge.engine.identity import file_digest

    data = cfg.model_dump(exclude={"concurrency", "output", "base_dir", "prompts_dir", "templates"})
    for key in ("reask", "follow_up_pattern"):  # unset: the identity of runs made before these settings existed
        if not data.get(key):
            data.pop(key, None)
    seeds = data["seeds"]
    for k in ("path", "start", "limit"):
        seeds.pop(k, None)
    seeds_path = cfg.resolve(cfg.seeds.path)
    seeds["content"] = file_digest(seeds_path) if seeds_path and Path(seeds_path).is_file() else None
    data["templates"] = dict(prompts.digests)
    return data


def dialogue_process(cfg: PersonaConfig):
    """The per-item function, built where it runs (here, or on a Ray worker)."""
    return DialogueMaker(cfg, persona_prompts(cfg)).process


def day(date: str | None) -> str:
    """The day files' date: YYYY-MM-DD as given (a real date), or today in UTC."""
    if date is None:
        return dt.datetime.now(dt.timezone.utc).date().isoformat()
    try:
        if len(date) == 10 and dt.date.fromisoformat(date):
            return date
    except ValueError:
        pass
    raise ConfigError(f"--date {date!r}: not a date written YYYY-MM-DD (the day files are named by it)")


def day_paths(cfg: PersonaConfig, date: str) -> tuple[Path, Path, Path]:
    raw_dir, filt_dir = cfg.resolve(cfg.output.raw_dir), cfg.resolve(cfg.output.filtered_dir)
    assert raw_dir is not None and filt_dir is not None
    pre = cfg.output.prefix
    return (raw_dir / f"{pre}_raw_{date}.jsonl").resolve(), (filt_dir / f"{pre}_filtered_{date}.jsonl").resolve(), \
        (raw_dir / f"{pre}_summary_{date}.json").resolve()


def read_ids(path: Path, limit_bytes: int | None = None) -> set[str]:
    """Dialogue ids in a JSONL file, reading only its first ``limit_bytes`` (the committed part)."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    if limit_bytes is not None:
        data = data[:limit_bytes]
    ids = set()
    for line in data.splitlines():
        if line.strip():
            try:
                ids.add(str(orjson.loads(line)["id"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a torn last line: the runner cuts it off
    return ids


def read_records(path: Path, ids: set[str] | None = None) -> list[dict]:
    """The dialogues of a raw/filtered file (a torn last line is skipped: the runner cuts it off)."""
    if not path.exists():
        return []
    return [ln.record for ln in iter_lines(path)
            if ln.record is not None and (ids is None or str(ln.record.get("id")) in ids)]


async def arun(config: str | os.PathLike | dict | None = None, *, engine: Engine | None = None,
               persona_config: PersonaConfig | None = None, date: str | None = None, retry_failed: bool = False,
               progress: bool = True, console: Console | None = None, base_url: str | None = None,
               model: str | None = None, api_key_env: str | None = None, store: str | os.PathLike | None = None,
               continue_: bool = False, **overrides: Any) -> PersonaRunResult:
    """Async form of :func:`run`."""
    console = console or Console(stderr=True)
    if persona_config is None or engine is None:
        given = engine
        engine, persona_config = _resolve(config, {"engine": engine, "persona_config": persona_config,
                                                   "base_url": base_url, "model": model,
                                                   "api_key_env": api_key_env, "store": store})
        if given is None:  # ours to close
            try:
                return await arun(engine=engine, persona_config=persona_config, date=date, retry_failed=retry_failed,
                                  progress=progress, console=console, continue_=continue_, **overrides)
            finally:
                await engine.aclose()
    cfg = apply_overrides(persona_config, **overrides) if overrides else persona_config
    prompts = persona_prompts(cfg)
    date = day(date)
    raw_path, filt_path, summary_path = day_paths(cfg, date)
    check_paths({"raw": raw_path, "filtered": filt_path, "summary": summary_path})  # before the run store opens

    warnings = []
    if cfg.quality.judge and warn_if_same(engine, cfg.agents.persona.role, cfg.agents.judge.role, console):
        warnings.append("judge_same_as_generator")

    items = dialogue_items(cfg, load_seeds(cfg))
    if not items:  # before the run store or any output exists
        where = cfg.resolve(cfg.seeds.path)
        raise InputError(f"0 seeds in {where}" + (f" from --start {cfg.seeds.start} on" if cfg.seeds.start else "")
                         + ": nothing to do")
    committed = engine.store.committed_size(str(raw_path))
    existing = read_ids(raw_path, committed)
    todo = [(i, it) for i, it in items if i not in existing]
    if len(todo) < len(items):
        console.print(f"{len(items) - len(todo)} dialogue(s) already in {raw_path.name}; not made again")

    roles = sorted({cfg.agents.persona.role, cfg.agents.user.role}
                   | ({cfg.agents.rewrite.role} if cfg.rewrite_question else set())
                   | ({cfg.agents.judge.role} if cfg.quality.judge else set()))
    result = await engine.run(name=RUN_NAME, items=todo, process=Shippable(dialogue_process, (cfg,)),
                              output={"raw": raw_path, "filtered": filt_path}, concurrency=cfg.concurrency,
                              retry_failed=retry_failed, total=len(todo), progress=progress, roles=roles,
                              identity=run_identity(cfg, prompts), continue_=continue_)
    ids = {i for i, _ in items}
    records = read_records(raw_path, ids)
    failed = sum(1 for i, e in engine.store.failures(result.run_id) if i in ids and i not in existing)
    summary = summarize(records, failed=failed)
    summary.update({"date": date, "raw": str(raw_path), "filtered": str(filt_path), "run_id": result.run_id,
                    "items": len(items), "warnings": warnings})
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    if progress:
        print_summary(summary, console)
    return PersonaRunResult(raw_path=raw_path, filtered_path=filt_path, summary_path=summary_path, summary=summary,
                            engine_result=result, already_in_day_file=len(items) - len(todo), items=len(items),
                            warnings=warnings)


def run(config: str | os.PathLike | dict | None = None, **kwargs: Any) -> PersonaRunResult:
    """Make persona dialogues from the config's seeds; see the module doc for the files written.

    Keyword overrides: seeds, limit, start, shuffle_seed, turns, personas, raw_dir, filtered_dir,
    min_score, judge, concurrency, rewrite_question; plus engine options base_url, model,
    api_key_env, store (or engine=an Engine), and date (YYYY-MM-DD), retry_failed, progress.
    """
    async def main() -> PersonaRunResult:
        engine, pcfg = _resolve(config, kwargs)
        try:
            return await arun(engine=engine, persona_config=pcfg, **kwargs)
        finally:
            await engine.aclose()
    return asyncio.run(main())


def _resolve(config: Any, kwargs: dict) -> tuple[Engine, PersonaConfig]:
    """Pop the engine options out of ``kwargs`` and return (engine, persona config)."""
    engine: Engine | None = kwargs.pop("engine", None)
    pcfg: PersonaConfig | None = kwargs.pop("persona_config", None)
    eopts = {k: kwargs.pop(k, None) for k in ("base_url", "model", "api_key_env", "store")}
    if engine is not None and pcfg is not None:
        return engine, pcfg
    if engine is not None and config is None:
        return engine, load_persona_config(engine.config)
    if config is None:
        raise ConfigError("persona run needs a config (a YAML path or a dict with a 'persona' section)")
    eng, pcfg2 = load(config, **eopts)
    return engine or eng, pcfg or pcfg2


DEMO_CONFIG = Path(__file__).resolve().parents[4] / "examples" / "persona" / "demo.yaml"


def run_demo(out_dir: str | os.PathLike = "demo-output", **kwargs: Any) -> PersonaRunResult:
    """The persona demo on the embedded model (``examples/persona/demo.yaml``), writing under ``out_dir``:
    ``persona/raw``, ``persona/filtered`` and the run store ``store.sqlite``."""
    out = Path(out_dir)
    if not DEMO_CONFIG.exists():
        raise ConfigError(f"demo config not found: {DEMO_CONFIG} (the demo runs from a source checkout)")
    kwargs.setdefault("store", out / "store.sqlite")
    return run(DEMO_CONFIG, raw_dir=out / "persona" / "raw", filtered_dir=out / "persona" / "filtered", **kwargs)
