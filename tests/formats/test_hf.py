"""Exports loaded with the real `datasets` library: every row loads, tool schemas intact."""
from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest

from dialogforge.engine.errors import DialogforgeError
from dialogforge.formats import export
from formats_samples import agent_sample, persona_dialogue, preference_record, read_jsonl, write_jsonl

datasets = pytest.importorskip("datasets")


@pytest.fixture
def varied(tmp_path: Path) -> Path:
    """Rows whose tool schemas and arguments differ in shape from row to row."""
    odd = agent_sample(7)
    odd["tools"] = [{"type": "function", "function": {"name": "bash", "parameters": {
        "type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"}}}}}]
    odd["messages"][2]["tool_calls"][0]["function"]["arguments"] = '{"command": "ls", "timeout": 5}'
    return write_jsonl(tmp_path / "varied.jsonl", [agent_sample(0), agent_sample(1, parallel=True), odd,
                                                   persona_dialogue(0), preference_record(2)])


def _load_json(path: Path, tmp_path: Path):
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))


def _drop_nulls(v):
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


@pytest.mark.parametrize("fmt", ["sharegpt", "lf-openai", "alpaca", "trl", "openai"])
def test_jsonl_exports_load_with_zero_skipped_rows(fmt: str, varied: Path, tmp_path: Path):
    out = tmp_path / f"{fmt}.jsonl"
    r = export(varied, out, fmt, train_on="all")
    ds = _load_json(out, tmp_path)
    assert ds.num_rows == r.written == len(read_jsonl(out))
    written = read_jsonl(out)
    if fmt in ("sharegpt", "lf-openai"):  # tools travel as JSON text: loaded exactly as written
        assert ds["tools"] == [row.get("tools") for row in written]
    if fmt == "trl":  # a list of schemas (what TRL 0.24 takes); older `datasets` pad schemas with nulls
        assert [_drop_nulls(t) for t in ds["tools"]] == [row.get("tools") for row in written]
        text = export(varied, tmp_path / "text.jsonl", fmt, train_on="all", tools_as_list=False)
        assert text.written == r.written
        assert _load_json(tmp_path / "text.jsonl", tmp_path)["tools"] == [
            row.get("tools") for row in read_jsonl(tmp_path / "text.jsonl")]
    if fmt in ("trl", "openai"):  # heterogeneous messages load as Json: no null-padded arguments
        assert ds["messages"] == [row["messages"] for row in written]


@pytest.mark.parametrize("target", ["hf", "parquet"])
def test_hf_output_keeps_nested_tool_data_exact(target: str, varied: Path, tmp_path: Path):
    ref = tmp_path / "trl.jsonl"
    export(varied, ref, "trl", train_on="all")
    out = tmp_path / ("ds" if target == "hf" else "train.parquet")
    r = export(varied, out, target, train_on="all")
    assert r.json_features is True
    if target == "hf":
        ds = datasets.load_from_disk(str(out))
    else:
        ds = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "c"))
    expected = read_jsonl(ref)
    assert ds.num_rows == len(expected) == r.written
    for got, want in zip(ds, expected):
        assert got["messages"] == want["messages"]  # no null-padded keys, arguments still objects
        assert got["tools"] == want.get("tools")
    args = [m["tool_calls"][0]["function"]["arguments"] for row in ds for m in row["messages"] if m.get("tool_calls")]
    assert {"command": "ls", "timeout": 5} in args and {"command": "grep -n median stats_0.py"} in args


def test_hf_layouts_for_preference_and_sharegpt(varied: Path, tmp_path: Path):
    pref = write_jsonl(tmp_path / "p.jsonl", [preference_record(i) for i in range(4)])
    out = tmp_path / "dpo"
    export(pref, out, "hf", task="preference")
    ds = datasets.load_from_disk(str(out))
    assert ds.column_names[:3] == ["prompt", "chosen", "rejected"] and ds[1]["chosen"][0]["content"] == "2."
    out = tmp_path / "sg.parquet"
    r = export(varied, out, "parquet", layout="sharegpt")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "c"))
    assert ds.num_rows == r.written and ds[0]["conversations"][1]["from"] == "function_call"
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["sg"]
    assert entry["file_name"] == "sg.parquet" and entry["formatting"] == "sharegpt"


def test_hf_without_the_extra_names_it(varied: Path, tmp_path: Path, monkeypatch):
    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets" or name.startswith("datasets."):
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DialogforgeError, match=r"dialogforge\[hf\]"):
        export(varied, tmp_path / "x", "hf")
