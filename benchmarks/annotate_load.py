"""Load on the annotation server: K annotators over real HTTP against one `dialogforge annotate serve` process.

Each annotator logs in through an invitation link and then, until time runs out: asks for a trace, answers its
turns (random ticks, reject-all now and then, the help question always), asks for the next. Some annotators
abandon their trace half-way and never come back; their leases must expire and the places go to others.
At the end the database is checked: no place held by two people, every answer the server acknowledged is
stored exactly as sent, every abandoned place changed hands. Page times (GET of a turn, POST of an answer,
POST /next) are reported as p50/p95/p99/max.

    .venv/bin/python benchmarks/annotate_load.py --annotators 20 --seconds 120
"""
from __future__ import annotations

import argparse
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

from dialogforge.annotate import auth, db
from dialogforge.annotate.importer import import_files
from dialogforge.annotate.project import open_project

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TURN = re.compile(r"/t/(\d+)/(\d+)$")


def make_traces(folder: Path, n: int, turns: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    out = []
    for k in range(n):
        rows = [{"observation": {"time": str(1767225600 + 7 * i), "event": f"trace {k}: the user does step {i}"},
                 "agent_response": {"candidate_task": [f"task {k}.{i}.{j}" for j in range(rng.choice([0, 5]))]}}
                for i in range(turns)]
        p = folder / f"{'code' if k % 2 else 'writing'}_{k}.json"
        p.write_text(json.dumps(rows))
        out.append(p)
    return out


class Annotator(threading.Thread):
    def __init__(self, url: str, token: str, name: str, until: float, abandon: bool, think: float, seed: int):
        super().__init__(daemon=True)
        self.url, self.token, self.name, self.until = url, token, name, until
        self.abandon, self.think, self.rng = abandon, think, random.Random(seed)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.acked: dict[tuple[int, int], tuple[bool, list[int], bool]] = {}   # (trace, turn) -> answer
        self.abandoned: int | None = None
        self.errors: list[str] = []

    def timed(self, kind: str, fn, *a, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        r = fn(*a, **kw)
        self.times[kind].append(time.perf_counter() - t0)
        return r

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # reported, never hidden
            self.errors.append(f"{self.name}: {e.__class__.__name__}: {e}")

    def login(self) -> None:
        self.c = httpx.Client(base_url=self.url, headers={"Origin": self.url}, timeout=60)
        r = self.c.post(f"/invite/{self.token}", data={"password": "load test password",
                                                       "password2": "load test password"})
        assert r.status_code == 303, r.text

    def _run(self) -> None:
        c = self.c
        home = c.get("/").text
        answered_here = 0
        while time.time() < self.until:
            r = self.timed("POST /next", c.post, "/next", data={"csrf": CSRF.search(home).group(1)})
            if r.status_code != 303:
                time.sleep(0.5)      # nothing free right now
                continue
            loc = r.headers["location"]
            while time.time() < self.until:
                page = self.timed("GET turn", c.get, loc, follow_redirects=True)
                m = TURN.search(str(page.url))
                if not m:
                    break                                # the trace is finished
                trace, idx = int(m.group(1)), int(m.group(2))
                if self.abandon and self.abandoned is None and answered_here >= 1:
                    self.abandoned = trace               # walk away; never come back
                    return
                n = page.text.count('name="cand"')
                acc = sorted(self.rng.sample(range(n), self.rng.randint(0, n))) if n else []
                rej = bool(n) and not acc
                help_ = self.rng.random() < 0.5
                time.sleep(self.rng.uniform(0, self.think))
                data = {"csrf": CSRF.search(page.text).group(1), "help": "yes" if help_ else "no",
                        "cand": [str(j) for j in acc]}
                if rej:
                    data["reject_all"] = "1"
                r = self.timed("POST answer", c.post, f"/t/{trace}/{idx}", data=data)
                if r.status_code != 303:
                    self.errors.append(f"{self.name}: answer refused {r.status_code}")
                    return
                self.acked[(trace, idx)] = (help_, acc, rej)
                answered_here += 1
                loc = f"/t/{trace}"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def verify(proj, bots: list[Annotator], n_required: int) -> dict:  # type: ignore[no-untyped-def]
    from sqlalchemy import select
    problems = []
    with proj.Session() as s:
        users = {u.username: u.id for u in s.scalars(select(db.User))}
        slots = list(s.scalars(select(db.Slot)))
        turns = {(t.trace_id, t.idx): t.id for t in s.scalars(select(db.Turn))}
        answers = {(a.user_id, a.turn_id): a for a in s.scalars(select(db.Answer))}
    places = [(x.trace_id, x.slot) for x in slots]
    if len(places) != len(set(places)):
        problems.append("a place is recorded twice")
    per_trace = defaultdict(list)
    for x in slots:
        per_trace[x.trace_id].append(x.user_id)
    for t, us in per_trace.items():
        if len(us) != len(set(us)) or len(us) > n_required:
            problems.append(f"trace {t} has holders {us}")
    lost = 0
    for b in bots:
        uid = users[b.name]
        for (trace, idx), (help_, acc, rej) in b.acked.items():
            a = answers.get((uid, turns[(trace, idx)]))
            if a is None or a.help_needed != help_ or a.accepted != acc or a.reject_all != rej:
                lost += 1
    abandoned = [(b.name, b.abandoned) for b in bots if b.abandoned is not None]
    returned = 0
    for name, trace in abandoned:
        holders = per_trace[trace]
        if users[name] not in holders:
            returned += 1                                # the place went to someone else
    return {"problems": problems, "answers_acked": sum(len(b.acked) for b in bots), "answers_lost": lost,
            "abandoned": len(abandoned), "abandoned_returned": returned,
            "places_done": sum(1 for x in slots if x.done_at is not None)}


def run(annotators: int, seconds: float, lease_minutes: float, abandoners: int, think: float, traces: int,
        db_url: str | None = None, workdir: Path | None = None, late_seconds: float = 20) -> dict:
    work = Path(workdir or tempfile.mkdtemp(prefix="df-annot-load-"))
    proj = open_project(work / "proj", db_url)
    import_files(proj, make_traces(work / "traces", traces, 8))
    tokens = {}
    with proj.Session.begin() as s:
        for i in range(annotators):
            tokens[f"a{i:02d}"] = auth.create_invite(s, proj.secret, f"a{i:02d}")
    with socket.socket() as sock:                        # a free loopback port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "dialogforge.cli.main", "annotate", "serve", str(work / "proj"), "--port", str(port),
           "--lease-minutes", str(lease_minutes)] + (["--db", db_url] if db_url else [])
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(url + "/login", timeout=2)
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start: " + (server.stdout.read() if server.stdout else ""))
                time.sleep(0.2)
        bots = [Annotator(url, tokens[n], n, 0, i < abandoners, think, i) for i, n in enumerate(sorted(tokens))]
        for b in bots:
            b.login()                                    # argon2 once per person, before the clock starts
        t0 = time.time()
        for b in bots:
            b.until = t0 + seconds
            b.start()
        for b in bots:
            b.join(seconds + 120)
        # after the leases of the abandoned traces ran out, others take them
        wait_until = t0 + lease_minutes * 60 + 2
        if abandoners and time.time() < wait_until:
            time.sleep(wait_until - time.time())
        late = [Annotator(url, auth_token, n, time.time() + late_seconds, False, 0, 100 + i)
                for i, (n, auth_token) in enumerate(_more_invites(proj, abandoners))]
        for b in late:
            b.login()
            b.start()
        for b in late:
            b.join(late_seconds + 60)
        bots += late
    finally:
        server.terminate()
        server.wait(20)
    result = verify(proj, bots, proj.settings.annotators)
    times: dict[str, list[float]] = defaultdict(list)
    for b in bots:
        for k, v in b.times.items():
            times[k] += v
    result["errors"] = [e for b in bots for e in b.errors]
    result["pages"] = {k: {"n": len(v), "p50_ms": 1000 * statistics.median(v), "p95_ms": 1000 * pct(v, 0.95),
                           "p99_ms": 1000 * pct(v, 0.99), "max_ms": 1000 * max(v)} for k, v in sorted(times.items())}
    everything = [x for v in times.values() for x in v]
    result["all_pages_p95_ms"] = 1000 * pct(everything, 0.95)
    result["requests_per_s"] = len(everything) / seconds
    proj.close()
    return result


def _more_invites(proj, n: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = []
    with proj.Session.begin() as s:
        for i in range(n):
            out.append((f"late{i}", auth.create_invite(s, proj.secret, f"late{i}")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--lease-minutes", type=float, default=0.5)
    ap.add_argument("--abandoners", type=int, default=3)
    ap.add_argument("--think", type=float, default=0.2, help="max random pause before each answer (s)")
    ap.add_argument("--traces", type=int, default=400)
    ap.add_argument("--db", default=None, help="PostgreSQL URL (default: SQLite in a temp project)")
    a = ap.parse_args()
    t0 = time.time()
    res = run(a.annotators, a.seconds, a.lease_minutes, a.abandoners, a.think, a.traces, a.db)
    res["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps(res, indent=2))
    ok = not res["problems"] and not res["errors"] and res["answers_lost"] == 0 and \
        res["abandoned_returned"] == res["abandoned"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
