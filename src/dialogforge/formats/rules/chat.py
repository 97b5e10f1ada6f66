"""Rules for chat-message targets: TRL datasets and OpenAI fine-tuning files.

TRL (trl/data_utils.py): the row's conversational keys must be exactly one of
{messages}, {prompt, completion}, {prompt, chosen, rejected}, {chosen, rejected},
{prompt, completion, label}; a prompt ends with a user or tool turn (or an assistant
turn to continue); tool-call arguments are objects, because chat templates render
them with `tojson` (JSON text would be double-encoded); `tools` is JSON text or a
list of {"type": "function", "function": {...}} schemas. Strict chat templates
refuse two user or two assistant turns in a row.

OpenAI fine-tuning: `messages` with roles system/developer/user/assistant/tool and
known keys only; assistant `tool_calls` carry an id, type "function" and
`function.arguments` as JSON text of an object; every tool message answers an
earlier call by `tool_call_id`; at least one assistant message. Preference (DPO)
rows are {"input": {"messages", "tools"}, "preferred_output", "non_preferred_output"}.
"""
from __future__ import annotations

from typing import Any

from ..toolargs import ArgKinds
from .common import Problem, kind, parse_json, snippet

TRL_KEYS = ("prompt", "chosen", "rejected", "completion", "messages", "label")
TRL_SHAPES = {
    frozenset({"messages"}): "sft",
    frozenset({"prompt", "completion"}): "prompt-completion",
    frozenset({"prompt", "chosen", "rejected"}): "preference",
    frozenset({"chosen", "rejected"}): "preference",
    frozenset({"prompt", "completion", "label"}): "kto",
}
OPENAI_MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "weight", "function_call", "refusal"}
OPENAI_ROW_KEYS = {"messages", "tools", "parallel_tool_calls", "functions"}


def trl_task(row: dict[str, Any]) -> str:
    return TRL_SHAPES.get(frozenset(k for k in TRL_KEYS if k in row), "sft")


def openai_task(row: dict[str, Any]) -> str:
    return "preference" if "preferred_output" in row else "sft"


class _Calls:
    """Tracks tool calls awaiting results within one message sequence."""

    def __init__(self) -> None:
        self.pending_ids: list[str] = []
        self.pending = 0

    def open(self, ids: list[str | None]) -> None:
        self.pending_ids = [i for i in ids if i]
        self.pending = len(ids)


def _tools(value: Any, probs: list[Problem], *, text_ok: bool, list_ok: bool, why: str = "") -> set[str] | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        if not text_ok:
            probs.append(Problem("tools_type", "tools must be a list of schemas, not JSON text" +
                                 (f" ({why})" if why else "")))
            return None
        value, err = parse_json(value)
        if err:
            probs.append(Problem("tools_type", f"tools is {err}"))
            return None
    elif not list_ok:
        probs.append(Problem("tools_type", f"tools must be JSON text, got {kind(value)}"))
        return None
    if not isinstance(value, list):
        probs.append(Problem("tools_type", f"tools must be a list of schemas, got {kind(value)}"))
        return None
    names: set[str] = set()
    for i, t in enumerate(value):
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            probs.append(Problem("tools_schema", f"tool {i + 1} must be {{'type': 'function', 'function': "
                                                 f"{{'name', ...}}}}, got {snippet(t)}"))
            return None
        names.add(fn["name"])
    return names


