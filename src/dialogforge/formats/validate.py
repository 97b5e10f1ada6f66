"""`dialogforge validate`: every row of a file against its target's rules.

Each bad row is reported with its index (0-based row number), its line and its
reasons, counted per reason, and (optionally) written to a rejects file. Export uses
the same RowValidator on every row it writes.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.rows import read_json, refuse_overwrite
from .jsonl import JsonlWriter, iter_lines
from . import registry
from .registry import get, row_formats
from .rules.common import ColumnTypes, Problem
from .rules.llamafactory import LFRules, LFSpec
from .writers.base import TASKS

FORMATS = tuple(row_formats())  # the built-in row formats; the registry is the table
__all__ = ["FORMATS", "RowValidator", "ValidationReport", "validate", "row_formats"]

SHOWN = 50  # problems kept in memory for display; the rejects file has them all


def load_entry(dataset_info: str | os.PathLike, name: str | None) -> dict[str, Any]:
    p = Path(dataset_info)
    info = read_json(p, "a dataset_info.json file")
    if not isinstance(info, dict) or not info:
        raise InputError(f"{p}: expected a JSON object of dataset entries")
    if name is None:
        if len(info) != 1:
            raise InputError(f"{p}: has {len(info)} entries; name one with --dataset")
        name = next(iter(info))
    if name not in info:
        raise InputError(f"{p}: no entry {name!r} (have: {', '.join(sorted(info))})")
    return info[name]


class RowValidator:
    """Rules of one target plus column-type consistency across the file."""

    def __init__(self, fmt: str, task: str | None = None, spec: Any = None, *,
                 declared: bool = False):
        """`spec`: what the format's rules take besides the task (an LFSpec, the TRL writer's options);
        `declared`: `spec` is the user's dataset_info entry, so its columns must exist."""
        self.format = get(fmt, rows_only=True)
        self.fmt, self.task, self.spec, self.declared = fmt, task, spec, declared
        self.types = ColumnTypes()
        self._rules: Any = None

    def _setup(self, row: dict[str, Any]) -> None:
        task = self.task or self.format.infer_task(row)
        self._rules = self.format.rules_factory()(task, self.spec)
        self.task = task

    def check(self, row: dict[str, Any], index: int) -> list[Problem]:
        if self._rules is None:
            self._setup(row)
        probs = self._rules.check(row)
        if not probs:  # a broken row does not set the file's column types
            probs = self.types.check(row, index)
        return probs

    def file_problems(self) -> list[Problem]:
        if self.declared and isinstance(self._rules, LFRules):
            missing = self._rules.declared_missing()
            if missing:
                return [Problem("missing_column", f"dataset_info declares column(s) {', '.join(missing)} that no "
                                                  "row has; LLaMA-Factory fails to load the file")]
        return []


@dataclass
class RowReport:
    index: int
    lineno: int | None
    reasons: list[str]


@dataclass
class ValidationReport:
    path: str
    format: str
    task: str | None = None
    rows: int = 0
    valid: int = 0
    by_reason: Counter = field(default_factory=Counter)
    bad: list[RowReport] = field(default_factory=list)  # the first SHOWN bad rows
    file_problems: list[str] = field(default_factory=list)
    rejects_path: str | None = None

    @property
    def invalid(self) -> int:
        return self.rows - self.valid

    @property
    def ok(self) -> bool:
        return self.invalid == 0 and not self.file_problems

    def add_bad(self, index: int, lineno: int | None, probs: list[Problem]) -> None:
        self.by_reason[probs[0].code] += 1
        if len(self.bad) < SHOWN:
            self.bad.append(RowReport(index, lineno, [str(p) for p in probs]))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "task": self.task, "rows": self.rows,
                "valid": self.valid, "invalid": self.invalid, "by_reason": dict(self.by_reason),
                "file_problems": self.file_problems, "rejects": self.rejects_path,
                "bad_rows": [r.__dict__ for r in self.bad]}


def validate(path: str | os.PathLike, fmt: str, *, task: str | None = None,
             dataset_info: str | os.PathLike | None = None, dataset: str | None = None,
             rejects: str | os.PathLike | None = None, newer_trl: bool = False) -> ValidationReport:
    """Check every row of `path` as format `fmt`; nothing is loaded whole (JSONL).

    TRL rows are held to TRL 0.24's rules unless `newer_trl` (releases after 0.24 also take JSON-text
    `tools` and preference/KTO prompts that end with a tool result)."""
    refuse_overwrite([path, dataset_info], {"--rejects": rejects})
    if task is not None and task not in TASKS:
        raise InputError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    spec: object = LFSpec.from_entry(load_entry(dataset_info, dataset)) if dataset_info else None
    f = get(fmt, rows_only=True)
    if spec is not None and not f.llamafactory:
        raise InputError("--dataset-info applies to LLaMA-Factory formats only")
    if newer_trl:
        if "tool_prompts" not in f.writer_options:
            raise InputError("--newer-trl applies to TRL files only")
        spec = f.writer_class()("sft", tools_as_list=False, tool_prompts="keep").spec
    v = RowValidator(fmt, task, spec, declared=dataset_info is not None)
    report = ValidationReport(str(path), fmt, rejects_path=str(rejects) if rejects else None)
    out = JsonlWriter(rejects) if rejects else None
    try:
        for line in iter_lines(path):
            report.rows += 1
            if line.record is None:
                probs = [Problem("json", line.error or "unreadable line")]
            else:
                probs = v.check(line.record, line.index)
            if probs:
                report.add_bad(line.index, line.lineno, probs)
                if out:
                    out.write({"index": line.index, "line": line.lineno, "reasons": [str(p) for p in probs],
                               "row": line.record})
            else:
                report.valid += 1
    finally:
        if out:
            out.close()
    report.task = v.task
    report.file_problems = [str(p) for p in v.file_problems()]
    return report
