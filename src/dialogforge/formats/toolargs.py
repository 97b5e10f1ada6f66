"""Tool-call arguments whose JSON types hold still across a file.

Chat templates render arguments with `tojson`, so TRL files carry them as objects. Arrow
(`datasets`) gives every key of those objects one type for the whole file, and the
arguments of all tools share one struct: `timeout: 30` in one row and `"30"` in another
makes the file unreadable (`ArrowInvalid: ... changed from number to string`).

- `coerce_arguments` converts each value to the type its tool's parameter schema names
  (a numeric string to a number, a number to a string, "true"/"false" to a bool), so rows
  that merely disagree in spelling agree;
- `ArgKinds` remembers the first JSON kind of every argument path in a file and reports
  a row that changes it (such a row is refused with the reason).
"""
from __future__ import annotations

from typing import Any

from .conversation import Conversation, ConversionError, Message, ToolCall, json_text
from .rules.common import kind

_SCALARS = {"string", "integer", "number", "boolean"}


def _declared_type(schema: Any) -> str | None:
    """The one scalar JSON-schema type a property declares, if it declares exactly one."""
    if not isinstance(schema, dict):
        return None
    t = schema.get("type")
    if isinstance(t, list):
        t = [x for x in t if x != "null"]
        t = t[0] if len(t) == 1 else None
    if t is None and isinstance(schema.get("enum"), list) and schema["enum"]:
        kinds = {type(v) for v in schema["enum"]}
        t = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(kinds.pop()) if len(kinds) == 1 \
            else None
    return t if t in _SCALARS else None


def _coerce(value: Any, t: str) -> Any:
    """`value` as JSON type `t`, or `value` unchanged when it cannot be converted without loss."""
    if t == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return value
    if t in ("integer", "number") and isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return value
        if number.is_integer() and (t == "integer" or "." not in text and "e" not in text.lower()):
            return int(number)
        return number
    if t == "number" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if t == "boolean" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def coerce_arguments(args: Any, parameters: Any) -> tuple[Any, int]:
    """(arguments with each top-level value converted to its declared type, values changed)."""
    props = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(args, dict) or not isinstance(props, dict):
        return args, 0
    out, changed = {}, 0
    for key, value in args.items():
        t = _declared_type(props.get(key))
        new = _coerce(value, t) if t and value is not None else value
        if type(new) is not type(value) or new != value:
            changed += 1
        out[key] = new
    return out, changed


def _paths(value: Any, prefix: str, out: dict[str, str], mixed: list[str]) -> None:
    k = kind(value)
    if k == "null":
        return
    if out.setdefault(prefix, k) != k:
        mixed.append(f"argument {prefix!r} holds both {out[prefix]} and {k} values")
    if k == "object":
        for key, v in value.items():
            _paths(v, f"{prefix}.{key}", out, mixed)
    elif k == "list":
        for v in value:
            _paths(v, f"{prefix}[]", out, mixed)


class ArgKinds:
    """The JSON kind of every argument path seen so far in one file (all tools share the
    struct Arrow builds, so the path is the key name, not the tool's)."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, str]] = {}  # path -> (kind, where first seen)

    def conflicts(self, args: dict[str, Any], where: str) -> list[str]:
        """Reasons this call's arguments clash with earlier rows; records its kinds when none."""
        seen: dict[str, str] = {}
        clashes: list[str] = []
        for key, v in args.items():
            _paths(v, key, seen, clashes)
        clashes += [f"argument {p!r} is {k} here but {self.first[p][0]} in {self.first[p][1]}"
                    for p, k in seen.items() if p in self.first and self.first[p][0] != k]
        if not clashes:
            for p, k in seen.items():
                self.first.setdefault(p, (k, where))
        return clashes


def coerce_conversation(conv: Conversation) -> tuple[Conversation, int]:
    """The conversation with every tool call's arguments converted to its tool's schema
    (arguments that are not JSON are left for the writer to refuse)."""
    params = {t["function"]["name"]: t["function"].get("parameters") for t in conv.tools or ()}
    if not params:
        return conv, 0
    total = 0

    def fix(msgs: list[Message] | None) -> list[Message] | None:
        nonlocal total
        if msgs is None:
            return None
        out = []
        for m in msgs:
            if m.tool_calls and any(c.name in params for c in m.tool_calls):
                calls = []
                for c in m.tool_calls:
                    try:
                        args, n = coerce_arguments(c.parsed_arguments(), params.get(c.name))
                    except ConversionError:
                        args, n = None, 0
                    calls.append(ToolCall(c.name, json_text(args), c.id) if n else c)
                    total += n
                m = Message(m.role, m.content, calls, m.tool_call_id, m.name)
            out.append(m)
        return out

    fixed = conv.copy(messages=fix(conv.messages), chosen=fix(conv.chosen), rejected=fix(conv.rejected))
    return (fixed, total) if total else (conv, 0)
