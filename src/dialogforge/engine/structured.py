"""Structured output: ask for a JSON object matching a pydantic model, validate, repair.

An answer that does not validate is sent back with the validation error for another try;
after the last try the call raises ``StructuredOutputError``: an unparseable answer never
flows on as an empty or made-up value.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def response_format(schema: type[BaseModel], mode: str) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def schema_hint(schema: type[BaseModel]) -> str:
    import json
    return ("Reply with a single JSON object, and nothing else, that matches this JSON schema:\n"
            + json.dumps(schema.model_json_schema(), ensure_ascii=False))


def extract_json(text: str | None) -> str:
    """The JSON object inside a reply: fenced code, or the outermost braces."""
    if not text:
        return ""
    m = _FENCE.search(text)
    if m:
        text = m.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        return text[start:end + 1]
    return text.strip()


def validate(schema: type[BaseModel], text: str | None) -> BaseModel:
    return schema.model_validate_json(extract_json(text) or '""')


def repair_message(err: ValidationError | ValueError) -> str:
    if isinstance(err, ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in err.errors()[:8])
    else:
        problems = str(err)
    return (f"Your previous reply was not a valid JSON object for the requested schema ({problems}). "
            "Reply again with only the corrected JSON object.")
