"""Step 2 of `make check-frameworks` (side environment): load every export with LLaMA-Factory 0.9.5's and
TRL 0.24's own data code, offline, with the chat tokenizer built from the embedded model's GGUF file.

For every file: the rows each library yields must equal the rows export wrote (none skipped); every
row's rendered text and trained-token mask must equal the checked-in fixture (fixtures/*.json;
`--update` rewrites them); no tool-call arguments may render as escaped JSON; rows exported with
`train_on: last` must train on their last reply only; TRL's text must equal the chat template applied
to the row as written (what `datasets` loading did to nested columns shows up here). Then one
training step with a tiny randomly initialised model in each library. Writes OUT/result.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

for _k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_k] = "1"
os.environ.setdefault("DISABLE_VERSION_CHECK", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
IGNORE = -100


def build_model(work: Path, gguf: str) -> Path:
    """The GGUF file's tokenizer with our ChatML tool template, and a tiny random Llama that uses it."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    out = work / "tiny-model"
    if (out / "model.safetensors").exists():
        return out
    g = Path(gguf)
    tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = (HERE / "chatml_tools.jinja").read_text(encoding="utf-8")
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def spans(tok, ids: list[int], mask: list[int]) -> dict:
    """The row's text and the trained stretches of it, as text."""
    def text(x: list[int]) -> str:
        return tok.decode(x, clean_up_tokenization_spaces=False)
    trained, run = [], []
    for i, m in zip(ids, mask):
        if m:
            run.append(i)
        elif run:
            trained.append(text(run))
            run = []
    if run:
        trained.append(text(run))
    return {"text": text(ids), "trained": trained}


# ------------------------------------------------------------------------------------ LLaMA-Factory

LF_STAGE = {"sft": "sft", "preference": "rm", "kto": "kto"}


def lf_args(e: dict, work: Path, model: Path, exports: Path, **extra) -> dict:
    return {"model_name_or_path": str(model), "stage": LF_STAGE[e["task"]], "do_train": True,
            "finetuning_type": "full", "dataset": e["name"], "dataset_dir": str(exports), "template": "qwen",
            "cutoff_len": 4096, "overwrite_cache": True, "output_dir": str(work / "lf" / e["name"]),
            "overwrite_output_dir": True, "per_device_train_batch_size": 1, "report_to": "none",
            "mask_history": e["train_on"] == "last", "save_strategy": "no", "use_cpu": True,
            "dataloader_num_workers": 0, "preprocessing_num_workers": None, **extra}


def lf_rows(e: dict, work: Path, model: Path, exports: Path) -> list[dict]:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer
    model_args, data_args, training_args, _, _ = get_train_args(lf_args(e, work, model, exports))
    tm = load_tokenizer(model_args)
    tok = tm["tokenizer"]
    template = get_template_and_fix_tokenizer(tok, data_args)
    ds = get_dataset(template, model_args, data_args, training_args, stage=LF_STAGE[e["task"]], **tm)["train_dataset"]
    out = []
    for row in ds:
        if e["task"] == "preference":
            out.append({k: spans(tok, row[f"{k}_input_ids"], [x != IGNORE for x in row[f"{k}_labels"]])
                        for k in ("chosen", "rejected")})
        else:
            out.append(spans(tok, row["input_ids"], [x != IGNORE for x in row["labels"]]))
            if e["task"] == "kto":
                out[-1]["kto_tag"] = bool(row["kto_tags"])
    return out


def lf_train(e: dict, work: Path, model: Path, exports: Path) -> float:
    from llamafactory.train.tuner import run_exp
    t = time.perf_counter()
    run_exp(lf_args(e, work, model, exports, max_steps=1, logging_steps=1, learning_rate=1e-3))
    return round(time.perf_counter() - t, 1)


# ------------------------------------------------------------------------------------ TRL

def trl_trainer(e: dict, work: Path, model_dir: Path, path: Path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, SFTConfig, SFTTrainer
    ds = load_dataset("json", data_files=str(path), split="train", cache_dir=str(work / "hf-cache"))
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    common = dict(output_dir=str(work / "trl" / e["name"]), max_steps=1, per_device_train_batch_size=1,
                  report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, dataloader_num_workers=0,
                  learning_rate=1e-3)
    if e["task"] == "sft":
        conv = "messages" in ds.column_names
        cfg = SFTConfig(**common, max_length=4096, assistant_only_loss=conv, dataset_num_proc=None)
        return tok, ds, SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    if e["task"] == "preference":  # DPO renders the config's tools, not the rows' (what export's note says)
        rows_tools = [json.loads(line).get("tools") for line in path.read_text(encoding="utf-8").splitlines()]
        shared = rows_tools[0] if rows_tools and all(t == rows_tools[0] for t in rows_tools) else None
        cfg = DPOConfig(**common, max_length=4096, dataset_num_proc=None, tools=shared)
        return tok, ds, DPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    common["per_device_train_batch_size"] = 2  # KTO's KL term needs more than one row per batch
    cfg = KTOConfig(**common, max_length=4096, dataset_num_proc=None, desirable_weight=1.0, undesirable_weight=1.0)
    return tok, ds, KTOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)


def trl_rows(e: dict, tok, trainer) -> list[dict]:
    out = []
    for row in trainer.train_dataset:
        if e["task"] == "sft":
            mask = row.get("completion_mask") or row.get("assistant_masks")
            out.append(spans(tok, row["input_ids"], mask))
        elif e["task"] == "preference":
            p = row["prompt_input_ids"]
            out.append({k: spans(tok, p + row[f"{k}_input_ids"], [0] * len(p) + [1] * len(row[f"{k}_input_ids"]))
                        for k in ("chosen", "rejected")})
        else:
            p, c = row["prompt_input_ids"], row["completion_input_ids"][len(row["prompt_input_ids"]):] \
                if row["completion_input_ids"][: len(row["prompt_input_ids"])] == row["prompt_input_ids"] \
                else row["completion_input_ids"]
            out.append({**spans(tok, p + c, [0] * len(p) + [1] * len(c)), "label": bool(row["label"])})
    return out


