"""The proactive-assistant files users already have, read as they are, with errors that name
the file, the index and the field.

- ProactiveBench test traces (`test_data/code_11.json`): a JSON list of turns
  `{"observation": {"time": "<unix seconds>", "event": str}, "agent_response": {"candidate_task": [str]},
  "task_status": bool}`; published model traces hold `agent_response` as a list of strings
  (`["null"]` for no proposal). An empty `candidate_task` list is "no proposal".
- reward items (`reward_data/test_data.jsonl`): `{"obs": [...], "pred_task": str | null, "valid": bool,
  "category": "Correct-Detection (CD)", ...}`.
- `seedtask.yaml`: `{scene: {tasks: [str], sample_events: [str]}}`.
- scenes: `new_scenes_sample.yaml` (a list of `{environment, user}`), one simulation scene config
  (`gym_scene_example.yaml`: one `{environment, eventSink, user}`), or our scenes JSONL.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialogforge.core.errors import InputError
from dialogforge.core.rows import iter_lines, read_json

NULL_TASKS = frozenset({"", "null", "none"})


class Observation(BaseModel):
    time: str  # as the file writes it: unix seconds in test traces, free text ("Day 1, 8:00 PM") in reward items
    event: str


class Turn(BaseModel):
    observation: Observation
    predictions: list[str | None] | None = None  # None: the file holds no agent answer for this turn
    task_status: bool | None = None


class RewardItem(BaseModel):
    id: str
    obs: list[Observation]
    pred_task: str | None
    valid: bool
    category: str

    @property
    def code(self) -> str:
        m = re.search(r"\(([A-Z]{2})\)", self.category)
        return m.group(1) if m else self.category


class Environment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    theme: str = Field(min_length=1)
    description: str = Field(min_length=1)
    entities: list[str] = Field(min_length=1)
    agent_ops: list[str] = Field(min_length=1)
    events_example: list[str] = Field(default_factory=list)

    @field_validator("agent_ops", mode="before")
    @classmethod
    def _ops(cls, v: Any) -> Any:
        """Operations as signatures; a mapping form ({action, parameters, description, ...}) becomes
        ``action(param, ...)``, as the generated scenes files also write them."""
        if not isinstance(v, list):
            return v
        out = []
        for op in v:
            if isinstance(op, dict) and isinstance(op.get("action"), str):
                params = op.get("parameters") or []
                names = list(params) if isinstance(params, (dict, list)) else [str(params)]
                op = f"{op['action']}({', '.join(str(n) for n in names)})"
            out.append(op)
        return out


class UserSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")
    goal: str = Field(min_length=1)
    description: str = Field(min_length=1)


class Scene(BaseModel):
    model_config = ConfigDict(extra="ignore")  # eventSink, id: not part of the scene
    environment: Environment
    user: UserSpec


def _field_error(where: str, e: ValidationError) -> InputError:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "value"
    extra = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return InputError(f"{where}: field {loc!r}: {err['msg']}{extra}")


def _observation(raw: Any, where: str, numeric: bool = True) -> Observation:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected an object with time and event, got {type(raw).__name__}")
    t = raw.get("time")
    if t is None:
        raise InputError(f"{where}: missing field 'time'")
    if isinstance(t, bool) or not isinstance(t, (str, int, float)):
        raise InputError(f"{where}: field 'time' must be a string or a number, got {type(t).__name__}")
    if numeric:
        try:
            float(t)
        except ValueError:
            raise InputError(f"{where}: field 'time' is not a number of seconds: {t!r}") from None
    ev = raw.get("event")
    if not isinstance(ev, str):
        raise InputError(f"{where}: field 'event' must be a string, got {type(ev).__name__}"
                         if ev is not None else f"{where}: missing field 'event'")
    return Observation(time=str(t), event=ev)


def _predictions(raw: Any, where: str) -> list[str | None] | None:
    """agent_response -> the predictions of one turn; [None] is "no proposal"."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        if "candidate_task" not in raw:
            raise InputError(f"{where}: missing field 'agent_response.candidate_task'")
        raw = raw["candidate_task"]
        field = "agent_response.candidate_task"
    else:
        field = "agent_response"
    if raw is None:
        return [None]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise InputError(f"{where}: field {field!r} must be a list of strings, got {type(raw).__name__}")
    out: list[str | None] = []
    for j, t in enumerate(raw):
        if t is None:
            continue
        if not isinstance(t, str):
            raise InputError(f"{where}: field '{field}[{j}]' must be a string, got {type(t).__name__}")
        if t.strip().lower() not in NULL_TASKS:
            out.append(t.strip())
    return out or [None]


def load_trace(path: str | os.PathLike) -> list[Turn]:
    """One ProactiveBench test trace or published model trace: the list of its turns."""
    p = Path(path)
    turns: list[Turn] = []
    for line in iter_lines(p):
        where = f"{p}: turn [{line.index}]"
        if line.record is None:
            raise InputError(f"{where}: {line.error}")
        rec = line.record
        if "observation" not in rec:
            raise InputError(f"{where}: missing field 'observation' (have: {', '.join(sorted(rec)) or 'none'})")
        obs = _observation(rec["observation"], f"{where}: observation")
        status = rec.get("task_status")
        if status is not None and not isinstance(status, bool):
            raise InputError(f"{where}: field 'task_status' must be true or false, got {status!r}")
        turns.append(Turn(observation=obs, predictions=_predictions(rec.get("agent_response"), where),
                          task_status=status))
    if not turns:
        raise InputError(f"{p}: no turns")
    return turns


