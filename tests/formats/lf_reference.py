"""An independent model of how LLaMA-Factory turns a row into a training example.

Written procedurally from LLaMA-Factory's documented behaviour (data/README.md and the
converter/processor steps: align turns, check role tags and count, build prompt and
response, then the processors' length checks), as an oracle for our validator: every
row LLaMA-Factory would skip must be one our validator rejects.
"""
from __future__ import annotations

import json
from typing import Any

DEFAULT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


def _attr(entry: dict) -> dict[str, Any]:
    fmt = entry.get("formatting", "alpaca")
    names = ["system", "tools", "chosen", "rejected", "kto_tag"] + (
        ["messages"] if fmt == "sharegpt" else ["prompt", "query", "response", "history"])
    if "columns" in entry:
        cols = {n: entry["columns"].get(n) for n in names}
    else:
        cols = {n: None for n in names}
        cols.update({"messages": "conversations"} if fmt == "sharegpt" else
                    {"prompt": "instruction", "query": "input", "response": "output"})
    tags = dict(DEFAULT_TAGS)
    if fmt == "sharegpt" and "tags" in entry:
        tags = {n: entry["tags"].get(n) for n in DEFAULT_TAGS}
    return {"formatting": fmt, "ranking": bool(entry.get("ranking")), **cols, **tags}


def convert(row: dict, entry: dict) -> tuple[list, list, Any, Any]:
    """(prompt, response, system, tools) as LLaMA-Factory's converter would produce them.
    Raises KeyError/TypeError where LLaMA-Factory would crash. A declared column that
    this row lacks reads as None, as it does once `datasets` has loaded the file."""
    a = _attr(entry)
    declared = ("system", "tools", "chosen", "rejected", "kto_tag", "messages", "prompt", "query", "response",
                "history")
    row = {**{a[k]: None for k in declared if a.get(k)}, **row}
    if a["formatting"] == "alpaca":
        prompt = []
        if a["history"] and isinstance(row[a["history"]], list):
            for q, r in row[a["history"]]:
                prompt += [("user", q), ("assistant", r)]
        query = [row[k] for k in (a["prompt"], a["query"]) if k and row[k]]
        prompt.append(("user", "\n".join(query)))
        if a["kto_tag"] and isinstance(row[a["kto_tag"]], bool):
            response = [("assistant", row[a["response"]]), ("assistant", "")]
        elif a["ranking"] and isinstance(row[a["chosen"]], str) and isinstance(row[a["rejected"]], str):
            response = [("assistant", row[a["chosen"]]), ("assistant", row[a["rejected"]])]
        elif a["response"] and isinstance(row[a["response"]], str):
            response = [("assistant", row[a["response"]])]
        else:
            response = []
        return prompt, response, row[a["system"]] if a["system"] else "", row[a["tools"]] if a["tools"] else ""
    r, c = a["role_tag"], a["content_tag"]
    odd, even = (a["user_tag"], a["observation_tag"]), (a["assistant_tag"], a["function_tag"])
    msgs = row[a["messages"]]
    if a["system_tag"] and msgs and msgs[0][r] == a["system_tag"]:
        system, msgs = msgs[0][c], msgs[1:]
    else:
        system = row[a["system"]] if a["system"] else ""
    aligned, broken = [], False
    for i, m in enumerate(msgs):
        if m[r] not in (odd, even)[i % 2]:
            broken = True
            break
        aligned.append((m[r], m[c]))
    if (not a["ranking"] and len(aligned) % 2) or (a["ranking"] and len(aligned) % 2 == 0):
        broken = True
    if broken:
        prompt, response = [], []
    elif a["kto_tag"] and isinstance(row[a["kto_tag"]], bool):
        prompt, response = aligned[:-1], aligned[-1:] + [("assistant", "")]
    elif a["ranking"] and isinstance(row[a["chosen"]], dict) and isinstance(row[a["rejected"]], dict):
        prompt = aligned
        response = [(row[a["chosen"]][r], row[a["chosen"]][c]), (row[a["rejected"]][r], row[a["rejected"]][c])]
    else:
        prompt, response = aligned[:-1], aligned[-1:]
    return prompt, response, system, row[a["tools"]] if a["tools"] else ""


def trains_on(row: dict, entry: dict) -> bool:
    """Whether LLaMA-Factory keeps the row for the stage its entry implies (and can
    format its tool turns and tools)."""
    a = _attr(entry)
    try:
        prompt, response, _, tools = convert(row, entry)
    except (KeyError, TypeError, ValueError):
        return False
    if len(prompt) % 2 != 1:
        return False
    needs = 2 if (a["ranking"] or a["kto_tag"]) else 1
    if len(response) < needs or (needs == 1 and len(response) != 1):
        return False
    try:
        for role, content in prompt + response:
            if not isinstance(content, str):
                return False
            if role == a.get("function_tag"):
                calls = json.loads(content)
                for call in calls if isinstance(calls, list) else [calls]:
                    call["name"], json.dumps(call["arguments"])
        if tools:
            for tool in json.loads(tools):
                fn = tool.get("function", tool) if tool.get("type") == "function" else tool
                fn["name"], fn["parameters"]["properties"].items()
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return True
