"""A scripted 'model' for the proactive workflow behind the fake server, and helpers.

Which call a request is comes from its response_format's schema name; the answer depends only on the
request body, so a re-sent request can be recognised at the server. Markers in an event steer the agent
and the judge, for hand-computed metrics:
  [good]  the agent proposes "GOOD ...", the judge accepts it            -> TP
  [bad]   the agent proposes "BAD ...", the judge rejects it             -> FP
  [calm]  the agent stays quiet, the judge says quiet was right          -> TN
  [need]  the agent stays quiet, the judge says help was needed          -> FN
  [junk]  the agent answers with text that is not JSON                   -> failed turn
  [judgejunk]  the judge answers with text that is not JSON              -> unparseable ruling
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml


def schema_name(body: dict) -> str | None:
    rf = body.get("response_format") or {}
    return (rf.get("json_schema") or {}).get("name")


def _last_user(body: dict) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def _h(body: dict) -> int:
    return int(hashlib.blake2b(json.dumps(body["messages"], sort_keys=True).encode() + str(body.get("seed")).encode(),
                               digest_size=4).hexdigest(), 16)


def _newest_event(text: str) -> str:
    m = re.search(r"New observation at [^\n]*:\n(.*)", text)
    if m:
        return m.group(1)
    lines = [ln for ln in text.splitlines() if ln.startswith("- [")]
    return lines[-1] if lines else text


def agent_reply(body: dict) -> str:
    ev = _newest_event(_last_user(body))
    if "[junk]" in ev:
        return "I think the user is busy."
    task = None
    if "[good]" in ev:
        task = "GOOD: draft the function the user is writing"
    elif "[bad]" in ev:
        task = "BAD: reorganise the whole desktop"
    elif "[calm]" not in ev and "[need]" not in ev:
        task = None if _h(body) % 3 == 0 else f"Offer {_h(body) % 7}: help with what was just opened"
    return json.dumps({"purpose": "working", "thoughts": "looked at the newest event", "proposed_task": task,
                       "response": task or ""})


def judge_reply(body: dict) -> str:
    text = _last_user(body)
    if any("[judgejunk]" in (m.get("content") or "") for m in body["messages"]):  # repairs do not help
        return "hard to say"
    offered = re.search(r'offered: "(.*)"', text)
    if offered:
        task = offered.group(1)
        accept = not task.startswith("BAD") and (task.startswith("GOOD") or _h(body) % 2 == 0)
    else:
        ev = _newest_event(text)
        accept = "[need]" not in ev
    return json.dumps({"accept": accept, "reason": "fits the moment" if accept else "not what is needed now"})


def responder(body: dict):
    name = schema_name(body)
    n = _h(body)
    if name == "AgentAnswer":
        return agent_reply(body)
    if name == "Judgement":
        return judge_reply(body)
    if name == "Environment":
        return json.dumps({"theme": f"Theme {n % 5}", "description": "A developer at a desk with a laptop.",
                           "entities": ["Editor", "Browser", "Terminal"], "agent_ops": ["open(path)", "search(q)"],
                           "events_example": ["The user opens the editor."]})
    if name == "SceneUser":
        return json.dumps({"goal": "Finish the parser", "description": f"Sam {n % 90}, a programmer."})
    if name == "EnvState":
        return json.dumps({"start_time": 1717000000 + n % 1000, "entities": [
            {"name": "Editor", "status": "open", "properties": {"language": "python"}, "operations": ["type"]}],
            "agent_ops": [{"name": "open", "arguments": ["path"]}]})
    if name == "Activity":
        return json.dumps({"activity": f"types code {n % 100}", "done": False})
    if name == "EventBatch":
        return json.dumps({"events": [{"event": f"The user types line {n % 1000} in the editor.", "seconds": 4.5,
                                       "updates": [{"name": "Editor", "status": "edited"}]},
                                      {"event": f"The user saves file {n % 50}.", "seconds": 2,
                                       "updates": []}]})
    if name == "Operation":
        done = "Done so far" in _last_user(body)
        return json.dumps({"finished": done, "operation": "" if done else "open", "arguments": {"path": "a.py"}})
    if name == "OperationResult":
        return json.dumps({"event": "The assistant opens a.py.", "updates": [{"name": "Editor", "status": "a.py"}]})
    return None


def config(base_url: str, tmp: Path, **proactive) -> dict:
    eps = {"m": {"base_url": base_url, "model": "fake", "max_retries": 2}}
    return {"endpoints": eps, "roles": {"generator": "m", "agent": "m", "judge": "m"},
            "store": str(tmp / "store.sqlite"), "proactive": proactive}


def write_config(base_url: str, tmp: Path, **proactive) -> Path:
    p = tmp / "config.yaml"
    p.write_text(yaml.safe_dump(config(base_url, tmp, **proactive)))
    return p


def write_seeds(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "codingassistant": {"tasks": ["Write a parser for dates.", "Fix a failing test."],
                            "sample_events": ["The user opens the editor.", "The user runs the tests."]},
        "writingassistant": {"tasks": ["Draft a letter to a landlord."],
                             "sample_events": ["The user opens a document."]}}))
    return path


def marked_trace(path: Path, markers: list[str]) -> Path:
    turns = [{"observation": {"time": str(1717000000 + 10 * i), "event": f"The user does step {i} {m}"},
              "agent_response": {"candidate_task": []}, "task_status": False} for i, m in enumerate(markers)]
    path.write_text(json.dumps(turns))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
