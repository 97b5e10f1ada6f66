"""Task instances: reading JSON/JSONL files with a field mapping into `Task` objects.

A mapping is {our_field: source} where source is a field name of the input record,
a dotted path ("meta.repo"), or a Jinja template ("make test T={{test_file}}").
Input fields no mapping names are kept in `metadata`. Presets cover known formats.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import jinja2

from ...core.rows import iter_lines
from ...engine.errors import ConfigError, InputError

TASK_FIELDS = (
    "id", "problem_statement", "workspace", "eval_command", "evaluator", "setup_command",
    "protected", "env", "image", "network", "metadata",
)

PRESETS: dict[str, dict[str, str]] = {
    # our own format: field names are ours already
    "default": {f: f for f in TASK_FIELDS},
    # rocm-agent / SWE-style optimisation instances: {repo, instance_id, path_in_repo, commit_id,
    # problem_statement, test_file_path, benchmark_file_path, docker_env_path, image_name, ...}.
    # They carry no workspace or evaluation command of their own: the repository is checked out
    # by a custom environment at `commit_id`; everything else stays in metadata for it.
    "rocm_agent": {
        "id": "instance_id",
        "problem_statement": "problem_statement",
        "image": "image_name",
    },
    # SWE-bench-like: instance_id + problem_statement (+ repo/base_commit kept in metadata)
    "swe": {"id": "instance_id", "problem_statement": "problem_statement"},
}


@dataclass
class Task:
    id: str
    problem_statement: str
    workspace: str | None = None  # folder copied into each rollout's sandbox
    eval_command: str | None = None  # run in the sandbox after the agent submits
    evaluator: str | None = None  # "module:function" alternative to eval_command
    setup_command: str | None = None  # run once after reset
    protected: list[str] = field(default_factory=list)  # paths restored from the source before evaluation
    env: dict[str, str] = field(default_factory=dict)  # extra environment variables for commands
    image: str | None = None  # docker image for this task
    network: bool | str | None = None  # local sandbox: true (host loopback), "host", false; None: the config's
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def resolve_mapping(mapping: str | dict[str, str] | None) -> dict[str, str]:
    if mapping is None:
        return dict(PRESETS["default"])
    if isinstance(mapping, str):
        if mapping not in PRESETS:
            raise ConfigError(f"unknown task mapping preset {mapping!r}; known: {', '.join(sorted(PRESETS))}")
        return dict(PRESETS[mapping])
    bad = [k for k in mapping if k not in TASK_FIELDS]
    if bad:
        raise ConfigError(f"task mapping: unknown target field(s) {bad}; allowed: {', '.join(TASK_FIELDS)}")
    return dict(mapping)


def _lookup(record: dict, source: str) -> tuple[bool, Any]:
    cur: Any = record
    for part in source.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return False, None
    return True, cur


def _top_key(source: str) -> str:
    return source.split(".", 1)[0]


def map_record(record: dict, mapping: dict[str, str], *, where: str, base_dir: Path | None = None) -> Task:
    """Turn one input record into a Task; `where` ("file:line") prefixes every error."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    out: dict[str, Any] = {}
    used: set[str] = set()
    for ours, source in mapping.items():
        if "{{" in source or "{%" in source:
            try:
                out[ours] = _jinja.from_string(source).render(**record)
            except jinja2.TemplateError as e:
                raise InputError(f"{where}: field {ours!r}: template {source!r} failed: {e}") from None
            continue
        found, value = _lookup(record, source)
        if found:
            out[ours] = value
            used.add(_top_key(source))
    for req in ("id", "problem_statement"):
        if out.get(req) in (None, ""):
            raise InputError(f"{where}: missing required field {mapping.get(req, req)!r} (mapped to {req!r})")
    meta = dict(out.pop("metadata", None) or {})
    meta.update({k: v for k, v in record.items() if k not in used})
    task = Task(id=str(out.pop("id")), problem_statement=str(out.pop("problem_statement")), metadata=meta)
    for key in ("workspace", "eval_command", "evaluator", "setup_command", "image"):
        v = out.get(key)
        if v is not None and not isinstance(v, str):
            raise InputError(f"{where}: field {key!r} must be a string, got {type(v).__name__}")
        setattr(task, key, v or None)
    prot = out.get("protected") or []
    if isinstance(prot, str):
        prot = [prot]
    if not isinstance(prot, list) or not all(isinstance(p, str) for p in prot):
        raise InputError(f"{where}: field 'protected' must be a list of paths")
    task.protected = prot
    env = out.get("env") or {}
    if not isinstance(env, dict):
        raise InputError(f"{where}: field 'env' must be an object of strings")
    task.env = {str(k): str(v) for k, v in env.items()}
    net = out.get("network")
    if net is not None and not isinstance(net, bool) and net != "host":
        raise InputError(f"{where}: field 'network' must be true, false or \"host\", got {net!r}")
    task.network = net
    if task.workspace and base_dir is not None and not Path(task.workspace).is_absolute():
        task.workspace = str((base_dir / task.workspace).resolve())
    return task


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row) of a JSON list or JSONL tasks file, through the one row reader."""
    if not path.is_file():
        raise InputError(f"{path}: is a folder, not a tasks file" if path.is_dir() else f"{path}: tasks file not found")
    for line in iter_lines(path):
        where = line.where(path)
        if line.record is None:
            raise InputError(f"{where}: {line.error}")
        yield where, line.record


def load_tasks(path: str | Path, mapping: str | dict[str, str] | None = "default") -> list[Task]:
    """Read tasks from a JSON list or JSONL file; relative workspaces resolve against its folder."""
    p = Path(path)
    m = resolve_mapping(mapping)
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for where, rec in _records(p):
        t = map_record(rec, m, where=where, base_dir=p.resolve().parent)
        if t.id in seen:
            raise InputError(f"{where}: duplicate task id {t.id!r} (first at {seen[t.id]})")
        seen[t.id] = where
        tasks.append(t)
    if not tasks:
        raise InputError(f"{p}: no tasks found")
    return tasks


def write_tasks(tasks: list[Task], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
