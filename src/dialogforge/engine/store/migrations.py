"""Numbered schema migrations for the run store, applied when a store is opened.

The store's version is SQLite's ``PRAGMA user_version``: the number of the last migration
applied. Opening a store runs every migration above it, in order, each in its own
transaction together with the version bump, so a store is always at a whole version.

Add a table or column with the next number; never edit a migration that has shipped:

    @migration(4)
    def m004_something(db):
        db.execute("ALTER TABLE calls ADD COLUMN something TEXT")

Statements run one by one through ``db.execute`` (``executescript`` would commit mid-step).
"""
from __future__ import annotations

import sqlite3
import sys
from typing import Callable

from ..errors import DialogforgeError

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[int, str, Migration]] = []


def migration(number: int) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        if MIGRATIONS and number <= MIGRATIONS[-1][0]:
            raise RuntimeError(f"migration {number} ({fn.__name__}) is not above {MIGRATIONS[-1][0]}")
        MIGRATIONS.append((number, fn.__name__, fn))
        return fn
    return register


def latest() -> int:
    return MIGRATIONS[-1][0]


def _statements(db: sqlite3.Connection, sql: str) -> None:
    for stmt in sql.split(";"):
        if stmt.strip():
            db.execute(stmt)


def apply(db: sqlite3.Connection, path: object) -> list[str]:
    """Bring the store up to the latest version; return the names of the migrations applied."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > latest():
        raise DialogforgeError(f"{path}: run store version {version} was written by a newer dialogforge "
                               f"(this one reads up to {latest()}); upgrade dialogforge or use another --store")
    done = []
    if 0 < version < latest():
        _announce(db, path, version)
    for number, name, fn in MIGRATIONS:
        if number <= version:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated between our read and the lock
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:
                db.execute("ROLLBACK")
                continue
            fn(db)
            db.execute(f"PRAGMA user_version = {int(number)}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        done.append(name)
    return done


BIG = 100_000  # calls above which an upgrade says what it is doing (a v7 -> v8 copy: ~3 s per 100,000 calls)


def _announce(db: sqlite3.Connection, path: object, version: int) -> None:
    """One line on stderr before an upgrade that rewrites many rows: it runs once, but not instantly."""
    for table in ("call_log", "calls"):
        try:
            (n,) = db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
            break
        except sqlite3.OperationalError:  # a view, or not in this version
            continue
    else:
        return
    if n > BIG:
        sys.stderr.write(f"{path}: upgrading the run store from version {version} to {latest()} "
                         f"({n:,} calls; once, this may take a while)\n")
        sys.stderr.flush()


# The schema of every store written before versioning (version 0). IF NOT EXISTS makes this step a
# no-op on such a store and the creation of a new one.
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    status TEXT NOT NULL, command TEXT, outputs TEXT, info TEXT
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL, item_id TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    records INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL, PRIMARY KEY (run_id, item_id)
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, run_id TEXT, item_id TEXT, purpose TEXT, endpoint TEXT, model TEXT, cache_key TEXT,
    request BLOB, response BLOB, prompt_tokens INTEGER, completion_tokens INTEGER, latency REAL, attempt INTEGER,
    error TEXT, cost REAL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_key ON calls (cache_key) WHERE response IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_run ON calls (run_id, item_id);
CREATE TABLE IF NOT EXISTS memos (
    run_id TEXT NOT NULL, item_id TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (run_id, item_id, key)
);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL)
"""


@migration(1)
def m001_initial(db: sqlite3.Connection) -> None:
    _statements(db, V1_SCHEMA)


@migration(2)
def m002_run_identity_and_crash(db: sqlite3.Connection) -> None:
    """What shapes a run's outputs (its identity, and a fingerprint of it), and the traceback of a crash."""
    db.execute("ALTER TABLE runs ADD COLUMN identity TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN fingerprint TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN error TEXT")