def check_messages(msgs: Any, where: str, *, target: str, tool_names: set[str] | None,
                   calls: _Calls | None = None, first: bool = True, args: ArgKinds | None = None) -> list[Problem]:
    """Messages of one sequence (continuing `calls` when a completion follows a prompt)."""
    if not isinstance(msgs, list) or not msgs:
        return [Problem("messages_type", f"{where} must be a non-empty list of messages, got {snippet(msgs)}")]
    calls = calls or _Calls()
    probs: list[Problem] = []
    roles = ("system", "developer", "user", "assistant", "tool") if target == "openai" else \
        ("system", "user", "assistant", "tool")
    prev: str | None = None
    for i, m in enumerate(msgs):
        at = f"{where}[{i}]"
        if not isinstance(m, dict) or "role" not in m:
            return probs + [Problem("message_keys", f"{at} must be an object with a role")]
        role, content = m["role"], m.get("content")
        if role not in roles:
            return probs + [Problem("role", f"{at} has role {role!r} (expected {'/'.join(roles)})")]
        if target == "openai" and (extra := set(m) - OPENAI_MESSAGE_KEYS):
            probs.append(Problem("message_keys", f"{at} has keys OpenAI does not accept: {', '.join(sorted(extra))}"))
        if target == "trl" and "content" not in m:
            probs.append(Problem("message_keys", f"{at} has no content key"))
        has_calls = role == "assistant" and bool(m.get("tool_calls"))
        if target == "trl" and "content" in m and content is None:
            probs.append(Problem("content_null", f"{at} content is null; TRL 0.24 drops null values and may then "
                                                 "take the row for plain text (write \"\" instead)"))
        if content is None and not has_calls:
            probs.append(Problem("content_type", f"{at} ({role}) has no content"))
        elif content is not None and not isinstance(content, (str, list)):
            probs.append(Problem("content_type", f"{at} content must be a string, got {kind(content)}"))
        elif role == "assistant" and not has_calls and isinstance(content, str) and not content.strip():
            probs.append(Problem("empty_reply", f"{at} is an empty assistant reply"))
        if role == "system" and (i > 0 or not first) and target == "trl":
            probs.append(Problem("system_position", f"{at} is a system message after the start"))
        if role == "tool":
            probs += _tool_result(m, at, calls, target)
        elif has_calls:
            probs += _tool_calls(m["tool_calls"], at, calls, target, tool_names, args)
        elif role == "assistant" and calls.pending:
            probs.append(Problem("unanswered_call", f"{at} replies before every tool call has its result"))
            calls.open([])
        if target == "trl" and role in ("user", "assistant") and role == prev and not has_calls:
            probs.append(Problem("role_order", f"{at} is a second {role} turn in a row; chat templates that "
                                               "require alternation refuse it"))
        prev = role if role in ("user", "assistant") else (None if role == "tool" else prev)
    return probs


def _tool_calls(raw: Any, at: str, calls: _Calls, target: str, tool_names: set[str] | None,
                args_kinds: ArgKinds | None = None) -> list[Problem]:
    if not isinstance(raw, list):
        return [Problem("tool_call", f"{at} tool_calls must be a list")]
    ids: list[str | None] = []
    for j, c in enumerate(raw):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            return [Problem("tool_call", f"{at} tool call {j} needs function.name: {snippet(c)}")]
        args = fn.get("arguments")
        if target == "openai":
            if c.get("type") != "function" or not isinstance(c.get("id"), str) or not c["id"]:
                return [Problem("tool_call", f"{at} tool call {j} needs an id and type 'function'")]
            value, err = parse_json(args)
            if err or not isinstance(value, dict):
                return [Problem("tool_args", f"{at} arguments of {fn['name']!r} must be JSON text of an object "
                                             f"({err or kind(value)})")]
        elif not isinstance(args, dict):
            return [Problem("tool_args", f"{at} arguments of {fn['name']!r} must be an object, got {kind(args)} "
                                         "(chat templates would double-encode JSON text)")]
        elif args_kinds is not None and (clash := args_kinds.conflicts(args, at)):
            return [Problem("arg_types", f"{at} {fn['name']!r}: {clash[0]}; datasets/Arrow cannot load arguments "
                                         "whose types change between rows (ArrowInvalid)")]
        if tool_names is not None and fn["name"] not in tool_names:
            return [Problem("unknown_tool", f"{at} calls {fn['name']!r}, which the row's tools lack")]
        ids.append(c.get("id"))
    if calls.pending:
        return [Problem("unanswered_call", f"{at} makes new calls before earlier calls have results")]
    calls.open(ids)
    return []


def _tool_result(m: dict, at: str, calls: _Calls, target: str) -> list[Problem]:
    if calls.pending <= 0:
        return [Problem("orphan_tool", f"{at} is a tool result that answers no preceding call")]
    tid = m.get("tool_call_id")
    if target == "openai" or tid is not None:
        if not calls.pending_ids or tid not in calls.pending_ids:
            return [Problem("orphan_tool", f"{at} tool_call_id {tid!r} matches no pending call")]
        calls.pending_ids.remove(tid)
    calls.pending -= 1
    return []


