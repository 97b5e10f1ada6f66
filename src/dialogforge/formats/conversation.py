"""The one conversation model every reader produces and every writer consumes.

Plain slotted dataclasses (not pydantic): exports stream millions of rows and these
objects are created once per row.

- `Conversation.system` holds the system prompt; `messages` hold the rest
  (user / assistant / tool). A system message anywhere but first stays in `messages`
  so that writers can refuse it instead of moving it silently.
- Tool calls keep their arguments as JSON *text* exactly as received; writers that
  need an object parse it and reject the row when it does not parse.
- `tools` is always the OpenAI form: [{"type": "function", "function": {...}}].
- `chosen` / `rejected` make a preference sample; `label` an unpaired (KTO) one.
- `metadata` carries everything else from the record (reward, score, success,
  instance, round, repeat, sample_index, purpose, run, id, persona, checks, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

ROLES = ("system", "user", "assistant", "tool")


class ConversionError(ValueError):
    """A record cannot be represented in the target format; `code` names the rule."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, as received
    id: str | None = None

    def parsed_arguments(self) -> Any:
        """The arguments as an object; ConversionError when they are not JSON."""
        try:
            return orjson.loads(self.arguments) if self.arguments.strip() else {}
        except orjson.JSONDecodeError:
            raise ConversionError(
                "tool_args", f"arguments of tool call {self.name!r} are not valid JSON: {self.arguments[:80]!r}"
            ) from None


@dataclass(slots=True)
class Message:
    role: str
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class Conversation:
    messages: list[Message]
    tools: list[dict] | None = None
    system: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    chosen: list[Message] | None = None
    rejected: list[Message] | None = None
    label: bool | None = None

    @property
    def is_preference(self) -> bool:
        return self.chosen is not None or self.rejected is not None

    def copy(self, **changes: Any) -> "Conversation":
        return replace(self, **changes)

    def text(self) -> str:
        """All visible text, for dedup and statistics."""
        parts: list[str] = []
        if self.system:
            parts.append(self.system)
        for seq in (self.messages, self.chosen or [], self.rejected or []):
            for m in seq:
                if m.content:
                    parts.append(m.content)
                for c in m.tool_calls or ():
                    parts.append(f"{c.name} {c.arguments}")
        return "\n".join(parts)


# ---------------------------------------------------------------- helpers


def json_text(obj: Any) -> str:
    """Compact JSON text that keeps non-ASCII characters readable."""
    return orjson.dumps(obj).decode()


def normalise_tool(tool: Any) -> dict:
    """Any common tool-schema spelling -> {"type": "function", "function": {...}}."""
    if not isinstance(tool, dict):
        raise ConversionError("tools", f"a tool schema must be an object, got {type(tool).__name__}")
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        fn = tool["function"]
    elif "name" in tool:
        fn = tool
    else:
        raise ConversionError("tools", f"tool schema has no name: {json_text(tool)[:80]}")
    if not isinstance(fn.get("name"), str) or not fn["name"]:
        raise ConversionError("tools", "tool schema has no name")
    return {"type": "function", "function": fn}


def normalise_tools(tools: Any) -> list[dict] | None:
    """Tools from a record: a list, a JSON string of a list, or empty."""
    if tools is None or tools == "" or tools == []:
        return None
    if isinstance(tools, str):
        try:
            tools = orjson.loads(tools)
        except orjson.JSONDecodeError:
            raise ConversionError("tools", "the tools column is not valid JSON") from None
        if not tools:
            return None
    if isinstance(tools, dict):
        tools = [tools]
    if not isinstance(tools, list):
        raise ConversionError("tools", f"tools must be a list of schemas, got {type(tools).__name__}")
    return [normalise_tool(t) for t in tools]


def function_schema(tool: dict) -> dict:
    """The bare function schema {name, description, parameters} of a normalised tool,
    with an empty object schema when it declares no parameters (LLaMA-Factory's
    formatters index `parameters.properties`)."""
    fn = dict(tool["function"])
    params = fn.get("parameters")
    if not isinstance(params, dict):
        fn["parameters"] = {"type": "object", "properties": {}}
    elif not isinstance(params.get("properties"), dict):
        fn["parameters"] = {**params, "properties": {}}
    return fn


def tool_call_from_any(raw: Any, position: int) -> ToolCall:
    """OpenAI {"id", "type", "function": {"name", "arguments"}} or bare {"name", "arguments"}."""
    if not isinstance(raw, dict):
        raise ConversionError("tool_call", f"tool call #{position} is not an object")
    fn: dict = raw["function"] if isinstance(raw.get("function"), dict) else raw
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise ConversionError("tool_call", f"tool call #{position} has no function name")
    args = fn.get("arguments", fn.get("parameters", {}))
    if args is None:
        args = {}
    text = args if isinstance(args, str) else json_text(args)
    return ToolCall(name=name, arguments=text, id=raw.get("id"))


def message_from_openai(raw: Any, where: str) -> Message:
    if not isinstance(raw, dict):
        raise ConversionError("message", f"{where} is not an object")
    role = raw.get("role")
    if role not in ROLES:
        raise ConversionError("role", f"{where} has role {role!r} (expected one of {', '.join(ROLES)})")
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        content = _flatten_content(content, where)
    calls = raw.get("tool_calls") or None
    tool_calls = None
    if calls is not None:
        if not isinstance(calls, list):
            raise ConversionError("tool_call", f"{where}: tool_calls must be a list")
        tool_calls = [tool_call_from_any(c, i) for i, c in enumerate(calls)]
    elif isinstance(raw.get("function_call"), dict):  # legacy single call
        tool_calls = [tool_call_from_any(raw["function_call"], 0)]
    return Message(role=role, content=content, tool_calls=tool_calls,
                   tool_call_id=raw.get("tool_call_id"), name=raw.get("name"))


def _flatten_content(content: Any, where: str) -> str:
    """OpenAI content parts [{"type": "text", "text": ...}] -> one string."""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text") or "") for p in content)
    raise ConversionError("content", f"{where}: content must be a string (got {type(content).__name__})")


def message_to_openai(m: Message, *, arguments_as_object: bool = False) -> dict:
    """One message in the OpenAI chat form (arguments as JSON text unless asked otherwise)."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {**({"id": c.id} if c.id else {}), "type": "function",
             "function": {"name": c.name,
                          "arguments": c.parsed_arguments() if arguments_as_object else c.arguments}}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        if m.tool_call_id:
            out["tool_call_id"] = m.tool_call_id
        if m.name:
            out["name"] = m.name
    return out
