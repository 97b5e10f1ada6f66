"""Rows in and out: JSONL (streamed) or a JSON list, with errors that name the file and line.

`iter_lines` is the one low-level reader: it reports a bad row as a `Line` with an `error`
(the formats tools count and report those); `read_items` is the strict form the runner uses,
raising `InputError` at the first bad row; `read_records` the strict form for files our
workflows wrote. `JsonlWriter` is the one writer.
"""
from __future__ import annotations

import os
from itertools import islice
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import orjson

from .errors import InputError
from .idset import SeenIds

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
        raise InputError(f"{p}: is a folder, not a file" if p.is_dir() else f"input file not found: {p}")
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
                yield Line(index, lineno, None, _not_json(raw, e))
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
        raise _document_error(p, raw, e) from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
        return [{"id": k, **v} if isinstance(v, dict) else {"id": k, "value": v} for k, v in data.items()]
    raise InputError(f"{p}: expected a JSON list of objects")


def read_json(path: str | os.PathLike, what: str = "a JSON file") -> Any:
    """One whole JSON document (a dataset_info.json, a splits file), with one-line errors: not found, a
    folder, not UTF-8 text, not valid JSON."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: is a folder, not {what}" if p.is_dir() else f"{p}: not found")
    raw = p.read_bytes()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise _document_error(p, raw, e) from None


def _document_error(p: Path, raw: bytes, e: Exception) -> InputError:
    """Why a whole JSON document did not parse: bytes that are not UTF-8 text (where), or bad JSON."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as u:
        line = raw.count(b"\n", 0, u.start) + 1
        return InputError(f"{p}:{line}: not UTF-8 text (byte 0x{raw[u.start]:02x} at offset {u.start})")
    return InputError(f"{p}: not valid JSON ({e})")


def _not_json(raw: bytes, e: Exception) -> str:
    """Why a line did not parse: bytes that are not UTF-8 text (orjson calls them surrogates), or bad JSON."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as u:
        return f"not UTF-8 text (byte 0x{raw[u.start]:02x} at column {u.start + 1})"
    return f"not valid JSON ({e})"


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


PAGE = 512  # rows read, checked and then yielded together


def read_items(path: str | os.PathLike, *, id_field: str | None = None,
               fields: Mapping[str, str] | None = None, require: tuple[str, ...] = ()) -> Iterator[Item]:
    """Yield (item_id, row), streaming JSONL.

    The id is the row's `id_field` (or `id`), else its line number (JSONL, 1-based) or
    its index (JSON list). A malformed line raises InputError naming `file:line`; a row
    missing a required field names the field; a repeated id names both rows. Rows are read a
    page at a time; every row before a bad one is yielded before the error is raised. Memory
    stays small whatever the file's length (see ``idset``)."""
    seen = SeenIds()
    lines = iter_lines(path)
    while page := list(islice(lines, PAGE)):
        items, error = _checked(path, page, seen, id_field, fields, require)
        yield from items
        if error is not None:
            raise error


def _checked(path: str | os.PathLike, page: list[Line], seen: SeenIds, id_field: str | None,
             fields: Mapping[str, str] | None, require: tuple[str, ...]) -> tuple[list[Item], InputError | None]:
    """A page's items, each id checked against every earlier one, up to the first bad row (and its error)."""
    items: list[Item] = []
    error: InputError | None = None
    for line in page:
        row = line.record
        if row is None:
            error = InputError(f"{line.where(path)}: {line.error}")
            break
        if fields:
            row = _apply_fields(row, fields)
        if require and (error := _missing(path, line, row, require)) is not None:
            break
        items.append((_item_id(row, id_field, line), row))
    ids = [iid for iid, _ in items]
    for k in seen.add(ids, page[0].index) if ids else ():
        earlier = _earlier(path, page, k, ids, seen, id_field, fields)
        if earlier is not None:
            items, error = items[:k], InputError(f"{page[k].where(path)}: duplicate item id {ids[k]!r} (first at "
                                                 f"{earlier.where(path)})")
            break
    return items, error


def _missing(path: str | os.PathLike, line: Line, row: dict[str, Any], require: tuple[str, ...]) -> InputError | None:
    for name in require:
        if name not in row or row[name] is None:
            return InputError(f"{line.where(path)}: missing field {name!r} (have: {', '.join(sorted(row)) or 'none'})")
    return None


def _earlier(path: str | os.PathLike, page: list[Line], k: int, ids: list[str], seen: SeenIds,
             id_field: str | None, fields: Mapping[str, str] | None) -> Line | None:
    """The earlier row with the id of ``page[k]``, or None when only its hash matched another id's."""
    iid = ids[k]
    for j in range(k):
        if ids[j] == iid:
            return page[j]
    index = seen.where(iid)
    if index is not None and index < page[k].index:
        return next(x for x in iter_lines(path) if x.index == index)
    for line in iter_lines(path):  # a hash met before: find the row in the file (rare: a real repeat)
        if line.index >= page[k].index:
            return None
        if line.record is not None and _item_id(_apply_fields(line.record, fields), id_field, line) == iid:
            return line
    return None


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


def read_records(path: str | os.PathLike, *, missing_ok: bool = False) -> Iterator[dict[str, Any]]:
    """Every row of a file our own code wrote, in order; a bad row raises InputError naming
    `file:line`. `missing_ok`: a file that does not exist yet has no rows."""
    if missing_ok and not Path(path).exists():
        return
    for line in iter_lines(path):
        if line.record is None:
            raise InputError(f"{line.where(path)}: {line.error}")
        yield line.record


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


def refuse_overwrite(inputs: Iterable[str | os.PathLike | None], outputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Before anything is written: an output (`outputs`: what names it, e.g. "-o" -> path) that is one of the
    inputs would destroy that input; refuse it in one line."""
    ins = [Path(p) for p in inputs if p is not None and Path(p).is_file()]
    for flag, out in outputs.items():
        if out is not None and Path(out).is_file() and any(os.path.samefile(out, p) for p in ins):
            raise InputError(f"{flag} {out} is also an input: writing it would destroy that input; name another file")


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
