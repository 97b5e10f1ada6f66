"""Records as our workflows (and common training files) write them -> Conversation.

Recognised record shapes, by their keys:
- `conversations` (ShareGPT from/value, with function_call / observation turns,
  `system` and `tools` columns) - LLaMA-Factory's own files;
- `instruction` + `output`/`chosen` (Alpaca, with `system` and `history`);
- `messages` (OpenAI chat; also persona dialogues and agent SFT samples, and
  preference records when `chosen`/`rejected` are present);
- `prompt` + `chosen`/`rejected`/`completion` (TRL preference / prompt-completion).
Everything that is not content becomes metadata; reward, score (= judge.score),
success (or passed), instance, round, repeat, sample_index, purpose and run are
normalised so that selection works the same for every source.
"""
from __future__ import annotations

from typing import Any

import orjson

from ..core.records import meta as metafield
from .conversation import (
    Conversation,
    ConversionError,
    Message,
    ToolCall,
    message_from_openai,
    normalise_tools,
    tool_call_from_any,
)

CONTENT_KEYS = frozenset({
    "messages", "conversations", "system", "tools", "prompt", "chosen", "rejected", "completion",
    "label", "kto_tag", "instruction", "input", "output", "history",
})
PROVENANCE = ("run", "round", "instance", "repeat", "sample_index", "purpose")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "observation": "tool", "tool": "tool", "function_call": "assistant", "system": "system"}
OBSERVATION_JOINER = "\n</tool_response>\n<tool_response>\n"


def read_record(rec: dict[str, Any]) -> Conversation:
    """One record -> Conversation; ConversionError names what is wrong."""
    if "conversations" in rec:
        conv = _from_sharegpt(rec)
    elif "instruction" in rec and ("output" in rec or "chosen" in rec):
        conv = _from_alpaca(rec)
    elif "messages" in rec:
        conv = _from_messages(rec)
    elif "prompt" in rec and ({"chosen", "rejected", "completion"} & rec.keys()):
        conv = _from_prompt(rec)
    elif "input" in rec and isinstance(rec.get("input"), dict) and "preferred_output" in rec:
        conv = _from_openai_preference(rec)
    else:
        keys = ", ".join(sorted(rec)) or "none"
        raise ConversionError(
            "unrecognised", f"unrecognised record (keys: {keys}); expected messages, conversations, "
            "prompt+chosen/rejected/completion or instruction+output")
    conv.metadata = metadata_of(rec)
    return conv


def metadata_of(rec: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in rec.items() if k not in CONTENT_KEYS}
    judge = metafield(rec, "judge")
    if isinstance(judge, dict) and isinstance(judge.get("score"), (int, float)) and "score" not in rec:
        meta["score"] = judge["score"]
    if "success" not in meta and isinstance(metafield(rec, "passed"), bool):
        meta["success"] = metafield(rec, "passed")
    return meta


# ---------------------------------------------------------------- OpenAI messages


def _messages(raw: Any, where: str) -> list[Message]:
    if isinstance(raw, str):
        return [Message(role="assistant", content=raw)]
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise ConversionError("messages", f"{where} must be a list of messages")
    return [message_from_openai(m, f"{where}[{i}]") for i, m in enumerate(raw)]


def _split_system(msgs: list[Message], field: Any) -> tuple[str | None, list[Message]]:
    system = field if isinstance(field, str) and field else None
    if msgs and msgs[0].role == "system":
        first = msgs[0].content or ""
        if system is not None and system != first:
            raise ConversionError("system", "record has both a system message and a different `system` field")
        return first, msgs[1:]
    return system, msgs


def _from_messages(rec: dict) -> Conversation:
    return _chat(rec, _messages(rec["messages"], "messages"))


def _from_prompt(rec: dict) -> Conversation:
    prompt = rec["prompt"]
    return _chat(rec, [Message(role="user", content=prompt)] if isinstance(prompt, str) else _messages(prompt, "prompt"))


def _chat(rec: dict, msgs: list[Message]) -> Conversation:
    """OpenAI/TRL-style records: the leading messages plus chosen/rejected or completion."""
    system, msgs = _split_system(msgs, rec.get("system"))
    conv = Conversation(messages=msgs, system=system, tools=normalise_tools(rec.get("tools")))
    if "chosen" in rec or "rejected" in rec:
        conv.chosen = _messages(rec.get("chosen"), "chosen")
        conv.rejected = _messages(rec.get("rejected"), "rejected")
    if "completion" in rec:
        conv.messages = conv.messages + _messages(rec["completion"], "completion")
    _label(conv, rec)
    return conv


