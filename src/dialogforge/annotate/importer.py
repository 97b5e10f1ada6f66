"""`annotate import`: ProactiveBench test traces (and the proactive workflow's traces, converted to that form).

A trace is a JSON list of turns `{"observation": {"time", "event"}, "agent_response": {"candidate_task": [...]},
"task_status"}`. A `.json` file holds one trace, or a list of traces; a `.jsonl` file holds one trace per line
(a list of turns, or an object with a `turns` list and an optional `name`). A trace is identified by the hash of
its turns, so importing the same file again adds nothing.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import select

from ..engine.errors import InputError
from . import db
from .project import Project


@dataclass
class ParsedTurn:
    time: str
    event: str
    candidates: list[str]


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    files: list[str] = field(default_factory=list)


def _turn(where: str, i: int, raw: Any) -> ParsedTurn:
    at = f"{where}: turn {i}"
    if not isinstance(raw, dict):
        raise InputError(f"{at}: expected an object, got {type(raw).__name__}")
    obs = raw.get("observation")
    if not isinstance(obs, dict):
        raise InputError(f"{at}: field 'observation' is missing or not an object")
    for k in ("time", "event"):
        if k not in obs:
            raise InputError(f"{at}: field 'observation.{k}' is missing")
    if not isinstance(obs["event"], str):
        raise InputError(f"{at}: field 'observation.event' must be a string")
    time = str(obs["time"])
    try:
        float(time)
    except ValueError:
        raise InputError(f"{at}: field 'observation.time' must be unix seconds, got {time!r}") from None
    resp = raw.get("agent_response", {}) or {}
    if not isinstance(resp, dict):
        raise InputError(f"{at}: field 'agent_response' must be an object with 'candidate_task'")
    cands = resp.get("candidate_task", [])
    if cands is None:
        cands = []
    if not isinstance(cands, list) or not all(isinstance(c, str) for c in cands):
        raise InputError(f"{at}: field 'agent_response.candidate_task' must be a list of strings")
    return ParsedTurn(time=time, event=obs["event"], candidates=[c for c in cands if c.strip()])


def _trace(where: str, raw: Any) -> list[ParsedTurn]:
    if isinstance(raw, dict) and isinstance(raw.get("turns"), list):
        raw = raw["turns"]
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{where}: a trace must be a non-empty list of turns")
    return [_turn(where, i, t) for i, t in enumerate(raw)]


def read_traces(path: Path) -> Iterator[tuple[str, list[ParsedTurn]]]:
    """(name, turns) for every trace in the file; errors name the file, the trace/line and the turn."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not JSON ({e.msg})") from None
            name = raw.get("name") if isinstance(raw, dict) else None
            yield str(name or f"{path.stem}#{lineno}"), _trace(f"{path}:{lineno}", raw)
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not JSON ({e.msg})") from None
    if isinstance(doc, list) and doc and all(isinstance(t, (list, dict)) and
                                             (isinstance(t, list) or "turns" in t) for t in doc):
        for i, t in enumerate(doc):
            yield f"{path.stem}#{i}", _trace(f"{path}: trace {i}", t)
    else:
        yield path.stem, _trace(str(path), doc)


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for its *.json and *.jsonl files (e.g. `proactive simulate`'s traces_test/)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.suffix in (".json", ".jsonl") and x.is_file())
            if not found:
                raise InputError(f"{p}: no .json or .jsonl trace files in this folder")
            out += found
        else:
            out.append(p)
    return out


def digest(turns: list[ParsedTurn]) -> str:
    canon = json.dumps([[t.time, t.event, t.candidates] for t in turns], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def theme_of(name: str) -> str:
    m = re.match(r"[A-Za-z]+", name)
    return m.group(0).lower() if m else "trace"


def asked_turns(turns: list[ParsedTurn], ask_every: int) -> list[bool]:
    """Every turn of a trace with candidates; every `ask_every`-th turn (and the last) of one without."""
    if any(t.candidates for t in turns):
        return [True] * len(turns)
    return [(i + 1) % ask_every == 0 or i == len(turns) - 1 for i in range(len(turns))]


Parsed = tuple[list[Path], list[tuple[Path, str, list[ParsedTurn]]]]


def parse_files(paths: list[Path]) -> Parsed:
    """The files (folders expanded) and every trace in them; one bad file fails the lot, before anything is written."""
    files = expand(paths)
    traces = [(p, name, turns) for p in files for name, turns in read_traces(p)]
    if not traces:
        raise InputError(f"0 traces in {', '.join(str(p) for p in files)}: nothing to import")
    return files, traces


def import_files(project: Project, paths: list[Path], ask_every: int = 1) -> ImportReport:
    if ask_every < 1:
        raise InputError("--ask-every must be at least 1")
    return import_parsed(project, parse_files(paths), ask_every)


def import_parsed(project: Project, parsed_files: Parsed, ask_every: int = 1) -> ImportReport:
    if ask_every < 1:
        raise InputError("--ask-every must be at least 1")
    files, parsed = parsed_files
    report = ImportReport(files=[str(p) for p in files])
    with project.Session.begin() as s:
        known = set(s.scalars(select(db.Trace.digest)))
        for path, name, turns in parsed:
            d = digest(turns)
            if d in known:
                report.unchanged += 1
                continue
            known.add(d)
            trace = db.Trace(name=name, source=str(path), digest=d, theme=theme_of(name), n_turns=len(turns))
            s.add(trace)
            s.flush()
            for i, (t, asked) in enumerate(zip(turns, asked_turns(turns, ask_every))):
                s.add(db.Turn(trace_id=trace.id, idx=i, time=t.time, event=t.event, candidates=t.candidates,
                              asked=asked))
            report.added += 1
    return report
