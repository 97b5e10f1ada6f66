"""Work distribution and answers. The database's transactions decide who gets which place on a trace.

Each trace has N places (slots). A place is held under a lease; an abandoned lease expires and the place goes
to the next annotator who asks. Two people never hold one place: (trace, slot) and (trace, user) are unique
constraints, SQLite serialises writers (every transaction begins IMMEDIATE, see db.make_engine) and on
PostgreSQL the trace row is locked with FOR UPDATE SKIP LOCKED, so concurrent requests take different traces
instead of waiting for each other; a lost race ends in the unique constraint and the next trace is tried.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, CursorResult, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session as DBSession
from sqlalchemy.orm import sessionmaker

from . import db
from .project import Settings


class NotYours(Exception):
    """The user holds no place on this trace (never had one, or the lease expired and went to someone else)."""


def _active(now: dt.datetime) -> ColumnElement[bool]:
    return or_(db.Slot.done_at.is_not(None), db.Slot.lease_expires >= now)


def own_open_slot(s: DBSession, user_id: int) -> db.Slot | None:
    return s.scalar(select(db.Slot).where(db.Slot.user_id == user_id, db.Slot.done_at.is_(None))
                    .order_by(db.Slot.assigned_at).limit(1))


def _take_place(s: DBSession, trace_id: int, user_id: int, st: Settings, now: dt.datetime) -> db.Slot | None:
    lease = now + dt.timedelta(minutes=st.lease_minutes)
    slots = s.scalars(select(db.Slot).where(db.Slot.trace_id == trace_id)).all()
    if any(x.user_id == user_id for x in slots):
        return None
    live = [x for x in slots if x.done_at is not None or x.lease_expires >= now]
    if len(live) >= st.annotators:
        return None
    expired = [x for x in slots if x not in live]
    if expired:   # an abandoned place: it changes hands (the old holder's answers stay theirs, uncounted)
        slot = expired[0]
        res = s.execute(update(db.Slot)
                        .where(db.Slot.id == slot.id, db.Slot.done_at.is_(None), db.Slot.lease_expires < now)
                        .values(user_id=user_id, lease_expires=lease, assigned_at=now))
        n = cast(CursorResult, res).rowcount
        if n != 1:
            return None
        s.refresh(slot)
        return slot
    used = {x.slot for x in slots}
    free = next(i for i in range(st.annotators + len(slots)) if i not in used)
    slot = db.Slot(trace_id=trace_id, slot=free, user_id=user_id, lease_expires=lease, assigned_at=now)
    try:
        with s.begin_nested():
            s.add(slot)
    except IntegrityError:
        return None
    return slot


@dataclass
class _Busy:
    trace_id: int


def _lock(s: DBSession, trace_id: int, wait: bool) -> bool:
    """PostgreSQL: lock the trace row (FOR NO KEY UPDATE, so the slots' foreign keys do not conflict with it).
    SQLite needs nothing: the transaction already holds the database's write lock (BEGIN IMMEDIATE)."""
    if s.get_bind().dialect.name != "postgresql":
        return True
    q = select(db.Trace.id).where(db.Trace.id == trace_id).with_for_update(key_share=True, skip_locked=not wait)
    return s.scalar(q) is not None


def _assign_once(s: DBSession, user_id: int, st: Settings, wait_for: int | None) -> int | _Busy | None:
    now = db.now()
    mine = own_open_slot(s, user_id)
    if mine is not None:
        mine.lease_expires = now + dt.timedelta(minutes=st.lease_minutes)
        return mine.trace_id
    if wait_for is not None and _lock(s, wait_for, wait=True):   # the first lock of this transaction: no deadlock
        slot = _take_place(s, wait_for, user_id, st, now)
        if slot is not None:
            return slot.trace_id
    live = (select(db.Slot.trace_id, func.count().label("n")).where(_active(now))
            .group_by(db.Slot.trace_id).subquery())
    held = select(db.Slot.trace_id).where(db.Slot.user_id == user_id)
    q = (select(db.Trace.id).outerjoin(live, live.c.trace_id == db.Trace.id)
         .where(func.coalesce(live.c.n, 0) < st.annotators, db.Trace.id.not_in(held))
         .order_by(func.coalesce(live.c.n, 0).desc(), db.Trace.id).limit(50))
    busy: list[int] = []
    for trace_id in s.scalars(q).all():
        if not _lock(s, trace_id, wait=False):
            busy.append(trace_id)          # another request is placing someone on it right now
            continue
        slot = _take_place(s, trace_id, user_id, st, now)
        if slot is not None:
            return slot.trace_id
    return _Busy(busy[0]) if busy else None


def assign(Session: sessionmaker, user_id: int, st: Settings, attempts: int = 10) -> int | None:
    """The trace to work on: the user's unfinished one if any (lease renewed), else a free place on another;
    None when no trace needs this user. Each attempt is one transaction; when every free trace was being
    assigned by someone else, the next attempt waits on the database lock of one of them (holding no other)."""
    wait_for = None
    for _ in range(attempts):
        try:
            with Session.begin() as s:
                got = _assign_once(s, user_id, st, wait_for)
        except OperationalError as e:          # deadlock / serialization failure: the database chose us; retry
            if getattr(getattr(e, "orig", None), "sqlstate", None) in ("40P01", "40001"):
                continue
            raise
        if not isinstance(got, _Busy):
            return got
        wait_for = got.trace_id
    return None


def holder_slot(s: DBSession, user_id: int, trace_id: int, st: Settings) -> db.Slot:
    """The user's place on the trace, lease renewed; NotYours when they have none."""
    slot = s.scalar(select(db.Slot).where(db.Slot.trace_id == trace_id, db.Slot.user_id == user_id))
    if slot is None:
        raise NotYours()
    if slot.done_at is None:
        slot.lease_expires = db.now() + dt.timedelta(minutes=st.lease_minutes)
    return slot


def asked_turns(s: DBSession, trace_id: int) -> list[db.Turn]:
    return list(s.scalars(select(db.Turn).where(db.Turn.trace_id == trace_id, db.Turn.asked.is_(True))
                          .order_by(db.Turn.idx)))


def answers_of(s: DBSession, user_id: int, trace_id: int) -> dict[int, db.Answer]:
    """turn id -> this user's answer (only ever the user's own rows)."""
    rows = s.scalars(select(db.Answer).where(db.Answer.user_id == user_id, db.Answer.trace_id == trace_id))
    return {a.turn_id: a for a in rows}


@dataclass
class Submitted:
    help_needed: bool
    accepted: list[int]
    reject_all: bool


def save_answer(s: DBSession, user_id: int, turn: db.Turn, ans: Submitted, st: Settings) -> db.Slot:
    slot = holder_slot(s, user_id, turn.trace_id, st)
    n = len(turn.candidates)
    if any(i < 0 or i >= n for i in ans.accepted):
        raise ValueError(f"candidate index out of range (this turn has {n})")
    if ans.reject_all and ans.accepted:
        raise ValueError("reject-all together with accepted candidates")
    row = s.scalar(select(db.Answer).where(db.Answer.user_id == user_id, db.Answer.turn_id == turn.id))
    if row is None:
        row = db.Answer(user_id=user_id, turn_id=turn.id, trace_id=turn.trace_id)
        s.add(row)
    row.help_needed, row.accepted = ans.help_needed, sorted(set(ans.accepted))
    row.reject_all, row.updated_at = ans.reject_all and n > 0, db.now()
    s.flush()
    if slot.done_at is None:
        answered = s.scalar(select(func.count()).select_from(db.Answer).join(db.Turn, db.Turn.id == db.Answer.turn_id)
                            .where(db.Answer.user_id == user_id, db.Answer.trace_id == turn.trace_id,
                                   db.Turn.asked.is_(True)))
        total = s.scalar(select(func.count()).select_from(db.Turn)
                         .where(db.Turn.trace_id == turn.trace_id, db.Turn.asked.is_(True)))
        if (answered or 0) >= (total or 0):
            slot.done_at = db.now()
    return slot


def undo_last(s: DBSession, user_id: int, trace_id: int, st: Settings) -> int | None:
    """Delete the user's most recent answer on the trace; returns that turn's index (None: nothing to undo)."""
    slot = holder_slot(s, user_id, trace_id, st)
    last = s.scalar(select(db.Answer).where(db.Answer.user_id == user_id, db.Answer.trace_id == trace_id)
                    .order_by(db.Answer.updated_at.desc(), db.Answer.id.desc()).limit(1))
    if last is None:
        return None
    idx = s.scalar(select(db.Turn.idx).where(db.Turn.id == last.turn_id))
    s.execute(delete(db.Answer).where(db.Answer.id == last.id))
    if slot.done_at is not None:
        slot.done_at = None
        slot.lease_expires = db.now() + dt.timedelta(minutes=st.lease_minutes)
    return idx


def progress(s: DBSession, user_id: int | None, st: Settings) -> dict[str, int]:
    """Places done overall (and by this user) against traces x N, in one query."""
    done = db.Slot.done_at.is_not(None)
    cols = [select(func.count()).select_from(db.Trace).scalar_subquery(),
            select(func.count()).select_from(db.Slot).where(done).scalar_subquery(),
            select(func.count()).select_from(db.Slot).where(done, db.Slot.user_id == (user_id or -1))
            .scalar_subquery()]
    traces, places_done, mine = s.execute(select(*cols)).one()
    out = {"traces": traces or 0, "places": (traces or 0) * st.annotators, "places_done": places_done or 0}
    if user_id is not None:
        out["mine_done"] = mine or 0
    return out


def leases(s: DBSession) -> list[tuple[db.Slot, str, str]]:
    """Places held and not finished (expired ones included: they go to the next annotator who asks)."""
    rows = s.execute(select(db.Slot, db.User.username, db.Trace.name).join(db.User, db.User.id == db.Slot.user_id)
                     .join(db.Trace, db.Trace.id == db.Slot.trace_id)
                     .where(db.Slot.done_at.is_(None)).order_by(db.Slot.lease_expires)).all()
    return [(slot, user, trace) for slot, user, trace in rows]
