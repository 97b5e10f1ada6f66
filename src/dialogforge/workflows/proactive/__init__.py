"""Proactive-assistant data: scenes from seed tasks, simulated activity traces, the agent's training set,
and ProactiveBench-style evaluation.

```python
from dialogforge.workflows import proactive
engine, cfg = proactive.load("config.yaml")                      # or proactive.load(None): embedded model
await proactive.make_scenes(engine, cfg, "seedtask.yaml", "scenes.jsonl")      # + scenes.yaml
await proactive.simulate(engine, cfg, "scenes.jsonl", "traces.jsonl")          # + traces_test/<id>.json
await proactive.make_trainset(engine, cfg, [Path("traces.jsonl")], "train/")   # samples + LLaMA-Factory + TRL
await proactive.evaluate(engine, cfg, [Path("test_data")], "eval/")            # metrics.csv, report.html
```
"""
from __future__ import annotations

import os

from dialogforge.engine import Engine

from .config import ProactiveConfig, parse_proactive_config, proactive_config, with_overrides
from .data import load_reward_items, load_scenes, load_seedtasks, load_splits, load_trace
from .evaluate import evaluate, evaluate_reward
from .scenes import make_scenes
from .simulate import simulate, to_test_trace
from .trainset import make_trainset


def load(config: str | os.PathLike | None = None, **engine_options) -> tuple[Engine, ProactiveConfig]:
    """The engine and the validated ``proactive:`` section of a YAML config (None: defaults, embedded model)."""
    engine = Engine.load(config, **engine_options)
    return engine, proactive_config(engine.config)


__all__ = [
    "load", "ProactiveConfig", "proactive_config", "parse_proactive_config", "with_overrides", "make_scenes", "simulate",
    "to_test_trace", "make_trainset", "evaluate", "evaluate_reward", "load_trace", "load_reward_items",
    "load_scenes", "load_seedtasks", "load_splits",
]
