"""``--batch-file FILE``: batch rounds through an offline runner (vLLM's ``run-batch``), not a provider.

Each round the batch executor cannot answer from imported results, it writes the waiting calls to FILE
in the OpenAI batch input form (``custom_id``, ``method``, ``url``, ``body``) and stops the run;
``dialogforge batch import OUTPUT`` loads the runner's output into the run store (table
``offline_requests``), and the same command run again goes one round further.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import orjson

from ..errors import InputError
from ..io import iter_lines
from ..store import RunStore


def write_requests(store: RunStore, run_id: str, path: Path, lines: Iterable[tuple[str, bytes]]) -> int:
    """Write ``(custom_id, request line)`` pairs to ``path`` (atomically) and remember them for the import."""
    rows = list(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(line for _, line in rows))
    os.replace(tmp, path)
    now = time.time()
    db = store.db
    db.execute("BEGIN")
    try:
        db.executemany("INSERT INTO offline_requests (run_id, custom_id, file, created_at) VALUES (?,?,?,?)"
                       " ON CONFLICT(run_id, custom_id) DO UPDATE SET file=excluded.file",
                       [(run_id, cid, str(path), now) for cid, _ in rows])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(rows)


def answers(store: RunStore, run_id: str) -> dict[str, dict]:
    """The imported answers of a run's offline requests, by custom_id."""
    return {cid: orjson.loads(body) for cid, body in store.db.execute(
        "SELECT custom_id, response FROM offline_requests WHERE run_id=? AND response IS NOT NULL", (run_id,))}


@dataclass
class Imported:
    answered: int = 0
    failed: int = 0
    runs: set[str] = field(default_factory=set)


def import_output(store: RunStore, path: str | os.PathLike) -> Imported:
    """Load a batch output file; every line is checked before anything is stored."""
    known: dict[str, set[str]] = {}
    for run_id, cid in store.db.execute("SELECT run_id, custom_id FROM offline_requests"):
        known.setdefault(cid, set()).add(run_id)
    res = Imported()
    updates: list[tuple[bytes, str]] = []
    for line in iter_lines(path):
        where = line.where(path)
        if line.error or line.record is None:
            raise InputError(f"{where}: {line.error or 'not a JSON object'}")
        cid = line.record.get("custom_id")
        if not isinstance(cid, str) or cid not in known:
            raise InputError(f"{where}: custom_id {cid!r} was not written by a --batch-file run into {store.path}")
        resp = line.record.get("response") or {}
        body = resp.get("body") if isinstance(resp, dict) else None
        if resp.get("status_code", 200) != 200 or not isinstance(body, dict) or not body.get("choices"):
            res.failed += 1
            continue
        updates.append((orjson.dumps(body), cid))
        res.answered += 1
        res.runs |= known[cid]
    db = store.db
    db.execute("BEGIN")
    try:
        db.executemany("UPDATE offline_requests SET response=? WHERE custom_id=?", updates)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return res
