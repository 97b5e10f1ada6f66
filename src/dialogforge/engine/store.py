"""The run store: one SQLite file (WAL) that logs every LLM call and every finished item.

It is also the response cache (calls are looked up by ``cache_key``) and the journal that
makes output files exactly-once: an item's lines are appended to its output files, then the
item and each file's new size are committed in one transaction. On restart a file longer
than its committed size has an uncommitted tail (a crash between write and commit), which
is cut off before the run resumes.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    command TEXT,
    outputs TEXT,
    info TEXT
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    status TEXT NOT NULL,          -- done | failed
    error TEXT,
    records INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, item_id)
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    run_id TEXT,
    item_id TEXT,
    purpose TEXT,
    endpoint TEXT,
    model TEXT,
    cache_key TEXT,
    request BLOB,
    response BLOB,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency REAL,
    attempt INTEGER,
    error TEXT,
    cost REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_key ON calls (cache_key) WHERE response IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_run ON calls (run_id, item_id);
CREATE TABLE IF NOT EXISTS memos (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (run_id, item_id, key)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
"""


def default_store_path() -> Path:
    home = os.environ.get("DIALOGFORGE_HOME")
    base = Path(home) if home else Path.cwd() / ".dialogforge"
    return base / "store.sqlite"


@dataclass(slots=True)
class RunInfo:
    run_id: str
    name: str
    created_at: float
    updated_at: float
    status: str
    command: str | None
    outputs: dict[str, str]
    done: int = 0
    failed: int = 0


