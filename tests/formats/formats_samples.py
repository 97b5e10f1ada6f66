"""Records shaped like our workflows' outputs, and small file helpers (imported by the tests)."""
from __future__ import annotations

import json
from pathlib import Path

BASH_TOOL = {"type": "function", "function": {
    "name": "bash", "description": "Run one shell command in the task folder.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
FIND_TOOL = {"type": "function", "function": {
    "name": "find_symbol", "description": "Locate a symbol.",
    "parameters": {"type": "object", "properties": {"name": {"type": "string"}, "kind": {"enum": ["fn", "class"]}}}}}


def agent_sample(i: int = 0, *, purpose: str = "main", reward: float = 1.0, success: bool = True,
                 round_: int = 0, parallel: bool = False) -> dict:
    call = {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": json.dumps(
        {"command": f"grep -n median stats_{i}.py"})}}
    calls = [call]
    results = [{"role": "tool", "tool_call_id": f"c{i}", "content": f"12: def median(xs):  # file {i}"}]
    if parallel:
        calls.append({"id": f"d{i}", "type": "function", "function": {"name": "find_symbol",
                                                                      "arguments": '{"name": "mean", "kind": "fn"}'}})
        results.append({"role": "tool", "tool_call_id": f"d{i}", "content": "stats.py:30"})
    return {
        "id": f"median@r{round_}#0/{i}",
        "messages": [
            {"role": "system", "content": "You repair small Python projects."},
            {"role": "user", "content": f"The median in stats_{i}.py is wrong for even lengths. Fix it."},
            {"role": "assistant", "content": "I will look at the function first.", "tool_calls": calls},
            *results,
            {"role": "assistant", "content": f"Fixed stats_{i}.py: even-length lists now average the middle pair."},
        ],
        "tools": [BASH_TOOL, FIND_TOOL],
        "instance": "median", "repeat": 0, "round": round_, "sample_index": i, "step": 2, "purpose": purpose,
        "reward": reward, "success": success, "status": "submitted", "run": "run-a",
    }


def persona_dialogue(i: int = 0, *, score: float = 8.0, passed: bool = True) -> dict:
    return {
        "id": f"p{i}", "persona": "Mina", "system": "You are Mina, a cheerful barista who keeps answers short.",
        "messages": [
            {"role": "user", "content": f"추천 메뉴가 있나요? ({i})"},
            {"role": "assistant", "content": "오늘은 바닐라 라떼가 인기예요!"},
            {"role": "user", "content": "달지 않은 음료는요?"},
            {"role": "assistant", "content": "그럼 산미가 좋은 아메리카노를 추천해요."},
        ],
        "judge": {"score": score, "feedback": "natural and in character"},
        "checks": {"structure": {"passed": True, "reason": "ok", "value": 2},
                   "echo": {"passed": passed, "reason": "ok" if passed else "answer repeats the question"}},
        "passed": passed,
    }


def preference_record(i: int = 0) -> dict:
    return {"prompt": [{"role": "system", "content": "Answer briefly."},
                       {"role": "user", "content": f"What is {i} + {i}?"}],
            "chosen": [{"role": "assistant", "content": f"{2 * i}."}],
            "rejected": [{"role": "assistant", "content": "I am not sure, maybe ask someone else."}],
            "id": f"pref{i}"}


def write_jsonl(path: Path, rows: list) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
