"""Each run's share of the store file: kept as counters (cheap to list) or walked exactly (SQLite's dbstat).

The exact walk reads every page of the file (2.4 s for a 100,000-call store, growing with the file), so
`dialogforge runs` lists from counters instead: ``run_sizes`` holds, per run, the stored segment bytes
attributed to it (each group commit's segment split by each run's raw bytes in it, as the exact walk
splits them) and its rows' payload, updated in the same transaction as each group commit (``Tally``),
recomputed from the data by a prune and by migration 9 (``recount``). The listing turns them into bytes
of the file: the pages in use (page count less the free list, both exact) less an estimate of the
store's own tables go to the runs in proportion to their weighted counters. Those shares are estimates
(said as "approx."); `runs --exact-sizes` walks the pages.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .base import StoreCore

# A row's payload, as the counters count it (table, run column, payload of one row in bytes). The ``run``
# columns hold ``names`` ids, ``run_id`` columns the run's id.
PAYLOAD = (
    ("call_log", "run", "COALESCE(length(request),0) + COALESCE(length(response),0) + COALESCE(length(error),0)"
                        " + COALESCE(length(item),0) + 48"),
    ("lines", "run", "COALESCE(length(data),0) + 20"),
    ("item_log", "run", "length(item) + COALESCE(length(error),0) + 16"),
    ("memos", "run_id", "length(value) + length(key) + length(item_id)"),
    ("offline_requests", "run_id", "length(custom_id) + length(file) + COALESCE(length(response),0) + 8"),
    ("batch_jobs", "run_id", "length(batch_id) + length(endpoint) + 80"),
    ("runs", "run_id", "length(run_id) + COALESCE(length(identity),0) + COALESCE(length(command),0)"
                       " + COALESCE(length(outputs),0) + COALESCE(length(error),0) + COALESCE(length(info),0) + 40"),
)
COUNTED = ("call_log", "lines", "item_log", "memos")  # kept in run_sizes; the others are read when listing
# Bytes of the file per counted byte: a row's payload costs its B-tree cells and index entries too (measured
# against the dbstat walk on generate and persona stores); a segment is one blob, mostly overflow pages.
ROW_WEIGHT = 1.5
SEG_WEIGHT = 1.05
CALL_ROW = 48  # the fixed part of a call row's payload (PAYLOAD's call_log)
LINE_ROW = 20
ITEM_ROW = 16

SEGMENT_PARTS = ("SELECT seg, run, COALESCE(qlen, 0) + COALESCE(rlen, 0) AS n FROM call_log WHERE seg IS NOT NULL"
                 " UNION ALL SELECT seg, run, length AS n FROM lines WHERE seg IS NOT NULL")


@dataclass(slots=True)
class StoreShares:
    """How the store file's bytes divide among its runs."""
    file_bytes: int  # the store file (not its WAL)
    wal_bytes: int
    runs: dict[str, int] = field(default_factory=dict)  # run id -> bytes attributed to it
    free_bytes: int = 0  # pages on SQLite's free list (exact)
    approx: bool = False  # runs' bytes estimated from the counters (not walked page by page)

    @property
    def other(self) -> int:
        """Bytes no run owns: free pages, the schema, the output-file table, rounding."""
        return max(0, self.file_bytes - sum(self.runs.values()))

    def percent(self, run_id: str) -> float:
        return 100.0 * self.runs.get(run_id, 0) / self.file_bytes if self.file_bytes else 0.0


