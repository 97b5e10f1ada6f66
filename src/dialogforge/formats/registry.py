"""The one table of training formats: `export`, `validate` and the CLI help all read it.

A format is a row layout with a writer (Conversation -> rows) and rules (a row -> its
problems); `hf` and `parquet` are containers that hold rows of one of the JSONL layouts.
Writers and rules are named `module:attribute` and imported on first use, so reading the
table (e.g. for `--help`) stays cheap. A new format is one `FormatSpec` added here plus
its writer and rules modules; nothing else branches on format names.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..core.errors import InputError


@dataclass(frozen=True, slots=True)
class FormatSpec:
    name: str
    family: str  # who loads it: LLaMA-Factory, TRL, OpenAI, Hugging Face datasets
    summary: str
    tasks: tuple[str, ...]
    writer: str | None = None  # "module:Class" of its Writer (None: a container of --layout rows)
    rules: str | None = None  # "module:factory", factory(task, lf_spec) -> object with .check(row)
    task_of: str | None = None  # "module:function", function(row) -> the task a row's shape says
    llamafactory: bool = False  # writes a dataset_info.json entry; --dataset-info applies
    writer_options: tuple[str, ...] = ()  # export keyword options only this writer takes
    extra_keys: bool = True  # accepts extra row keys (--with-metadata)
    container: str | None = None  # "disk" (save_to_disk folder) | "parquet": holds rows of a --layout

    def writer_class(self) -> Any:
        return _load(self.writer) if self.writer else None

    def rules_factory(self) -> Callable[..., Any]:
        if not self.rules:
            raise InputError(f"{self.name} is a container format; validate its rows' layout instead")
        return _load(self.rules)

    def infer_task(self, row: dict[str, Any]) -> str:
        return _load(self.task_of)(row) if self.task_of else "sft"


_W, _R = "dialogforge.formats.writers", "dialogforge.formats.rules"
_SFT_PAIR_KTO = ("sft", "preference", "kto")
_LF_TASK = f"{_R}.llamafactory:task_of"
FORMATS: dict[str, FormatSpec] = {}


def register(spec: FormatSpec) -> FormatSpec:
    """Add (or replace) a format; plugins call this at import."""
    FORMATS[spec.name] = spec
    return spec


for _spec in (
    FormatSpec("sharegpt", "LLaMA-Factory", "ShareGPT conversations (from/value tags)", _SFT_PAIR_KTO,
               f"{_W}.llamafactory:ShareGPTWriter", f"{_R}.llamafactory:sharegpt_rules", _LF_TASK, llamafactory=True),
    FormatSpec("lf-openai", "LLaMA-Factory", "OpenAI-style messages read as ShareGPT (role/content)", _SFT_PAIR_KTO,
               f"{_W}.llamafactory:LFOpenAIWriter", f"{_R}.llamafactory:lf_openai_rules", _LF_TASK, llamafactory=True),
    FormatSpec("alpaca", "LLaMA-Factory", "instruction/input/output with history pairs", _SFT_PAIR_KTO,
               f"{_W}.llamafactory:AlpacaWriter", f"{_R}.llamafactory:alpaca_rules", _LF_TASK, llamafactory=True),
    FormatSpec("trl", "TRL", "messages, prompt/completion, prompt/chosen/rejected, KTO label",
               ("sft", "prompt-completion", "preference", "kto"), f"{_W}.chat:TRLWriter", f"{_R}.chat:TRLRules",
               f"{_R}.chat:trl_task", writer_options=("tools_as_list", "tool_prompts")),
    FormatSpec("openai", "OpenAI", "fine-tuning files (chat, DPO)", ("sft", "preference"),
               f"{_W}.chat:OpenAIWriter", f"{_R}.chat:OpenAIRules", f"{_R}.chat:openai_task",
               extra_keys=False),
    FormatSpec("hf", "Hugging Face datasets", "save_to_disk folder of --layout rows",
               ("sft", "prompt-completion", "preference", "kto"), container="disk"),
    FormatSpec("parquet", "Hugging Face datasets", "one Parquet file of --layout rows",
               ("sft", "prompt-completion", "preference", "kto"), container="parquet"),
):
    register(_spec)


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def get(name: str, *, rows_only: bool = False) -> FormatSpec:
    """The format called `name`; InputError listing the choices otherwise."""
    spec = FORMATS.get(name)
    if spec is None or (rows_only and spec.container):
        choices = row_formats() if rows_only else list(FORMATS)
        raise InputError(f"unknown format {name!r} (choose from {', '.join(choices)})")
    return spec


def row_formats() -> list[str]:
    """Formats whose files hold rows directly (what validate and --layout take)."""
    return [n for n, s in FORMATS.items() if not s.container]


def help_text(*, rows_only: bool = False) -> str:
    """'sharegpt | lf-openai | alpaca (LLaMA-Factory), trl (TRL), ...' for --help."""
    groups: dict[str, list[str]] = {}
    for n, s in FORMATS.items():
        if not (rows_only and s.container):
            groups.setdefault(s.family, []).append(n)
    return ", ".join(f"{' | '.join(names)} ({family})" for family, names in groups.items())
