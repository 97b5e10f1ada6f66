"""Scripted agents for the agent-workflow tests: deterministic replies chosen from the conversation."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "agent"
SIGNAL = "SUBMIT_FINAL_ANSWER"
# `python3` inside the sandboxes: this interpreter's folder first (a pyenv shim costs ~0.25 s per start)
FAST_ENV = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"}

FAST_DEDUPE = '''def unique_in_order(items):
    seen = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
'''

FAST_PRIMES = '''def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def count_primes(limit):
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\\x00\\x00"
    for p in range(2, int(limit ** 0.5) + 1):
        if sieve[p]:
            sieve[p * p::p] = bytearray(len(range(p * p, limit, p)))
    return sum(sieve)
'''

FIXED_MEDIAN_SED = "sed -i 's/    return ordered\\[mid\\]/    if len(ordered) % 2 == 0:\\n        return (ordered[mid - 1] + ordered[mid]) \\/ 2\\n    return ordered[mid]/' stats.py"


def heredoc(path: str, text: str) -> str:
    return f"cat > {path} <<'PYEOF'\n{text}PYEOF"


def plan_for(task_text: str, short: bool = False) -> list[str]:
    """The commands a competent agent would run for each example task, ending with the submit signal."""
    if "unique_in_order" in task_text:
        edit = heredoc("dedupe.py", FAST_DEDUPE)
    elif "count_primes" in task_text:
        edit = heredoc("primes.py", FAST_PRIMES)
    elif "median" in task_text:
        edit = FIXED_MEDIAN_SED
    else:
        raise AssertionError("unknown task")
    if short:
        return [edit, f"echo {SIGNAL}"]
    return ["ls", "cat *.py", edit, "python3 -m unittest 2>&1 | tail -3", f"echo {SIGNAL}"]


def is_aux(body: dict) -> str | None:
    first = body["messages"][0]["content"] or ""
    if "printed more output than fits" in first:
        return "observation_summary"
    if "It will be replaced by your summary" in first:
        return "history_summary"
    return None


def main_step(body: dict) -> int:
    """Turn number of a main call: 1 + the highest STEP marker among earlier replies and summaries."""
    text = "\n".join(str(m.get("content") or "") for m in body["messages"])
    marks = [int(x) for x in re.findall(r"STEP (\d+)", text)]
    return (max(marks) if marks else 0) + 1


def short_shell_responder(body: dict):
    """Edit, then submit: the least work per rollout (for the many-rollout tests)."""
    return shell_responder(body, short=True)


def shell_responder(body: dict, short: bool = False):
    aux = is_aux(body)
    if aux == "observation_summary":
        return "The files define the function under test and its tests; nothing failed."
    if aux == "history_summary":
        text = body["messages"][0]["content"]
        marks = [int(x) for x in re.findall(r"STEP (\d+)", text)]
        return f"Looked around and read the code. Last finished STEP {max(marks) if marks else 0}."
    task = body["messages"][1]["content"]
    step = main_step(body)
    plan = plan_for(task, short)
    cmd = plan[min(step, len(plan)) - 1]
    return f"STEP {step}: next I run this.\n\n```bash\n{cmd}\n```"


def tool_responder(body: dict):
    aux = is_aux(body)
    if aux:
        return shell_responder(body)
    task = body["messages"][1]["content"]
    n_calls = sum(1 for m in body["messages"] if m.get("role") == "assistant")
    plan = plan_for(task)
    cmd = plan[min(n_calls, len(plan) - 1)]
    if cmd.startswith("echo " + SIGNAL):
        call = {"name": "submit", "arguments": "{}"}
    else:
        call = {"name": "bash", "arguments": json.dumps({"command": cmd})}
    return {"content": f"Turn {n_calls + 1}.", "tool_calls": [{"id": f"call_{n_calls + 1}", "type": "function",
                                                                 "function": call}]}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
