"""Runs, their items and their output files, as the run store records them."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson

from ..errors import DialogforgeError
from ..types import ItemStatus, RunStatus
from .base import StoreCore
from .rewrite import drop_requests
from .sizes import StoreShares, estimated, exact, recount, requests_share

class PruneRefused(DialogforgeError):
    """A run that cannot be pruned (unknown, ambiguous, not finished); nothing was changed."""


@dataclass(slots=True)
class PrunePlan:
    """What `prune` drops of a finished run: its request bodies and its failed (unanswered) attempts."""
    run_id: str
    requests: int = 0  # answered calls whose request body goes
    request_bytes: int = 0
    failed: int = 0  # call rows without a response (errors, retried or final) that go entirely
    failed_bytes: int = 0
    stored: int = 0  # about how much of the file those take, compressed as stored (sizes.requests_share)
    file_before: int = 0
    file_after: int | None = None  # None: a dry run, or not vacuumed (see not_vacuumed)
    not_vacuumed: str | None = None  # why the file was not rewritten (the space is reused by later runs)

    @property
    def bytes(self) -> int:
        """Their size uncompressed (each request's stored form before its segment's compression)."""
        return self.request_bytes + self.failed_bytes


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
    info: dict = field(default_factory=dict)  # {"pruned": {...}} once `prune` dropped request bodies


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
        run = self.names.find(run_id)  # item_log directly: the items view would join every row
        return {} if run is None else dict(self.db.execute("SELECT item, status FROM item_log WHERE run=?", (run,)))

    def has_items(self, run_id: str) -> bool:
        """Whether the run has recorded any item (finished or failed)."""
        run = self.names.find(run_id)
        return run is not None and self.db.execute("SELECT 1 FROM item_log WHERE run=? LIMIT 1",
                                                   (run,)).fetchone() is not None

    def statuses_of(self, run_id: str, item_ids: list[str]) -> dict[str, str]:
        """The recorded status of those of ``item_ids`` the run has recorded (a page at a time: memory stays flat)."""
        run = self.names.find(run_id)
        if run is None or not item_ids:
            return {}
        marks = ",".join("?" * len(item_ids))
        return dict(self.db.execute(f"SELECT item, status FROM item_log WHERE run=? AND item IN ({marks})",
                                    (run, *item_ids)))

    def has_calls(self, run_id: str, item_id: str | None = None, purpose: str | None = None) -> bool:
        """Whether the run made any call (of this item, of this purpose)."""
        run = self.names.find(run_id)
        q = "SELECT 1 FROM call_log WHERE run=?"
        args: list[object] = [run]
        if item_id is not None:
            q += " AND item=?"
            args.append(item_id)
        if purpose is not None:
            q += " AND purpose=?"
            args.append(self.names.find(purpose))
        return run is not None and self.db.execute(q + " LIMIT 1", args).fetchone() is not None

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

    # --- listing ---------------------------------------------------------------------------
    def runs(self) -> list[RunInfo]:
        out = []
        for r in self.db.execute(
            "SELECT r.run_id, r.name, r.created_at, r.updated_at, r.status, r.command, r.outputs,"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id=r.run_id AND i.status='done'),"
            " (SELECT COUNT(*) FROM items i WHERE i.run_id=r.run_id AND i.status='failed'), r.error, r.info"
            " FROM runs r ORDER BY r.updated_at DESC"):
            out.append(RunInfo(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6] or "{}"), r[7], r[8], r[9],
                               orjson.loads(r[10]) if r[10] else {}))
        return out

    def find_run(self, ref: str) -> RunInfo | None:
        """The run with this id, else the newest whose id starts with it or that wrote this output file."""
        matches = _matching(self.runs(), ref)
        return matches[0] if matches else None

    def run_summary(self, run_id: str) -> dict[str, Any]:
        by_purpose = {
            p: {"purpose": p, "calls": n, "errors": e, "prompt_tokens": pt or 0, "completion_tokens": ct or 0,
                "cost": c or 0.0, "mean_latency": lat or 0.0}
            for p, n, e, pt, ct, c, lat in self.db.execute(
                "SELECT purpose, COUNT(*), SUM(error IS NOT NULL), SUM(prompt_tokens), SUM(completion_tokens),"
                " SUM(cost), AVG(CASE WHEN error IS NULL THEN latency END) FROM calls WHERE run_id=? GROUP BY purpose",
                (run_id,))
        }
        errors = dict(self.db.execute("SELECT error, COUNT(*) FROM calls WHERE run_id=? AND error IS NOT NULL"
                                      " GROUP BY error", (run_id,)).fetchall())
        pruned = self.pruned(run_id)  # failed attempts a prune dropped still count
        for p, n in pruned.get("failed_by_purpose", {}).items():
            row = by_purpose.setdefault(p, {"purpose": p, "calls": 0, "errors": 0, "prompt_tokens": 0,
                                            "completion_tokens": 0, "cost": 0.0, "mean_latency": 0.0})
            row["calls"] += n
            row["errors"] += n
        for e, n in pruned.get("errors", {}).items():
            errors[e] = errors.get(e, 0) + n
        top = sorted(errors.items(), key=lambda kv: -kv[1])[:10]
        return {"by_purpose": list(by_purpose.values()), "call_errors": [{"error": e, "count": n} for e, n in top],
                "failures": list(self.failures(run_id)), "pruned": pruned}

    # --- each run's share of the file, and pruning ------------------------------------------
    def pruned(self, run_id: str) -> dict[str, Any]:
        """What prunes dropped of a run ({} if never pruned): at, requests, failed, bytes, errors, failed_by_purpose."""
        row = self.db.execute("SELECT info FROM runs WHERE run_id=?", (run_id,)).fetchone()
        info = orjson.loads(row[0]) if row and row[0] else {}
        return info.get("pruned") or {}

    def disk_bytes(self) -> tuple[int, int]:
        """(store file, its WAL) in bytes as they are on disk."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size, wal.stat().st_size if wal.exists() else 0

    def shares(self, *, exact_sizes: bool = False) -> StoreShares:
        """Each run's bytes of the store file: estimated from the counters the group commits keep (a few small
        queries), or with ``exact_sizes`` its part of every table's pages walked with SQLite's dbstat (slow:
        it reads the whole file). See sizes.py."""
        self.flush()
        return exact(self) if exact_sizes else estimated(self)

    def resolve_run(self, ref: str) -> RunInfo:
        """The run with this id, or the one run whose id starts with it or that wrote this output file;
        refused (PruneRefused) otherwise."""
        matches = _matching(self.runs(), ref)
        if not matches:
            raise PruneRefused(f"no run {ref!r} in {self.path} (see `dialogforge runs`); nothing changed")
        if len(matches) > 1:
            ids = ", ".join(r.run_id for r in matches[:3]) + (", ..." if len(matches) > 3 else "")
            raise PruneRefused(f"{ref!r} matches {len(matches)} runs ({ids}): give more of the id; nothing changed")
        return matches[0]

    def prune_plan(self, ref: str) -> PrunePlan:
        """What pruning a finished run would drop; refused (PruneRefused) for any other run."""
        info = self.resolve_run(ref)
        _check_finished(info)
        rid = info.run_id
        foreign = self.db.execute("SELECT c.id FROM call_log c JOIN call_log b ON b.id = c.base WHERE b.run=?"
                                  " AND c.run IS NOT b.run LIMIT 1", (self.names.find(rid),)).fetchone()
        if foreign is not None:  # never made by this store's writer; refused rather than break that call
            raise PruneRefused(f"call {foreign[0]} of another run is stored against {rid}'s calls; nothing changed")
        plan = PrunePlan(rid, file_before=sum(self.disk_bytes()))
        # sizes as stored (a request's stored form, before its segment's compression)
        plan.requests, plan.request_bytes = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(request), 0) FROM calls WHERE run_id=? AND response IS NOT NULL"
            " AND request IS NOT NULL", (rid,)).fetchone()
        plan.failed, plan.failed_bytes = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(COALESCE(request, 0) + COALESCE(length(error), 0) + 48), 0) FROM calls"
            " WHERE run_id=? AND response IS NULL", (rid,)).fetchone()
        plan.stored = requests_share(self.db, self.names.find(rid))
        return plan

    def prune(self, ref: str, *, dry_run: bool = False, vacuum: bool = True) -> PrunePlan:
        """Drop a finished run's request bodies and failed attempts; keep its responses (the cache, other runs'
        hits, replay), memos, items and recorded lines (resume, rebuilding outputs). Then VACUUM the file."""
        self.flush()
        plan = self.prune_plan(ref)
        if dry_run:
            return plan
        if plan.requests or plan.failed:
            self._drop(plan)
        if vacuum:  # even with nothing left to drop: a prune that could not vacuum before asks again
            self.vacuum_for(plan)
        return plan

    def _drop(self, plan: PrunePlan) -> None:
        rid = plan.run_id
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT status, info FROM runs WHERE run_id=?", (rid,)).fetchone()
            if row is None or row[0] != RunStatus.FINISHED:  # started again since the plan was made
                raise PruneRefused(f"run {rid} is {row[0] if row else 'gone'} now; nothing changed")
            info = orjson.loads(row[1]) if row[1] else {}
            info["pruned"] = _pruned_summary(db, rid, info.get("pruned") or {}, plan)
            drop_requests(self, rid)
            recount(db)  # segments the run shared with others were rewritten too
            db.execute("UPDATE runs SET info=? WHERE run_id=?", (orjson.dumps(info).decode(), rid))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def vacuum_for(self, plan: PrunePlan) -> None:
        """Rewrite the file without its free pages (VACUUM) and truncate the WAL, unless another run is going
        on in this store (a rewrite holds the write lock for as long as it takes, stalling that run's commits)
        or another process holds the store too long; then the free pages are reused by later runs."""
        busy = [r.run_id for r in self.runs() if r.status == RunStatus.RUNNING and r.run_id != plan.run_id]
        if busy:
            plan.not_vacuumed = (f"run {busy[0]} is running in this store (or was killed: rerun its command) and a "
                                 "rewrite would stall it")
            return
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as e:  # "database is locked": another process kept it past busy_timeout
            plan.not_vacuumed = f"the store is busy ({e})"
            return
        plan.file_after = sum(self.disk_bytes())


