"""``annotate rm-trainset``: human-labelled reward items -> the reward model's training set.

For each item (ProactiveBench reward-item form: the events so far, the proposal or none, the human label),
an LLM writes the reasoning that leads to the human label. The rationale is kept only when several
independent readings of it alone (without the label) reach that label; otherwise another rationale is
tried, up to ``attempts``. Kept items become a conversation sample (question -> reasoning + verdict) and a
ranking pair (the verdict that matches the label over reasoning for the other one). Then the smaller
categories are upsampled to the largest (seeded), and both forms are exported to LLaMA-Factory through
``formats``. Every call is cached in the run store: a rerun resumes and re-sends nothing finished.
"""
from __future__ import annotations

import hashlib
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from dialogforge.engine import Engine, ItemContext, Records, RunResult, StructuredOutputError
from dialogforge.engine.errors import InputError

from ..kit import Prompts
from ..proactive.data import RewardItem, load_reward_items
from .config import RmTrainsetConfig

TEMPLATES = Path(__file__).parent / "prompts"
NAMES = ("question", "rationale", "counter", "reading")


class Reading(BaseModel):
    right: bool


def verdict(label: bool, task: str | None) -> str:
    if task is not None:
        return "Verdict: the person would accept this proposal." if label else \
            "Verdict: the person would not accept this proposal."
    return "Verdict: staying quiet was right." if label else "Verdict: staying quiet was wrong; help was needed."


class RationaleMaker:
    def __init__(self, cfg: RmTrainsetConfig, prompts: Prompts):
        self.cfg, self.prompts = cfg, prompts

    async def process(self, item: dict, ctx: ItemContext) -> Records:
        it = RewardItem.model_validate(item)
        obs = [o.model_dump() for o in it.obs]
        question = self.prompts.render("question", obs=obs, task=it.pred_task)
        failures: list[str] = []
        for attempt in range(self.cfg.attempts):          # bounded: each attempt is one rationale + its readings
            rationale = await self._write(ctx, "rationale", question, it, it.valid, attempt)
            if not rationale:
                failures.append(f"attempt {attempt + 1}: empty rationale")
                continue
            votes = await self._read(ctx, question, it, rationale, attempt)
            agree = sum(v is it.valid for v in votes)
            if agree >= self.cfg.needed:
                counter = await self._write(ctx, "counter", question, it, not it.valid, attempt)
                return self._records(ctx, it, question, rationale, counter, votes, attempt + 1)
            failures.append(f"attempt {attempt + 1}: {agree} of {len(votes)} readings reached the label")
        return Records(sft=[], ranking=[], dropped=[{"id": ctx.item_id, "category": it.category,
                                                     "label": it.valid, "failures": failures}])

    async def _write(self, ctx: ItemContext, name: str, question: str, it: RewardItem, label: bool,
                     attempt: int) -> str:
        call = self.cfg.rationale
        msg = self.prompts.render(name, question=question, task=it.pred_task, label=label)
        r = await ctx.chat([{"role": "user", "content": msg}], role=call.role, purpose=name, sample=attempt,
                           **call.request())
        return (r.text or "").strip()

    async def _read(self, ctx: ItemContext, question: str, it: RewardItem, rationale: str,
                    attempt: int) -> list[bool | None]:
        call = self.cfg.reader
        msg = self.prompts.render("reading", question=question, rationale=rationale, task=it.pred_task)
        votes: list[bool | None] = []
        for k in range(self.cfg.readings):               # independent: each its own sample, never the label
            try:
                r = await ctx.chat([{"role": "user", "content": msg}], role=call.role, purpose="reading",
                                   sample=attempt * 100 + k, schema=Reading, **call.request())
                votes.append(bool(r.parsed.right))
            except StructuredOutputError:
                votes.append(None)                        # an unreadable reading agrees with nothing
        return votes

    def _records(self, ctx: ItemContext, it: RewardItem, question: str, rationale: str, counter: str,
                 votes: list[bool | None], attempts: int) -> Records:
        answer = f"{rationale}\n\n{verdict(it.valid, it.pred_task)}"
        wrong = f"{counter}\n\n{verdict(not it.valid, it.pred_task)}"
        meta = {"category": it.category, "label": it.valid, "readings": votes, "attempts": attempts,
                "purpose": "main", "run": ctx.run_id}
        user = {"role": "user", "content": question}
        sft = {"id": ctx.item_id, "messages": [user, {"role": "assistant", "content": answer}], **meta}
        pair = {"id": ctx.item_id, "messages": [user], "chosen": [{"role": "assistant", "content": answer}],
                "rejected": [{"role": "assistant", "content": wrong}], **meta}
        return Records(sft=[sft], ranking=[pair], dropped=[])


