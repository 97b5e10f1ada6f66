"""The ``persona:`` section of a dialogforge config (validated here, not by the engine).

```yaml
persona:
  seeds: {path: seeds.jsonl, fields: {instruction: question, output: answer}, shuffle_seed: 7, start: 0, limit: 100}
  personas: [orbit, {name: ..., role_name: ..., description: ..., language: English, style_rules: [...]}]
  turns: 4            # or [3, 5]: a range, drawn per dialogue
  rewrite_question: true
  use_answer_prefix: true
  agents: {persona: {role: generator, temperature: 0.7}, user: {role: generator, temperature: 0.9}, judge: {role: judge}}
  output: {raw_dir: out/raw, filtered_dir: out/filtered}
  quality: {judge: true, min_score: 3.0, checks: {shrinking: {min_mean_ratio: 0.4}}}
```
Relative paths are taken from the directory of the config file.
"""
from __future__ import annotations

import re

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dialogforge.engine.errors import ConfigError

from ..kit import RequestParams, Strict, known_keys, load_section, validate
from .checks import CheckThresholds
from .personas import BUILTIN_PERSONAS


class PersonaDef(Strict):
    name: str = Field(min_length=1)
    role_name: str = Field(min_length=1, description="the name the persona speaks as")
    description: str = Field(min_length=1)
    language: str | None = Field(None, description="answer language; null = the language of the question")
    style_rules: list[str] = Field(default_factory=list)
    answer_prefixes: list[str] = Field(default_factory=list, description="one is forced at the start of the first answer")
    answer_suffixes: list[str] = Field(default_factory=list, description="one is forced at the end of the suffix turns")
    suffix_turns: Literal["last", "all", "none"] | list[int] = "last"

    def suffix_at(self, turn: int, total: int) -> bool:
        if not self.answer_suffixes or self.suffix_turns == "none":
            return False
        if self.suffix_turns == "last":
            return turn == total
        if self.suffix_turns == "all":
            return True
        return turn in self.suffix_turns


class SeedsConfig(Strict):
    path: str
    fields: dict[str, str] = Field(default_factory=dict, description="our name -> the file's name (instruction, output)")
    id_field: str | None = None
    provenance_fields: list[str] | None = Field(None, description="fields kept as provenance; default: all but the answer")
    shuffle_seed: int | None = None
    start: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1)

    @field_validator("fields")
    @classmethod
    def _our_names(cls, v: dict[str, str]) -> dict[str, str]:
        return known_keys(v, ("instruction", "output", "input"))


class AgentConfig(Strict):
    role: str = Field(description="the engine role (roles: in the config) this agent calls")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    params: RequestParams = Field(default_factory=dict, description="other request parameters")

    def request_params(self) -> dict[str, Any]:
        p = dict(self.params)
        for k in ("temperature", "top_p", "max_tokens"):
            v = getattr(self, k)
            if v is not None:
                p[k] = v
        return p


def _default_agents() -> dict[str, AgentConfig]:
    return {
        "persona": AgentConfig(role="generator", temperature=0.7, max_tokens=512),
        "user": AgentConfig(role="generator", temperature=0.9, max_tokens=128),
        "rewrite": AgentConfig(role="generator", temperature=0.7, max_tokens=128),
        "judge": AgentConfig(role="judge", temperature=0.0, max_tokens=400),
    }


class AgentsConfig(Strict):
    persona: AgentConfig = Field(default_factory=lambda: _default_agents()["persona"])
    user: AgentConfig = Field(default_factory=lambda: _default_agents()["user"])
    rewrite: AgentConfig = Field(default_factory=lambda: _default_agents()["rewrite"])
    judge: AgentConfig = Field(default_factory=lambda: _default_agents()["judge"])

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        # a partial agent entry ({temperature: 0.2}) keeps the other defaults of that agent
        if isinstance(data, dict):
            defaults = _default_agents()
            out = {}
            for k, v in data.items():
                if k in defaults and isinstance(v, dict):
                    out[k] = {**defaults[k].model_dump(exclude_none=True), **v}
                else:
                    out[k] = v
            return out
        return data


class OutputConfig(Strict):
    raw_dir: str = "persona_output/raw"
    filtered_dir: str = "persona_output/filtered"
    prefix: str = "persona"


