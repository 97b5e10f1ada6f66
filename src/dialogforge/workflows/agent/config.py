"""The `agent:` section of a dialogforge YAML config, validated with pydantic.

```yaml
agent:
  tasks: tasks.jsonl            # relative to the config file
  task_mapping: default         # a preset name ("default", "rocm_agent") or {our_field: their_field}
  action_mode: shell_block      # or tool_calls
  repeats: 4
  rounds: 1
  concurrency: 4
  temperature: 0.7
  max_tokens: 1024
  limits: {step_limit: 20, token_limit: 200000, cost_limit: 1.0, wall_time_s: 900}
  context: {observation_max_chars: 6000, observation_summary_tokens: 1500,
            max_context_tokens: 24000, keep_recent_messages: 4}
  environment: {type: local, timeout: 60, output_cap: 100000, network: false,   # true: host loopback; host
                limits: {cpu_s: 600, memory_mb: 1536, processes: 256, file_mb: 1024}}
  reward: {metric: speedup, tiers: [{min: 2.0, reward: 1.0}, {min: 1.2, reward: 0.5}],
           success_reward: 0.1, failure_reward: 0.0}
  templates: {system: path/or/inline, instance: ..., observation: ..., format_error: ...}
```
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from ..kit import Price, Strict, load_section, validate

if TYPE_CHECKING:
    from ...engine.config import Config


class Limits(Strict):
    step_limit: int = Field(default=20, ge=1)
    token_limit: int | None = Field(default=None, ge=1)  # prompt + completion tokens over all calls
    cost_limit: float | None = Field(default=None, gt=0)  # in the price's currency
    wall_time_s: float | None = Field(default=None, gt=0)
    format_error_limit: int = Field(default=3, ge=1)  # consecutive replies without a valid action


class TokenizerConfig(Strict):
    # "bytes": UTF-8 byte count, an upper bound for byte-level BPE vocabularies (never undercounts);
    # "hf": the model's tokenizer.json read with the `tokenizers` package (exact).
    kind: Literal["bytes", "hf"] = "bytes"
    path: str | None = None


class ContextConfig(Strict):
    observation_max_chars: int = Field(default=8000, ge=200)  # longer outputs keep head and tail
    observation_summary_tokens: int | None = Field(default=None, ge=1)  # summarise longer ones
    max_context_tokens: int | None = Field(default=None, ge=256)  # rebuild the context beyond this
    keep_recent_messages: int = Field(default=4, ge=0)
    summary_max_tokens: int = Field(default=512, ge=16)
    summary_input_chars: int = Field(default=16000, ge=500)  # what a summary call reads at most (head + tail)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)


class SandboxLimits(Strict):
    """Per command in the `local` sandbox (rlimits)."""
    cpu_s: int = Field(default=600, ge=1)  # CPU seconds
    memory_mb: int = Field(default=1536, ge=64)  # address space
    processes: int = Field(default=256, ge=8)  # processes and threads of the sandbox's uid
    file_mb: int = Field(default=1024, ge=1)  # largest file a command may write


class EnvironmentConfig(Strict):
    type: str = "local"  # local | docker | "package.module:Class"
    # local: false = no network at all; true = the host's loopback servers only; "host" = the host's network
    network: bool | Literal["host"] = False
    unsafe_local: bool = False  # local: run unconfined when the sandbox cannot start (or at all)
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    hide: list[str] = Field(default_factory=list)  # more host paths the local sandbox hides (store, output: always)
    expose: list[str] = Field(default_factory=list)  # folders in your home the local sandbox shows read-only
    timeout: float = Field(default=60.0, gt=0)  # per command
    eval_timeout: float = Field(default=300.0, gt=0)
    eval_concurrency: int | None = Field(default=None, ge=1)  # evaluations at once (1: benchmarks not disturbed)
    output_cap: int = Field(default=100_000, ge=1000)  # bytes kept from one command's output
    env: dict[str, str] = Field(default_factory=dict)
    image: str | None = None  # docker
    options: dict[str, Any] = Field(default_factory=dict)  # passed to custom environments

    @model_validator(mode="after")
    def _options_for_custom_only(self) -> "EnvironmentConfig":
        if self.options and ":" not in self.type:  # local and docker read none: they would be ignored
            raise ValueError(f"options ({', '.join(self.options)}) go to a custom environment (package.module:Class); "
                             f"{self.type} takes none")
        return self


class Tier(Strict):
    min: float
    reward: float


class RewardConfig(Strict):
    metric: str | None = None  # a number the evaluator reports, e.g. "speedup"
    tiers: list[Tier] = Field(default_factory=list)
    success_reward: float = 1.0  # check passed, no tier reached (or no metric configured)
    failure_reward: float = 0.0
    no_metric_reward: float | None = None  # check passed and the task reports no metric (default: success_reward)
    use_evaluator_reward: bool = False  # trust a "reward" the evaluator reports instead of tiers
    require_submit: bool = True  # a rollout that never submitted gets failure_reward

    @field_validator("tiers")
    @classmethod
    def _sorted(cls, v: list[Tier]) -> list[Tier]:
        return sorted(v, key=lambda t: t.min, reverse=True)


class Templates(Strict):
    system: str | None = None
    instance: str | None = None
    observation: str | None = None
    format_error: str | None = None
    observation_summary: str | None = None
    history_summary: str | None = None


class AgentConfig(Strict):
    tasks: str | None = None
    task_mapping: str | dict[str, str] = "default"
    action_mode: Literal["shell_block", "tool_calls"] = "shell_block"
    submit_signal: str = "SUBMIT_FINAL_ANSWER"
    repeats: int = Field(default=1, ge=1)
    rounds: int = Field(default=1, ge=1)
    concurrency: int = Field(default=4, ge=1)
    temperature: float = 0.7
    max_tokens: int = Field(default=1024, ge=1)
    agent_role: str = "agent"
    summary_role: str = "summary"
    price: Price | None = None
    limits: Limits = Field(default_factory=Limits)
    context: ContextConfig = Field(default_factory=ContextConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    templates: Templates = Field(default_factory=Templates)
    base_dir: str = "."  # where relative paths resolve; set to the config file's folder on load


def parse_agent_config(raw: dict | None, *, source: str = "<config>", base_dir: Path | None = None) -> AgentConfig:
    """Validate an `agent:` section given as a dict; errors read ``SOURCE: agent.field: message``."""
    raw = dict(raw or {})
    if base_dir is not None:
        raw.setdefault("base_dir", str(base_dir))
    return validate(AgentConfig, raw, source=source, prefix=("agent",))


def load_agent_config(config: "str | Path | Config") -> AgentConfig:
    """The `agent:` section of the engine's parsed config (or of a YAML file, read by the engine's reader):
    errors give file:line and the dotted field."""
    from ...engine.config import Config, load_config
    return load_section(config if isinstance(config, Config) else load_config(config), "agent", AgentConfig)


def resolve_path(cfg: AgentConfig, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(cfg.base_dir) / p
