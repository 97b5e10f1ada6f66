"""`dialogforge export`: workflow outputs -> one training format, validated row by row.

Everything streams: one input line at a time is read, selected, converted, checked
against the target's rules and written (or rejected with its reasons). Nothing is
dropped silently: every input row ends up written, skipped by the selection flags,
or rejected, and each of those is counted by reason.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

from ..core.errors import InputError
from ..core.rows import refuse_overwrite
from .conversation import ConversionError, json_text
from .jsonl import JsonlWriter, expand_inputs, iter_lines
from .readers import read_record
from .rules.common import Problem
from .select import Selection
from .training import resolve_train_on, trainer_note, write_readme
from .registry import FORMATS, get
from .validate import RowValidator
from .writers.base import TASKS, Writer

EXPORT_FORMATS = tuple(FORMATS)  # the built-in formats; the registry is the table


@dataclass
class ExportReport:
    output: str
    format: str
    task: str
    read: int = 0
    written: int = 0
    skipped: Counter = field(default_factory=Counter)  # left out by the selection flags
    rejected: Counter = field(default_factory=Counter)  # could not be written validly
    notes: Counter = field(default_factory=Counter)  # counted normalisations
    rejects_path: str | None = None
    dataset_info_path: str | None = None
    dataset_name: str | None = None  # its entry in dataset_info.json
    json_features: bool | None = None  # hf/parquet: whether nested columns use datasets.Json
    train_on: str = "all"  # resolved: "last" | "all"
    trainer_note: str | None = None  # the trainer setting the targets need (e.g. mask_history: true)
    readme_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "format": self.format, "task": self.task, "read": self.read,
                "written": self.written, "skipped": dict(self.skipped), "rejected": dict(self.rejected),
                "notes": dict(self.notes), "rejects": self.rejects_path, "dataset_info": self.dataset_info_path,
                "train_on": self.train_on, "trainer_note": self.trainer_note, "readme": self.readme_path}


class _Rejects:
    """The rejects file, created on the first rejected row."""

    def __init__(self, path: Path):
        self.path = path
        self._w: JsonlWriter | None = None

    def write(self, obj: dict[str, Any]) -> None:
        if self._w is None:
            self._w = JsonlWriter(self.path)
        self._w.write(obj)

    @property
    def used(self) -> bool:
        return self._w is not None

    def close(self) -> None:
        if self._w is not None:
            self._w.close()


def default_rejects_path(output: str | os.PathLike) -> Path:
    return Path(output).with_name(_stem(output) + ".rejects.jsonl")


def export(inputs: str | os.PathLike | Sequence[str | os.PathLike], output: str | os.PathLike, fmt: str, *,
           task: str = "sft", selection: Selection | None = None, layout: str = "trl",
           rejects: str | os.PathLike | None = None, dataset_info: str | os.PathLike | None = None,
           dataset_name: str | None = None, tools_as_list: bool = True, tool_prompts: str = "refuse",
           with_metadata: bool = False, merge_consecutive: bool = True, train_on: str = "auto",
           readme: bool = True) -> ExportReport:
    """Convert records from `inputs` (JSONL or JSON lists; a folder means its files) into `fmt` at `output`.

    fmt: sharegpt | lf-openai | alpaca | trl | openai | hf (save_to_disk folder) |
    parquet (one file); hf/parquet hold rows of `layout` (any of the JSONL formats).
    merge_consecutive: join back-to-back user turns (and an assistant text turn with the
    assistant turn after it) for targets that need alternating roles; counted in notes.
    LLaMA-Factory formats also add/replace their entry in dataset_info.json (beside the
    output unless `dataset_info` names the file; the entry is `dataset_name` or the
    output's stem) without touching other entries.
    train_on: auto | last | all (see formats.training); tool_prompts: refuse | keep (TRL
    preference/KTO prompts ending with a tool result); readme: write OUTPUT_STEM.README.md.
    """
    spec = get(fmt)
    if task not in TASKS:
        raise InputError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    paths = expand_inputs([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)
    if not paths:
        raise InputError("no input files")
    if Path(output).resolve() in {p.resolve() for p in paths}:
        raise InputError(f"output {output} is also an input")
    refuse_overwrite(paths, {"--rejects": rejects, "--dataset-info": dataset_info})
    target = get(layout, rows_only=True) if spec.container else spec
    if with_metadata and not target.extra_keys:
        raise InputError(f"{target.family} {target.name} files accept no extra keys; drop --with-metadata")
    options = {"tools_as_list": tools_as_list, "tool_prompts": tool_prompts}
    sel = selection or Selection()
    try:
        targets = resolve_train_on(train_on, paths, per_turn_split=sel.per_turn)
        kw = {k: v for k, v in options.items() if k in target.writer_options}
        writer = target.writer_class()(task, merge_consecutive=merge_consecutive, train_on=targets, **kw)
    except ValueError as e:
        raise InputError(str(e)) from None
    validator = RowValidator(target.name, writer.row_task, getattr(writer, "spec", None))
    report = ExportReport(str(output), fmt, task, train_on=targets,
                          trainer_note=trainer_note(target.family, task, targets))
    registers = registers_dataset_info(fmt, layout)
    if registers:  # a dataset_info.json we could not update: refused before anything is written
        read_dataset_info(Path(dataset_info) if dataset_info else Path(output).parent / "dataset_info.json")
    rej = _Rejects(Path(rejects) if rejects else default_rejects_path(output))
    rej.path.unlink(missing_ok=True)  # a rejects file from an earlier export would mislead
    rows = _rows(paths, writer, validator, sel, report, rej, with_metadata)
    try:
        if spec.container:
            from .writers.hf import write_hf
            report.json_features = write_hf(rows, output, layout=target.name, task=writer.row_task,
                                            parquet=spec.container == "parquet",
                                            with_metadata=with_metadata)
        else:
            with JsonlWriter(output) as w:
                for row in rows:
                    w.write(row)
    finally:
        rej.close()
    report.notes.update(writer.notes)
    if "tools" in writer.columns_seen:
        report.trainer_note = trainer_note(target.family, task, targets, tools=True) or report.trainer_note
    if rej.used:
        report.rejects_path = str(rej.path)
    if registers and report.written:
        entry = writer.dataset_info(_relative(output, dataset_info))
        if entry is not None:
            if report.trainer_note:
                entry["description"] = f"dialogforge export --to {fmt} --task {task}: {report.trainer_note}"
            info_path = Path(dataset_info) if dataset_info else Path(output).parent / "dataset_info.json"
            report.dataset_name = dataset_name or _stem(output)
            merge_dataset_info(info_path, report.dataset_name, entry)
            report.dataset_info_path = str(info_path)
    if readme and report.written:
        report.readme_path = str(write_readme(output, fmt=fmt, family=target.family, task=task, train_on=targets,
                                              written=report.written, dataset_name=report.dataset_name,
                                              note=report.trainer_note))
    return report


def _rows(paths: list, writer: Writer, validator: RowValidator, selection: Selection, report: ExportReport,
          rej: _Rejects, with_metadata: bool) -> Iterator[dict[str, Any]]:
    for path in paths:
        for line in iter_lines(path):
            report.read += 1
            where = {"source": str(path), "line": line.lineno, "index": line.index}
            if line.record is None:
                report.rejected["json"] += 1
                rej.write({**where, "reasons": [f"json: {line.error}"], "record": None})
                continue
            try:
                conv = read_record(line.record)
            except ConversionError as e:
                report.rejected[e.code] += 1
                rej.write({**where, "reasons": [f"{e.code}: {e}"], "record": line.record})
                continue
            reason = selection.skip_reason(conv)
            if reason:
                report.skipped[reason] += 1
                continue
            for sample in selection.expand(conv):
                try:
                    out = writer.rows(sample)
                except ConversionError as e:
                    report.rejected[e.code] += 1
                    rej.write({**where, "reasons": [f"{e.code}: {e}"], "record": line.record})
                    continue
                for row in out:
                    probs: list[Problem] = validator.check(row, report.written)
                    if probs:
                        report.rejected[probs[0].code] += 1
                        rej.write({**where, "reasons": [str(p) for p in probs], "row": row, "record": line.record})
                        continue
                    if with_metadata:
                        row["metadata"] = json_text(sample.metadata)
                    report.written += 1
                    yield row


def _stem(output: str | os.PathLike) -> str:
    p = Path(output)
    return p.name[: -len(p.suffix)] if p.suffix else p.name


def _relative(output: str | os.PathLike, dataset_info: str | os.PathLike | None) -> str:
    base = Path(dataset_info).parent if dataset_info else Path(output).parent
    try:
        return os.path.relpath(Path(output).resolve(), base.resolve())
    except ValueError:  # another drive
        return str(Path(output).resolve())


def registers_dataset_info(fmt: str, layout: str = "trl") -> bool:
    """Whether an export to `fmt` (of `layout` rows, for containers) gets a dataset_info.json entry: LLaMA-Factory
    files, as JSONL or Parquet (it does not read save_to_disk folders)."""
    spec = get(fmt)
    target = get(layout, rows_only=True) if spec.container else spec
    return target.llamafactory and spec.container != "disk"


def read_dataset_info(path: str | os.PathLike) -> dict[str, Any]:
    """The entries of an existing dataset_info.json ({} when there is none); a file we would have to
    overwrite blindly is refused."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a dataset_info.json file")
    if not (p.exists() and p.stat().st_size):
        return {}
    data = p.read_bytes()
    try:
        data.decode("utf-8")
        info = orjson.loads(data)
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                         "refusing to overwrite it") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{p}: not valid JSON ({e}); refusing to overwrite it") from None
    if not isinstance(info, dict):
        raise InputError(f"{p}: expected a JSON object of dataset entries")
    return info


def merge_dataset_info(path: str | os.PathLike, name: str, entry: dict[str, Any]) -> None:
    """Set `name` in dataset_info.json, keeping every other entry (and their order)."""
    p = Path(path)
    info = read_dataset_info(p)
    info[name] = entry
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, p)
