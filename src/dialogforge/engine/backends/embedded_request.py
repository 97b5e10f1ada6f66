"""The embedded backend's request side: an OpenAI chat.completions body becomes a llama.cpp request
(JSON schema -> llguidance grammar, tools -> a constrained JSON envelope), and the answer goes back
into OpenAI form. No xllamacpp import here: the grammar compiler is passed in.

Why the schema is rewritten before it becomes a grammar: llguidance refuses string formats it does
not know (``uri``, pydantic's ``HttpUrl``), ``oneOf``, and regexes with look-arounds, and llama.cpp
then drops the grammar without a word, so the model writes free text. Objects are closed
(``additionalProperties: false`` where unset, as OpenAI's strict mode does) so a tiny model does not
invent keys, and separators are fixed so it does not wander into blank lines.
"""
from __future__ import annotations

import copy
import json
import uuid
from typing import Any, Callable

from ..errors import BadRequestError

# llguidance enforces these string formats and refuses (silently, in llama.cpp) any other one.
_LLG_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
# Compact, fixed separators: tiny models otherwise wander into endless blank lines.
_X_GUIDANCE = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
# Request fields this backend interprets itself (the rest is passed to llama.cpp as is).
_HANDLED = frozenset({"stream", "stream_options", "response_format", "tools", "tool_choice", "parallel_tool_calls",
                      "max_completion_tokens", "model", "json_schema", "grammar"})


def bad_request(message: str) -> BadRequestError:
    return BadRequestError(f"HTTP 400: {message}", status=400)


def _subschemas(schema: dict):
    for k in ("properties", "$defs", "definitions", "patternProperties"):
        v = schema.get(k)
        if isinstance(v, dict):
            yield from (s for s in v.values() if isinstance(s, dict))
    for k in ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"):
        v = schema.get(k)
        if isinstance(v, dict):
            yield v
    for k in ("anyOf", "oneOf", "allOf", "prefixItems"):
        v = schema.get(k)
        if isinstance(v, list):
            yield from (s for s in v if isinstance(s, dict))


def for_llguidance(schema: dict) -> dict:
    """A copy llguidance can compile and a tiny model can follow: objects closed, formats it knows, anyOf."""
    out = copy.deepcopy(schema)
    stack = [out]
    while stack:
        s = stack.pop()
        if "properties" in s and "additionalProperties" not in s and "patternProperties" not in s:
            s["additionalProperties"] = False
        if isinstance(s.get("format"), str) and s["format"] not in _LLG_FORMATS:
            del s["format"]
        if "oneOf" in s and "anyOf" not in s:
            s["anyOf"] = s.pop("oneOf")
        s.pop("discriminator", None)
        stack.extend(_subschemas(s))
    out["x-guidance"] = dict(_X_GUIDANCE)
    return out


def grammar(schema: dict, compile_grammar: Callable[[dict], str]) -> str:
    """The llguidance grammar for a schema; ``compile_grammar`` is ``xllamacpp.json_schema_to_grammar``."""
    try:
        return compile_grammar(for_llguidance(schema))
    except (ValueError, TypeError) as e:
        raise bad_request(f"response_format: the JSON schema cannot be turned into a grammar: {e}") from None


