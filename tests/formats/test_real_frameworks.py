"""Exports run through the frameworks' own data code, when it is installed.

Not in the test extra (LLaMA-Factory and TRL pull in torch); to run these:
    .venv/bin/pip install --no-deps llamafactory trl && .venv/bin/pip install transformers tokenizers
LLaMA-Factory's parser, converter and formatters are loaded from the installed package
with its torch/transformers/peft-only modules (extras.constants, extras.misc) replaced
by two constants; the rest is its real code. TRL's `apply_chat_template` (key checks,
last-role check, prompt-prefix check) runs with a ChatML tool template that refuses
JSON-text arguments.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialogforge.formats import Selection, export
from formats_samples import agent_sample, persona_dialogue, preference_record, write_jsonl

datasets = pytest.importorskip("datasets")


def _rows(tmp_path: Path) -> tuple[Path, Path]:
    rows = [agent_sample(i, parallel=i % 2 == 1) for i in range(6)] + [persona_dialogue(i) for i in range(6)]
    return (write_jsonl(tmp_path / "src.jsonl", rows),
            write_jsonl(tmp_path / "pref.jsonl", [preference_record(i) for i in range(5)]))


def _llamafactory():
    spec = importlib.util.find_spec("llamafactory")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llamafactory is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    saved = {k: v for k, v in sys.modules.items() if k == "llamafactory" or k.startswith("llamafactory.")}
    for name, sub in (("llamafactory", ""), ("llamafactory.extras", "extras"), ("llamafactory.data", "data")):
        m = types.ModuleType(name)
        m.__path__ = [str(root / sub)]
        sys.modules[name] = m
    const = types.ModuleType("llamafactory.extras.constants")
    const.DATA_CONFIG, const.RUNNING_LOG = "dataset_info.json", "running_log.txt"
    misc = types.ModuleType("llamafactory.extras.misc")
    misc.use_modelscope = misc.use_openmind = lambda: False
    sys.modules.update({"llamafactory.extras.constants": const, "llamafactory.extras.misc": misc})
    try:
        mods = [importlib.import_module(f"llamafactory.data.{n}") for n in ("converter", "parser", "formatter")]
    except ImportError as e:
        pytest.skip(f"llamafactory's data modules need more than is installed: {e}")
    finally:
        for k in [k for k in sys.modules if k == "llamafactory" or k.startswith("llamafactory.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return mods


def test_llamafactory_trains_on_every_exported_row(tmp_path: Path):
    converter, parser, formatter = _llamafactory()
    src, pref = _rows(tmp_path)
    for fmt in ("sharegpt", "lf-openai", "alpaca"):
        export(src, tmp_path / f"{fmt}_sft.jsonl", fmt)
        export(src, tmp_path / f"{fmt}_turns.jsonl", fmt, selection=Selection(per_turn=True))
        export(pref, tmp_path / f"{fmt}_dpo.jsonl", fmt, task="preference")
        export(pref, tmp_path / f"{fmt}_kto.jsonl", fmt, task="kto")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    calls = formatter.FunctionFormatter(slots=["{{content}}"], tool_format="qwen")
    tools = formatter.ToolFormatter(tool_format="qwen")
    for name, entry in info.items():
        [attr] = parser.get_dataset_list([name], str(tmp_path))
        ds = datasets.load_dataset("json", data_files=str(tmp_path / attr.dataset_name), split="train",
                                   cache_dir=str(tmp_path / "cache"))
        conv = converter.get_dataset_converter(attr.formatting, attr, SimpleNamespace(media_dir=str(tmp_path)))
        pairwise = entry.get("ranking") or "kto_tag" in entry["columns"]
        for ex in ds:
            out = conv(ex)
            prompt, response = out["_prompt"], out["_response"]
            assert len(prompt) % 2 == 1 and (len(response) >= 2 if pairwise else len(response) == 1), (name, ex)
            for m in prompt + response:
                if m["role"] == "function":
                    calls.apply(content=m["content"])
            if out["_tools"]:
                tools.apply(content=out["_tools"])


CHATML_TOOLS = r"""{%- if messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>{% endif %}<|im_end|>
{% endif %}{%- for m in messages %}{%- if m.role == 'user' %}<|im_start|>user
{{ m.content }}<|im_end|>
{% elif m.role == 'assistant' %}<|im_start|>assistant
{{ m.content or '' }}{% for tc in m.tool_calls or [] %}{% if tc.function.arguments is string %}{{ raise_exception('arguments are JSON text') }}{% endif %}<tool_call>{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}</tool_call>{% endfor %}<|im_end|>
{% elif m.role == 'tool' %}<|im_start|>user
<tool_response>{{ m.content }}</tool_response><|im_end|>
{% endif %}{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def test_trl_renders_every_exported_row(tmp_path: Path):
    data_utils = pytest.importorskip("trl.data_utils")
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    t = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[UNK]")
    t.chat_template = CHATML_TOOLS
    src, pref = _rows(tmp_path)
    files = {"sft": (src, None), "prompt-completion": (src, Selection(per_turn=True)),
             "preference": (pref, None), "kto": (pref, None)}
    for task, (path, sel) in files.items():
        out = tmp_path / f"trl_{task}.jsonl"
        r = export(path, out, "trl", task=task, selection=sel)
        assert r.written and not r.rejected
        for line in out.read_text(encoding="utf-8").splitlines():
            ex = json.loads(line)
            tools = ex.pop("tools", None)
            tools = json.loads(tools) if isinstance(tools, str) else tools
            assert data_utils.is_conversational(ex)
            data_utils.apply_chat_template(ex, t, tools=tools)
