"""The run store's core: one SQLite file (WAL) that logs every LLM call and every finished item.

It is also the response cache (calls are looked up by ``cache_key``) and the journal that
makes output files exactly-once: a finished item's lines are committed to the store (with the
offset they go to in each output file) and only then appended to the files. A file shorter
than the store says is completed from the store; a tail nobody recorded is someone else's.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from . import migrations
from .codec import Chains, pack, undelta, unpack


def default_store_path() -> Path:
    home = os.environ.get("DIALOGFORGE_HOME")
    base = Path(home) if home else Path.cwd() / ".dialogforge"
    return base / "store.sqlite"


class StoreCore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable against process kills; fsync at checkpoints
        self.db.execute("PRAGMA busy_timeout=10000")
        try:
            self.migrated = migrations.apply(self.db, self.path)
        except BaseException:
            self.db.close()
            raise
        self._keys: set[str] | None = None  # cache keys that have a response, loaded on first lookup
        self._pending: list[tuple] = []  # finished items awaiting a group commit
        self._pending_files: dict[int, int] = {}  # file id -> committed size
        self._pending_appends: list[tuple] = []
        self._pending_calls: list[tuple] = []
        self._pending_responses: dict[str, dict] = {}
        self._pending_memos: dict[tuple[str, str, str], Any] = {}
        self._flush_scheduled = False
        self._chains = Chains()
        self.before_commit: list[Callable[[], None]] = []
        self.after_commit: list[Callable[[], None]] = []  # e.g. append the committed lines to the output files

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
        return orjson.loads(unpack(row[0]) or b"null")

    def log_call(self, *, run_id: str | None, item_id: str | None, purpose: str, endpoint: str, model: str,
                 cache_key: str | None, request: bytes, response: dict | None, prompt_tokens: int = 0,
                 completion_tokens: int = 0, latency: float = 0.0, attempt: int = 0, error: str | None = None,
                 cost: float = 0.0, replica: str | None = None) -> None:
        """Queue one call for the next group commit (see ``flush``). ``replica``: the server's base URL."""
        self._pending_calls.append(
            (run_id, item_id, purpose, endpoint, model, cache_key, request,
             orjson.dumps(response) if response is not None else None,
             prompt_tokens, completion_tokens, latency, attempt, error, cost, time.time(), replica))
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

    def calls(self, run_id: str, item_id: str | None = None, *, raw: bool = False) -> Iterator[dict[str, Any]]:
        """A run's calls in order; ``raw=True`` gives request and response as the bytes sent and received."""
        q = ("SELECT id, item_id, purpose, endpoint, model, request, response, prompt_tokens, completion_tokens,"
             " latency, attempt, error, created_at, replica, base FROM calls WHERE run_id=?")
        args: tuple = (run_id,)
        if item_id is not None:
            q += " AND item_id=?"
            args += (item_id,)
        known: dict[int, tuple[bytes, bytes]] = {}  # recent calls' request and response, for deltas
        for r in self.db.execute(q + " ORDER BY id", args).fetchall():
            resp = unpack(r[6])
            if r[14] is None:
                req = unpack(r[5]) or b""
            else:
                base = known.get(r[14]) or self._call_bytes(r[14])
                req = undelta(r[5], *base)
            known[r[0]] = (req, resp or b"")
            if len(known) > 4096:
                known.pop(next(iter(known)))
            load = (lambda b: b) if raw else (lambda b: orjson.loads(b) if b else None)
            yield {"id": r[0], "item_id": r[1], "purpose": r[2], "endpoint": r[3], "model": r[4],
                   "request": load(req), "response": load(resp), "prompt_tokens": r[7], "completion_tokens": r[8],
                   "latency": r[9], "attempt": r[10], "error": r[11], "created_at": r[12], "replica": r[13]}

    def request_bytes(self, call_id: int) -> bytes:
        """The request of one call, byte-equal to what was sent."""
        return self._call_bytes(call_id)[0]

    def _call_bytes(self, call_id: int) -> tuple[bytes, bytes]:
        """A call's request and response as sent and received, its chain of deltas undone."""
        chain = []
        cid: int | None = call_id
        while cid is not None:
            row = self.db.execute("SELECT request, response, base FROM calls WHERE id=?", (cid,)).fetchone()
            if row is None:
                raise KeyError(cid)
            chain.append(row)
            cid = row[2]
        req = b""
        resp = b""
        for blob, rblob, base in reversed(chain):
            req = undelta(blob, req, resp) if base is not None else unpack(blob) or b""
            resp = unpack(rblob) or b""
        return req, resp

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

    # --- finished items: the group commit -------------------------------------------------
    def commit_item(self, run_id: str, item_id: str, status: str, *, error: str | None = None,
                    records: int = 0, appends: list[tuple[int, int, bytes]] | None = None,
                    defer: bool = False) -> None:
        """Record a finished item and the lines it appends (file id, offset, bytes) in one transaction.

        With ``defer=True`` the commit joins a group that ``flush()`` writes at once (on the next
        event-loop turn). Until then the item is not done: a crash runs it again, its LLM calls
        served from the store."""
        self._pending.append((run_id, item_id, str(status), error, records, time.time()))
        self._chains.forget(run_id, item_id)
        for file_id, offset, data in appends or ():
            self._pending_appends.append((file_id, offset, run_id, item_id, len(data), pack(data)))
            self._pending_files[file_id] = offset + len(data)
        if defer:
            self._schedule()
        else:
            self.flush()

    def flush(self) -> None:
        """Group commit: queued calls, memos, finished items and their lines, in one transaction;
        then the ``after_commit`` hooks append those lines to the output files.

        It runs on the event-loop turn after the first queued entry, so a response is durable
        within a turn of its arrival while a busy loop still batches several rows per commit.
        Lines reach a file only after the commit that records them: a crash in between leaves a
        file shorter than the store says, which the next run completes from the store. The commit
        runs inline on the loop thread: a writer thread was tried and measured, and it let commits
        lag behind arrivals under load, widening the window in which a kill loses answers."""
        self._flush_scheduled = False
        if not self._pending and not self._pending_calls and not self._pending_memos:
            return
        for hook in self.before_commit:
            hook()
        items, files, calls, appends = self._pending, self._pending_files, self._pending_calls, self._pending_appends
        self._pending, self._pending_files, self._pending_calls, self._pending_appends = [], {}, [], []
        memos, self._pending_memos = self._pending_memos, {}
        responses, self._pending_responses = self._pending_responses, {}
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # the write lock now: call ids below are ours to give
        try:
            if calls:
                db.executemany(
                    "INSERT INTO calls (id, run_id, item_id, purpose, endpoint, model, cache_key, request, response,"
                    " prompt_tokens, completion_tokens, latency, attempt, error, cost, created_at, replica, base)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", self._encode_calls(calls))
            if memos:
                db.executemany("INSERT OR IGNORE INTO memos (run_id, item_id, key, value) VALUES (?,?,?,?)",
                               [(*k, orjson.dumps(v)) for k, v in memos.items()])
            if appends:
                db.executemany("INSERT OR REPLACE INTO appends (file, offset, run_id, item_id, length, data)"
                               " VALUES (?,?,?,?,?,?)", appends)
                db.executemany("UPDATE files SET size=? WHERE rowid=?", [(s, f) for f, s in files.items()])
            db.executemany(
                "INSERT INTO items (run_id, item_id, status, error, records, updated_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(run_id, item_id) DO UPDATE SET status=excluded.status, error=excluded.error,"
                " records=excluded.records, updated_at=excluded.updated_at", items)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if calls and self._keys is not None:
            self._keys.update(responses)
        for hook in self.after_commit:
            hook()

    def _encode_calls(self, calls: list[tuple]) -> list[tuple]:
        """Calls as stored: numbered, responses packed, requests packed against their item's previous call."""
        (top,) = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()
        rows = []
        for n, c in enumerate(calls, top + 1):
            response = c[7]
            request, base = self._chains.encode(n, c[0], c[1], c[2], c[6], response)
            rows.append((n, *c[:6], request, pack(response) if response is not None else None, *c[8:], base))
        return rows
