"""Step 1 of `make check-frameworks` (project venv): a corpus with every kind of row, exported to
every format and task. Writes OUT/exports/* (+ dataset_info.json) and OUT/manifest.json.

Kinds of row: multi-turn dialogues in English, Korean and Chinese; per-turn agent samples with
tool calls (one call, parallel calls, a schema-typed argument spelled as a string); a preference
pair whose prompt ends with a tool result; plain preference pairs; KTO rows; and broken rows
(not JSON, an empty reply mid-dialogue, a dialogue ending on the user, arguments whose types
cannot be reconciled), which export must refuse with their reasons.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dialogforge.formats import Selection, export

SHELL = {"type": "function", "function": {"name": "shell", "description": "Run a shell command in the repo.",
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}, "timeout": {"type": "integer"}},
                        "required": ["cmd"]}}}
READ = {"type": "function", "function": {"name": "read_file", "description": "Read a file of the repo.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}
TOOLS = [SHELL, READ]
SYSTEM_AGENT = "You fix bugs in small Python repositories. Call one tool at a time unless calls are independent."


def dialogue(i: int, system: str, turns: list[tuple[str, str]], **meta) -> dict:
    msgs = []
    for q, a in turns:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return {"id": f"d{i}", "system": system, "messages": msgs, "persona": "guide", "passed": True, **meta}


DIALOGUES = [
    dialogue(0, "You are a patient museum guide.", [
        ("Who painted the ceiling of the chapel?", "Michelangelo painted it between 1508 and 1512."),
        ("Did he enjoy the work?", "Not at first: he saw himself as a sculptor and found fresco painting hard."),
        ("How long did it take?", "About four years, most of it standing on scaffolding he designed himself.")]),
    dialogue(1, "당신은 친절한 박물관 해설사입니다.", [
        ("이 도자기는 언제 만들어졌나요?", "고려 시대, 대략 12세기에 만들어진 청자예요."),
        ("색이 왜 이렇게 푸른가요?", "유약 속의 철분이 가마 안에서 환원되면서 비색이라 불리는 푸른빛이 나요.")]),
    dialogue(2, "你是一位耐心的博物馆讲解员。", [
        ("这幅画是谁画的？", "这是宋代画家张择端的作品。"),
        ("画里有多少人？", "画中大约有八百多个人物，各行各业都有。")]),
]
BROKEN_DIALOGUES = [
    dialogue(3, "You are a guide.", [("First question?", ""), ("Second question?", "An answer.")]),  # empty reply
    {"id": "d4", "messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hi."},
                              {"role": "user", "content": "Are you there?"}]},  # ends on the user
]


def call(cid: str, name: str, args: dict | str) -> dict:
    return {"id": cid, "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}


def agent_rollout(repeat: int, reward: float) -> list[dict]:
    """Per-turn samples of one rollout: each row is the exact input of a call plus its reply."""
    task = {"role": "user", "content": "tests/test_dates.py fails: parse_day('2024-02-30') should raise. Fix it."}
    a1 = {"role": "assistant", "content": "Let me run the failing test first.",
          "tool_calls": [call("c1", "shell", {"cmd": "pytest -q tests/test_dates.py", "timeout": "60"})]}
    r1 = {"role": "tool", "tool_call_id": "c1", "content": "FAILED test_invalid_day - DID NOT RAISE ValueError"}
    a2 = {"role": "assistant", "content": None,
          "tool_calls": [call("c2", "read_file", {"path": "dates.py"}),
                         call("c3", "shell", {"cmd": "grep -n parse_day -r .", "timeout": 30})]}
    r2 = [{"role": "tool", "tool_call_id": "c2", "content": "def parse_day(s):\n    y, m, d = map(int, s.split('-'))"},
          {"role": "tool", "tool_call_id": "c3", "content": "dates.py:1:def parse_day(s):"}]
    a3 = {"role": "assistant", "content": "parse_day now builds a datetime.date, which raises ValueError for "
                                          "February 30; the test passes." if reward else "I could not fix it."}
    head = [{"role": "system", "content": SYSTEM_AGENT}, task]
    inputs = [(head, a1), (head + [a1, r1], a2), (head + [a1, r1, a2, *r2], a3)]
    base = {"instance": "dates", "repeat": repeat, "round": 0, "purpose": "main", "reward": reward,
            "success": bool(reward), "run": "check", "tools": TOOLS}
    return [{"id": f"dates#{repeat}/{k}", "messages": [*msgs, reply], "sample_index": k, "step": k,
             "format_error": False, **base} for k, (msgs, reply) in enumerate(inputs)]


def format_error_sample() -> dict:
    row = agent_rollout(0, 1.0)[0]
    return {**row, "id": "dates#0/err", "sample_index": 9,
            "messages": row["messages"][:-1] + [{"role": "assistant", "content": "I think I should run it maybe"}],
            "format_error": True}


def mixed_args_sample() -> dict:
    """`depth` has no schema type to coerce to: 3 in one row and "deep" here cannot share a column."""
    row = agent_rollout(0, 1.0)[0]
    ok = json.loads(json.dumps(row))
    ok["id"], ok["sample_index"] = "dates#0/depth-ok", 10
    ok["messages"][-1]["tool_calls"] = [call("c9", "read_file", {"path": "a.py", "depth": 3})]
    bad = json.loads(json.dumps(ok))
    bad["id"], bad["sample_index"] = "dates#0/depth-bad", 11
    bad["messages"][-1]["tool_calls"] = [call("c9", "read_file", {"path": "b.py", "depth": "deep"})]
    return [ok, bad]


def pairs() -> list[dict]:
    good, bad = agent_rollout(0, 1.0), agent_rollout(1, 0.0)
    tool_last = {"id": "dates@pair", "messages": good[2]["messages"][:-1], "chosen": [good[2]["messages"][-1]],
                 "rejected": [bad[2]["messages"][-1]], "tools": TOOLS, "instance": "dates", "round": 0}
    first_call = {"id": "dates@pair0", "messages": good[0]["messages"][:-1], "chosen": [good[0]["messages"][-1]],
                  "rejected": [{"role": "assistant", "content": "The bug is probably somewhere in dates.py."}],
                  "tools": TOOLS, "instance": "dates", "round": 0}
    plain = [{"id": f"p{i}", "prompt": [{"role": "system", "content": "Answer in one sentence."},
                                        {"role": "user", "content": q}],
              "chosen": [{"role": "assistant", "content": c}], "rejected": [{"role": "assistant", "content": r}]}
             for i, (q, c, r) in enumerate([
                 ("What does HTTP 404 mean?", "The server found nothing at that address.", "It means success."),
                 ("김치는 어떻게 발효되나요?", "유산균이 채소의 당을 젖산으로 바꾸며 발효돼요.", "발효되지 않아요."),
                 ("茶叶为什么要杀青？", "杀青用高温停止酶的活动，保留绿色和香气。", "为了让茶变黑。")])]
    return [tool_last, first_call, *plain]


def kto_rows() -> list[dict]:
    rows = []
    for i, (q, a, ok) in enumerate([("Name a prime number above 10.", "Eleven.", True),
                                    ("Name a prime number above 10.", "Fifteen.", False),
                                    ("서울은 어느 나라의 수도인가요?", "대한민국의 수도예요.", True)]):
        rows.append({"id": f"k{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                     "label": ok})
    return rows


def write(path: Path, rows: list) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


# (output name, input, format, task, export options, which libraries load it)
EXPORTS = [
    ("lf_dialogues_sharegpt", "dialogues", "sharegpt", "sft", {}, ["llamafactory"]),
    ("lf_dialogues_alpaca", "dialogues", "alpaca", "sft", {}, ["llamafactory"]),
    ("lf_agent_sharegpt", "agent", "sharegpt", "sft", {}, ["llamafactory"]),
    ("lf_agent_lf_openai", "agent", "lf-openai", "sft", {}, ["llamafactory"]),
    ("lf_pairs_sharegpt", "pairs", "sharegpt", "preference", {}, ["llamafactory"]),
    ("lf_pairs_alpaca", "pairs", "alpaca", "preference", {}, ["llamafactory"]),
    ("lf_kto_sharegpt", "kto", "sharegpt", "kto", {}, ["llamafactory"]),
    ("trl_dialogues", "dialogues", "trl", "sft", {}, ["trl"]),
    ("trl_agent", "agent", "trl", "sft", {}, ["trl"]),
    ("trl_agent_all", "agent", "trl", "sft", {"train_on": "all"}, ["trl"]),
    ("trl_pairs", "pairs_plain", "trl", "preference", {}, ["trl"]),
    ("trl_pairs_tools", "pairs_tools", "trl", "preference", {}, ["trl"]),
    ("trl_kto", "kto", "trl", "kto", {}, ["trl"]),
    ("openai_agent", "agent", "openai", "sft", {}, []),
]


def main(out: Path) -> None:
    src, exp = out / "inputs", out / "exports"
    src.mkdir(parents=True, exist_ok=True)
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "dataset_info.json").unlink(missing_ok=True)
    inputs = {
        "dialogues": write(src / "dialogues.jsonl", DIALOGUES + BROKEN_DIALOGUES + ["{not json"]),
        "agent": write(src / "agent_samples.jsonl", agent_rollout(0, 1.0) + [format_error_sample()]
                       + mixed_args_sample()),
        "pairs": write(src / "pairs.jsonl", pairs()),
        "pairs_plain": write(src / "pairs_plain.jsonl", [p for p in pairs() if "tools" not in p]),
        "pairs_tools": write(src / "pairs_tools.jsonl", [p for p in pairs() if "tools" in p]),
        "kto": write(src / "kto.jsonl", kto_rows()),
    }
    from dialogforge.engine.backends.embedded import default_model_path
    manifest: dict = {"gguf": default_model_path(), "exports": []}
    for name, inp, fmt, task, opts, libs in EXPORTS:
        r = export(inputs[inp], exp / f"{name}.jsonl", fmt, task=task, selection=Selection(), dataset_name=name,
                   **opts)
        manifest["exports"].append({"name": name, "file": f"{name}.jsonl", "format": fmt, "task": task,
                                    "written": r.written, "train_on": r.train_on, "libraries": libs,
                                    "rejected": dict(r.rejected), "skipped": dict(r.skipped)})
        print(f"{name:24} {fmt:9} {task:11} written {r.written:2}  rejected {dict(r.rejected)}  "
              f"skipped {dict(r.skipped)}  train_on {r.train_on}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/check-frameworks"))
