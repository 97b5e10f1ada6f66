"""Reading items: JSONL or a JSON list, with errors that name the file and line."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import orjson

from .errors import InputError

Item = tuple[str, dict[str, Any]]


def _apply_fields(row: dict[str, Any], fields: Mapping[str, str] | None) -> dict[str, Any]:
    """`fields` maps our name -> the file's name, e.g. {"prompt": "question"}."""
    if not fields:
        return row
    out = dict(row)
    for ours, theirs in fields.items():
        if theirs in row:
            out[ours] = row[theirs]
    return out


def _item_id(row: dict[str, Any], id_field: str | None, position: int) -> str:
    if id_field:
        v = row.get(id_field)
        if v is not None:
            return str(v)
    for k in ("id", "_id", "uid"):
        if row.get(k) is not None:
            return str(row[k])
    return str(position)


def read_items(path: str | os.PathLike, *, id_field: str | None = None,
               fields: Mapping[str, str] | None = None, require: tuple[str, ...] = ()) -> Iterator[Item]:
    """Yield (item_id, row) from a JSONL file or a JSON list, streaming JSONL.

    The id is the row's `id_field` (or `id`), else its line number (JSONL, 1-based) or
    its index (JSON list). A malformed line raises InputError naming `file:line`; a row
    missing a required field names the field.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"input file not found: {p}")
    if p.suffix.lower() == ".json":
        yield from _read_json_list(p, id_field, fields, require)
        return
    seen: set[str] = set()
    with p.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise InputError(f"{p}:{lineno}: not valid JSON ({e})") from None
            if not isinstance(row, dict):
                raise InputError(f"{p}:{lineno}: expected a JSON object, got {type(row).__name__}")
            row = _apply_fields(row, fields)
            _check_required(row, require, f"{p}:{lineno}")
            iid = _item_id(row, id_field, lineno)
            if iid in seen:
                raise InputError(f"{p}:{lineno}: duplicate item id {iid!r}")
            seen.add(iid)
            yield iid, row


def _read_json_list(p: Path, id_field: str | None, fields: Mapping[str, str] | None,
                    require: tuple[str, ...]) -> Iterator[Item]:
    try:
        data = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as e:
        raise InputError(f"{p}: not valid JSON ({e})") from None
    if isinstance(data, dict):
        # {"id": {...}} mapping or a wrapper with one list inside
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
        else:
            data = [{"id": k, **v} if isinstance(v, dict) else {"id": k, "value": v} for k, v in data.items()]
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a JSON list of objects")
    seen: set[str] = set()
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise InputError(f"{p}: item [{i}] is not a JSON object")
        row = _apply_fields(row, fields)
        _check_required(row, require, f"{p}: item [{i}]")
        iid = _item_id(row, id_field, i)
        if iid in seen:
            raise InputError(f"{p}: item [{i}]: duplicate item id {iid!r}")
        seen.add(iid)
        yield iid, row


def _check_required(row: dict, require: tuple[str, ...], where: str) -> None:
    for name in require:
        if name not in row or row[name] is None:
            raise InputError(f"{where}: missing field {name!r} (have: {', '.join(sorted(row)) or 'none'})")


def count_items(path: str | os.PathLike) -> int | None:
    """Fast count for progress bars: non-empty lines of a JSONL file (None for JSON lists)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return None
    n = 0
    with p.open("rb") as f:
        for line in f:
            if line.strip():
                n += 1
    return n
