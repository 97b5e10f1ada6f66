"""`runs calls -o FILE`: a run's calls as JSONL (request and response as objects) or Parquet.

Parquet has one column per field; ``request`` and ``response`` are JSON text, byte-equal to what was
sent and received (their shapes differ from call to call, which one Arrow type per column cannot hold).
Both are written to a temporary file beside the target and renamed into place when complete.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from ..engine import DialogforgeError

PARQUET_HINT = "writing Parquet needs pyarrow: pip install 'dialogforge[hf]'"
_INT = ("id", "prompt_tokens", "completion_tokens", "attempt")
_FLOAT = ("latency", "created_at")
_TEXT = ("item_id", "purpose", "endpoint", "model", "request", "response", "error", "replica")
COLUMNS = ("id", "item_id", "purpose", "endpoint", "model", "request", "response", "prompt_tokens",
           "completion_tokens", "latency", "attempt", "error", "created_at", "replica")


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it when the block ends without an error."""
    if path.is_dir():
        raise DialogforgeError(f"{path}: is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_calls_jsonl(calls: Iterable[dict[str, Any]], path: Path) -> int:
    n = 0
    with _replacing(path) as tmp, tmp.open("wb") as f:
        for c in calls:
            f.write(orjson.dumps(c, option=orjson.OPT_APPEND_NEWLINE))
            n += 1
    return n


def write_calls_parquet(calls: Iterable[dict[str, Any]], path: Path, batch: int = 2000) -> int:
    """Stream calls read with ``raw=True`` (request/response as bytes) into one Parquet file."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DialogforgeError(PARQUET_HINT) from None
    schema = pa.schema([(c, pa.int64() if c in _INT else pa.float64() if c in _FLOAT else pa.string())
                        for c in COLUMNS])
    n = 0
    rows: list[dict[str, Any]] = []
    with _replacing(path) as tmp, pq.ParquetWriter(str(tmp), schema, compression="zstd") as w:
        for c in calls:
            row = {k: c.get(k) for k in COLUMNS}
            for k in ("request", "response"):
                blob = row[k]
                row[k] = bytes(blob).decode() if blob else None  # b"": pruned / no response
            rows.append(row)
            n += 1
            if len(rows) >= batch:
                w.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows or not n:
            w.write_table(pa.Table.from_pylist(rows, schema=schema))
    return n