class QualityConfig(Strict):
    judge: bool = True
    min_score: float | None = Field(3.0, ge=1, le=5)
    checks: CheckThresholds = Field(default_factory=CheckThresholds)
    advisory: list[Literal["structure", "catchphrase", "shrinking", "echo", "judge", "follow_up"]] = Field(
        default_factory=list, description="checks that are recorded but do not keep a dialogue out of the filtered set")


class PersonaConfig(Strict):
    seeds: SeedsConfig
    personas: list[PersonaDef] = Field(min_length=1)
    assign: Literal["hash", "round_robin", "each"] = Field(
        "hash", description="hash: a stable persona per seed; round_robin: by seed order; each: every persona for every seed")
    turns: int | tuple[int, int] = 3
    rewrite_question: bool = True
    use_answer_prefix: bool = True
    use_answer_suffix: bool = True
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    templates: dict[str, str] = Field(default_factory=dict, description="template name -> file or text")
    prompts_dir: str | None = Field(None, description="a folder of <name>.j2 files: each overrides that template")
    output: OutputConfig = Field(default_factory=OutputConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    concurrency: int = Field(32, ge=1)
    max_attempts: int = Field(3, ge=1, description="calls per message when clean-up leaves nothing")
    follow_up_pattern: str | None = Field(
        None, description="a regular expression every simulated-user follow-up must match (searched in the cleaned "
                          "question); one that does not is asked again, within max_attempts, and a dialogue "
                          "left with one fails the follow_up check")
    reask: list[Literal["echo", "catchphrase", "shrinking"]] = Field(
        default_factory=list, description="checks that ask a persona answer again (a new sample, up to max_attempts) "
                                          "when it would make the dialogue fail them; the checks still judge the result")
    base_dir: str = Field(".", exclude=True)

    @field_validator("personas", mode="before")
    @classmethod
    def _builtin(cls, v: Any) -> Any:
        if isinstance(v, (str, dict)):
            v = [v]
        if v is not None and not isinstance(v, list):
            raise ValueError("a persona name, a persona definition, or a list of them")
        out = []
        for i, p in enumerate(v or []):
            if isinstance(p, str):
                if p not in BUILTIN_PERSONAS:
                    raise ValueError(f"personas[{i}]: unknown built-in persona {p!r} (built-in: {', '.join(BUILTIN_PERSONAS)})")
                out.append(dict(BUILTIN_PERSONAS[p]))
            elif isinstance(p, dict) and set(p) <= {"name", "builtin"} | {"language"} and p.get("builtin"):
                base = dict(BUILTIN_PERSONAS.get(p["builtin"]) or {})
                if not base:
                    raise ValueError(f"personas[{i}]: unknown built-in persona {p['builtin']!r}")
                base.update({k: p[k] for k in ("name", "language") if k in p})
                out.append(base)
            else:
                out.append(p)
        return out

    @field_validator("follow_up_pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
        return v

    @field_validator("turns")
    @classmethod
    def _turns(cls, v: Any) -> Any:
        if isinstance(v, int):
            if v < 1:
                raise ValueError("turns must be at least 1")
        else:
            lo, hi = v
            if lo < 1 or hi < lo:
                raise ValueError(f"turns range [{lo}, {hi}] must satisfy 1 <= min <= max")
        return v

    @model_validator(mode="after")
    def _unique(self) -> "PersonaConfig":
        names = [p.name for p in self.personas]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"personas: duplicate name(s) {', '.join(sorted(dup))}")
        return self

    def resolve(self, path: str | None) -> Path | None:
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def persona(self, name: str) -> PersonaDef:
        for p in self.personas:
            if p.name == name:
                return p
        raise KeyError(name)


def parse_persona_config(data: Any, source: str = "<dict>", base_dir: str | Path = ".") -> PersonaConfig:
    """Validate a ``persona:`` section given as a dict; errors read ``SOURCE: persona.field: message``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the 'persona' section is missing or not a mapping")
    return validate(PersonaConfig, {**data, "base_dir": str(base_dir)}, source=source, prefix=("persona",))


def load_persona_config(config: Any) -> PersonaConfig:
    """The ``persona:`` section of the engine's parsed config (required); errors give FILE:LINE."""
    return load_section(config, "persona", PersonaConfig, required=True)