def looks_constrained(schema: dict, text: str | None) -> bool:
    """Whether an answer that finished normally can have come from the schema's grammar (a cheap check
    of the top level that catches a grammar llama.cpp dropped; full validation is the caller's)."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return False
    return _top_level_fits(schema, value)


def _top_level_fits(schema: dict, value: Any) -> bool:
    if isinstance(schema.get("anyOf"), list) and "type" not in schema and "properties" not in schema:
        return any(_top_level_fits(s, value) for s in schema["anyOf"] if isinstance(s, dict))
    if schema.get("type") == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return False
        if any(k not in value for k in schema.get("required") or []):
            return False
        props = schema.get("properties")
        if isinstance(props, dict) and schema.get("additionalProperties", False) is False \
                and "patternProperties" not in schema and any(k not in props for k in value):
            return False
    elif schema.get("type") == "array" and not isinstance(value, list):
        return False
    return True


def _schema_from_response_format(rf: Any) -> dict | None:
    if rf is None:
        return None
    if not isinstance(rf, dict):
        raise bad_request("response_format must be an object such as {'type': 'json_object'}")
    kind = rf.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        js = rf.get("json_schema")
        schema = js.get("schema") if isinstance(js, dict) else None
        if not isinstance(schema, dict):
            # The trap behind "the model returned an empty object": a schema in the wrong place is no
            # schema at all to llama.cpp, which then accepts any JSON. Say so instead.
            raise bad_request("response_format.json_schema.schema must be a JSON schema object: "
                              "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}}")
        return schema
    raise bad_request(f"response_format.type must be 'text', 'json_object' or 'json_schema', not {kind!r}")


class Plan:
    """What one request needs besides the llama.cpp body: how to check and convert the answer."""

    def __init__(self) -> None:
        self.schema: dict | None = None  # the JSON schema the answer must follow (for the check/fallback)
        self.tools: bool = False  # answer is the tool-emulation envelope
        self.response_is_json: bool = False  # with tools: the "response" value is a JSON value, not text


def _tool_list(tools: Any) -> list[dict]:
    if not isinstance(tools, list):
        raise bad_request("tools must be a list of {'type': 'function', 'function': {...}}")
    out = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise bad_request(f"tools[{i}].function.name is missing")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise bad_request(f"tools[{i}].function.parameters must be a JSON schema object")
        out.append({"name": fn["name"], "description": fn.get("description") or "",
                    "parameters": params or {"type": "object", "properties": {}}})
    return out


def _tool_envelope(tools: list[dict], choice: Any, parallel: bool, response_schema: dict | None) -> dict:
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t["name"] == wanted]
        if not tools:
            raise bad_request(f"tool_choice names the function {wanted!r}, which is not in tools")
    calls = {"type": "array", "minItems": 1, "items": {"anyOf": [
        {"type": "object", "properties": {"name": {"const": t["name"]}, "arguments": t["parameters"]},
         "required": ["name", "arguments"]} for t in tools]}}
    if not parallel:
        calls["maxItems"] = 1
    call_branch = {"type": "object", "properties": {"tool_calls": calls}, "required": ["tool_calls"]}
    if choice == "required" or isinstance(choice, dict):
        return call_branch
    answer = {"type": "object", "properties": {"response": response_schema or {"type": "string"}},
              "required": ["response"]}
    return {"anyOf": [call_branch, answer]}


def _tool_systemshape_message(tools: list[dict], choice: Any) -> dict:
    lines = ["You can call these tools:"]
    for t in tools:
        lines.append(f"- {t['name']}: {t['description']} Arguments (JSON schema): "
                     f"{json.dumps(t['parameters'], ensure_ascii=False)}")
    lines.append('To call a tool, reply with {"tool_calls": [{"name": "<tool>", "arguments": {...}}]}.')
    if choice != "required" and not isinstance(choice, dict):
        lines.append('To answer without a tool, reply with {"response": "<your answer>"}.')
    return {"role": "system", "content": "\n".join(lines)}


def _tool_messages(messages: list[dict]) -> list[dict]:
    """History in the envelope form the model is asked to write (the template knows no tool_calls)."""
    out = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                fn = c.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = fn.get("arguments")
                calls.append({"name": fn.get("name"), "arguments": args})
            out.append({"role": "assistant", "content": json.dumps({"tool_calls": calls}, ensure_ascii=False)})
        elif m.get("role") == "tool":
            out.append({"role": "tool", "content": _text(m.get("content"))})
        else:
            out.append(m)
    return out


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def prepare(body: Any, compile_grammar: Callable[[dict], str]) -> tuple[dict, Plan]:
    """Validate an OpenAI chat.completions body and turn it into a streaming llama.cpp request."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise bad_request(f"messages[{i}] must be an object with a 'role'")
    if body.get("grammar") is not None or body.get("json_schema") is not None:
        raise bad_request("use response_format for structured output (grammar/json_schema fields are not accepted)")
    req = {k: v for k, v in body.items() if k not in _HANDLED}
    if "max_tokens" not in req and body.get("max_completion_tokens") is not None:
        req["max_tokens"] = body["max_completion_tokens"]
    plan = Plan()
    schema = _schema_from_response_format(body.get("response_format"))
    tools = body.get("tools")
    choice = body.get("tool_choice", "auto")
    if tools and choice != "none":
        tool_list = _tool_list(tools)
        envelope = _tool_envelope(tool_list, choice, body.get("parallel_tool_calls") is True, schema)
        plan.tools, plan.response_is_json, plan.schema = True, schema is not None, envelope
        msgs = _tool_messages(messages)
        sys_msg = _tool_systemshape_message(tool_list, choice)
        if msgs[0].get("role") == "system":
            msgs = [{"role": "system", "content": _text(msgs[0].get("content")) + "\n\n" + sys_msg["content"]},
                    *msgs[1:]]
        else:
            msgs = [sys_msg, *msgs]
        req["messages"] = msgs
    else:
        if tools:  # tool_choice "none": the history may still hold tool calls
            req["messages"] = _tool_messages(messages)
        plan.schema = schema
    if plan.schema is not None:
        req["grammar"] = grammar(plan.schema, compile_grammar)
    req["stream"] = True
    req["stream_options"] = {"include_usage": True}
    return req, plan


def shape_message(text: str, finish: str, plan: Plan) -> tuple[dict, str]:
    if not plan.tools:
        return {"role": "assistant", "content": text}, finish
    try:
        env = json.loads(text)
    except ValueError:  # cut off by max_tokens: hand back what was written
        return {"role": "assistant", "content": text}, finish
    if isinstance(env, dict) and env.get("tool_calls"):
        calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                  "function": {"name": c.get("name"), "arguments": json.dumps(c.get("arguments"), ensure_ascii=False)}}
                 for c in env["tool_calls"] if isinstance(c, dict)]
        return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
    if isinstance(env, dict) and "response" in env:
        value = env["response"]
        content = json.dumps(value, ensure_ascii=False) if plan.response_is_json else _text(value)
        return {"role": "assistant", "content": content}, finish
    return {"role": "assistant", "content": text}, finish
