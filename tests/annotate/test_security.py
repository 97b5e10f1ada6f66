"""The security bars of the annotation server, each over real HTTP against a live server."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from dialogforge.annotate import db
from dialogforge.annotate.importer import import_files
from dialogforge.annotate.project import open_project
from dialogforge.annotate.server import allowed_hosts, is_loopback, warnings_for

from annotate_helpers import EVIL, Live, csrf_of, start_server

REPO = Path(__file__).resolve().parents[2]


def test_no_default_password_and_argon2id_hashes(project, tmp_path):
    other = open_project(tmp_path / "other")
    try:
        assert project.new_admin_password and other.new_admin_password
        assert project.new_admin_password != other.new_admin_password      # generated, not a default
        assert len(project.new_admin_password) >= 16
        with project.Session() as s:
            hashes = list(s.scalars(select(db.User.pw_hash)))
        assert hashes and all(h.startswith("$argon2id$") for h in hashes)
        assert all(project.new_admin_password not in h for h in hashes)
    finally:
        other.close()
    again = open_project(project.root)      # a second start creates nothing and prints nothing
    assert again.new_admin_password is None
    again.close()


def test_foreign_host_header_refused(live):
    c = live.client()
    assert c.get("/login").status_code == 200
    r = c.get("/login", headers={"Host": "evil.example:8765"})
    assert r.status_code == 400
    assert "evil" not in r.headers.get("content-type", "")


def test_cross_origin_post_refused(live):
    c = live.client()
    r = c.post("/login", data={"username": "admin", "password": live.admin_password},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "df_session" not in r.headers.get("set-cookie", "")
    r = c.post("/login", data={"username": "admin", "password": live.admin_password}, headers={"Origin": ""})
    assert r.status_code == 403                                     # no Origin and no Referer: refused too
    admin = live.admin_client()
    page = admin.get("/admin").text
    # logged in, same origin, but without the session's CSRF token: refused
    r = admin.post("/admin/invite", data={"username": "mallory"})
    assert r.status_code == 403
    r = admin.post("/admin/invite", data={"username": "mallory", "csrf": csrf_of(page)},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = admin.post("/admin/invite", data={"username": "bob", "csrf": csrf_of(page)})
    assert r.status_code == 200 and "/invite/" in r.text


def test_cookie_flags_and_headers(live):
    c = live.client()
    r = c.post("/login", data={"username": "admin", "password": live.admin_password})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_script_in_trace_rendered_inert(tmp_path):
    proj = open_project(tmp_path / "evil")
    p = tmp_path / "evil.json"
    p.write_text(json.dumps([{"observation": {"time": "1717000000", "event": EVIL},
                              "agent_response": {"candidate_task": [EVIL, "fine"]}}]))
    import_files(proj, [p])
    server, thread, url = start_server(proj)
    try:
        live = Live(proj, url, proj.new_admin_password or "")
        c = live.user_client("carol")
        r = c.post("/next", data={"csrf": csrf_of(c.get("/").text)})
        html = c.get(r.headers["location"], follow_redirects=True).text
        assert html.count("window.pwned") == 4        # two in the event, two in the candidate, all shown
        assert "<script>window.pwned" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=" in html
    finally:
        server.should_exit = True
        thread.join(10)
        proj.close()


def test_login_rate_limit(live):
    c = live.client()
    for _ in range(5):
        assert c.post("/login", data={"username": "admin", "password": "wrong-password"}).status_code == 401
    r = c.post("/login", data={"username": "admin", "password": live.admin_password})
    assert r.status_code == 429 and "df_session" not in r.headers.get("set-cookie", "")


def test_loopback_by_default_and_warning_for_host():
    out = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "annotate", "serve", "--help"],
                         capture_output=True, text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert "127.0.0.1" in out.stdout
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert warnings_for("127.0.0.1", []) == []
    assert any("anyone who can reach" in w for w in warnings_for("0.0.0.0", []))
    assert "0.0.0.0" not in allowed_hosts("0.0.0.0", [])


def test_annotator_cannot_read_or_change_others_answers(live):
    alice, bob = live.user_client("alice"), live.user_client("bob")
    home = alice.get("/").text
    loc = alice.post("/next", data={"csrf": csrf_of(home)}).headers["location"]
    trace_id = int(loc.rsplit("/", 1)[1])
    page = alice.get(loc, follow_redirects=True)
    turn_url = str(page.url).replace(live.url, "")
    r = alice.post(turn_url, data={"csrf": csrf_of(page.text), "help": "yes", "cand": ["1"]})
    assert r.status_code == 303
    bob_home = bob.get("/").text
    with live.project.Session() as s:
        slot = s.scalar(select(db.Slot).where(db.Slot.trace_id == trace_id,
                                              db.Slot.user_id != s.scalar(select(db.User.id).where(
                                                  db.User.username == "alice"))))
    assert slot is None                                             # nobody else holds this trace yet
    assert bob.get(turn_url).status_code == 404                     # so bob cannot even open it
    r = bob.post(turn_url, data={"csrf": csrf_of(bob_home), "help": "no", "reject_all": "1"})
    assert r.status_code == 409 and "not saved" in r.text
    r = bob.post(f"/undo/{trace_id}", data={"csrf": csrf_of(bob_home)})
    assert r.status_code == 404
    with live.project.Session() as s:
        rows = list(s.scalars(select(db.Answer).where(db.Answer.trace_id == trace_id)))
    assert len(rows) == 1 and rows[0].help_needed is True and rows[0].accepted == [1]


def test_secret_not_in_repo(project):
    secret_file = project.root / "secret.key"
    assert secret_file.stat().st_mode & 0o077 == 0                  # readable by its owner only
    text = secret_file.read_text().strip()
    tracked = subprocess.run(["git", "-C", str(REPO), "grep", "-l", text[:24]], capture_output=True, text=True)
    assert tracked.stdout == ""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True).stdout.split()
    assert not any(f.endswith(("secret.key", "annotate.sqlite")) for f in files)


def _wait_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    import socket
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stdout.read() if proc.stdout else ''}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("serve did not start")


def test_serve_binds_loopback_unless_told_and_warns(tmp_path):
    import socket

    from annotate_helpers import free_port
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dialogforge.cli.main", "annotate", "serve", str(tmp_path / "p"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port("127.0.0.1", port, proc)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("10.255.255.255", 1))          # no packet is sent; this finds the outward address
            outward = probe.getsockname()[0]
        except OSError:
            outward = None
        finally:
            probe.close()
        if outward and not outward.startswith("127."):
            with socket.socket() as s:
                assert s.connect_ex((outward, port)) != 0    # not reachable from the network
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert "password" in out and "warning" not in out.lower()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dialogforge.cli.main", "annotate", "serve", str(tmp_path / "p"),
                             "--port", str(port), "--host", "0.0.0.0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port("127.0.0.1", port, proc)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert "warning" in out and "anyone who can reach" in out and "password" not in out   # printed once only
