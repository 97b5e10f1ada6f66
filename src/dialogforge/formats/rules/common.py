"""Shared pieces of the validators: problems, JSON kinds, column-type consistency."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(slots=True, frozen=True)
class Problem:
    code: str  # short stable name of the rule, used for counting
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def parse_json(text: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, why not)."""
    if not isinstance(text, str):
        return None, f"expected JSON text, got {kind(text)}"
    try:
        return orjson.loads(text), None
    except orjson.JSONDecodeError as e:
        return None, f"not valid JSON ({e})"


class ColumnTypes:
    """Every column must keep one JSON kind across the file (nulls aside): `datasets`
    (Arrow) refuses or silently casts a column whose type changes between rows."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, int]] = {}

    def check(self, row: dict[str, Any], index: int) -> list[Problem]:
        out: list[Problem] = []
        for key, value in row.items():
            k = kind(value)
            if k == "null":
                continue
            seen = self.first.get(key)
            if seen is None:
                self.first[key] = (k, index)
            elif seen[0] != k:
                out.append(Problem("column_type", f"column {key!r} is {k} here but {seen[0]} in row {seen[1]}; "
                                                  "datasets/Arrow cannot load a column whose type changes"))
        return out


def snippet(v: Any, n: int = 60) -> str:
    text = v if isinstance(v, str) else orjson.dumps(v, default=str).decode()
    return text if len(text) <= n else text[: n - 3] + "..."