@migration(3)
def m003_appends(db: sqlite3.Connection) -> None:
    """The bytes each item appended to each output file, at which offset: recorded (committed) before the
    append, so a missing or cut file is rebuilt from here and a tail nobody recorded is known as foreign."""
    db.execute("CREATE TABLE appends (file INTEGER NOT NULL, offset INTEGER NOT NULL, run_id TEXT NOT NULL,"
               " item_id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (file, offset)) WITHOUT ROWID")


@migration(4)
def m004_batch_jobs(db: sqlite3.Connection) -> None:
    """The provider batch jobs a batch-mode run submitted or adopted (engine/executors/batch.py)."""
    db.execute("CREATE TABLE batch_jobs (batch_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, endpoint TEXT NOT NULL,"
               " round INTEGER NOT NULL, status TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,"
               " completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,"
               " prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,"
               " cost REAL NOT NULL DEFAULT 0, created_at REAL NOT NULL, updated_at REAL NOT NULL)")
    db.execute("CREATE INDEX batch_jobs_run ON batch_jobs (run_id)")


@migration(5)
def m005_offline_requests(db: sqlite3.Connection) -> None:
    """Calls a --batch-file run wrote for an offline batch runner, and the answers `batch import` loaded."""
    db.execute("CREATE TABLE offline_requests (run_id TEXT NOT NULL, custom_id TEXT NOT NULL, file TEXT NOT NULL,"
               " response BLOB, created_at REAL NOT NULL, PRIMARY KEY (run_id, custom_id))")
    db.execute("CREATE INDEX offline_requests_id ON offline_requests (custom_id)")


@migration(6)
def m006_call_replica(db: sqlite3.Connection) -> None:
    """Which server of an endpoint answered each call (its base URL; NULL without one): replicas, #13."""
    db.execute("ALTER TABLE calls ADD COLUMN replica TEXT")


@migration(7)
def m007_compressed_blobs(db: sqlite3.Connection) -> None:
    """Blobs become zstd frames (see codec; older raw blobs still read); a request may be compressed against
    an earlier call of its item (``base``); appends keep their uncompressed length."""
    db.execute("ALTER TABLE calls ADD COLUMN base INTEGER")
    db.execute("ALTER TABLE appends ADD COLUMN length INTEGER")
    db.execute("UPDATE appends SET length = length(data)")