def load_reward_items(path: str | os.PathLike) -> list[RewardItem]:
    p = Path(path)
    items = []
    for line in iter_lines(p):
        where = line.where(p)
        if line.record is None:
            raise InputError(f"{where}: {line.error}")
        rec = line.record
        for k in ("obs", "valid", "category"):
            if k not in rec:
                raise InputError(f"{where}: missing field {k!r}")
        if not isinstance(rec["obs"], list) or not rec["obs"]:
            raise InputError(f"{where}: field 'obs' must be a non-empty list of observations")
        obs = [_observation(o, f"{where}: obs[{j}]", numeric=False) for j, o in enumerate(rec["obs"])]
        pred = rec.get("pred_task")
        if pred is not None and not isinstance(pred, str):
            raise InputError(f"{where}: field 'pred_task' must be a string or null")
        if not isinstance(rec["valid"], bool):
            raise InputError(f"{where}: field 'valid' must be true or false")
        if not isinstance(rec["category"], str):
            raise InputError(f"{where}: field 'category' must be a string")
        pred = None if pred is None or pred.strip().lower() in NULL_TASKS else pred
        items.append(RewardItem(id=str(rec.get("id", line.index)), obs=obs, pred_task=pred, valid=rec["valid"],
                                category=rec["category"]))
    return items


def _yaml(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: is a folder, not a file" if path.is_dir() else f"file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None


def load_seedtasks(path: str | os.PathLike) -> dict[str, dict[str, list[str]]]:
    """seedtask.yaml -> {scene: {"tasks": [...], "sample_events": [...]}}."""
    p = Path(path)
    data = _yaml(p)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{p}: expected a mapping of scene name -> {{tasks, sample_events}}")
    out: dict[str, dict[str, list[str]]] = {}
    for scene, body in data.items():
        if not isinstance(body, dict):
            raise InputError(f"{p}: {scene}: expected a mapping with tasks and sample_events")
        for k in ("tasks", "sample_events"):
            v = body.get(k, [] if k == "sample_events" else None)
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise InputError(f"{p}: field '{scene}.{k}' must be a list of strings")
        if not body["tasks"]:
            raise InputError(f"{p}: field '{scene}.tasks' is empty")
        out[str(scene)] = {"tasks": list(body["tasks"]), "sample_events": list(body.get("sample_events") or [])}
    return out


def load_scenes(path: str | os.PathLike) -> list[tuple[str, Scene]]:
    """Scenes as (id, scene): a YAML list (new_scenes_sample.yaml), one YAML scene config
    (gym_scene_example.yaml), or JSONL / a JSON list (our `proactive scenes` output)."""
    p = Path(path)
    raw: list[tuple[str, Any]]
    if p.suffix.lower() in (".jsonl", ".json"):
        raw = []
        for line in iter_lines(p):
            if line.record is None:
                raise InputError(f"{line.where(p)}: {line.error}")
            raw.append((line.where(p), line.record))
    else:
        data = _yaml(p)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise InputError(f"{p}: expected a list of scenes or one scene with environment and user")
        raw = [(f"{p}: scene [{i}]", rec) for i, rec in enumerate(data)]
    out = []
    seen: set[str] = set()
    for i, (where, rec) in enumerate(raw):
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected a mapping with environment and user")
        try:
            scene = Scene.model_validate(rec)
        except ValidationError as e:
            raise _field_error(where, e) from None
        sid = str(rec.get("id") or f"scene_{i}")
        if sid in seen:
            raise InputError(f"{where}: duplicate scene id {sid!r}")
        seen.add(sid)
        out.append((sid, scene))
    if not out:
        raise InputError(f"{p}: no scenes")
    return out


def load_splits(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """splits.json: {split: {"files": [...], "theme": ...}}; files relative to the splits file."""
    p = Path(path)
    data = read_json(p, "a splits file")
    if not isinstance(data, dict) or not data:
        raise InputError(f"{p}: expected an object of split name -> {{files, theme}}")
    out = {}
    for name, body in data.items():
        if not isinstance(body, dict) or not isinstance(body.get("files"), list) or not body["files"]:
            raise InputError(f"{p}: field '{name}.files' must be a non-empty list of file names")
        files = []
        for j, f in enumerate(body["files"]):
            if not isinstance(f, str):
                raise InputError(f"{p}: field '{name}.files[{j}]' must be a string")
            fp = Path(f) if Path(f).is_absolute() else p.parent / f
            files.append(fp)
        out[str(name)] = {"files": files, "theme": body.get("theme")}
    return out


def dump_trace(turns: list[dict], path: str | os.PathLike) -> None:
    """Write a ProactiveBench test trace (atomic)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(orjson.dumps(turns, option=orjson.OPT_INDENT_2))
    os.replace(tmp, p)
