"""The docker environment's orchestration, driven through a stand-in `docker` CLI.

The stand-in keeps each "container" as a folder and maps the container paths (/workspace,
/df-baseline) onto it, so the commands DockerEnvironment issues (run, exec -w -e, cp both ways,
rm) really run. A real daemon is exercised by test_docker_environment when one is present.
"""
from __future__ import annotations

import sys

import pytest

from agent_helpers import EXAMPLES, FAST_ENV
from dialogforge.workflows.agent.config import EnvironmentConfig
from dialogforge.workflows.agent.envs import EnvError, make_environment
from dialogforge.workflows.agent.envs.docker import DockerEnvironment
from dialogforge.workflows.agent.tasks import load_tasks

FAKE_DOCKER = r'''
import os, shutil, subprocess, sys
root = os.environ["DOCKER_CONFIG"]
args = sys.argv[1:]
log = open(os.path.join(root, "calls.log"), "a")
log.write(" ".join(args[:2]) + "\n")

def cpath(name, p):
    return os.path.join(root, name, p.lstrip("/"))

def mapped(name, s):
    return s.replace("/workspace", cpath(name, "workspace")).replace("/df-baseline", cpath(name, "df-baseline"))

def side(x):
    if ":" in x and not x.startswith("/"):
        n, p = x.split(":", 1)
        return cpath(n, p)
    return x

cmd = args[0]
if cmd == "run":  # container-level -e variables apply to every exec, as with a real daemon
    name = args[args.index("--name") + 1]
    os.makedirs(os.path.join(root, name))
    pairs = [args[j + 1] for j in range(len(args) - 1) if args[j] == "-e"]
    open(os.path.join(root, name + ".env"), "w").write("\n".join(pairs))
    print(name)
elif cmd == "exec":
    i, workdir, env = 1, None, {"PATH": os.environ["PATH"]}
    while args[i].startswith("-"):
        if args[i] == "-w":
            workdir = args[i + 1]
        else:
            k, v = args[i + 1].split("=", 1)
            env[k] = v
        i += 2
    name = args[i]
    for line in open(os.path.join(root, name + ".env")).read().splitlines():
        k, v = line.split("=", 1)
        env.setdefault(k, v)
    env = {k: mapped(name, v) for k, v in env.items()}
    rest = [mapped(name, a) for a in args[i + 1:]]
    rc = subprocess.run(rest, cwd=cpath(name, workdir) if workdir else None, env=env).returncode
    sys.exit(128 - rc if rc < 0 else rc)  # a signal death reads 128+N, as docker exec reports it
elif cmd == "cp":
    src, dst = side(args[1]), side(args[2])
    shutil.copytree(src[:-2] if src.endswith("/.") else src, dst, dirs_exist_ok=True)
elif cmd == "rm":
    for name in args[2:]:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
elif cmd == "ps":  # every "container" is this host's (the label filter is checked by the test)
    log.write("  filter " + args[args.index("--filter") + 1] + "\n")
    print("\n".join(sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))))
'''


@pytest.fixture
def fake_docker(tmp_path, monkeypatch):
    from dialogforge.workflows.agent.envs import docker
    monkeypatch.setattr(docker, "_swept", False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker"
    script.write_text(f"#!{sys.executable}\n{FAKE_DOCKER}")
    script.chmod(0o755)
    state = tmp_path / "docker-state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{FAST_ENV['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(state))
    return state


async def test_docker_environment_orchestration(fake_docker):
    task = next(t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix")
    task.image = "python:3.11-slim"
    env = make_environment(EnvironmentConfig(type="docker", timeout=10, env={"TASK_MODE": "ci"}), task)
    assert isinstance(env, DockerEnvironment)
    await env.reset()
    name = env.container
    try:
        r = await env.execute("ls; echo mode=$TASK_MODE")
        assert r.returncode == 0 and "stats.py" in r.output and "mode=ci" in r.output
        assert (await env.execute("exit 5")).returncode == 5
        slow = await env.execute("sleep 20; echo never", timeout=1)
        assert slow.timed_out and slow.returncode is None and "never" not in slow.output and slow.duration < 10
        # a fix plus a tampered test file: the diff shows both, evaluation restores the test first
        await env.execute("sed -i 's/    return ordered\\[mid\\]/    if len(ordered) % 2 == 0:\\n"
                          "        return (ordered[mid - 1] + ordered[mid]) \\/ 2\\n    return ordered[mid]/' stats.py"
                          " && echo 'raise SystemExit(0)' > tests/test_stats.py")
        diff = await env.diff()
        assert "+        return (ordered[mid - 1] + ordered[mid]) / 2" in diff and "+++ b/tests/test_stats.py" in diff
        ev = await env.evaluate()
        assert ev.success is True and ev.metrics["tests_passed"] is True
        assert "raise SystemExit" not in (fake_docker / name / "workspace" / "tests" / "test_stats.py").read_text()
    finally:
        await env.close()
    assert not (fake_docker / name).exists()
    calls = (fake_docker / "calls.log").read_text().splitlines()
    assert calls[0].startswith("ps -a") and calls[2].startswith("run -d") and calls[-1].startswith("rm -f")


async def test_docker_environment_needs_an_image(fake_docker):
    task = load_tasks(EXAMPLES / "tasks.jsonl")[0]
    env = make_environment(EnvironmentConfig(type="docker"), task)
    with pytest.raises(EnvError, match="needs an image"):
        await env.reset()


async def test_containers_of_killed_runs_are_swept(fake_docker):
    import os
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale, alive = f"df-agent-{dead.pid}-0123456789ab", f"df-agent-{os.getppid()}-ba9876543210"
    for name in (stale, alive, "someone-else"):
        (fake_docker / name).mkdir()
    task = next(t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix")
    task.image = "python:3.11-slim"
    env = make_environment(EnvironmentConfig(type="docker", timeout=10), task)
    await env.reset()
    try:
        assert env.container.startswith(f"df-agent-{os.getpid()}-")
        assert not (fake_docker / stale).exists()
        assert (fake_docker / alive).exists() and (fake_docker / "someone-else").exists()
    finally:
        await env.close()
    calls = (fake_docker / "calls.log").read_text().splitlines()
    assert calls[:3] == ["ps -a", f"  filter label=dialogforge.agent.host={socket.gethostname()}", "rm -f"]
    # once per process: the next rollout does not list again
    env2 = make_environment(EnvironmentConfig(type="docker", timeout=10), task)
    await env2.reset()
    await env2.close()
    assert sum(1 for c in (fake_docker / "calls.log").read_text().splitlines() if c == "ps -a") == 1
