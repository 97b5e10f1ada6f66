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
Workflow sections (``persona:``, ``agent:``, ...) are kept in ``Config.extra`` for each workflow to
load with ``sections.load_section``; a top-level key that neither the engine nor a declared section
knows is an error naming the nearest valid key (see ``sections``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .errors import ConfigError
from .sections import Loc, Strict, check_top_level, override, read_yaml_lines, validate

EMBEDDED = "embedded"
# what --model may name without --base-url: the embedded model itself
EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
EMBEDDED_NAMES = {EMBEDDED, EMBEDDED_MODEL.lower(), "smollm2-135m-instruct.q4_1"}


# Request parameters the OpenAI API and the usual servers (vLLM, SGLang, llama.cpp, OpenRouter) accept. Any other
# key is still sent as given (servers have their own), but one a letter or two away from a known name is a typo:
# a server such as vLLM ignores what it does not know, so `temprature: 0` would quietly sample at the default.
KNOWN_PARAMS = frozenset("""
    temperature top_p max_tokens max_completion_tokens n stop seed presence_penalty frequency_penalty logit_bias
    logprobs top_logprobs response_format tools tool_choice parallel_tool_calls user stream stream_options metadata
    reasoning_effort verbosity service_tier store modalities audio prediction web_search_options prompt_cache_key
    safety_identifier functions function_call extra_body
    top_k min_p typical_p repetition_penalty length_penalty min_tokens best_of use_beam_search ignore_eos echo
    skip_special_tokens spaces_between_special_tokens include_stop_str_in_output stop_token_ids bad_words
    allowed_token_ids prompt_logprobs truncate_prompt_tokens guided_json guided_regex guided_choice guided_grammar
    guided_decoding_backend guided_whitespace_pattern structural_tag chat_template chat_template_kwargs
    add_generation_prompt continue_final_message add_special_tokens documents mm_processor_kwargs priority
    request_id return_tokens_as_token_ids cache_salt vllm_xargs regex ebnf json_schema no_stop_trim lora_path
    separate_reasoning stream_reasoning return_hidden_states
    repeat_penalty repeat_last_n penalize_nl mirostat mirostat_tau mirostat_eta tfs_z n_predict cache_prompt samplers
    dynatemp_range dynatemp_exponent xtc_probability xtc_threshold dry_multiplier dry_base dry_allowed_length
    dry_penalty_last_n grammar n_probs id_slot top_a transforms models route provider include_reasoning reasoning
    options keep_alive think
""".split())


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    import difflib
    for key, value in params.items():
        if key not in KNOWN_PARAMS:
            near = difflib.get_close_matches(key, KNOWN_PARAMS, n=1, cutoff=0.85)
            if near:
                raise ValueError(f"unknown request parameter {key!r} (did you mean {near[0]!r}?)")
        bad = _unsendable(value)
        if bad is not None:  # JSON has no NaN or infinity (they would go out as null), nor integers past 64 bits
            raise ValueError(f"{key}: {bad!r} cannot be sent in a request")
    return params


def _unsendable(value: Any) -> Any:
    """A number in ``value`` that JSON cannot carry, or None."""
    import math
    if isinstance(value, float) and not math.isfinite(value):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return value
    for v in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        bad = _unsendable(v)
        if bad is not None:
            return bad
    return None


# `params:` wherever a config gives request parameters (an endpoint, a workflow's calls)
RequestParams = Annotated[dict[str, Any], AfterValidator(_check_params)]


class Price(Strict):
    input_per_1m: float = 0.0
    output_per_1m: float = 0.0
    # what the provider charges for batch jobs (mode: batch); unset: half the live prices
    batch_input_per_1m: float | None = None
    batch_output_per_1m: float | None = None

    def batch(self) -> "Price":
        """The prices batch-mode calls are costed at."""
        bi, bo = self.batch_input_per_1m, self.batch_output_per_1m
        return Price(input_per_1m=self.input_per_1m / 2 if bi is None else bi,
                     output_per_1m=self.output_per_1m / 2 if bo is None else bo)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The one cost formula: tokens times the price per million."""
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class ReplicaConfig(Strict):
    """One server of an endpoint with several replicas of the same model."""

    base_url: str
    concurrency: int | None = Field(default=None, ge=1)  # this replica's in-flight limit (default: the endpoint's)


class EndpointConfig(Strict):
    backend: str | None = None  # "openai", "embedded" or a plugin's name (entry point dialogforge.backends)
    base_url: str | None = None
    # several servers of the same model: [url, {base_url: url, concurrency: 32}, ...] (instead of base_url)
    replicas: list[ReplicaConfig] = Field(default_factory=list)
    eject_after: int = Field(default=3, ge=1)  # consecutive failures that take a replica out of rotation
    probe_after: float = Field(default=10.0, gt=0)  # seconds before an ejected replica is tried again
    model: str | None = None
    api_key_env: list[str] = Field(default_factory=list)
    key_names: list[str] = Field(default_factory=list)
    key_env_template: str = "{name}_API_KEY"
    params: RequestParams = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1)  # in-flight requests; default: the global cap
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=8, ge=0)
    price: Price | None = None
    # batch: calls wait for provider batch jobs (files + batches endpoints), at batch prices (engine/executors/batch.py)
    mode: Literal["live", "batch"] = "live"
    headers: dict[str, str] = Field(default_factory=dict)
    # embedded backend only: {n_parallel: 4, n_ctx: 8192, n_threads: null, model_path: null}
    embedded: dict[str, Any] = Field(default_factory=dict)
    # how to ask for JSON: the server's json_schema support, json mode + schema in the prompt, or the prompt alone
    structured_output: Literal["json_schema", "json_object", "prompt"] = "json_schema"

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str | None) -> str | None:
        if v is not None:
            from .backends import check_backend_name
            check_backend_name(v)
        return v

    @field_validator("replicas", mode="before")
    @classmethod
    def _replica_urls(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"base_url": r} if isinstance(r, str) else r for r in v]
        return v

    @field_validator("api_key_env", "key_names", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        return v

    @model_validator(mode="after")
    def _infer_backend(self) -> "EndpointConfig":
        if self.base_url and self.replicas:
            raise ValueError("give base_url (one server) or replicas (several), not both")
        if self.backend is None:
            self.backend = "openai" if self.base_url or self.replicas else EMBEDDED
        if self.backend == "openai" and not (self.base_url or self.replicas):
            raise ValueError("base_url is required for an OpenAI-compatible endpoint")
        if self.backend == "openai" and not self.model:
            raise ValueError("model is required for an OpenAI-compatible endpoint")
        return self

    def replica_list(self) -> list[ReplicaConfig]:
        """The servers of this endpoint: its replicas, or its one base_url (none for a backend without URL)."""
        if self.replicas:
            return list(self.replicas)
        return [ReplicaConfig(base_url=self.base_url)] if self.base_url else []

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
    env_file = Path.cwd() / ".env"
    if env_file.is_file():  # python-dotenv is imported only when there is a file to read
        from dotenv import load_dotenv
        load_dotenv(env_file, override=False)


class Config(Strict):
    model_config = ConfigDict(extra="allow")  # workflow sections; unknown keys are refused by parse_config

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    roles: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(default=256, ge=1)
    store: str | None = None  # path of the SQLite run store
    source: str | None = Field(default=None, exclude=True)
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_roles(self) -> "Config":
        for role, ep in self.roles.items():
            if ep not in self.endpoints:
                raise ValueError(f"roles.{role}: unknown endpoint {ep!r} (known: {', '.join(self.endpoints) or 'none'})")
        return self

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.__pydantic_extra__ or {})

    @property
    def lines(self) -> dict[Loc, int]:
        """The line of each key in the config file (empty for a dict config)."""
        return self._lines

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the config resolve: the config file's folder, else the working directory."""
        if self.source and Path(self.source).is_file():
            return Path(self.source).resolve().parent
        return Path.cwd()

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


def parse_config(data: dict[str, Any], source: str = "<dict>", lines: dict[Loc, int] | None = None) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping")
    check_top_level(data, [n for n, f in Config.model_fields.items() if not f.exclude], source=source, lines=lines)
    cfg = validate(Config, data, source=source, lines=lines)
    cfg.source = source
    cfg._lines = dict(lines or {})
    return cfg


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file's content; a missing file or a syntax error is a ConfigError naming file:line."""
    return read_yaml_lines(path)[0]


def load_config(path: str | os.PathLike | None) -> Config:
    if path is None:
        return Config()
    data, lines = read_yaml_lines(path)
    return parse_config(data, str(path), lines)


def with_overrides(cfg: Config, *, base_url: str | None = None, model: str | None = None,
                   api_key_env: str | None = None, roles: list[str] | None = None) -> Config:
    """Apply CLI flags: --base-url/--model/--api-key-env replace the endpoint of the given roles
    (all configured endpoints when none is named); with no config at all they create `default`.

    ``--model M`` on an endpoint without a server URL is refused (the embedded model would answer
    in M's name) unless M names the embedded model."""
    if not (base_url or model or api_key_env):
        return cfg
    targets = [cfg.endpoint_for(r) for r in roles] if roles and cfg.endpoints else list(cfg.endpoints)
    updates: dict[str, Any] = {}
    for name in targets or ["default"]:
        ep = cfg.endpoints.get(name)
        pre = f"endpoints.{name}."
        remote = bool(base_url) or (ep is not None and ep.backend == "openai")
        if model and ep is not None and ep.backend != EMBEDDED:
            remote = True  # a plugin backend names its own models
        if model and not remote and model.lower() not in EMBEDDED_NAMES:
            raise ConfigError(f"--model {model} without --base-url: endpoint {name!r} has no server URL, so the "
                              f"embedded model {EMBEDDED_MODEL} would answer in its place; pass --base-url URL "
                              f"(or --model {EMBEDDED_MODEL} to use the embedded model)")
        updates[pre + "base_url"] = base_url
        updates[pre + "replicas"] = [] if base_url else None
        updates[pre + "backend"] = "openai" if base_url else None
        updates[pre + "model"] = model or ("default" if remote and not (ep and ep.model) else None)
        if api_key_env:
            updates[pre + "api_key_env"] = [api_key_env]
            updates[pre + "key_names"] = []
    out = override(cfg, updates, source="command line")
    out.source = cfg.source
    out._lines = cfg._lines
    return out
