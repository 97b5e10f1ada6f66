"""Hugging Face `datasets` output: save_to_disk folders and Parquet files.

Rows come from one of the JSONL layouts (TRL by default). Arrow gives a column one
type for the whole file, so nested values whose shape differs between rows (tool
schemas, tool-call arguments, whole messages) would be padded with nulls or fail
to load. Those columns use the `Json()` feature (datasets >= 4.8): each value is
stored as JSON text and comes back exactly as written (tools: a list of schemas in
TRL rows, JSON text in LLaMA-Factory rows). With an older `datasets` every such
column is plain JSON text.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

import orjson

from ...core.errors import DialogforgeError

HF_EXTRA_HINT = "exporting to Hugging Face datasets needs the `hf` extra: pip install 'dialogforge[hf]'"

# column -> kind: "json" (any nested value), "json_list" (a list of nested values),
# "str", "bool", "turns" / "turn" (uniform ShareGPT-like dicts), "pairs" (alpaca history)
_TRL = {"messages": "json_list", "prompt": "json_list", "completion": "json_list", "chosen": "json_list",
        "rejected": "json_list", "label": "bool", "tools": "json"}
_OPENAI = {"messages": "json_list", "tools": "json", "input": "json", "preferred_output": "json_list",
           "non_preferred_output": "json_list"}
_SHAREGPT = {"conversations": "turns", "system": "str", "tools": "str", "chosen": "turn", "rejected": "turn",
             "kto_tag": "bool"}
_LF_OPENAI = {"messages": "turns", "tools": "str", "chosen": "turn", "rejected": "turn", "kto_tag": "bool"}
_ALPACA = {"system": "str", "instruction": "str", "input": "str", "output": "str", "chosen": "str",
           "rejected": "str", "kto_tag": "bool", "history": "pairs"}
LAYOUT_COLUMNS = {"trl": _TRL, "openai": _OPENAI, "sharegpt": _SHAREGPT, "lf-openai": _LF_OPENAI, "alpaca": _ALPACA}
TASK_COLUMNS = {
    "trl": {"sft": ["messages"], "prompt-completion": ["prompt", "completion"],
            "preference": ["prompt", "chosen", "rejected"], "kto": ["prompt", "completion", "label"]},
    "openai": {"sft": ["messages"], "preference": ["input", "preferred_output", "non_preferred_output"]},
    "sharegpt": {"sft": ["conversations"], "preference": ["conversations", "chosen", "rejected"],
                 "kto": ["conversations", "kto_tag"]},
    "lf-openai": {"sft": ["messages"], "preference": ["messages", "chosen", "rejected"],
                  "kto": ["messages", "kto_tag"]},
    "alpaca": {"sft": ["instruction", "input", "output"], "preference": ["instruction", "input", "chosen", "rejected"],
               "kto": ["instruction", "input", "output", "kto_tag"]},
}
_OPTIONAL = {"trl": ["tools"], "openai": ["tools"], "sharegpt": ["system", "tools"], "lf-openai": ["tools"],
             "alpaca": ["system", "history"]}


def _datasets():
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise DialogforgeError(HF_EXTRA_HINT) from None
    return datasets


def columns_for(layout: str, task: str, *, with_metadata: bool = False) -> list[str]:
    cols = TASK_COLUMNS[layout][task] + _OPTIONAL[layout]
    return cols + (["metadata"] if with_metadata else [])


def features_for(layout: str, task: str, *, with_metadata: bool = False):
    ds = _datasets()
    has_json = hasattr(ds, "Json")
    string = ds.Value("string")
    role, content = ("from", "value") if layout == "sharegpt" else ("role", "content")
    turn = {role: string, content: string}
    kinds = {**LAYOUT_COLUMNS[layout], "metadata": "str"}
    feats: dict[str, Any] = {}
    for col in columns_for(layout, task, with_metadata=with_metadata):
        k = kinds[col]
        if k == "str":
            feats[col] = string
        elif k == "bool":
            feats[col] = ds.Value("bool")
        elif k == "turns":
            feats[col] = ds.List(turn)
        elif k == "turn":
            feats[col] = turn
        elif k == "pairs":
            feats[col] = ds.List(ds.List(string))
        elif k == "json":
            feats[col] = ds.Json() if has_json else string
        else:  # json_list
            feats[col] = ds.List(ds.Json()) if has_json else string
    return ds.Features(feats), has_json


def _encoder(layout: str, cols: list[str], has_json: bool):
    kinds = LAYOUT_COLUMNS[layout]
    stringify = [] if has_json else [c for c in cols if kinds.get(c) in ("json", "json_list")]

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        out = {c: row.get(c) for c in cols}
        for c in stringify:
            if out[c] is not None:
                out[c] = orjson.dumps(out[c]).decode()
        return out
    return encode


def write_hf(rows: Iterable[dict[str, Any]], out: str | os.PathLike, *, layout: str, task: str,
             parquet: bool, with_metadata: bool = False) -> bool:
    """Stream `rows` into a save_to_disk folder (or one Parquet file) at `out`, one
    record batch at a time: memory stays flat however many rows there are.
    Returns whether the Json feature was available (False: nested columns are text)."""
    ds = _datasets()
    from datasets.arrow_writer import ArrowWriter, ParquetWriter
    features, has_json = features_for(layout, task, with_metadata=with_metadata)
    encode = _encoder(layout, list(features), has_json)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # renamed into place when complete
    try:
        target = tmp / ("data.parquet" if parquet else "data-00000-of-00001.arrow")
        with (ParquetWriter if parquet else ArrowWriter)(features=features, path=str(target)) as w:
            for row in rows:
                w.write(encode(row))
            w.finalize()
        if parquet:
            os.replace(target, out)
            return has_json
        _write_disk_state(ds.Dataset.from_file(str(target)), tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return has_json


def _write_disk_state(data: Any, folder: Path) -> None:
    """The two JSON files `Dataset.save_to_disk` writes beside its Arrow shard, so that
    `datasets.load_from_disk` opens the folder (the shard was written in place, streamed,
    instead of being copied through a memory map)."""
    state = {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_fingerprint": data._fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": None}
    (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    info = asdict(data._info)
    (folder / "dataset_info.json").write_text(json.dumps({k: info[k] for k in sorted(info)}, indent=2),
                                              encoding="utf-8")
