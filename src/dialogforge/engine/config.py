"""Configuration: named endpoints, roles that map to them, and global limits.

```yaml
endpoints:
  local:
    base_url: http://localhost:8000/v1
    model: Qwen/Qwen2.5-7B-Instruct
    api_key_env: [VLLM_KEY_A, VLLM_KEY_B]   # or key_names: [TEAM1, TEAM2] + key_env_template
    params: {temperature: 0.7, max_tokens: 512}
    concurrency: 128
    rpm: 600          # per key
    tpm: 200000       # per key
    timeout: 120
    price: {input_per_1m: 0.5, output_per_1m: 1.5}
roles:
  generator: local
  judge: local
concurrency: 256      # across all endpoints
```
Sections the engine does not know (``persona:``, ``agent:``) are kept in ``Config.extra``
for the workflows to validate with their own models.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

EMBEDDED = "embedded"


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_1m: float = 0.0
    output_per_1m: float = 0.0


class EndpointConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai", "embedded"] | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: list[str] = Field(default_factory=list)
    key_names: list[str] = Field(default_factory=list)
    key_env_template: str = "{name}_API_KEY"
    params: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1)  # in-flight requests; default: the global cap
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=8, ge=0)
    price: Price | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # embedded backend only: {n_parallel: 4, n_ctx: 8192, n_threads: null, model_path: null}
    embedded: dict[str, Any] = Field(default_factory=dict)
    # how to ask for JSON: the server's json_schema support, json mode + schema in the prompt, or the prompt alone
    structured_output: Literal["json_schema", "json_object", "prompt"] = "json_schema"

    @field_validator("api_key_env", "key_names", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        return v

    @model_validator(mode="after")
    def _infer_backend(self) -> "EndpointConfig":
        if self.backend is None:
            self.backend = "openai" if self.base_url else EMBEDDED
        if self.backend == "openai" and not self.base_url:
            raise ValueError("base_url is required for an OpenAI-compatible endpoint")
        if self.backend == "openai" and not self.model:
            raise ValueError("model is required for an OpenAI-compatible endpoint")
        return self

    def key_env_names(self) -> list[str]:
        names = list(self.api_key_env)
        names += [self.key_env_template.format(name=n) for n in self.key_names]
        return names

    def resolve_keys(self) -> list[str | None]:
        """The API keys, read from the environment or a `.env` file in the working directory
        (the environment wins). Returns [None] when no key is configured (local servers need none)."""
        _load_dotenv_once()
        names = self.key_env_names()
        if not names:
            default = os.environ.get("OPENAI_API_KEY") if self.backend == "openai" else None
            return [default]
        keys: list[str | None] = []
        missing = []
        for n in names:
            v = os.environ.get(n)
            if v:
                keys.append(v)
            else:
                missing.append(n)
        if not keys:
            raise ConfigError(f"no API key found: set the environment variable(s) {', '.join(missing)}")
        return keys


_dotenv_loaded = False


def _load_dotenv_once() -> None:
    global _dotenv_loaded
    if _dotenv_loaded:
        return
    _dotenv_loaded = True
    from dotenv import load_dotenv
    load_dotenv(Path.cwd() / ".env", override=False)


class Config(BaseModel):
    model_config = ConfigDict(extra="allow")

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    roles: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=256, ge=1)
    store: str | None = None  # path of the SQLite run store
    source: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _check_roles(self) -> "Config":
        for role, ep in self.roles.items():
            if ep not in self.endpoints:
                raise ValueError(f"roles.{role}: unknown endpoint {ep!r} (known: {', '.join(self.endpoints) or 'none'})")
        return self

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})

    def endpoint_for(self, role: str) -> str:
        """The endpoint name a role uses: its mapping, else an endpoint of the same name, else 'default'."""
        if role in self.roles:
            return self.roles[role]
        if role in self.endpoints:
            return role
        if "default" in self.endpoints:
            return "default"
        if len(self.endpoints) == 1:
            return next(iter(self.endpoints))
        raise ConfigError(f"role {role!r} is not mapped to an endpoint: add roles.{role} to the config")


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<dict>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from None
    cfg.source = source
    return cfg


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file's content; a missing file or a syntax error is a ConfigError naming file:line."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise ConfigError(f"invalid YAML in {where}: {getattr(e, 'problem', e)}") from None


def load_config(path: str | os.PathLike | None) -> Config:
    if path is None:
        return Config()
    return parse_config(read_yaml(path), str(path))


def with_overrides(cfg: Config, *, base_url: str | None = None, model: str | None = None,
                   api_key_env: str | None = None, roles: list[str] | None = None) -> Config:
    """Apply CLI flags: --base-url/--model/--api-key-env replace the endpoint of the given roles
    (all configured endpoints when none is named); with no config at all they create `default`."""
    if not (base_url or model or api_key_env):
        return cfg
    data = cfg.model_dump()
    data.update(cfg.extra)
    eps: dict[str, dict] = data.setdefault("endpoints", {})
    targets = [cfg.endpoint_for(r) for r in roles] if roles and eps else list(eps)
    if not targets:
        eps["default"] = {}
        targets = ["default"]
    for name in targets:
        ep = eps[name]
        if base_url:
            ep["base_url"] = base_url
            ep["backend"] = "openai"
        if model:
            ep["model"] = model
        if api_key_env:
            ep["api_key_env"] = [api_key_env]
            ep["key_names"] = []
        if ep.get("backend") == "openai" and not ep.get("model"):
            ep["model"] = "default"
    out = parse_config(data, cfg.source or "<flags>")
    return out
