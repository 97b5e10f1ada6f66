"""Work distribution on SQLite: concurrent requests, leases that expire, an unfinished trace comes back first;
and import (idempotent, clear errors)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from annotate_helpers import check_assignments, hammer_assign, make_trace, write_traces
from sqlalchemy import func, select

from dialogforge.annotate import db, work
from dialogforge.annotate.importer import import_files
from dialogforge.annotate.project import Settings, open_project
from dialogforge.engine.errors import InputError


def test_concurrent_requests_never_share_a_place(tmp_path, db_url):
    proj = open_project(tmp_path / "p", db_url, settings=Settings(annotators=3))
    import_files(proj, write_traces(tmp_path / "tr", 8))
    got = hammer_assign(proj, n_users=16, rounds=2)
    check_assignments(proj, got, 3)
    assert len(got) == 24                        # 8 traces x 3 places, all handed out, none twice
    proj.close()


def _user(proj, name):
    with proj.Session.begin() as s:
        u = db.User(username=name, pw_hash=None)
        s.add(u)
        s.flush()
        return u.id


def test_unfinished_trace_returns_to_holder_then_lease_expiry_frees_it(tmp_path, db_url):
    proj = open_project(tmp_path / "p", db_url, settings=Settings(annotators=1, lease_minutes=30))
    import_files(proj, write_traces(tmp_path / "tr", 2))
    a, b = _user(proj, "a"), _user(proj, "b")
    first = work.assign(proj.Session, a, proj.settings)
    assert work.assign(proj.Session, a, proj.settings) == first        # comes back to its holder first
    other = work.assign(proj.Session, b, proj.settings)
    assert other is not None and other != first
    with proj.Session.begin() as s:                                     # a abandons: the lease runs out
        s.execute(db.Slot.__table__.update().where(db.Slot.user_id == a)
                  .values(lease_expires=db.now() - dt.timedelta(seconds=1)))
    c = _user(proj, "c")
    assert work.assign(proj.Session, c, proj.settings) == first         # the abandoned place changes hands
    with proj.Session.begin() as s:
        turn = work.asked_turns(s, first)[0]
        with pytest.raises(work.NotYours):                               # a's late answer is refused, not lost
            work.save_answer(s, a, turn, work.Submitted(True, [], True), proj.settings)
    proj.close()


def test_import_is_idempotent_and_errors_name_file_turn_field(tmp_path):
    proj = open_project(tmp_path / "p")
    files = write_traces(tmp_path / "tr", 3)
    assert import_files(proj, files).added == 3
    rep = import_files(proj, files)
    assert (rep.added, rep.unchanged) == (0, 3)
    with proj.Session() as s:
        assert s.scalar(select(func.count()).select_from(db.Trace)) == 3
        assert s.scalar(select(func.count()).select_from(db.Turn)) == 9
    bad = make_trace(3)
    bad[1]["observation"]["time"] = "yesterday"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"bad\.json: turn 1: field 'observation.time'"):
        import_files(proj, [files[0], tmp_path / "bad.json"])
    del bad[1]["observation"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"turn 1: field 'observation' is missing"):
        import_files(proj, [tmp_path / "bad.json"])
    (tmp_path / "t.jsonl").write_text(json.dumps(make_trace(2, tag="x")) + "\n{not json\n")
    with pytest.raises(InputError, match=r"t\.jsonl:2: not JSON"):
        import_files(proj, [tmp_path / "t.jsonl"])
    proj.close()


def test_traces_without_candidates_ask_at_configured_turns(tmp_path):
    proj = open_project(tmp_path / "p")
    (tmp_path / "sim.json").write_text(json.dumps(make_trace(7, with_candidates=False)))
    import_files(proj, [tmp_path / "sim.json"], ask_every=3)
    with proj.Session() as s:
        asked = [t.idx for t in s.scalars(select(db.Turn).where(db.Turn.asked.is_(True)).order_by(db.Turn.idx))]
    assert asked == [2, 5, 6]
    proj.close()


def test_realdata_traces_import(realdata, tmp_path):
    proj = open_project(tmp_path / "p")
    files = sorted((realdata / "proactivebench" / "test_data").glob("*.json"))
    rep = import_files(proj, files)
    assert rep.added == len(files) == 6
    with proj.Session() as s:
        n_cands = sum(len(t.candidates) for t in s.scalars(select(db.Turn)))
        themes = set(s.scalars(select(db.Trace.theme)))
    assert n_cands > 0 and themes == {"code", "writing"}
    assert import_files(proj, files).added == 0
    proj.close()
