"""``persona import-config``: turn a config of the older multi-turn persona generator into ours.

Mapping (old -> new):
  multiturn_generation.model_name      -> endpoints.generator.model (+ base_url guessed from the name)
  multiturn_generation.key_list        -> endpoints.generator.api_key_env (each name is an environment variable)
  multiturn_generation.persona_name    -> persona.personas (a built-in persona of the same name)
  multiturn_generation.use_answer_prefix -> persona.use_answer_prefix
  multiturn_generation.target_turn     -> persona.turns
  json.inspiring_json_dir              -> persona.seeds.path
  json.start_idx                       -> persona.seeds.start
  json.jsonl_save_dir                  -> persona.output.raw_dir
  json.filtered_save_dir               -> persona.output.filtered_dir
  scoring.score_threshold              -> persona.quality.min_score
  model_inference.temperature/top_p/max_tokens -> persona.agents.persona.*
  model_inference.frequency_penalty/presence_penalty/seed -> persona.agents.persona.params
Paths are kept as written; dialogforge reads relative paths from the new config's folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from dialogforge.core.rows import refuse_overwrite
from dialogforge.engine.config import read_yaml
from dialogforge.engine.errors import ConfigError

from .personas import BUILTIN_PERSONAS

GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
OPENAI_URL = "https://api.openai.com/v1"
MODEL_ALIASES = {"geminipro1.0": "gemini-1.0-pro", "geminipro1.5": "gemini-1.5-pro", "geminipro": "gemini-1.0-pro"}
KNOWN = {
    "model_inference": {"model_path", "tokenizer_path", "model_name", "tensor_parallel_size", "temperature", "top_p",
                        "seed", "max_tokens", "frequency_penalty", "presence_penalty", "repetition_penalty"},
    "multiturn_generation": {"key_list", "model_name", "persona_name", "use_answer_prefix", "target_turn"},
    "json": {"inspiring_json_dir", "start_idx", "jsonl_save_dir", "filtered_save_dir"},
    "scoring": {"scoring_prompt", "score_threshold"},
}


def _rebase(p: str, old_dir: Path, new_dir: Path) -> str:
    """Paths are kept as written (the old tool read them from its working directory)."""
    return p


def import_config(old: str | os.PathLike | dict, new_path: str | os.PathLike | None = None) -> tuple[dict, list[str], list[str]]:
    """(new config dict, what was mapped, what was not) for an old config file or dict."""
    if isinstance(old, dict):
        data, src, old_dir = old, "<dict>", Path.cwd()
    else:
        p = Path(old)
        data = read_yaml(p)
        src, old_dir = str(p), p.parent
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: the top level must be a mapping")
    new_dir = Path(new_path).parent if new_path else Path.cwd()
    mapped: list[str] = []
    skipped: list[str] = []
    if not any(isinstance(data.get(sec), dict) and set(data[sec]) & keys for sec, keys in KNOWN.items()):
        raise ConfigError(f"{src}: not a config of the older persona generator: none of its settings "
                          f"({', '.join(f'{k}.*' for k in KNOWN)}) is here; nothing was written")

    for sec, value in data.items():
        if sec not in KNOWN:
            skipped.append(f"{sec}: unknown section, not used")
        elif isinstance(value, dict):
            for k in value:
                if k not in KNOWN[sec]:
                    skipped.append(f"{sec}.{k}: unknown key, not used")
        elif value is not None:
            raise ConfigError(f"{src}: section {sec!r} must be a mapping")
    mi = data.get("model_inference") or {}
    mg = data.get("multiturn_generation") or {}
    js = data.get("json") or {}
    sc = data.get("scoring") or {}

    ep: dict[str, Any] = {}
    model = str(mg.get("model_name") or "").strip()
    if model:
        real = MODEL_ALIASES.get(model.lower().replace("-", "").replace(" ", ""), model)
        ep["model"] = real
        if "gemini" in real.lower():
            ep["base_url"] = GEMINI_URL
        elif real.lower().startswith(("gpt-", "o1", "o3", "o4")):
            ep["base_url"] = OPENAI_URL
        else:
            ep["base_url"] = "http://localhost:8000/v1"
            skipped.append(f"multiturn_generation.model_name: no known server for {model!r}; "
                           f"set endpoints.generator.base_url (now {ep['base_url']})")
        mapped.append(f"multiturn_generation.model_name {model!r} -> endpoints.generator.model {real!r} at {ep['base_url']}"
                      + (" (the old tool's alias; check the model id your provider serves)" if real != model else ""))
    else:
        skipped.append("multiturn_generation.model_name: missing; endpoints.generator needs base_url and model")
        ep.update({"base_url": "http://localhost:8000/v1", "model": "CHANGE-ME"})
    keys = mg.get("key_list")
    if keys:
        names = [str(k) for k in (keys if isinstance(keys, list) else [keys])]
        placeholders = [k for k in names if k.startswith("<") or not k.replace("_", "").isalnum()]
        if placeholders:
            env = "GEMINI_API_KEY" if "gemini" in ep["model"].lower() else "OPENAI_API_KEY"
            ep["api_key_env"] = [env]
            skipped.append(f"multiturn_generation.key_list: {', '.join(placeholders)} is a placeholder, not a variable "
                           f"name; using ${env} - list your key variables in endpoints.generator.api_key_env")
        else:
            ep["api_key_env"] = names
            mapped.append(f"multiturn_generation.key_list -> endpoints.generator.api_key_env {names} "
                          f"(each read from the environment or .env; several keys rotate)")

    agent: dict[str, Any] = {"role": "generator"}
    params: dict[str, Any] = {}
    for k in ("temperature", "top_p", "max_tokens"):
        if mi.get(k) is not None:
            agent[k] = mi[k]
            mapped.append(f"model_inference.{k} -> persona.agents.persona.{k} = {mi[k]}")
    for k in ("frequency_penalty", "presence_penalty", "seed"):
        if mi.get(k) is not None:
            params[k] = mi[k]
            mapped.append(f"model_inference.{k} -> persona.agents.persona.params.{k} = {mi[k]}")
    if params:
        agent["params"] = params
    if "repetition_penalty" in mi:
        skipped.append(f"model_inference.repetition_penalty = {mi['repetition_penalty']}: not an OpenAI API parameter; "
                       "add it to persona.agents.persona.params if your server (e.g. vLLM) accepts it")
    for k in ("model_path", "tokenizer_path", "model_name", "tensor_parallel_size"):
        if k in mi:
            skipped.append(f"model_inference.{k}: for the old tool's local inference step; serve that model behind an "
                           f"OpenAI-compatible server and add it as an endpoint if you need it")

    persona: dict[str, Any] = {}
    pname = mg.get("persona_name")
    if pname:
        if pname in BUILTIN_PERSONAS:
            persona["personas"] = [pname]
            mapped.append(f"multiturn_generation.persona_name -> persona.personas [{pname}] (dialogforge's built-in "
                          f"{pname!r}; copy it into the config to edit it)")
        else:
            persona["personas"] = [{"name": str(pname), "role_name": str(pname), "description": "DESCRIBE THIS PERSONA",
                                    "language": None, "style_rules": []}]
            skipped.append(f"multiturn_generation.persona_name {pname!r}: no built-in persona of that name; "
                           f"a stub was written - fill in its description")
    else:
        persona["personas"] = ["neuroticism"]
        skipped.append("multiturn_generation.persona_name: missing; using the built-in 'neuroticism'")
    if "use_answer_prefix" in mg:
        persona["use_answer_prefix"] = bool(mg["use_answer_prefix"])
        mapped.append(f"multiturn_generation.use_answer_prefix -> persona.use_answer_prefix = {bool(mg['use_answer_prefix'])}")
    if mg.get("target_turn") is not None:
        persona["turns"] = int(mg["target_turn"])
        mapped.append(f"multiturn_generation.target_turn -> persona.turns = {int(mg['target_turn'])}")
    seeds: dict[str, Any] = {"path": _rebase(str(js.get("inspiring_json_dir") or "seeds.jsonl"), old_dir, new_dir)}
    if js.get("inspiring_json_dir"):
        mapped.append(f"json.inspiring_json_dir -> persona.seeds.path = {seeds['path']}")
    else:
        skipped.append("json.inspiring_json_dir: missing; set persona.seeds.path")
    if js.get("start_idx") is not None:
        seeds["start"] = int(js["start_idx"])
        mapped.append(f"json.start_idx -> persona.seeds.start = {seeds['start']}")
    persona["seeds"] = seeds
    if any(not os.path.isabs(str(js.get(k) or "/")) for k in ("inspiring_json_dir", "jsonl_save_dir", "filtered_save_dir")):
        skipped.append("json.*: relative paths are kept as written; dialogforge reads them from the new config's "
                       "folder, the old tool from its working directory - adjust them if those differ")
    out: dict[str, Any] = {}
    for old_k, new_k in (("jsonl_save_dir", "raw_dir"), ("filtered_save_dir", "filtered_dir")):
        if js.get(old_k):
            out[new_k] = _rebase(str(js[old_k]), old_dir, new_dir)
            mapped.append(f"json.{old_k} -> persona.output.{new_k} = {out[new_k]}")
    if out:
        persona["output"] = out
    quality: dict[str, Any] = {"judge": True}
    if sc.get("score_threshold") is not None:
        quality["min_score"] = float(sc["score_threshold"])
        mapped.append(f"scoring.score_threshold -> persona.quality.min_score = {quality['min_score']}")
    if "scoring_prompt" in sc:
        skipped.append("scoring.scoring_prompt: the old prompt is not shipped; dialogforge's judge template is used "
                       "(override it with persona.prompts_dir/judge.j2)")
    persona["quality"] = quality
    persona["agents"] = {"persona": agent}
    skipped.append("roles.judge: the old tool scored with its generator model; the judge is mapped to the same "
                   "endpoint (a warning is printed at run time) - point roles.judge at another endpoint if you can")
    new = {"endpoints": {"generator": ep}, "roles": {"generator": "generator", "judge": "generator"}, "persona": persona}
    said = " ".join(mapped + skipped)
    for sec, keys in KNOWN.items():  # every key present and not carried over is listed, whatever its value
        for k in (data.get(sec) or {}):
            if k in keys and f"{sec}.{k}" not in said:
                skipped.append(f"{sec}.{k} = {data[sec][k]!r}: not carried over (empty or no setting of ours)")
    return new, mapped, skipped


def write_imported(old: str | os.PathLike, new_path: str | os.PathLike) -> tuple[dict, list[str], list[str]]:
    """Write the new YAML (with the mapping notes as comments) and return what import_config returned."""
    refuse_overwrite([old], {"-o": new_path})
    new, mapped, skipped = import_config(old, new_path)
    header = [f"# dialogforge config imported from {old} by `dialogforge persona import-config`"]
    header += [f"#   mapped: {m}" for m in mapped]
    header += [f"#   NOT mapped: {s}" for s in skipped]
    text = "\n".join(header) + "\n" + yaml.safe_dump(new, sort_keys=False, allow_unicode=True)
    p = Path(new_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return new, mapped, skipped