def upsample(rows: list[dict], seed: int) -> list[dict]:
    """Every category brought up to the largest one's size by drawing (seeded) from its own rows; originals
    all kept, copies get ids `<id>#up<k>`."""
    by_cat: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_cat[r["category"]].append(r)
    if not by_cat:
        return []
    top = max(len(v) for v in by_cat.values())
    rng = random.Random(seed)
    out: list[dict] = []
    for cat in sorted(by_cat):
        group = by_cat[cat]
        out += group
        for k, r in enumerate(rng.choices(group, k=top - len(group))):
            out.append({**r, "id": f"{r['id']}#up{k}", "upsampled": True})
    return out


def _read_jsonl(p: Path) -> list[dict]:
    return [orjson.loads(x) for x in p.read_bytes().splitlines() if x.strip()] if p.exists() else []


def _write_jsonl(rows: list[dict], p: Path) -> None:
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    tmp.replace(p)


@dataclass
class RmTrainsetResult:
    run: RunResult
    kept: int = 0
    dropped: int = 0
    by_category: dict[str, int] = field(default_factory=dict)        # kept, before balancing
    balanced: dict[str, int] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)


async def make_rm_trainset(engine: Engine, cfg: RmTrainsetConfig, inputs: list[Path], out_dir: str | os.PathLike,
                           *, retry_failed: bool = False, progress: bool = True,
                           continue_: bool = False) -> RmTrainsetResult:
    items: list[tuple[str, dict]] = []
    for path in inputs:
        for it in load_reward_items(path):
            items.append((f"{path.stem}:{it.id}", it.model_dump()))
    if not items:
        raise InputError("no reward items in " + ", ".join(map(str, inputs)))
    prompts = Prompts(TEMPLATES, NAMES, overrides=cfg.templates, base_dir=cfg.base_dir,
                      section="rm_trainset.templates")
    out = Path(out_dir)
    outputs = {"sft": out / "sft.jsonl", "ranking": out / "ranking.jsonl", "dropped": out / "dropped.jsonl"}
    maker = RationaleMaker(cfg, prompts)
    items_hash = hashlib.blake2b(orjson.dumps(items), digest_size=8).hexdigest()
    identity = {"items": items_hash, "templates": prompts.digests, "readings": cfg.readings, "agree": cfg.needed,
                "attempts": cfg.attempts, "rationale": cfg.rationale.model_dump(), "reader": cfg.reader.model_dump()}
    res = await engine.run(name="rm-trainset", items=items, process=maker.process, output=outputs,
                           concurrency=cfg.concurrency, retry_failed=retry_failed, total=len(items),
                           progress=progress, roles=cfg.roles(), identity=identity,
                           continue_=continue_)
    result = RmTrainsetResult(res)
    sft, ranking = _read_jsonl(outputs["sft"]), _read_jsonl(outputs["ranking"])
    result.kept, result.dropped = len(sft), len(_read_jsonl(outputs["dropped"]))
    for r in sft:
        result.by_category[r["category"]] = result.by_category.get(r["category"], 0) + 1
    if cfg.balance:
        sft, ranking = upsample(sft, cfg.seed), upsample(ranking, cfg.seed)
    for r in sft:
        result.balanced[r["category"]] = result.balanced.get(r["category"], 0) + 1
    if not sft:
        return result
    from dialogforge import formats
    _write_jsonl(sft, out / "balanced_sft.jsonl")
    _write_jsonl(ranking, out / "balanced_ranking.jsonl")
    result.exports["conversation"] = formats.export(out / "balanced_sft.jsonl", out / "rm_sft.jsonl", "sharegpt",
                                                    dataset_name="rm_sft")
    result.exports["ranking"] = formats.export(out / "balanced_ranking.jsonl", out / "rm_ranking.jsonl", "sharegpt",
                                               task="preference", dataset_name="rm_ranking")
    return result