def _matching(runs: list[RunInfo], ref: str) -> list[RunInfo]:
    """Runs named by ``ref``: its id; else those whose id starts with it; else those that wrote that file."""
    exact = [r for r in runs if r.run_id == ref]
    if exact:
        return exact
    prefixed = [r for r in runs if r.run_id.startswith(ref)]
    if prefixed:
        return prefixed
    path = str(Path(ref).resolve())
    return [r for r in runs if path in r.outputs.values()]


_NOT_FINISHED = {"running": "still running (or was killed: rerun its command to finish it)",
                 "interrupted": "interrupted: rerun its command to finish it",
                 "crashed": "crashed: rerun its command to finish it"}


def _check_finished(info: RunInfo) -> None:
    if info.status != RunStatus.FINISHED:
        why = _NOT_FINISHED.get(str(info.status), str(info.status))
        raise PruneRefused(f"run {info.run_id} is {why}; only a finished run can be pruned; nothing changed")


def _pruned_summary(db: sqlite3.Connection, run_id: str, before: dict, plan: PrunePlan) -> dict:
    """The prune record kept in runs.info: counts add up over repeated prunes; errors stay countable."""
    errors = dict(before.get("errors") or {})
    by_purpose = dict(before.get("failed_by_purpose") or {})
    for purpose, error, n in db.execute("SELECT purpose, error, COUNT(*) FROM calls WHERE run_id=? AND"
                                        " response IS NULL GROUP BY purpose, error", (run_id,)):
        by_purpose[purpose] = by_purpose.get(purpose, 0) + n
        if error is not None:
            errors[error] = errors.get(error, 0) + n
    return {"at": time.time(), "requests": before.get("requests", 0) + plan.requests,
            "failed": before.get("failed", 0) + plan.failed, "bytes": before.get("bytes", 0) + plan.bytes,
            "errors": errors, "failed_by_purpose": by_purpose}
