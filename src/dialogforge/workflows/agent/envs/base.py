"""The environment interface every rollout uses: reset, execute, diff, evaluate, close.

Custom environments subclass `Environment` and are named in the config as
"package.module:ClassName"; they are constructed as `Class(config, task)`. The registry of
named environments ("local", "docker") is in `envs/__init__.py`; this module imports none of them.
"""
from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from ....engine.errors import ConfigError, DialogforgeError
from ..config import EnvironmentConfig
from ..tasks import Task


class EnvError(DialogforgeError):
    """The environment itself failed (not the agent): recorded as status "env_error", reward None."""


@dataclass
class ExecResult:
    returncode: int | None  # None when the command timed out
    output: str  # stdout and stderr interleaved, capped
    duration: float = 0.0
    timed_out: bool = False
    truncated: bool = False  # the output cap cut it

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalResult:
    success: bool  # the task's own check passed
    reward: float | None = None  # set by the evaluator, or later by the reward tiers
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. {"speedup": 1.8}
    details: dict[str, Any] = field(default_factory=dict)  # output, returncode, ...
    status: str = "ok"  # "ok" | "env_error"

    def to_dict(self) -> dict:
        return asdict(self)


class Environment(ABC):
    def __init__(self, config: EnvironmentConfig, task: Task):
        self.config = config
        self.task = task

    @abstractmethod
    async def reset(self) -> None:
        """Prepare a fresh sandbox for the task."""

    @abstractmethod
    async def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        """Run one shell command in the sandbox."""

    async def diff(self) -> str:
        """The change the agent made to the workspace (unified diff); "" when unknown."""
        return ""

    @abstractmethod
    async def evaluate(self) -> EvalResult:
        """Run the task's check on the current state."""

    async def close(self) -> None:
        """Release everything reset() acquired; safe to call twice."""

    @classmethod
    def check_task(cls, task: Task) -> str | None:
        """Why this environment cannot evaluate `task` (checked before any model call); None when it can."""
        return None

    @classmethod
    def check_config(cls, config: EnvironmentConfig) -> None:
        """Refuse a configuration this environment cannot run (raise ConfigError); called once per run."""


def parse_eval_output(res: ExecResult) -> EvalResult:
    """Read an evaluation command's result.

    Protocol: if the last non-empty stdout line is a JSON object with a boolean "success",
    it is the result ({"success", "reward"?, any metrics...}); otherwise success means exit code 0.
    A timeout counts as a failed check, not as an environment error.
    """
    details: dict[str, Any] = {"returncode": res.returncode, "output": res.output[-4000:],
                               "timed_out": res.timed_out, "duration": round(res.duration, 3)}
    if res.timed_out:
        return EvalResult(success=False, details=details | {"reason": "evaluation timed out"})
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    if lines:
        try:
            obj = json.loads(lines[-1])
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("success"), bool):
            reward = obj.get("reward")
            metrics = {k: v for k, v in obj.items() if k not in ("success", "reward") and isinstance(v, (int, float, bool, str))}
            return EvalResult(success=obj["success"], reward=float(reward) if isinstance(reward, (int, float)) else None,
                              metrics=metrics, details=details)
    return EvalResult(success=res.returncode == 0, details=details)


def import_object(path: str, what: str = "environment.type") -> Any:
    """The object named by "package.module:attr"; errors name the config field."""
    if ":" not in path:
        raise ConfigError(f"{what}: {path!r} is not 'package.module:name'")
    mod_name, _, attr = path.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ConfigError(f"{what}: cannot import module {mod_name!r}: {e}") from None
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise ConfigError(f"{what}: module {mod_name!r} has no attribute {attr!r}") from None
