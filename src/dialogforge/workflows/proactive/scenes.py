"""``proactive scenes``: seed tasks -> varied scenes, one multi-step conversation per (scene, seed task).

Step 1 asks for the environment (theme, description, entities, agent operations, example events in the
style of sampled seed events), step 2 in the same conversation for the user (goal, description). Both are
structured output validated against pydantic models: an invalid answer is repaired by the engine or the
item fails; a half scene is never written. Each scene is written once, as it is made, through the runner's
exactly-once output (JSONL); ``scenes.yaml`` beside it holds the same scenes in the shape of
``new_scenes_sample.yaml`` (a list of ``{environment, user}``).
"""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any, Iterator

import orjson
import yaml

from dialogforge.core.rows import refuse_overwrite
from dialogforge.engine import Engine, ItemContext, RunResult

from .config import ProactiveConfig, run_identity
from .data import Scene, load_seedtasks
from ..kit import Prompts
from .prompts import proactive_prompts


def scene_items(seeds: dict[str, dict[str, list[str]]], cfg: ProactiveConfig) -> Iterator[tuple[str, dict]]:
    for scene, body in seeds.items():
        tasks = body["tasks"][: cfg.scenes.tasks_per_scene] if cfg.scenes.tasks_per_scene else body["tasks"]
        for t, task in enumerate(tasks):
            for k in range(cfg.scenes.per_task):
                yield f"{scene}/{t}#{k}", {"scene": scene, "task": task, "variant": k,
                                           "sample_events": body["sample_events"]}


def _sampled(events: list[str], n: int, key: str) -> list[str]:
    rng = random.Random(hashlib.blake2b(key.encode(), digest_size=8).hexdigest())
    return rng.sample(events, min(n, len(events)))


class SceneMaker:
    def __init__(self, cfg: ProactiveConfig, prompts: Prompts):
        self.cfg, self.prompts = cfg, prompts

    async def process(self, item: dict, ctx: ItemContext) -> dict[str, Any]:
        call = self.cfg.calls.scene
        ask = self.prompts.render("scene_environment.j2", scene=item["scene"], task=item["task"],
                                  variant=item["variant"],
                                  sample_events=_sampled(item["sample_events"], self.cfg.scenes.sample_events, ctx.item_id))
        msgs = [{"role": "user", "content": ask}]
        S = self.cfg.schemas()
        r1 = await ctx.chat(msgs, role=call.role, purpose="scene_environment", schema=S.SceneEnvironment,
                            **call.request())
        env = r1.parsed
        msgs += [{"role": "assistant", "content": r1.text or ""},
                 {"role": "user", "content": self.prompts.render("scene_user.j2", task=item["task"])}]
        r2 = await ctx.chat(msgs, role=call.role, purpose="scene_user", schema=S.SceneUser, **call.request())
        scene = Scene.model_validate({"environment": env.model_dump(), "user": r2.parsed.model_dump()})
        return {"id": ctx.item_id, **scene.model_dump(), "seed": {"scene": item["scene"], "task": item["task"]}}


def write_yaml(jsonl: Path, out: Path) -> int:
    """The scenes of ``jsonl`` as a YAML list of {environment, user} (rewritten whole, atomically)."""
    rows = [orjson.loads(line) for line in jsonl.read_bytes().splitlines() if line.strip()] if jsonl.exists() else []
    scenes = [{"environment": r["environment"], "user": r["user"]} for r in rows]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(yaml.safe_dump(scenes, sort_keys=True, allow_unicode=True, width=100), encoding="utf-8")
    os.replace(tmp, out)
    return len(scenes)


async def make_scenes(engine: Engine, cfg: ProactiveConfig, seeds_path: str | os.PathLike, output: str | os.PathLike,
                      *, limit: int | None = None, retry_failed: bool = False, progress: bool = True,
                      continue_: bool = False) -> RunResult:
    refuse_overwrite([seeds_path], {"-o": output, "the scenes YAML": yaml_path(Path(output))})
    seeds = load_seedtasks(seeds_path)
    items = list(scene_items(seeds, cfg))[:limit]
    prompts = proactive_prompts(cfg)
    maker = SceneMaker(cfg, prompts)
    out = Path(output)
    res = await engine.run(name="proactive-scenes", items=items, process=maker.process, output=out,
                           concurrency=cfg.concurrency, retry_failed=retry_failed, total=len(items), progress=progress,
                           roles=cfg.roles("scene"), continue_=continue_,
                           identity=run_identity(cfg, prompts, ("calls", "scenes", "limits"), [Path(seeds_path)]))
    write_yaml(out, yaml_path(out))
    return res


def yaml_path(jsonl: Path) -> Path:
    return jsonl.with_suffix(".yaml")