class TRLRules:
    """`spec`: the writer's TRLOptions (which prompts may end with a tool result)."""

    def __init__(self, task: str | None = None, spec: Any = None):
        self.task = task
        self.tool_prompts = getattr(spec, "tool_prompts", "refuse")
        self.tools_as_text = getattr(spec, "tools_as_text", False)
        self.args = ArgKinds()  # argument types across the file

    def check(self, row: dict[str, Any]) -> list[Problem]:
        keys = frozenset(k for k in TRL_KEYS if k in row)
        shape = TRL_SHAPES.get(keys)
        if shape is None:
            return [Problem("columns", f"TRL needs messages | prompt+completion | prompt+chosen+rejected | "
                                       f"prompt+completion+label, got {', '.join(sorted(keys)) or 'none'}")]
        if self.task and shape != self.task:
            return [Problem("columns", f"row is a {shape} row, expected {self.task}")]
        probs: list[Problem] = []
        names = _tools(row.get("tools"), probs, text_ok=self.tools_as_text, list_ok=True,
                       why="TRL 0.24 hands the column to the chat template as it is; export --tools-as-text "
                           "suits TRL after 0.24 only")
        if shape == "sft":
            msgs = row["messages"]
            probs += check_messages(msgs, "messages", target="trl", tool_names=names, args=self.args)
            if "assistant" not in _roles(msgs):
                return probs + [Problem("no_assistant", "messages have no assistant turn to train on")]
            probs += _ends(msgs, "messages", start=("user",), end=("assistant",))
            return probs
        calls = _Calls()
        if "prompt" in row:
            prompt = row["prompt"]
            probs += check_messages(prompt, "prompt", target="trl", tool_names=names, calls=calls, args=self.args)
            end = ("user", "tool") if shape == "prompt-completion" or self.tool_prompts == "keep" else ("user",)
            probs += _ends(prompt, "prompt", start=("user",), end=end, pair=shape in ("preference", "kto"))
        for key in ("completion", "chosen", "rejected"):
            if key in row:
                branch = _Calls()
                branch.pending, branch.pending_ids = calls.pending, list(calls.pending_ids)
                seq = row[key]
                probs += check_messages(seq, key, target="trl", tool_names=names, calls=branch, first=False,
                                        args=self.args)
                probs += _ends(seq, key, start=("assistant",), end=("assistant",))
        if shape == "kto" and not isinstance(row.get("label"), bool):
            probs.append(Problem("label", f"label must be true or false, got {snippet(row.get('label'))}"))
        return probs


def _roles(msgs: Any) -> list[str]:
    if not isinstance(msgs, list):
        return []
    return [str(m.get("role")) for m in msgs if isinstance(m, dict) and m.get("role") != "system"]


def _ends(msgs: Any, where: str, *, start: tuple[str, ...], end: tuple[str, ...], pair: bool = False) -> list[Problem]:
    """The first (after the system prompt) and the last role of a sequence."""
    roles = _roles(msgs)
    if not roles:
        return []
    probs: list[Problem] = []
    if roles[0] not in start:
        probs.append(Problem("role_order", f"{where} starts with a {roles[0]} turn; TRL needs {'/'.join(start)} "
                                           "first"))
    if "user" in roles and where in ("completion", "chosen", "rejected"):
        probs.append(Problem("role_order", f"{where} holds a user turn; an unanswered user turn must not be "
                                           "trained as a reply"))
    elif roles[-1] not in end:
        why = ""
        if roles[-1] == "tool" and pair:
            why = ("; TRL 0.24's DPO and KTO trainers raise 'Invalid role in the last message: tool' "
                   "(export --tool-prompts keep writes it for newer TRL)")
        elif roles[-1] == "user":
            why = "; the last user turn has no reply to train on"
        probs.append(Problem("prompt_end" if where == "prompt" else "role_order",
                             f"{where} ends with a {roles[-1]} turn{why}"))
    return probs


class OpenAIRules:
    def __init__(self, task: str | None = None, spec: object = None):
        self.task = task

    def check(self, row: dict[str, Any]) -> list[Problem]:
        if "preferred_output" in row or self.task == "preference":
            return self._preference(row)
        probs: list[Problem] = []
        if extra := set(row) - OPENAI_ROW_KEYS:
            probs.append(Problem("extra_key", f"keys OpenAI fine-tuning does not accept: {', '.join(sorted(extra))}"))
        names = _tools(row.get("tools"), probs, text_ok=False, list_ok=True)
        msgs = row.get("messages")
        probs += check_messages(msgs, "messages", target="openai", tool_names=names)
        if isinstance(msgs, list) and not any(isinstance(m, dict) and m.get("role") == "assistant" for m in msgs):
            probs.append(Problem("no_assistant", "no assistant message to train on"))
        return probs

    def _preference(self, row: dict[str, Any]) -> list[Problem]:
        probs: list[Problem] = []
        inner = row.get("input")
        if not isinstance(inner, dict):
            return [Problem("columns", "a preference row needs input.messages, preferred_output, non_preferred_output")]
        names = _tools(inner.get("tools"), probs, text_ok=False, list_ok=True)
        calls = _Calls()
        probs += check_messages(inner.get("messages"), "input.messages", target="openai", tool_names=names,
                                calls=calls)
        for key in ("preferred_output", "non_preferred_output"):
            out = row.get(key)
            if not (isinstance(out, list) and len(out) == 1 and isinstance(out[0], dict)
                    and out[0].get("role") == "assistant"):
                probs.append(Problem("pair", f"{key} must be a list with one assistant message"))
            else:
                probs += check_messages(out, key, target="openai", tool_names=names, first=False)
        return probs
