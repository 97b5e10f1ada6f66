"""Which replies a training row trains on, and how each trainer is told.

Agent SFT samples are one row per model call, each carrying its exact input, so every
earlier reply of a rollout is in the prompt of every later row. Training on all of them
would train each early reply once per later row; per-turn rows therefore train on their
last reply only, whole conversations on every reply once (`train_on`):

- TRL: `last` writes SFT rows as prompt + completion (the loss covers the completion);
- OpenAI: `last` gives every earlier assistant message `"weight": 0`;
- LLaMA-Factory: its only switch is the training argument `mask_history: true`; export
  prints it, writes it into the dataset_info.json entry's description and into a README
  beside the data.

`auto` (the default) chooses `last` when the first selected record is a per-turn sample
(an agent call with `sample_index`, or a `--per-turn` split) and `all` otherwise. Any
workflow whose rows are per-turn (the proactive trainset) passes `train_on="last"`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..core.records import meta as metafield
from ..core.rows import iter_lines
from .conversation import Conversation, ConversionError
from .readers import read_record

TRAIN_ON_CHOICES = ("auto", "last", "all")
MASK_HISTORY = "mask_history: true"


def is_per_turn(conv: Conversation) -> bool:
    return metafield(conv.metadata, "sample_index") is not None or metafield(conv.metadata, "turn") is not None


def resolve_train_on(train_on: str, paths: Iterable[str | os.PathLike], *, per_turn_split: bool = False) -> str:
    """`last` or `all`; `auto` looks at the first readable record."""
    if train_on not in TRAIN_ON_CHOICES:
        raise ValueError(f"train_on must be one of {', '.join(TRAIN_ON_CHOICES)}, not {train_on!r}")
    if train_on != "auto":
        return train_on
    if per_turn_split:
        return "last"
    for path in paths:
        for line in iter_lines(path):
            if line.record is None:
                continue
            try:
                return "last" if is_per_turn(read_record(line.record)) else "all"
            except ConversionError:
                continue
    return "all"


def trainer_note(family: str, task: str, train_on: str, *, tools: bool = False) -> str | None:
    """The one setting the trainer needs for the targets to be right, or None."""
    if family == "TRL" and tools and task == "preference":
        return ("TRL 0.24's DPOTrainer renders the tools of DPOConfig(tools=[...]), not the rows' `tools` column: "
                "pass the schemas there (one list for the whole file)")
    if family == "TRL" and tools and task == "kto":
        return "TRL 0.24's KTOTrainer renders no tool schemas; the rows' `tools` column is not used"
    if task != "sft":
        return None
    if family == "LLaMA-Factory":
        if train_on == "last":
            return (f"train with `{MASK_HISTORY}`: each row is one agent turn whose earlier replies are context; "
                    "without it LLaMA-Factory trains every earlier reply again in every later row")
        return "train with `mask_history: false` (the default): every assistant reply of a row is a target"
    if family == "TRL":
        if train_on == "last":
            return "rows are prompt + completion: TRL's SFTTrainer trains on the completion (the last reply) only"
        return ("rows are whole conversations: set `assistant_only_loss=True` in SFTConfig to train on the "
                "assistant replies only (the chat template needs generation markers)")
    if family == "OpenAI" and train_on == "last":
        return "earlier assistant messages carry \"weight\": 0, so only the last reply of each row is trained"
    return None


def write_readme(output: str | os.PathLike, *, fmt: str, family: str, task: str, train_on: str, written: int,
                 dataset_name: str | None, note: str | None) -> Path:
    """A short README beside the exported data saying what it is and how to train on it."""
    out = Path(output)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    path = out.with_name(f"{stem}.README.md")
    targets = "the last assistant reply of each row" if train_on == "last" else "every assistant reply"
    lines = [f"# {out.name}", "", f"- format: {fmt} ({family}), task: {task}, rows: {written}",
             f"- training targets: {targets} (`dialogforge export --train-on {train_on}`)"]
    if dataset_name:
        lines.append(f"- LLaMA-Factory dataset name: `{dataset_name}` (see dataset_info.json)")
    if note:
        lines += ["", "## Training setting", "", note[0].upper() + note[1:] + "."]
        if MASK_HISTORY in note:
            lines += ["", "```yaml", f"dataset: {dataset_name or stem}", MASK_HISTORY, "```"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