class Tally:
    """One group commit's additions to ``run_sizes``: each run's raw segment bytes and row payload."""

    def __init__(self) -> None:
        self.raw: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.stored = 0  # the commit's segment as stored

    def add(self, run_id: str | None, raw: int = 0, rows: int = 0) -> None:
        if run_id is None:  # a call outside any run: the store's own
            return
        if raw:
            self.raw[run_id] = self.raw.get(run_id, 0) + raw
        self.rows[run_id] = self.rows.get(run_id, 0) + rows

    def write(self, db: sqlite3.Connection, name: Callable[[str], int | None]) -> None:
        """Add this commit's counts (inside its transaction)."""
        total = sum(self.raw.values())
        runs = set(self.raw) | set(self.rows)
        if not runs:
            return
        db.executemany(
            "INSERT INTO run_sizes (run, seg, rows) VALUES (?,?,?) ON CONFLICT(run) DO UPDATE SET"
            " seg = seg + excluded.seg, rows = rows + excluded.rows",
            [(name(r), self.stored * self.raw.get(r, 0) // total if total else 0, self.rows.get(r, 0))
             for r in runs])


def recount(db: sqlite3.Connection) -> None:
    """Rebuild ``run_sizes`` from the data (inside the caller's transaction): migration 9 and prunes."""
    sizes: dict[int, list[int]] = {}
    for run, n in db.execute(
            f"WITH parts AS ({SEGMENT_PARTS}), tot AS (SELECT seg, SUM(n) AS raw FROM parts GROUP BY seg)"
            " SELECT p.run, SUM(p.n * 1.0 * length(s.data) / t.raw) FROM parts p JOIN tot t ON t.seg = p.seg"
            " JOIN segments s ON s.id = p.seg WHERE t.raw > 0 AND p.run IS NOT NULL GROUP BY p.run"):
        sizes.setdefault(run, [0, 0])[0] += int(n or 0)
    for table, col, expr in PAYLOAD:
        if table not in COUNTED:
            continue
        key = "run" if col == "run" else "(SELECT id FROM names WHERE name = run_id)"
        if col != "run":  # a run id only memos name still gets a number
            db.execute(f"INSERT OR IGNORE INTO names (name) SELECT DISTINCT {col} FROM {table}")
        for run, n in db.execute(f"SELECT {key}, SUM({expr}) FROM {table} WHERE {col} IS NOT NULL GROUP BY {key}"):
            sizes.setdefault(run, [0, 0])[1] += int(n or 0)
    db.execute("DELETE FROM run_sizes")
    db.executemany("INSERT INTO run_sizes (run, seg, rows) VALUES (?,?,?)",
                   [(r, s, n) for r, (s, n) in sizes.items() if r is not None])


def _pages(db: sqlite3.Connection) -> tuple[int, int, int]:
    return tuple(db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count", "freelist_count"))


def _wal(store: "StoreCore") -> int:
    wal = store.path.with_name(store.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def estimated(store: "StoreCore") -> StoreShares:
    """Each run's share from the counters: page counts and a few small tables, no walk over the pages."""
    db = store.db
    page_size, pages, free = _pages(db)
    out = StoreShares(page_size * pages, _wal(store), free_bytes=page_size * free, approx=True)
    weight: dict[str, float] = {}
    for name, seg, rows in db.execute("SELECT n.name, s.seg, s.rows FROM run_sizes s JOIN names n ON n.id = s.run"):
        weight[name] = SEG_WEIGHT * seg + ROW_WEIGHT * rows
    for table, col, expr in PAYLOAD:
        if table in COUNTED:
            continue
        try:
            for rid, n in db.execute(f"SELECT {col}, SUM({expr}) FROM {table} GROUP BY {col}"):
                weight[rid] = weight.get(rid, 0.0) + ROW_WEIGHT * (n or 0)
        except sqlite3.OperationalError:  # a table this store's layout does not have
            continue
    target = max(0, page_size * (pages - free) - _own(db, page_size))
    total = sum(weight.values())
    for rid, w in weight.items():
        if total:
            out.runs[rid] = int(target * w / total)
    return out


def _own(db: sqlite3.Connection, page_size: int) -> int:
    """The store's own bytes, estimated as the exact walk counts them: the pages of every table that holds no
    run's rows (a page or so each: names, dictionaries, output files, empty tables, their indexes), the
    dictionaries' bytes and the schema's page."""
    run_tables = {"segments"} | {t for t, _, _ in PAYLOAD}
    own = 1
    for (table,) in db.execute("SELECT tbl_name FROM sqlite_schema WHERE rootpage > 0"):
        if table not in run_tables or db.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is None:
            own += 1
    (dicts,) = db.execute("SELECT COALESCE(SUM(length(data)), 0) FROM dicts").fetchone()
    return page_size * own + dicts


def exact(store: "StoreCore") -> StoreShares:
    """Each run's bytes: its part of every table's pages (indexes included, walked with SQLite's dbstat), by its
    rows' payload; the segments split by each run's raw bytes in each."""
    db = store.db
    page_size, pages, free = _pages(db)
    out = StoreShares(page_size * pages, _wal(store), free_bytes=page_size * free)
    tables = _table_bytes(db)
    names = dict(db.execute("SELECT id, name FROM names"))
    for table, col, expr in PAYLOAD:
        try:
            per_run = db.execute(f"SELECT {col}, SUM({expr}) FROM {table} WHERE {col} IS NOT NULL"
                                 f" GROUP BY {col}").fetchall()
        except sqlite3.OperationalError:  # a table this store's layout does not have
            continue
        if col == "run":
            per_run = [(names.get(r), n) for r, n in per_run]
        _split(out, tables, table, per_run)
    seg = db.execute(
        f"WITH parts AS ({SEGMENT_PARTS}), tot AS (SELECT seg, SUM(n) AS raw FROM parts GROUP BY seg)"
        " SELECT nm.name, SUM(p.n * 1.0 * length(s.data) / t.raw) FROM parts p JOIN tot t ON t.seg = p.seg"
        " JOIN segments s ON s.id = p.seg JOIN names nm ON nm.id = p.run WHERE t.raw > 0 GROUP BY p.run").fetchall()
    _split(out, tables, "segments", [(name, int(n or 0)) for name, n in seg])
    return out


def _split(out: StoreShares, tables: dict[str, int] | None, table: str, per_run: list) -> None:
    total = sum(n or 0 for _, n in per_run)
    if not total:
        return
    size = tables.get(table, total) if tables is not None else total
    for rid, n in per_run:
        if rid is not None:
            out.runs[rid] = out.runs.get(rid, 0) + size * (n or 0) // total


def _table_bytes(db: sqlite3.Connection) -> dict[str, int] | None:
    """Bytes of each table's pages, its indexes' included (SQLite's dbstat; None where it is not built in)."""
    try:
        rows = db.execute(
            "SELECT s.tbl_name, SUM(d.pgsize) FROM dbstat AS d JOIN sqlite_schema AS s ON s.name = d.name"
            " WHERE d.aggregate = TRUE GROUP BY s.tbl_name").fetchall()
    except sqlite3.OperationalError:
        return None
    return {t: n for t, n in rows}


def requests_share(db: sqlite3.Connection, run: int | None) -> int:
    """About how many bytes of the file a run's request bodies and failed attempts take, compressed as stored:
    its counted segment bytes times its requests' part of its raw segment bytes, plus request blobs stored
    inline (rows from before segments) and the failed attempts' rows."""
    if run is None:
        return 0
    row = db.execute("SELECT seg FROM run_sizes WHERE run=?", (run,)).fetchone()
    seg = row[0] if row else 0
    req, raw, inline, failed = db.execute(
        "SELECT COALESCE(SUM(qlen), 0), COALESCE(SUM(COALESCE(qlen, 0) + COALESCE(rlen, 0)), 0),"
        " COALESCE(SUM(length(request)), 0), COALESCE(SUM(CASE WHEN rlen IS NULL AND response IS NULL"
        f" THEN {CALL_ROW} + COALESCE(length(item), 0) + COALESCE(length(error), 0) END), 0)"
        " FROM call_log WHERE run=?", (run,)).fetchone()
    (lines,) = db.execute("SELECT COALESCE(SUM(length), 0) FROM lines WHERE run=? AND seg IS NOT NULL",
                          (run,)).fetchone()
    raw += lines
    return int(seg * req / raw if raw else 0) + inline + int(ROW_WEIGHT * failed)