@migration(8)
def m008_segments(db: sqlite3.Connection) -> None:
    """Blobs move into segments (one zstd frame per group commit, see blobs.py); calls and appended lines become
    small rows pointing into them, with names interned and cache keys as two integers; items are keyed by the
    run's number (``item_log``, WITHOUT ROWID) and ``items`` becomes a view with the old columns. Rows of older stores keep
    their blobs inline (``request``/``response``/``data``) and read as before; ``calls`` becomes a view with the
    old column names (``request``/``response``: sizes of the stored forms, NULL when absent)."""
    from .blobs import key_ints
    db.create_function("df_k1", 1, lambda k: key_ints(k)[0] if k else None, deterministic=True)
    db.create_function("df_k2", 1, lambda k: key_ints(k)[1] if k else None, deterministic=True)
    _statements(db, """
CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE dicts (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE segments (id INTEGER PRIMARY KEY, dict INTEGER, data BLOB NOT NULL);
CREATE TABLE call_log (
    id INTEGER PRIMARY KEY, run INTEGER, item TEXT, purpose INTEGER, endpoint INTEGER, model INTEGER,
    k1 INTEGER, k2 INTEGER, seg INTEGER, pos INTEGER, qlen INTEGER, rlen INTEGER,
    prompt_tokens INTEGER, completion_tokens INTEGER, latency_us INTEGER, attempt INTEGER, error TEXT, cost REAL,
    created_ms INTEGER, replica INTEGER, base INTEGER, request BLOB, response BLOB);
INSERT OR IGNORE INTO names (name) SELECT run_id FROM calls WHERE run_id IS NOT NULL
    UNION SELECT purpose FROM calls WHERE purpose IS NOT NULL UNION SELECT endpoint FROM calls WHERE endpoint IS NOT NULL
    UNION SELECT model FROM calls WHERE model IS NOT NULL UNION SELECT replica FROM calls WHERE replica IS NOT NULL
    UNION SELECT run_id FROM appends;
INSERT INTO call_log (id, run, item, purpose, endpoint, model, k1, k2, prompt_tokens, completion_tokens, latency_us,
    attempt, error, cost, created_ms, replica, base, request, response)
    SELECT c.id, (SELECT id FROM names WHERE name=c.run_id), c.item_id, (SELECT id FROM names WHERE name=c.purpose),
    (SELECT id FROM names WHERE name=c.endpoint), (SELECT id FROM names WHERE name=c.model), df_k1(c.cache_key),
    df_k2(c.cache_key), c.prompt_tokens, c.completion_tokens, CAST(ROUND(c.latency * 1e6) AS INTEGER), c.attempt,
    c.error, c.cost, CAST(ROUND(c.created_at * 1e3) AS INTEGER), (SELECT id FROM names WHERE name=c.replica), c.base,
    c.request, c.response FROM calls c;
DROP TABLE calls;
CREATE INDEX call_key ON call_log (k1) WHERE k1 IS NOT NULL;
CREATE INDEX call_run ON call_log (run, item);
CREATE TABLE lines (file INTEGER NOT NULL, offset INTEGER NOT NULL, run INTEGER, length INTEGER NOT NULL,
    seg INTEGER, pos INTEGER, data BLOB, PRIMARY KEY (file, offset)) WITHOUT ROWID;
INSERT INTO lines (file, offset, run, length, data)
    SELECT a.file, a.offset, (SELECT id FROM names WHERE name=a.run_id), a.length, a.data FROM appends a;
DROP TABLE appends;
CREATE TABLE item_log (run INTEGER NOT NULL, item TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
    records INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL, PRIMARY KEY (run, item)) WITHOUT ROWID;
INSERT OR IGNORE INTO names (name) SELECT DISTINCT run_id FROM items;
INSERT INTO item_log SELECT (SELECT id FROM names WHERE name=i.run_id), i.item_id, i.status, i.error, i.records,
    CAST(ROUND(i.updated_at * 1e3) AS INTEGER) FROM items i;
DROP TABLE items;
CREATE VIEW items AS SELECT r.name AS run_id, i.item AS item_id, i.status AS status, i.error AS error,
    i.records AS records, i.updated_ms / 1e3 AS updated_at FROM item_log i JOIN names r ON r.id = i.run;
CREATE VIEW calls AS SELECT c.id AS id, r.name AS run_id, c.item AS item_id, p.name AS purpose, e.name AS endpoint,
    m.name AS model, CASE WHEN c.k1 IS NULL THEN NULL ELSE printf('%016x%016x', c.k1, c.k2) END AS cache_key,
    COALESCE(length(c.request), c.qlen) AS request, COALESCE(length(c.response), c.rlen) AS response,
    c.prompt_tokens AS prompt_tokens, c.completion_tokens AS completion_tokens, c.latency_us / 1e6 AS latency,
    c.attempt AS attempt, c.error AS error, c.cost AS cost, c.created_ms / 1e3 AS created_at, rp.name AS replica,
    c.base AS base
    FROM call_log c LEFT JOIN names r ON r.id = c.run LEFT JOIN names p ON p.id = c.purpose
    LEFT JOIN names e ON e.id = c.endpoint LEFT JOIN names m ON m.id = c.model LEFT JOIN names rp ON rp.id = c.replica
""")


@migration(9)
def m009_run_sizes(db: sqlite3.Connection) -> None:
    """Each run's bytes as counters (segment bytes attributed to it, its rows' payload), kept by every group
    commit, so `dialogforge runs` lists shares without walking the file's pages (sizes.py); counted once here
    from the data already stored."""
    from .sizes import recount
    db.execute("CREATE TABLE run_sizes (run INTEGER PRIMARY KEY, seg INTEGER NOT NULL DEFAULT 0,"
               " rows INTEGER NOT NULL DEFAULT 0)")
    recount(db)
