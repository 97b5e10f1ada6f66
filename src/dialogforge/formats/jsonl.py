"""Streaming JSONL in and out. A bad line is a reported row, never an exception."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import orjson

from ..engine.errors import InputError
from ..engine.io import Line, iter_lines  # the one row reader, shared with the engine

__all__ = ["Line", "iter_lines", "JsonlWriter", "expand_inputs"]


class JsonlWriter:
    """Appends one JSON object per line; counts rows. Use as a context manager."""

    def __init__(self, path: str | os.PathLike, *, append: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("ab" if append else "wb", buffering=1 << 20)
        self.count = 0

    def write(self, obj: Any) -> None:
        self._f.write(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
        self.count += 1

    def write_many(self, objs: Iterable[Any]) -> None:
        for o in objs:
            self.write(o)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder stands for its *.jsonl and *.json files, sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.suffix.lower() in (".jsonl", ".json") and x.is_file())
            if not found:
                raise InputError(f"{p}: folder has no .jsonl or .json files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"input not found: {p}")
    return out
