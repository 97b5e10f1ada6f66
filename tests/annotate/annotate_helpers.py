"""Helpers for the annotation tests: hand-made traces, a live server on a loopback port, logged-in clients."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

import httpx
import uvicorn

from dialogforge.annotate import auth
from dialogforge.annotate.app import create_app
from dialogforge.annotate.importer import import_files
from dialogforge.annotate.project import Project, Settings, open_project

EVIL = "The user pastes <script>window.pwned=1</script> and <img src=x onerror=\"window.pwned=2\"> into the editor."


def make_trace(n_turns: int, with_candidates: bool = True, tag: str = "") -> list[dict]:
    turns = []
    for i in range(n_turns):
        cands = [f"{tag}Proposal {i}.{j}" for j in range(3)] if with_candidates and i % 2 == 0 else []
        turns.append({"observation": {"time": str(1717000000 + 10 * i), "event": f"{tag}Event {i}"},
                      "agent_response": {"candidate_task": cands}, "task_status": bool(cands)})
    return turns


def write_traces(folder: Path, n: int, n_turns: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        p = folder / f"{'code' if k % 2 == 0 else 'writing'}_{k}.json"
        p.write_text(json.dumps(make_trace(n_turns, tag=f"t{k} ")))
        paths.append(p)
    return paths


class Live:
    def __init__(self, project: Project, url: str, admin_password: str):
        self.project, self.url, self.admin_password = project, url, admin_password

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Origin": self.url}, follow_redirects=False, timeout=30)

    def invite(self, name: str) -> str:
        with self.project.Session.begin() as s:
            return auth.create_invite(s, self.project.secret, name)

    def user_client(self, name: str, password: str = "correct horse battery") -> httpx.Client:
        token = self.invite(name)
        c = self.client()
        r = c.post(f"/invite/{token}", data={"password": password, "password2": password})
        assert r.status_code == 303, r.text
        return c

    def admin_client(self) -> httpx.Client:
        c = self.client()
        r = c.post("/login", data={"username": "admin", "password": self.admin_password})
        assert r.status_code == 303, r.text
        return c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(project: Project) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    app = create_app(project)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"




def hammer_assign(project: Project, n_users: int, rounds: int = 2) -> list[tuple[int, int, int]]:
    """n_users threads ask for work at the same moment, `rounds` times (finishing nothing in between);
    returns every (trace, slot, user) handed out."""
    from sqlalchemy import select as _select

    from dialogforge.annotate import db as _db
    from dialogforge.annotate import work as _work
    with project.Session.begin() as s:
        for i in range(n_users):
            s.add(_db.User(username=f"u{i}", pw_hash=None))
    with project.Session() as s:
        uids = list(s.scalars(_select(_db.User.id).where(_db.User.username.like("u%"))))
    got: list[tuple[int, int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(uids))

    def one(uid: int) -> None:
        try:
            _one(uid)
        except Exception as e:  # a thread's failure fails the test (as a place recorded as None would not)
            with lock:
                got.append((-1, -1, -1))
            raise e

    def _one(uid: int) -> None:
        barrier.wait()
        for _ in range(rounds):
            trace_id = _work.assign(project.Session, uid, project.settings)
            if trace_id is None:
                continue
            with project.Session.begin() as s:       # finish it so the next round asks for a new place
                slot = s.scalar(_select(_db.Slot).where(_db.Slot.trace_id == trace_id, _db.Slot.user_id == uid))
                slot.done_at = _db.now()
                rec = (slot.trace_id, slot.slot, uid)
            with lock:
                got.append(rec)

    threads = [threading.Thread(target=one, args=(u,)) for u in uids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return got


def check_assignments(project: Project, got: list[tuple[int, int, int]], n: int) -> None:
    from collections import Counter

    assert (-1, -1, -1) not in got, "an assignment request failed"
    assert len({(t, sl) for t, sl, _ in got}) == len(got), "a place was handed out twice"
    assert len({(t, u) for t, _, u in got}) == len(got), "someone got two places on one trace"
    per_trace = Counter(t for t, _, _ in got)
    assert max(per_trace.values()) <= n