def _from_openai_preference(rec: dict) -> Conversation:
    inner = rec["input"]
    system, msgs = _split_system(_messages(inner.get("messages"), "input.messages"), None)
    return Conversation(messages=msgs, system=system, tools=normalise_tools(inner.get("tools")),
                        chosen=_messages(rec.get("preferred_output"), "preferred_output"),
                        rejected=_messages(rec.get("non_preferred_output"), "non_preferred_output"))


def _label(conv: Conversation, rec: dict) -> None:
    for value in (metafield(rec, "label"), rec.get("kto_tag")):  # kto_tag: LLaMA-Factory's column
        if isinstance(value, bool):
            conv.label = value


# ---------------------------------------------------------------- ShareGPT


def _sharegpt_calls(value: Any, where: str) -> list[ToolCall]:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ConversionError("tool_call", f"{where}: function_call value is not valid JSON") from None
    items = value if isinstance(value, list) else [value]
    return [tool_call_from_any(c, i) for i, c in enumerate(items)]


def _sharegpt_turns(turns: Any, where: str) -> list[Message]:
    if isinstance(turns, dict):
        turns = [turns]
    if not isinstance(turns, list):
        raise ConversionError("messages", f"{where} must be a list of turns")
    out: list[Message] = []
    pending: list[ToolCall] = []
    n_calls = 0
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise ConversionError("message", f"{where}[{i}] is not an object")
        tag, value = t.get("from", t.get("role")), t.get("value", t.get("content"))
        role = SHAREGPT_ROLES.get(tag) if isinstance(tag, str) else None
        if role is None:
            raise ConversionError("role", f"{where}[{i}] has unknown role tag {tag!r}")
        if tag == "function_call":
            calls = _sharegpt_calls(value, f"{where}[{i}]")
            for c in calls:
                c.id = c.id or f"call_{n_calls}"
                n_calls += 1
            pending = list(calls)
            out.append(Message(role="assistant", content=None, tool_calls=calls))
        elif role == "tool":
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            parts = text.split(OBSERVATION_JOINER) if len(pending) > 1 else [text]
            if len(pending) > 1 and len(parts) == len(pending):
                for c, part in zip(pending, parts):
                    out.append(Message(role="tool", content=part, tool_call_id=c.id, name=c.name))
            else:
                first = pending[0] if pending else None
                out.append(Message(role="tool", content=text, tool_call_id=first.id if first else None,
                                   name=first.name if first else None))
            pending = []
        else:
            if value is not None and not isinstance(value, str):
                raise ConversionError("content", f"{where}[{i}] value must be a string")
            out.append(Message(role=role, content=value))
    return out


def _from_sharegpt(rec: dict) -> Conversation:
    msgs = _sharegpt_turns(rec["conversations"], "conversations")
    system, msgs = _split_system(msgs, rec.get("system"))
    conv = Conversation(messages=msgs, system=system, tools=normalise_tools(rec.get("tools")))
    if "chosen" in rec or "rejected" in rec:
        conv.chosen = _sharegpt_turns(rec.get("chosen"), "chosen")
        conv.rejected = _sharegpt_turns(rec.get("rejected"), "rejected")
    _label(conv, rec)
    return conv


# ---------------------------------------------------------------- Alpaca


def _from_alpaca(rec: dict) -> Conversation:
    msgs: list[Message] = []
    history = rec.get("history") or []
    if not isinstance(history, list):
        raise ConversionError("history", "history must be a list of [prompt, response] pairs")
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ConversionError("history", f"history[{i}] is not a [prompt, response] pair")
        msgs += [Message(role="user", content=pair[0]), Message(role="assistant", content=pair[1])]
    query = "\n".join(str(x) for x in (rec.get("instruction"), rec.get("input")) if x)
    msgs.append(Message(role="user", content=query))
    system = rec.get("system") if isinstance(rec.get("system"), str) and rec.get("system") else None
    conv = Conversation(messages=msgs, system=system)
    if "chosen" in rec or "rejected" in rec:
        conv.chosen = [Message(role="assistant", content=rec.get("chosen"))]
        conv.rejected = [Message(role="assistant", content=rec.get("rejected"))]
    else:
        conv.messages.append(Message(role="assistant", content=rec.get("output")))
    _label(conv, rec)
    return conv
