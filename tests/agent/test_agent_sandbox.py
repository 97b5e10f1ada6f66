"""The `local` sandbox: scripted agent replies run through `local`, each confinement checked on its own."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from urllib.parse import urlsplit
from pathlib import Path

import pytest

from agent_helpers import FAST_ENV, REPO, SIGNAL, read_jsonl
from dialogforge.engine import Engine
from dialogforge.engine.errors import ConfigError
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import parse_agent_config, run_agent
from dialogforge.workflows.agent.config import EnvironmentConfig
from dialogforge.workflows.agent.envs import sandbox
from dialogforge.workflows.agent.envs.local import LocalEnvironment
from dialogforge.workflows.agent.tasks import Task

pytestmark = pytest.mark.skipif(sandbox.probe() is not None, reason=f"no sandbox here: {sandbox.probe()}")


def scripted(commands):
    """A model that runs `commands` one per turn, then submits."""
    def responder(body):
        n = sum(1 for m in body["messages"] if m.get("role") == "assistant")
        cmd = commands[n] if n < len(commands) else f"echo {SIGNAL}"
        return f"Next.\n\n```bash\n{cmd}\n```"
    return responder


def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "app.txt").write_text("version 1\n")
    return ws


async def run_script(tmp_path, commands, *, env=None, eval_command="true", store=None, out=None, **task_kw):
    task = Task(id="t1", problem_statement="do it", workspace=str(workspace(tmp_path)), eval_command=eval_command,
                **task_kw)
    env_cfg = {"type": "local", "timeout": 20, "eval_timeout": 30, "env": FAST_ENV, **(env or {})}
    cfg = parse_agent_config({"limits": {"step_limit": len(commands) + 1}, "environment": env_cfg})
    out = out or tmp_path / "out"
    async with FakeServer(responder=scripted(commands)) as srv:
        engine = Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                                   "roles": {"agent": "gen", "summary": "gen"}}, store=store or tmp_path / "s.sqlite")
        async with engine:
            await run_agent(engine, cfg, [task], out, progress=False)
    [traj] = read_jsonl(out / "round_1" / "trajectories.jsonl")
    return traj


def outputs(traj):
    return [(o["returncode"], o["output"]) for o in traj["observations"]]


async def test_writes_to_home_and_outside_the_work_folder_fail(tmp_path):
    name = f"df-sandbox-{uuid.uuid4().hex[:8]}.txt"
    targets = [Path.home() / name, REPO / name, tmp_path / name, Path("/etc") / name]
    traj = await run_script(tmp_path, [f"echo owned > {t}" for t in targets] + ["echo fine > inside.txt"])
    obs = outputs(traj)
    for (rc, out), t in zip(obs, targets):
        assert rc != 0, (t, out)
        assert any(s in out for s in ("Read-only file system", "Permission denied", "No such file or directory")), out
        assert not t.exists()
    assert obs[-1][0] == 0 and "+fine" in traj["diff"]  # the work folder itself is writable


async def test_a_file_planted_in_the_users_home_cannot_be_read(tmp_path):
    secret = Path.home() / f".df-secret-{uuid.uuid4().hex[:8]}"
    secret.write_text("TOPSECRET\n")
    try:
        traj = await run_script(tmp_path, [f"cat {secret}", f"ls -a {Path.home()}"])
    finally:
        secret.unlink()
    (rc, out), (_, listing) = outputs(traj)
    assert rc != 0 and "No such file or directory" in out and "TOPSECRET" not in out
    assert secret.name not in listing


async def test_the_run_store_and_the_outputs_are_invisible(tmp_path):
    keep = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="df-test-store-"))  # outside /tmp: visible but for the hiding
    keep.chmod(0o755)
    try:
        store, out = keep / "runs.sqlite", keep / "out"
        traj = await run_script(tmp_path, [f"wc -c < {store}", f"ls -A {out} | wc -l"], store=store, out=out)
        (rc, size), (_, n) = outputs(traj)
        assert store.stat().st_size > 0 and size.strip() == "0" and n.strip() == "0"
    finally:
        subprocess.run(["rm", "-rf", str(keep)], check=True)


async def test_loopback_needs_network_true(tmp_path):
    async with FakeServer() as target:
        port = urlsplit(target.base_url).port
        probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 5); print('connected')\""
        closed = await run_script(tmp_path / "a", [probe])
        opened = await run_script(tmp_path / "b", [probe], env={"network": True})
        by_task = await run_script(tmp_path / "c", [probe], network=True)  # the task allows it
    (rc, out), = outputs(closed)
    assert rc != 0 and "Connection refused" in out  # the command's own error, shown to the model
    for traj in (opened, by_task):
        (rc, out), = outputs(traj)
        assert rc == 0 and "connected" in out


def _outward_ip() -> str:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outward interface
        return s.getsockname()[0]


async def test_network_true_is_loopback_only_and_host_shares_the_network(tmp_path):
    ip = _outward_ip()
    if ip.startswith("127."):
        pytest.skip("no non-loopback address here")
    async with FakeServer(host="0.0.0.0") as target:
        port = urlsplit(target.base_url).port
        get = ("python3 -c \"import urllib.request as u; "
               "print('answered', u.urlopen('http://{}:%d/v1/chat/completions', timeout=5).status)\"" % port)
        loop_only = await run_script(tmp_path / "a", [get.format("127.0.0.1"), get.format(ip)], env={"network": True})
        host = await run_script(tmp_path / "b", [get.format(ip)], env={"network": "host"})
    (_, via_loopback), (rc, outward) = outputs(loop_only)
    assert "Connection refused" not in via_loopback and ("answered" in via_loopback or "HTTP Error" in via_loopback)
    assert rc != 0 and ("unreachable" in outward.lower() or "refused" in outward.lower()), outward
    (_, direct), = outputs(host)
    assert "answered" in direct or "HTTP Error" in direct, direct


async def test_a_fork_bomb_ends_and_the_run_stays_healthy(tmp_path):
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 2; echo done"
    traj = await run_script(tmp_path, [bomb, "echo alive"], env={"limits": {"processes": 64}, "timeout": 15})
    (rc, out), (rc2, out2) = outputs(traj)
    assert "Resource temporarily unavailable" in out or "retry" in out, out[-500:]
    assert rc2 == 0 and "alive" in out2
    assert traj["status"] == "submitted" and traj["evaluation"]["success"] is True


async def test_a_2gb_allocation_fails(tmp_path):
    traj = await run_script(tmp_path, ["python3 -c 'b = bytearray(2 * 1024 ** 3); print(len(b))'", "echo alive"])
    (rc, out), (rc2, _) = outputs(traj)
    assert rc != 0 and "MemoryError" in out and rc2 == 0


async def test_a_background_process_is_gone_before_the_next_step(tmp_path):
    traj = await run_script(tmp_path, ["sleep 300 & echo started", "ps -eo comm | grep -c '^sleep$' || true"])
    (rc, out), (_, count) = outputs(traj)
    assert rc == 0 and "started" in out and count.strip() == "0"
    assert traj["observations"][0]["duration"] < 10  # the step ended when its command did, not at the timeout


async def test_evaluation_sees_the_diff_and_the_baseline(tmp_path):
    check = 'grep -q "version 1" "$DF_BASELINE_DIR/app.txt" && grep -q "version 2" app.txt && ! test -w "$DF_BASELINE_DIR/app.txt"'
    traj = await run_script(tmp_path, ["sed -i s/1/2/ app.txt"], eval_command=check)
    assert "+version 2" in traj["diff"] and traj["evaluation"]["success"] is True


async def test_a_python_evaluator_runs_in_the_sandbox(tmp_path, monkeypatch):
    mod = tmp_path / "evalmod"
    mod.mkdir()
    planted = Path.home() / f".df-planted-{uuid.uuid4().hex[:8]}"
    (mod / "df_check_mod.py").write_text(
        "import os\nfrom pathlib import Path\n"
        "def check(task, workdir, baseline):\n"
        "    return {'success': (Path(workdir) / 'app.txt').read_text() == 'version 2\\n',\n"
        f"            'metrics': {{'home_visible': os.path.exists({str(planted)!r}),\n"
        "                        'pid': os.getpid(), 'baseline': (Path(baseline) / 'app.txt').read_text()}}\n")
    monkeypatch.syspath_prepend(str(mod))
    planted.write_text("x")
    try:
        traj = await run_script(tmp_path, ["sed -i s/1/2/ app.txt"], eval_command=None, evaluator="df_check_mod:check")
    finally:
        planted.unlink()
    ev = traj["evaluation"]
    assert ev["success"] is True and ev["metrics"]["home_visible"] is False
    assert ev["metrics"]["pid"] != os.getpid() and ev["metrics"]["baseline"] == "version 1\n"


def test_children_get_only_stdin_stdout_stderr_under_uvloop(tmp_path):
    uvloop = pytest.importorskip("uvloop")
    r, w = os.pipe()
    os.set_inheritable(r, True)  # even a descriptor marked inheritable is not passed on
    task = Task(id="fd", problem_statement="p", workspace=str(workspace(tmp_path)), eval_command="true")

    async def main():
        seen = {}
        for unsafe in (False, True):
            env = LocalEnvironment(EnvironmentConfig(env=FAST_ENV, unsafe_local=unsafe), task)
            await env.reset()
            try:
                res = await env.execute("python3 -c \"import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))\"")
            finally:
                await env.close()
            seen[unsafe] = res.output.strip()
        return seen

    try:
        seen = uvloop.run(main())
    finally:
        os.close(r)
        os.close(w)
    assert seen == {False: "[0, 1, 2, 3]", True: "[0, 1, 2, 3]"}  # 3: the listing's own descriptor


async def test_local_refuses_without_a_sandbox_and_runs_unconfined_when_told(tmp_path, monkeypatch, caplog):
    from dialogforge.workflows.agent.envs import local
    monkeypatch.setenv("DIALOGFORGE_BWRAP", str(tmp_path / "no-bwrap-here"))
    sandbox.probe.cache_clear()
    monkeypatch.setattr(local, "_warned", False)
    try:
        with pytest.raises(ConfigError, match=r"environment local: the sandbox cannot start: .*--unsafe-local"):
            await run_script(tmp_path / "a", ["true"])
        traj = await run_script(tmp_path / "b", ["touch /tmp/df-unsafe-probe-$$ && echo wrote"],
                                env={"unsafe_local": True})
        assert traj["observations"][0]["returncode"] == 0
        assert any("UNCONFINED" in r.getMessage() for r in caplog.records)
    finally:
        sandbox.probe.cache_clear()


async def test_restoring_protected_files_does_not_follow_the_agents_symlinks(tmp_path):
    ws = workspace(tmp_path)
    (ws / "tests").mkdir()
    (ws / "tests" / "check.sh").write_text("exit 0\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    # the agent swaps the protected folder for a link to a folder of the host (writable by dialogforge only)
    traj = await run_script(tmp_path, [f"rm -rf tests && ln -s {victim} tests && ls -la"],
                            eval_command="bash tests/check.sh", protected=["tests/check.sh"])
    assert not (victim / "check.sh").exists()
    assert traj["evaluation"]["success"] is True  # the restored real folder was checked