class RunStore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against process kills; fsync at checkpoints
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(SCHEMA)
        self._keys: set[str] | None = None  # cache keys that have a response, loaded on first lookup
        self._pending: list[tuple] = []  # finished items awaiting a group commit
        self._pending_files: dict[str, int] = {}
        self._pending_calls: list[tuple] = []
        self._pending_responses: dict[str, dict] = {}
        self._pending_memos: dict[tuple[str, str, str], Any] = {}
        self._flush_scheduled = False
        self.before_commit: list[Callable[[], None]] = []  # e.g. flush output files: lines land before commits

    def close(self) -> None:
        self.flush()
        self.db.close()

    def drain(self) -> None:
        """Commit everything queued now (run start and end)."""
        self.flush()

    # --- calls -------------------------------------------------------------------------
    def lookup(self, cache_key: str) -> dict | None:
        pending = self._pending_responses.get(cache_key)
        if pending is not None:
            return pending
        if self._keys is None:
            self._keys = {k for (k,) in self.db.execute("SELECT cache_key FROM calls WHERE response IS NOT NULL")}
        if cache_key not in self._keys:
            return None  # the common case in a fresh run: no SQL at all
        row = self.db.execute(
            "SELECT response FROM calls WHERE cache_key=? AND response IS NOT NULL LIMIT 1", (cache_key,)
        ).fetchone()
        if row is None:
            return None
        return orjson.loads(row[0])

    def log_call(self, *, run_id: str | None, item_id: str | None, purpose: str, endpoint: str, model: str,
                 cache_key: str | None, request: bytes, response: dict | None, prompt_tokens: int = 0,
                 completion_tokens: int = 0, latency: float = 0.0, attempt: int = 0, error: str | None = None,
                 cost: float = 0.0) -> None:
        """Queue one call for the next group commit (see ``flush``)."""
        self._pending_calls.append(
            (run_id, item_id, purpose, endpoint, model, cache_key, request,
             orjson.dumps(response) if response is not None else None,
             prompt_tokens, completion_tokens, latency, attempt, error, cost, time.time()))
        if response is not None and cache_key:
            self._pending_responses[cache_key] = response
        self._schedule()

    def _schedule(self) -> None:
        """Flush on the next event-loop turn (or now, outside a loop)."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def calls(self, run_id: str, item_id: str | None = None) -> Iterator[dict[str, Any]]:
        q = ("SELECT id, item_id, purpose, endpoint, model, request, response, prompt_tokens, completion_tokens,"
             " latency, attempt, error FROM calls WHERE run_id=?")
        args: tuple = (run_id,)
        if item_id is not None:
            q += " AND item_id=?"
            args += (item_id,)
        for r in self.db.execute(q + " ORDER BY id", args):
            yield {"id": r[0], "item_id": r[1], "purpose": r[2], "endpoint": r[3], "model": r[4],
                   "request": orjson.loads(r[5]) if r[5] else None, "response": orjson.loads(r[6]) if r[6] else None,
                   "prompt_tokens": r[7], "completion_tokens": r[8], "latency": r[9], "attempt": r[10], "error": r[11]}

    # --- memos: values an item recorded, replayed when it runs again ------------------------
    def memo(self, run_id: str, item_id: str, key: str, value: Any) -> Any:
        """The value recorded under key for this item, or record `value` and return it."""
        k = (run_id, item_id, key)
        if k in self._pending_memos:
            return self._pending_memos[k]
        row = self.db.execute("SELECT value FROM memos WHERE run_id=? AND item_id=? AND key=?", k).fetchone()
        if row is not None:
            return orjson.loads(row[0])
        self._pending_memos[k] = value
        self._schedule()
        return value

    # --- runs and items ------------------------------------------------------------------
    def begin_run(self, run_id: str, name: str, outputs: dict[str, str], command: str | None) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO runs (run_id, name, created_at, updated_at, status, command, outputs) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT(run_id) DO UPDATE SET updated_at=excluded.updated_at, status='running',"
            " command=excluded.command, outputs=excluded.outputs",
            (run_id, name, now, now, "running", command, orjson.dumps(outputs).decode()),
        )

    def end_run(self, run_id: str, status: str) -> None:
        self.db.execute("UPDATE runs SET status=?, updated_at=? WHERE run_id=?", (status, time.time(), run_id))

    def item_statuses(self, run_id: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT item_id, status FROM items WHERE run_id=?", (run_id,)))

    def failures(self, run_id: str) -> list[tuple[str, str]]:
        return list(self.db.execute(
            "SELECT item_id, error FROM items WHERE run_id=? AND status='failed' ORDER BY updated_at", (run_id,)))

    def commit_item(self, run_id: str, item_id: str, status: str, *, error: str | None = None,
                    records: int = 0, file_sizes: dict[str, int] | None = None, defer: bool = False) -> None:
        """Record a finished item and its output files' new sizes in one transaction.

        With ``defer=True`` the commit joins a group that ``flush()`` writes at once (the runner
        flushes on the next event-loop turn). That is safe: until the commit, the item's lines
        are an uncommitted tail that a restart cuts off, and the item simply runs again, its
        LLM calls served from the store."""
        self._pending.append((run_id, item_id, status, error, records, time.time()))
        if file_sizes:
            self._pending_files.update(file_sizes)
        if defer:
            self._schedule()
        else:
            self.flush()

    def flush(self) -> None:
        """Group commit: queued calls, then finished items and file sizes, in one transaction.

        It runs on the event-loop turn after the first queued entry, so a response is durable
        within a turn of its arrival while a busy loop still batches several rows per
        commit. Output files are flushed first (``before_commit``), so an item's lines reach the
        file before the commit that marks it done; a crash in between leaves an uncommitted
        tail that the next run cuts off, and the item runs again from the cache. The commit runs
        inline on the loop thread: a writer thread was tried and measured, and it let commits
        lag behind arrivals under load, widening the window in which a kill loses answers."""
        self._flush_scheduled = False
        if not self._pending and not self._pending_calls and not self._pending_memos:
            return
        for hook in self.before_commit:
            hook()
        items, files, calls = self._pending, self._pending_files, self._pending_calls
        self._pending, self._pending_files, self._pending_calls = [], {}, []
        memos, self._pending_memos = self._pending_memos, {}
        responses, self._pending_responses = self._pending_responses, {}
        db = self.db
        db.execute("BEGIN")
        try:
            if calls:
                db.executemany(
                    "INSERT INTO calls (run_id, item_id, purpose, endpoint, model, cache_key, request, response,"
                    " prompt_tokens, completion_tokens, latency, attempt, error, cost, created_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", calls)
                if self._keys is not None:
                    self._keys.update(responses)
            if memos:
                db.executemany("INSERT OR IGNORE INTO memos (run_id, item_id, key, value) VALUES (?,?,?,?)",
                               [(*k, orjson.dumps(v)) for k, v in memos.items()])
            db.executemany(
                "INSERT INTO items (run_id, item_id, status, error, records, updated_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(run_id, item_id) DO UPDATE SET status=excluded.status, error=excluded.error,"
                " records=excluded.records, updated_at=excluded.updated_at", items)
            if files:
                db.executemany("INSERT INTO files (path, size) VALUES (?, ?)"
                               " ON CONFLICT(path) DO UPDATE SET size=excluded.size", list(files.items()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # --- output files --------------------------------------------------------------------
    def committed_size(self, path: str) -> int | None:
        row = self.db.execute("SELECT size FROM files WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def set_committed_size(self, path: str, size: int) -> None:
        self.db.execute("INSERT INTO files (path, size) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET size=excluded.size",
                        (path, size))

    # --- listing ---------------------------------------------------------------------------
    def runs(self) -> list[RunInfo]:
        out = []
        for r in self.db.execute(
            "SELECT r.run_id, r.name, r.created_at, r.updated_at, r.status, r.command, r.outputs,"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id=r.run_id AND i.status='done'),"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id=r.run_id AND i.status='failed')"
            " FROM runs r ORDER BY r.updated_at DESC"):
            out.append(RunInfo(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6] or "{}"), r[7], r[8]))
        return out

    def find_run(self, prefix: str) -> RunInfo | None:
        matches = [r for r in self.runs() if r.run_id == prefix or r.run_id.startswith(prefix)]
        return matches[0] if len(matches) >= 1 else None

    def run_summary(self, run_id: str) -> dict[str, Any]:
        by_purpose = [
            {"purpose": p, "calls": n, "errors": e, "prompt_tokens": pt or 0, "completion_tokens": ct or 0,
             "cost": c or 0.0, "mean_latency": lat or 0.0}
            for p, n, e, pt, ct, c, lat in self.db.execute(
                "SELECT purpose, COUNT(*), SUM(error IS NOT NULL), SUM(prompt_tokens), SUM(completion_tokens),"
                " SUM(cost), AVG(CASE WHEN error IS NULL THEN latency END) FROM calls WHERE run_id=? GROUP BY purpose",
                (run_id,))
        ]
        errors = [{"error": e, "count": n} for e, n in self.db.execute(
            "SELECT error, COUNT(*) FROM calls WHERE run_id=? AND error IS NOT NULL GROUP BY error"
            " ORDER BY COUNT(*) DESC LIMIT 10", (run_id,))]
        return {"by_purpose": by_purpose, "call_errors": errors, "failures": self.failures(run_id)}
