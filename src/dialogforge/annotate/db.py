"""The annotation database: tables, numbered migrations, and how a project's database is opened.

SQLite (one file in the project folder) by default; PostgreSQL when a URL is given. The schema version
lives in the `meta` table; `open_db` applies every migration above it, in order, in one transaction each.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, create_engine,
                        delete, event, insert, select)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


def now() -> dt.datetime:
    """UTC, without tzinfo: SQLite and PostgreSQL `timestamp` columns then compare the same way."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    pw_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)   # argon2id; None until the invite is used
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Invite(Base):
    __tablename__ = "invites"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)    # HMAC of the link's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Session(Base):
    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)    # HMAC of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)               # "user:<name>" or "ip:<addr>"
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Trace(Base):
    __tablename__ = "traces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))                           # file stem (+ #index for lists of traces)
    source: Mapped[str] = mapped_column(Text)                                # the file it came from
    digest: Mapped[str] = mapped_column(String(64), unique=True)             # sha256 of the canonical turns: re-import is a no-op
    theme: Mapped[str] = mapped_column(String(64))                           # e.g. "code", "writing"
    n_turns: Mapped[int] = mapped_column(Integer)


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("trace_id", "idx"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    time: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(Text)
    candidates: Mapped[list] = mapped_column(JSON)
    asked: Mapped[bool] = mapped_column(Boolean)                              # is this turn annotated at all


class Slot(Base):
    """One of the N annotator places on a trace. (trace, slot) and (trace, user) are unique: the database
    refuses a second holder of a place and a second place for the same person."""
    __tablename__ = "slots"
    __table_args__ = (UniqueConstraint("trace_id", "slot"), UniqueConstraint("trace_id", "user_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    lease_expires: Mapped[dt.datetime] = mapped_column(DateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("user_id", "turn_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    trace_id: Mapped[int] = mapped_column(ForeignKey("traces.id", ondelete="CASCADE"), index=True)
    help_needed: Mapped[bool] = mapped_column(Boolean)
    accepted: Mapped[list] = mapped_column(JSON)                              # indices of accepted candidates
    reject_all: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


# ---- numbered migrations: append only; never edit one that has shipped ----

def _m1_initial(conn: Connection) -> None:
    names = ["meta", "users", "invites", "sessions", "login_failures", "traces", "turns", "slots", "answers"]
    Base.metadata.create_all(conn, tables=[Base.metadata.tables[n] for n in names])


MIGRATIONS: list[Callable[[Connection], None]] = [_m1_initial]
SCHEMA_VERSION = len(MIGRATIONS)


def _schema_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    v = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
    return int(v) if v else 0


def migrate(engine: Engine) -> int:
    """Bring the schema up to SCHEMA_VERSION; returns the version found before."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":   # one migrator at a time across processes
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7410012)")
        before = _schema_version(conn)
        if before > SCHEMA_VERSION:
            from ..engine.errors import DialogforgeError
            raise DialogforgeError(f"the annotation database has schema {before}, newer than this dialogforge "
                                   f"({SCHEMA_VERSION}); upgrade dialogforge")
        for n in range(before, SCHEMA_VERSION):
            MIGRATIONS[n](conn)
            conn.execute(delete(Meta).where(Meta.key == "schema_version"))
            conn.execute(insert(Meta).values(key="schema_version", value=str(n + 1)))
    return before


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Python's sqlite3 opens transactions lazily and never as IMMEDIATE; we issue BEGIN ourselves (see `begin`).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: a crash loses nothing committed; only power loss may
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(eng, "connect", _sqlite_pragmas)

        @event.listens_for(eng, "begin")
        def _begin_immediate(conn: Connection) -> None:
            # Take the write lock at BEGIN: a read-then-write transaction can then never be refused half-way
            # (SQLITE_BUSY on upgrade), and concurrent assignments queue on the lock instead of racing.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return eng
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sessionmaker_for(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
