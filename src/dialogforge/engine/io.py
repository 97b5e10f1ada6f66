"""Reading rows: JSONL (streamed) or a JSON list, with errors that name the file and line.

`iter_lines` is the one low-level reader: it reports a bad row as a `Line` with an `error`
(the formats tools count and report those); `read_items` is the strict form the runner uses,
raising `InputError` at the first bad row.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import orjson

from .errors import InputError

Item = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class Line:
    """One input row: its 0-based index among the file's rows, its 1-based line number
    (None for an element of a JSON list), and the parsed object (or `error` when the
    row is not a JSON object)."""

    index: int
    lineno: int | None
    record: dict[str, Any] | None
    error: str | None = None

    def where(self, path: str | os.PathLike) -> str:
        return f"{path}:{self.lineno}" if self.lineno is not None else f"{path}: item [{self.index}]"


def iter_lines(path: str | os.PathLike) -> Iterator[Line]:
    """Rows of a JSONL file (streamed) or of a `.json` file holding a list (LLaMA-Factory's own
    files), a `{id: row}` mapping, or an object wrapping exactly one list. Blank lines are
    skipped and do not count as rows."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file not found: {p}")
    if p.suffix.lower() == ".json":
        with p.open("rb") as f:
            head = f.read(256).lstrip()
        if head.startswith((b"[", b"{")):
            parsed = _json_document(p)
            if parsed is not None:
                yield from (_line(i, None, rec) for i, rec in enumerate(parsed))
                return
    index = 0
    with p.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                yield Line(index, lineno, None, f"not valid JSON ({e})")
            else:
                yield _line(index, lineno, rec)
            index += 1


def _json_document(p: Path) -> list | None:
    """The rows of a whole-file JSON document, or None when the file is JSONL after all."""
    raw = p.read_bytes()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if raw.lstrip().startswith(b"{") and raw.strip().count(b"\n") >= 1:
            return None  # a .json file with one object per line
        raise InputError(f"{p}: not valid JSON ({e})") from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
        return [{"id": k, **v} if isinstance(v, dict) else {"id": k, "value": v} for k, v in data.items()]
    raise InputError(f"{p}: expected a JSON list of objects")


def _line(index: int, lineno: int | None, rec: Any) -> Line:
    if isinstance(rec, dict):
        return Line(index, lineno, rec)
    return Line(index, lineno, None, f"expected a JSON object, got {type(rec).__name__}")


def _apply_fields(row: dict[str, Any], fields: Mapping[str, str] | None) -> dict[str, Any]:
    """`fields` maps our name -> the file's name, e.g. {"prompt": "question"}."""
    if not fields:
        return row
    out = dict(row)
    for ours, theirs in fields.items():
        if theirs in row:
            out[ours] = row[theirs]
    return out


def _item_id(row: dict[str, Any], id_field: str | None, line: Line) -> str:
    if id_field:
        v = row.get(id_field)
        if v is not None:
            return str(v)
    for k in ("id", "_id", "uid"):
        if row.get(k) is not None:
            return str(row[k])
    return str(line.lineno if line.lineno is not None else line.index)


def read_items(path: str | os.PathLike, *, id_field: str | None = None,
               fields: Mapping[str, str] | None = None, require: tuple[str, ...] = ()) -> Iterator[Item]:
    """Yield (item_id, row), streaming JSONL.

    The id is the row's `id_field` (or `id`), else its line number (JSONL, 1-based) or
    its index (JSON list). A malformed line raises InputError naming `file:line`; a row
    missing a required field names the field; a repeated id names both."""
    seen: set[str] = set()
    for line in iter_lines(path):
        where = line.where(path)
        if line.record is None:
            raise InputError(f"{where}: {line.error}")
        row = _apply_fields(line.record, fields)
        for name in require:
            if name not in row or row[name] is None:
                raise InputError(f"{where}: missing field {name!r} (have: {', '.join(sorted(row)) or 'none'})")
        iid = _item_id(row, id_field, line)
        if iid in seen:
            raise InputError(f"{where}: duplicate item id {iid!r}")
        seen.add(iid)
        yield iid, row


def count_items(path: str | os.PathLike) -> int | None:
    """Fast count for progress bars: non-empty lines of a JSONL file (None for JSON documents)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return None
    n = 0
    with p.open("rb") as f:
        for line in f:
            if line.strip():
                n += 1
    return n
