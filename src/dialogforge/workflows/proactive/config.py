"""The ``proactive:`` section of a dialogforge config (every key optional).

```yaml
proactive:
  calls:                      # each part of the workflow: the engine role it calls and its request knobs
    scene: {role: generator, temperature: 0.9, max_tokens: 700}
    environment: {role: generator, max_tokens: 500}
    user: {role: generator, max_tokens: 200}
    agent: {role: agent, temperature: 0.7, max_tokens: 200}
    reward: {role: judge, temperature: 0, max_tokens: 150}
  scenes: {per_task: 1, sample_events: 5, tasks_per_scene: null}
  simulate: {steps: 6, events_per_step: 3, proposal_retries: 2, exec_steps: 3, candidates: 5, judge: user}
  history: {max_tokens: 1500, event_chars: 160}
  trainset: {max_trials: 3}
  limits: {text_chars: 300, list_items: 8}   # caps on every text and list a model answers (in the JSON schema)
  concurrency: 8
  templates: {agent_turn: my_turn.j2}   # replace a built-in template: a file (relative to the config) or text
```
Loaded with the workflow kit (``load_section``): errors read ``FILE:LINE: proactive.field: message``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..kit import Strict as _Strict
from ..kit import RequestParams, load_section, override, validate


class Call(_Strict):
    role: str
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    params: RequestParams = Field(default_factory=dict)

    def request(self) -> dict[str, Any]:
        p = dict(self.params)
        if self.temperature is not None:
            p["temperature"] = self.temperature
        if self.max_tokens is not None:
            p["max_tokens"] = self.max_tokens
        return p


DEFAULT_CALLS: dict[str, dict[str, Any]] = {
    "scene": {"role": "generator", "temperature": 0.9, "max_tokens": 700},
    "environment": {"role": "generator", "temperature": 0.7, "max_tokens": 500},
    "user": {"role": "generator", "temperature": 0.8, "max_tokens": 200},
    # a seed makes the K candidate samples distinct draws on servers that honour it
    "agent": {"role": "agent", "temperature": 0.7, "max_tokens": 200, "params": {"seed": 0}},
    "reward": {"role": "judge", "temperature": 0.0, "max_tokens": 150},
}


class Calls(_Strict):
    scene: Call
    environment: Call
    user: Call
    agent: Call
    reward: Call

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        data = data or {}
        if not isinstance(data, dict):
            return data
        return {k: {**DEFAULT_CALLS.get(k, {}), **v} if isinstance(v, dict) else v
                for k, v in {**{k: {} for k in DEFAULT_CALLS}, **data}.items()}


class ScenesConfig(_Strict):
    per_task: int = Field(1, ge=1, le=20, description="scenes made per (scene, seed task)")
    sample_events: int = Field(5, ge=0, le=50, description="seed events shown as style examples")
    tasks_per_scene: int | None = Field(None, ge=1, description="use at most this many seed tasks per scene")


class SimulateConfig(_Strict):
    steps: int = Field(6, ge=1, le=200, description="user activity steps per trace")
    events_per_step: int = Field(3, ge=1, le=20)
    proposal_retries: int = Field(2, ge=0, le=10, description="agent retries after a rejection, per step")
    exec_steps: int = Field(3, ge=1, le=50, description="operations the agent may run for an accepted task")
    candidates: int = Field(5, ge=0, le=20, description="K agent samples per turn for the test-trace form")
    judge: Literal["user", "reward"] = Field("user", description="who rules on a proposal: the simulated user "
                                                                 "or the reward-model role")


class HistoryConfig(_Strict):
    max_tokens: int = Field(1500, ge=50, description="budget of the observation history (about 4 characters a token)")
    event_chars: int = Field(160, ge=20, description="older observations are cut to this many characters")


class LimitsConfig(_Strict):
    text_chars: int = Field(300, ge=20, le=20000, description="longest text field a model may answer")
    list_items: int = Field(8, ge=1, le=100, description="longest list a model may answer")


class TrainsetConfig(_Strict):
    max_trials: int = Field(3, ge=1, le=20, description="agent proposals per turn, every failure counted")


class ProactiveConfig(_Strict):
    calls: Calls = Field(default_factory=lambda: Calls.model_validate({}))
    scenes: ScenesConfig = Field(default_factory=ScenesConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    trainset: TrainsetConfig = Field(default_factory=TrainsetConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    concurrency: int = Field(8, ge=1)
    templates: dict[str, str] = Field(default_factory=dict, description="template name -> file or text")
    base_dir: str = Field(".", exclude=True)

    def schemas(self):
        from .models import schemas
        return schemas(self.limits.text_chars, self.limits.list_items, self.simulate.events_per_step)

    def roles(self, *parts: str) -> list[str]:
        return sorted({getattr(self.calls, p).role for p in parts})


def proactive_config(engine_config: Any) -> ProactiveConfig:
    """The ``proactive:`` section of the engine's parsed config (absent: every default)."""
    return load_section(engine_config, "proactive", ProactiveConfig)


def parse_proactive_config(data: dict[str, Any] | None, source: str = "<dict>",
                           base_dir: str | Path = ".") -> ProactiveConfig:
    """A ``proactive:`` section given as a dict (Python use); errors in the kit's shape."""
    return validate(ProactiveConfig, {**(data or {}), "base_dir": str(base_dir)}, source=source, prefix=("proactive",))


def with_overrides(cfg: ProactiveConfig, **over: Any) -> ProactiveConfig:
    """Command-line knobs as dotted names ({"simulate.steps": 3}); None is "not given"."""
    return override(cfg, over, prefix=("proactive",))


def run_identity(cfg: ProactiveConfig, prompts: Any, sections: tuple[str, ...], inputs: list[Path]) -> dict[str, Any]:
    """What shapes a command's outputs (the engine refuses a rerun into them with another identity unless
    --continue): the config sections the command reads, the templates' text and the inputs' bytes; not the
    concurrency or the output paths."""
    from dialogforge.engine.identity import file_digest
    data = cfg.model_dump(include=set(sections))
    files: list[Path] = []
    for p in inputs:
        files += sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p] if p.is_file() else []
    return {"proactive": data, "templates": dict(prompts.digests), "inputs": {str(f): file_digest(f) for f in files}}
