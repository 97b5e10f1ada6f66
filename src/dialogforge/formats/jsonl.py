"""Streaming JSONL in and out. A bad line is a reported row, never an exception."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from ..engine.errors import InputError


@dataclass(slots=True)
class Line:
    """One input row: its 0-based index among the file's rows, its 1-based line number
    (None for an element of a JSON list), and the parsed object (or `error` when the
    line is not a JSON object)."""

    index: int
    lineno: int | None
    record: dict[str, Any] | None
    error: str | None = None


def iter_lines(path: str | os.PathLike) -> Iterator[Line]:
    """Rows of a JSONL file (streamed) or of a JSON list file (loaded: LLaMA-Factory's
    own files are JSON lists). Blank lines are skipped and do not count as rows."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file not found: {p}")
    if p.suffix.lower() == ".json":
        with p.open("rb") as f:
            is_list = f.read(256).lstrip().startswith(b"[")
        if is_list:
            yield from _iter_json_list(p)
            return
    index = 0
    with p.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                yield Line(index, lineno, None, f"invalid JSON: {e}")
            else:
                yield _line(index, lineno, rec)
            index += 1


def _line(index: int, lineno: int | None, rec: Any) -> Line:
    if isinstance(rec, dict):
        return Line(index, lineno, rec)
    return Line(index, lineno, None, f"expected a JSON object, got {type(rec).__name__}")


def _iter_json_list(p: Path) -> Iterator[Line]:
    try:
        data = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as e:
        raise InputError(f"{p}: not valid JSON ({e})") from None
    for i, rec in enumerate(data):
        yield _line(i, None, rec)


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