def trl_expected(tok, path: Path, task: str) -> list[str]:
    """The chat template applied to each row as export wrote it (read with json, not datasets); for
    preference rows, to the prompt and the chosen reply."""
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        tools = row.get("tools")
        if isinstance(tools, str):
            tools = json.loads(tools)
        msgs = row["messages"] if "messages" in row else row["prompt"] + row.get("completion", row.get("chosen", []))
        texts.append(tok.apply_chat_template(msgs, tools=tools, tokenize=False))
    return texts


# ------------------------------------------------------------------------------------ checks

def check_rows(e: dict, lib: str, rows: list[dict], update: bool) -> list[str]:
    problems = []
    if len(rows) != e["written"]:
        problems.append(f"{lib} yields {len(rows)} rows, export wrote {e['written']}")
    for i, r in enumerate(rows):
        for part in ([r] if "text" in r else [r["chosen"], r["rejected"]]):
            if '\\"' in part["text"]:
                problems.append(f"{lib} row {i}: escaped JSON in the rendered text")
            if not part["trained"]:
                problems.append(f"{lib} row {i}: no trained tokens")
            if e["train_on"] == "last" and e["task"] == "sft" and len(part["trained"]) != 1:
                problems.append(f"{lib} row {i}: {len(part['trained'])} trained stretches; a per-turn row trains "
                                "on its last reply only")
    fixture = FIXTURES / f"{lib}__{e['name']}.json"
    if update:
        fixture.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    elif not fixture.exists():
        problems.append(f"no fixture {fixture.name} (run with --update and review it)")
    else:
        want = json.loads(fixture.read_text(encoding="utf-8"))
        for i, (got, exp) in enumerate(zip(rows, want)):
            if got != exp:
                problems.append(f"{lib} row {i} differs from {fixture.name}")
                break
        if len(want) != len(rows):
            problems.append(f"{lib}: {len(rows)} rows, fixture {fixture.name} has {len(want)}")
    return problems


def run(out: Path, update: bool, train: bool) -> dict:
    import datasets
    import llamafactory
    import transformers
    import trl
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    exports, work = out / "exports", out / "work"
    work.mkdir(parents=True, exist_ok=True)
    model = build_model(work, manifest["gguf"])
    result = {"versions": {"llamafactory": llamafactory.__version__, "trl": trl.__version__,
                           "transformers": transformers.__version__, "datasets": datasets.__version__},
              "files": [], "training": {}}
    for e in manifest["exports"]:
        for lib in e["libraries"]:
            entry = {"file": e["file"], "library": lib, "task": e["task"], "written": e["written"],
                     "train_on": e["train_on"]}
            try:
                if lib == "llamafactory":
                    rows = lf_rows(e, work, model, exports)
                else:
                    tok, _, trainer = trl_trainer(e, work, model, exports / e["file"])
                    rows = trl_rows(e, tok, trainer)
                    if e["task"] in ("sft", "preference"):
                        for i, (r, want) in enumerate(zip(rows, trl_expected(tok, exports / e["file"], e["task"]))):
                            got = r["text"] if e["task"] == "sft" else r["chosen"]["text"]
                            if not (got == want or got == want + tok.eos_token):  # DPO appends an EOS token
                                entry["expected_text"], entry["got_text"] = want, got
                                entry.setdefault("problems", []).append(
                                    f"trl row {i}: text differs from the template applied to the row as written")
                                break
                entry["loaded"] = len(rows)
                entry.setdefault("problems", []).extend(check_rows(e, lib, rows, update))
            except Exception as ex:  # a library that refuses the file is a result, recorded with its reason
                entry["loaded"] = 0
                entry["problems"] = [f"{type(ex).__name__}: {ex}".splitlines()[0][:300]]
                entry["traceback"] = traceback.format_exc()[-2000:]
            entry["ok"] = not entry["problems"]
            print(f"{'[ok]  ' if entry['ok'] else '[FAIL]'} {lib:12} {e['file']:28} rows {entry['loaded']}/{e['written']}"
                  + ("" if entry["ok"] else f"  {entry['problems'][0]}"), flush=True)
            result["files"].append(entry)
    if train:
        for lib, name in (("llamafactory", "lf_agent_sharegpt"), ("trl", "trl_agent")):
            e = next(x for x in manifest["exports"] if x["name"] == name)
            try:
                if lib == "llamafactory":
                    secs = lf_train(e, work, model, exports)
                else:
                    t = time.perf_counter()
                    _, _, trainer = trl_trainer(e, work, model, exports / e["file"])
                    trainer.train()
                    secs = round(time.perf_counter() - t, 1)
                result["training"][lib] = {"file": e["file"], "ok": True, "seconds": secs}
            except Exception as ex:
                result["training"][lib] = {"file": e["file"], "ok": False, "error": f"{type(ex).__name__}: {ex}"[:300],
                                           "traceback": traceback.format_exc()[-2000:]}
            print(f"train step {lib}: {result['training'][lib]}", flush=True)
    result["ok"] = all(f["ok"] for f in result["files"]) and all(t["ok"] for t in result["training"].values())
    (out / "result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--update", action="store_true", help="rewrite the fixtures from this run (review the diff)")
    ap.add_argument("--no-train", action="store_true")
    a = ap.parse_args()
    res = run(a.out, a.update, not a.no_train)
    print("check-frameworks:", "PASSED" if res["ok"] else "FAILED", "-", a.out / "result.json")
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
