"""``proactive eval``: an agent over ProactiveBench-style test traces, turn by turn, every prediction
judged by the reward-model role; or (``predictions=True``) the predictions a file already holds; or the
reward model itself on reward items.

Each turn is one engine item (``<file>#<turn>``): the agent gets the observations up to that turn (the
newest in full, older ones compact, trimmed to the history budget), its answer is judged, and the
turn's record goes to ``results.jsonl`` exactly once. A turn whose agent answer or judgement cannot be
parsed fails and is counted per split as failed. A file that does not load is named with its error and
left out; the other files still run. Splits: ``coding`` (files named code*), ``writing`` (writing*), or
those a ``splits.json`` names, and always ``all``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dialogforge.engine import Engine, ItemContext, ItemFailed, RunResult
from dialogforge.engine.errors import InputError

from .calls import ask_agent, judge
from .config import ProactiveConfig, run_identity
from .data import Observation, Turn, load_reward_items, load_splits, load_trace
from .history import agent_messages, judge_messages
from .metrics import Counts, Table, outcome, reward_table, write_html
from ..kit import Prompts
from .prompts import proactive_prompts

PLOTTED = ["recall", "precision", "accuracy", "false_alarm", "f1"]


def default_split(path: Path) -> str:
    name = path.stem.lower()
    return "coding" if name.startswith("cod") else "writing" if name.startswith("writ") else "other"


def trace_files(inputs: list[Path], splits_path: Path | None) -> dict[Path, list[str]]:
    """Each trace file -> the splits it counts in (``all`` implied)."""
    if splits_path is not None:
        out: dict[Path, list[str]] = {}
        for name, body in load_splits(splits_path).items():
            for f in body["files"]:
                out.setdefault(f, []).append(name)
        return out
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix == ".json")
        else:
            files.append(p)
    return {f: [default_split(f)] for f in files}


@dataclass
class EvalResult:
    run: RunResult | None
    table: Table
    csv: Path
    html: Path
    results: Path
    bad_files: dict[str, str] = field(default_factory=dict)
    extra: list[Table] = field(default_factory=list)


def _items(files: dict[Path, list[str]], predictions: bool, bad: dict[str, str]) -> list[tuple[str, dict]]:
    items = []
    for f in files:
        try:
            turns: list[Turn] = load_trace(f)
            if predictions:
                for i, t in enumerate(turns):
                    if t.predictions is None:
                        raise InputError(f"{f}: turn [{i}]: missing field 'agent_response' (needed with --predictions)")
        except InputError as e:
            bad[str(f)] = str(e)
            continue
        obs = [t.observation.model_dump() for t in turns]
        for i, t in enumerate(turns):
            item: dict[str, Any] = {"file": str(f), "turn": i, "observations": obs[: i + 1]}
            if predictions:
                item["predictions"] = t.predictions
            items.append((f"{f}#{i}", item))
    return items


class Evaluator:
    def __init__(self, cfg: ProactiveConfig, prompts: Prompts):
        self.cfg, self.prompts = cfg, prompts

    async def process(self, item: dict, ctx: ItemContext) -> dict[str, Any]:
        cfg = self.cfg
        obs = [Observation.model_validate(o) for o in item["observations"]]
        preds: list[str | None]
        if "predictions" in item:
            preds = item["predictions"]
        else:
            reply = await ask_agent(ctx, cfg, agent_messages(self.prompts, obs, cfg.history))
            if reply.answer is None:
                raise ItemFailed(reply.error or "unparseable agent answer")
            preds = [reply.answer.proposed_task]
        judged = []
        for j, p in enumerate(preds):
            v = await judge(ctx, cfg, judge_messages(self.prompts, obs, p, cfg.history),
                            purpose=f"reward{j}")
            judged.append({"task": p, "accept": v.accept, "reason": v.reason, "outcome": outcome(p, v.accept)})
        return {"id": ctx.item_id, "file": item["file"], "turn": item["turn"], "predictions": judged}


def split_table(files: dict[Path, list[str]], results: Path, failed_ids: list[str], title: str) -> Table:
    splits = {str(f): names for f, names in files.items()}
    counts: dict[str, Counts] = {}
    for names in splits.values():
        for n in names:
            counts.setdefault(n, Counts())
    counts["all"] = Counts()

    def bump(file: str, what: str | None, turn: bool = False) -> None:
        for n in [*splits.get(file, []), "all"]:
            if what:
                counts[n].add(what)
            counts[n].turns += turn

    rows = [orjson.loads(line) for line in results.read_bytes().splitlines() if line.strip()] if results.exists() else []
    for r in rows:
        if r["file"] in splits:
            bump(r["file"], None, turn=True)
            for p in r["predictions"]:
                bump(r["file"], p["outcome"])
    for iid in failed_ids:
        file = iid.rsplit("#", 1)[0]
        if file in splits:
            bump(file, "failed", turn=True)
    return Table(title, {n: c.row() for n, c in counts.items()})


async def evaluate(engine: Engine, cfg: ProactiveConfig, inputs: list[Path], out_dir: str | os.PathLike, *,
                   predictions: bool = False, splits: Path | None = None, retry_failed: bool = False,
                   progress: bool = True, continue_: bool = False) -> EvalResult:
    files = trace_files(inputs, splits)
    bad: dict[str, str] = {}
    items = _items(files, predictions, bad)
    if not items:  # nothing to evaluate: say why, before the output folder or the run store exists
        where = ", ".join(str(p) for p in inputs) or str(splits)
        if bad:
            raise InputError(f"nothing to evaluate: {'; '.join(bad.values())}")
        raise InputError(f"no test-trace turns in {where}" if files else f"no .json test traces in {where}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    prompts = proactive_prompts(cfg)
    ev = Evaluator(cfg, prompts)
    roles = cfg.roles("reward") if predictions else cfg.roles("agent", "reward")
    ident = run_identity(cfg, prompts, ("calls", "history", "limits"), sorted(files))
    ident["predictions"] = predictions
    res = await engine.run(name="proactive-eval", items=items, process=ev.process, output=results,
                           concurrency=cfg.concurrency, retry_failed=retry_failed, total=len(items),
                           progress=progress, roles=roles, identity=ident, continue_=continue_)
    wanted = {i for i, _ in items}
    failed_ids = [i for i, _ in engine.store.failures(res.run_id)]
    table = split_table({f: s for f, s in files.items() if str(f) not in bad}, results,
                        [i for i in failed_ids if i in wanted], "predictions" if predictions else "agent")
    csv_path, html_path = out / "metrics.csv", out / "report.html"
    table.write_csv(csv_path)
    notes = [f"{f}: left out: {e}" for f, e in bad.items()]
    write_html(html_path, "proactive evaluation", [(table, PLOTTED)], notes)
    return EvalResult(res, table, csv_path, html_path, results, bad)


async def evaluate_reward(engine: Engine, cfg: ProactiveConfig, items_path: Path, out_dir: str | os.PathLike, *,
                          retry_failed: bool = False, progress: bool = True, continue_: bool = False) -> EvalResult:
    """The reward-model role on reward items: its ruling against the gold ``valid``."""
    ritems = load_reward_items(items_path)
    if not ritems:
        raise InputError(f"0 rows in {items_path}: nothing to do")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = proactive_prompts(cfg)
    by_id = {r.id: r for r in ritems}

    async def process(item: dict, ctx: ItemContext) -> dict[str, Any]:
        r = by_id[item["id"]]
        v = await judge(ctx, cfg, judge_messages(prompts, r.obs, r.pred_task, cfg.history))
        return {"id": r.id, "category": r.code, "gold": r.valid, "pred": v.accept, "reason": v.reason}

    results = out / "reward_results.jsonl"
    res = await engine.run(name="proactive-eval-reward", items=[(r.id, {"id": r.id}) for r in ritems], process=process,
                           output=results, concurrency=cfg.concurrency, retry_failed=retry_failed, total=len(ritems),
                           progress=progress, roles=cfg.roles("reward"), continue_=continue_,
                           identity=run_identity(cfg, prompts, ("calls", "history", "limits"), [items_path]))
    rows = {}
    for line in results.read_bytes().splitlines():
        if line.strip():
            rec = orjson.loads(line)
            rows[rec["id"]] = rec
    for iid, _ in engine.store.failures(res.run_id):
        if iid in by_id and iid not in rows:
            r = by_id[iid]
            rows[iid] = {"id": iid, "category": r.code, "gold": r.valid, "pred": None}
    overall, per_cat = reward_table([rows[r.id] for r in ritems if r.id in rows])
    csv_path, html_path = out / "reward_metrics.csv", out / "reward_report.html"
    overall.write_csv(csv_path, key="set")
    per_cat.write_csv(out / "reward_categories.csv", key="category")
    write_html(html_path, "reward model evaluation", [(overall, ["accuracy", "precision", "recall", "f1"]),
                                                      (per_cat, ["accuracy"])])
    return EvalResult(res, overall, csv_path, html_path, results, extra=[per_cat])
