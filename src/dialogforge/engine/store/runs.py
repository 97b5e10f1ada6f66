"""Runs, their items and their output files, as the run store records them."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

import orjson

from ..types import ItemStatus, RunStatus
from .base import StoreCore
from .codec import unpack


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
    error: str | None = None  # the traceback of a crashed run


class RunStore(StoreCore):
    # --- runs and items ------------------------------------------------------------------
    def begin_run(self, run_id: str, name: str, outputs: dict[str, str], command: str | None) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO runs (run_id, name, created_at, updated_at, status, command, outputs) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT(run_id) DO UPDATE SET updated_at=excluded.updated_at, status=excluded.status,"
            " command=excluded.command, outputs=excluded.outputs, error=NULL",
            (run_id, name, now, now, RunStatus.RUNNING, command, orjson.dumps(outputs).decode()),
        )

    def run_identity(self, run_id: str) -> tuple[str | None, dict | None]:
        """(fingerprint, identity) recorded for a run; (None, None) for a new run or one from before identities."""
        row = self.db.execute("SELECT fingerprint, identity FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None or row[0] is None:
            return None, None
        return row[0], orjson.loads(row[1]) if row[1] else None

    def set_run_identity(self, run_id: str, fingerprint: str, identity: dict) -> None:
        self.db.execute("UPDATE runs SET fingerprint=?, identity=? WHERE run_id=?",
                        (fingerprint, orjson.dumps(identity, option=orjson.OPT_SORT_KEYS).decode(), run_id))

    def end_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self.db.execute("UPDATE runs SET status=?, updated_at=?, error=? WHERE run_id=?",
                        (str(status), time.time(), error, run_id))
        # the WAL file keeps its largest size until truncated: give the disk back when a run ends
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def item_statuses(self, run_id: str) -> dict[str, str]:
        return dict(self.db.execute("SELECT item_id, status FROM items WHERE run_id=?", (run_id,)))

    def failures(self, run_id: str) -> list[tuple[str, str]]:
        return list(self.db.execute(
            "SELECT item_id, error FROM items WHERE run_id=? AND status=? ORDER BY updated_at",
            (run_id, ItemStatus.FAILED)))

    # --- output files --------------------------------------------------------------------
    def open_file(self, path: str) -> tuple[int, int | None]:
        """(file id, committed size); the size is None for a file this store never wrote."""
        row = self.db.execute("SELECT rowid, size FROM files WHERE path=?", (path,)).fetchone()
        if row is not None:
            return row[0], row[1]
        cur = self.db.execute("INSERT INTO files (path, size) VALUES (?, 0)", (path,))
        return int(cur.lastrowid or 0), None

    def committed_size(self, path: str) -> int | None:
        row = self.db.execute("SELECT size FROM files WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def set_committed_size(self, path: str, size: int) -> None:
        self.db.execute("INSERT INTO files (path, size) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET size=excluded.size",
                        (path, size))

    def appended(self, file_id: int, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) of the recorded appends to a file that end after ``start``, in file order."""
        q = "SELECT offset, data FROM appends WHERE file=? AND offset + length > ?"
        args: tuple = (file_id, start)
        if end is not None:
            q += " AND offset < ?"
            args += (end,)
        for offset, data in self.db.execute(q + " ORDER BY offset", args):
            yield offset, unpack(data) or b""

    def append_at(self, file_id: int, end: int) -> tuple[int, bytes] | None:
        """The recorded append that ends exactly at ``end`` (the last one before it), if any."""
        row = self.db.execute("SELECT offset, length, data FROM appends WHERE file=? AND offset < ? ORDER BY offset DESC"
                              " LIMIT 1", (file_id, end)).fetchone()
        if row is None or row[0] + row[1] != end:
            return None
        return row[0], unpack(row[2]) or b""

    def first_append(self, file_id: int) -> int | None:
        row = self.db.execute("SELECT MIN(offset) FROM appends WHERE file=?", (file_id,)).fetchone()
        return row[0] if row else None

    def shift_appends(self, file_id: int, by: int) -> None:
        """Move a file's recorded lines ``by`` bytes towards its start (the bytes before them are gone)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("UPDATE appends SET offset = -offset - 1 WHERE file=?", (file_id,))
            self.db.execute("UPDATE appends SET offset = -offset - 1 - ? WHERE file=?", (by, file_id))

    # --- listing ---------------------------------------------------------------------------
    def runs(self) -> list[RunInfo]:
        out = []
        for r in self.db.execute(
            "SELECT r.run_id, r.name, r.created_at, r.updated_at, r.status, r.command, r.outputs,"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id=r.run_id AND i.status='done'),"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id=r.run_id AND i.status='failed'), r.error"
            " FROM runs r ORDER BY r.updated_at DESC"):
            out.append(RunInfo(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6] or "{}"), r[7], r[8], r[9]))
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
