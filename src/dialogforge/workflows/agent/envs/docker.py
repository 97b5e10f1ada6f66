"""Docker sandbox: one container per rollout, the workspace copied in, commands via `docker exec`.

Needs the `docker` CLI and a running daemon; the image needs bash and coreutils' `timeout`
(the diff is computed on the host from a copy of the container's workspace, so git is not needed inside). The image comes from the task (`image`) or the config (`environment.image`).
"""
from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

from ..tasks import Task
from .base import Environment, EnvError, EvalResult, ExecResult, parse_eval_output
from .proc import dir_diff, remove_tree, run_capped

WORKDIR = "/workspace"
BASELINE = "/df-baseline"


def docker_available() -> bool:
    import subprocess
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


HOST_LABEL = "dialogforge.agent.host"
_swept = False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class DockerEnvironment(Environment):
    """Containers are named `df-agent-<pid>-<hex>` and labelled with this host's name, so the next run on
    the same host removes those a killed run left (`sweep_stale_containers`)."""
    container: str | None = None

    @classmethod
    def check_task(cls, task: Task) -> str | None:
        if cls.evaluate is not DockerEnvironment.evaluate:
            return None  # a subclass evaluates its own way
        if not task.eval_command:
            return "no eval_command: the docker environment runs evaluation commands only"
        return None

    def _host_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG")}

    async def _docker(self, *args: str, timeout: float = 120, check: bool = True) -> ExecResult:
        res = await run_capped(["docker", *args], cwd=None, env=self._host_env(), timeout=timeout, cap=50_000_000)
        if check and res.returncode != 0:
            raise EnvError(f"docker {args[0]} failed: {res.output.strip()[-500:]}")
        return res

    async def reset(self) -> None:
        await self.close()
        image = self.task.image or self.config.image
        if not image:
            raise EnvError(f"task {self.task.id}: docker environment needs an image (task.image or environment.image)")
        if not shutil.which("docker"):
            raise EnvError("docker environment: the docker CLI is not installed")
        await self.sweep_stale_containers()
        name = f"df-agent-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        env_args = ["--label", f"{HOST_LABEL}={socket.gethostname()}"]
        for k, v in {**self.config.env, **self.task.env}.items():
            env_args += ["-e", f"{k}={v}"]
        await self._docker("run", "-d", "--name", name, *env_args, image, "sleep", "infinity", timeout=600)
        self.container = name
        await self._docker("exec", name, "mkdir", "-p", WORKDIR, BASELINE)
        if self.task.workspace:
            await self._docker("cp", f"{self.task.workspace}/.", f"{name}:{WORKDIR}")
            await self._docker("cp", f"{self.task.workspace}/.", f"{name}:{BASELINE}")
        if self.task.setup_command:
            res = await self._exec(self.task.setup_command, timeout=self.config.eval_timeout)
            if res.returncode != 0:
                raise EnvError(f"task {self.task.id}: setup command failed ({res.returncode}): {res.output[-500:]}")

    async def sweep_stale_containers(self) -> int:
        """Remove this host's `df-agent-<pid>-*` containers whose dialogforge process is gone; once per process."""
        global _swept
        if _swept:
            return 0
        _swept = True
        res = await self._docker("ps", "-a", "--filter", f"label={HOST_LABEL}={socket.gethostname()}",
                                 "--format", "{{.Names}}", check=False)
        if res.returncode != 0:
            return 0
        stale = []
        for name in res.output.split():
            parts = name.split("-")
            if len(parts) >= 4 and parts[:2] == ["df", "agent"] and parts[2].isdigit():
                pid = int(parts[2])
                if pid != os.getpid() and not _pid_alive(pid):
                    stale.append(name)
        if stale:
            await self._docker("rm", "-f", *stale, check=False)
        return len(stale)

    async def _exec(self, command: str, *, timeout: float, check: bool = False, extra_env: dict | None = None) -> ExecResult:
        if not self.container:
            raise EnvError("environment used before reset()")
        env_args: list[str] = []
        for k, v in (extra_env or {}).items():
            env_args += ["-e", f"{k}={v}"]
        inner = f"timeout -s KILL {int(timeout) + 1} bash -c {shlex.quote(command)}"
        res = await run_capped(["docker", "exec", "-w", WORKDIR, *env_args, self.container, "bash", "-c", inner],
                               cwd=None, env=self._host_env(), timeout=timeout + 10, cap=self.config.output_cap)
        if res.returncode == 137 and res.duration >= timeout:
            res.timed_out, res.returncode = True, None
        if check and res.returncode != 0:
            raise EnvError(f"in container: {command[:80]!r} failed: {res.output[-500:]}")
        return res

    async def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        return await self._exec(command, timeout=timeout or self.config.timeout)

    async def diff(self) -> str:
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="df-docker-"))
        try:
            await self._docker("cp", f"{self.container}:{WORKDIR}/.", str(tmp / "work"))
            return await dir_diff(Path(self.task.workspace) if self.task.workspace else None, tmp / "work")
        finally:
            await remove_tree(tmp)

    async def evaluate(self) -> EvalResult:
        if not self.task.eval_command:
            raise EnvError(f"task {self.task.id} has no eval_command (docker runs evaluation commands only)")
        for rel in self.task.protected:
            q = shlex.quote(rel)
            await self._exec(f"rm -rf {q} && mkdir -p \"$(dirname {q})\" && cp -a {BASELINE}/{q} {q}", timeout=120, check=True)
        res = await self._exec(self.task.eval_command, timeout=self.config.eval_timeout,
                               extra_env={"DF_BASELINE_DIR": BASELINE})
        return parse_eval_output(res)

    async def close(self) -> None:
        if self.container:
            name, self.container = self.container, None
            await self._docker("rm", "-f", name, check=False)
