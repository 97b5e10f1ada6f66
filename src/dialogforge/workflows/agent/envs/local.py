"""Local environment: a fresh copy of the task's workspace, every command confined by the sandbox.

Layout of one rollout folder (a new temporary folder per rollout):
  work/      the agent's working copy (a git repo committed at reset, so `diff` is exact)
  baseline/  a second pristine copy, given to the evaluation as $DF_BASELINE_DIR (read-only)
  home/      $HOME for every command
  tmp/       the commands' private /tmp
Every command (the agent's, git, setup, evaluation, a Python evaluator) runs as `bash -c` inside
`sandbox.Sandbox` (bubblewrap), with cwd = work/, a timeout, an output cap and an environment
limited to PATH, HOME, LANG plus the config's and task's variables. With `unsafe_local` and no
sandbox, commands run unconfined. File-tree work (copies, removal) runs in a thread.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ....engine.errors import ConfigError
from ..config import EnvironmentConfig
from ..tasks import Task
from .base import Environment, EnvError, EvalResult, ExecResult, parse_eval_output
from .proc import copy_tree, dir_diff, remove_tree, run_capped
from .loopnet import LoopbackBridge
from .sandbox import HOW_TO_FIX, Sandbox, plain, probe, sandbox_uid

__all__ = ["LocalEnvironment", "dir_diff", "run_capped", "sweep_stale_sandboxes"]

log = logging.getLogger(__name__)
_EXCLUDES = "__pycache__/\n*.pyc\n.pytest_cache/\n"
EVAL_MARK = "DF-EVALUATOR-RESULT "

_swept = False


def sweep_stale_sandboxes() -> int:
    """Remove rollout folders left by runs that were killed (their process is gone); once per process.

    A folder is named `df-agent-<pid>-...`; one whose pid no longer exists cannot be in use. Blocking:
    `LocalEnvironment.reset` calls it in a thread."""
    global _swept
    if _swept:
        return 0
    _swept = True
    removed = 0
    for d in Path(tempfile.gettempdir()).glob("df-agent-*-*"):
        pid = d.name.split("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that process still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # someone else's live process
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


_warned = False


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), uid, uid, follow_symlinks=False)


class LocalEnvironment(Environment):
    root: Path | None = None
    sandbox: Sandbox | None = None
    sandbox_uid: int | None = None
    bridge: LoopbackBridge | None = None

    @classmethod
    def check_config(cls, config: EnvironmentConfig) -> None:
        """Refuse when the sandbox cannot start, unless the user chose to run unconfined (one warning line)."""
        global _warned
        why = probe()
        if config.unsafe_local:
            if not _warned:
                _warned = True
                log.warning("warning: environment local runs the agent's commands UNCONFINED (--unsafe-local)%s",
                            f"; the sandbox could not start: {why}" if why else "")
            return
        if why is not None:
            raise ConfigError(f"environment local: the sandbox cannot start: {why}. To fix: {HOW_TO_FIX}")

    @classmethod
    def check_task(cls, task: Task) -> str | None:
        if cls.evaluate is not LocalEnvironment.evaluate:
            return None  # a subclass evaluates its own way
        if not (task.eval_command or task.evaluator):
            return "no eval_command or evaluator: the local environment cannot score it"
        if task.evaluator and ":" not in task.evaluator:
            return f"evaluator {task.evaluator!r} is not 'package.module:function'"
        return None

    @property
    def workdir(self) -> Path:
        if self.root is None:
            raise EnvError("environment used before reset()")
        return self.root / "work"

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        assert self.root is not None
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self.root / "home"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PAGER": "cat", "GIT_PAGER": "cat", "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(self.config.env)
        env.update(self.task.env)
        env.update(extra or {})
        return env

    async def _run(self, argv: list[str], *, timeout: float, cap: int | None = None,
                   extra_env: dict[str, str] | None = None, expose: list[str] | None = None) -> ExecResult:
        """Run argv in the rollout's work folder, confined unless the sandbox is off."""
        env = self._env(extra_env)
        if self.sandbox is not None:
            ports = await self.bridge.ensure() if self.bridge is not None else None
            argv = self.sandbox.wrap(argv, cwd=self.workdir, env=env, expose=expose, ports=ports)
        else:
            argv = plain(argv)
        return await run_capped(argv, cwd=str(self.workdir), env=env, timeout=timeout,
                                cap=cap or self.config.output_cap)

    async def _git(self, *args: str) -> ExecResult:
        res = await self._run(["git", "-c", "core.quotepath=off", *args], timeout=60, cap=50_000_000,
                              extra_env={"GIT_AUTHOR_NAME": "dialogforge", "GIT_AUTHOR_EMAIL": "agent@localhost",
                                         "GIT_COMMITTER_NAME": "dialogforge", "GIT_COMMITTER_EMAIL": "agent@localhost"})
        if res.returncode != 0:
            raise EnvError(f"git {' '.join(args)} failed: {res.output.strip()[-500:]}")
        return res

    def _prepare(self) -> Path:
        """Create and fill the rollout folder (blocking: runs in a thread)."""
        sweep_stale_sandboxes()
        root = Path(tempfile.mkdtemp(prefix=f"df-agent-{os.getpid()}-"))
        for d in ("home", "tmp"):
            (root / d).mkdir()
        src = self.task.workspace
        try:
            if src:
                if not Path(src).is_dir():
                    raise EnvError(f"task {self.task.id}: workspace {src!r} is not a folder")
                copy_tree(src, root / "work")
                copy_tree(src, root / "baseline")
            else:
                (root / "work").mkdir()
                (root / "baseline").mkdir()
        except OSError as e:
            shutil.rmtree(root, ignore_errors=True)
            raise EnvError(f"task {self.task.id}: copying workspace failed: {e}") from None
        except EnvError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        root.chmod(0o755)  # the sandbox's own uid walks through it
        if self.sandbox_uid is not None:
            for d in ("work", "home", "tmp"):
                _chown_tree(root / d, self.sandbox_uid)
        return root

    async def reset(self) -> None:
        await self.close()
        confined = not self.config.unsafe_local
        if confined and probe() is not None:
            raise EnvError(f"the sandbox cannot start: {probe()}")
        self.sandbox_uid = sandbox_uid() if confined else None
        self.root = await asyncio.to_thread(self._prepare)
        if confined:
            self.sandbox = await asyncio.to_thread(
                Sandbox, self.config, work=self.root / "work", home=self.root / "home", tmp=self.root / "tmp",
                baseline=self.root / "baseline", uid=self.sandbox_uid, network=self.network_mode, hide=self.config.hide)
            if self.network_mode is True:
                self.bridge = LoopbackBridge(self.sandbox.sockdir)
        await self._git("init", "-q")
        await asyncio.to_thread(self._write_excludes)
        await self._git("add", "-A")
        await self._git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", "initial state")
        if self.task.setup_command:
            res = await self.execute(self.task.setup_command, timeout=self.config.eval_timeout)
            if res.returncode != 0:
                raise EnvError(f"task {self.task.id}: setup command failed ({res.returncode}): {res.output[-500:]}")

    def _write_excludes(self) -> None:
        info = self.workdir / ".git" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "exclude").write_text(_EXCLUDES)
        if self.sandbox_uid is not None:
            _chown_tree(info, self.sandbox_uid)

    async def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        return await self._run(["bash", "-c", command], timeout=timeout or self.config.timeout)

    async def diff(self) -> str:
        await self._git("add", "-A")
        res = await self._git("diff", "--cached", "--binary", "HEAD")
        return res.output

    def _restore_protected(self) -> None:
        """Put the protected paths back from the task's workspace (blocking: runs in a thread)."""
        if not self.task.protected or not self.task.workspace:
            return
        src_root = Path(self.task.workspace)
        for rel in self.task.protected:
            src, dst = src_root / rel, self.workdir / rel
            if not src.exists():
                raise EnvError(f"task {self.task.id}: protected path {rel!r} does not exist in the workspace")
            if os.path.isabs(rel) or os.path.normpath(rel).split(os.sep)[0] == "..":
                raise EnvError(f"task {self.task.id}: protected path {rel!r} leaves the work folder")
            self._no_symlinked_parents(dst)
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                copy_tree(src, dst, symlinks=False)
            else:
                shutil.copy2(src, dst)
            if self.sandbox_uid is not None:
                _chown_tree(dst, self.sandbox_uid)

    def _no_symlinked_parents(self, dst: Path) -> None:
        """The agent may have replaced a folder on the way to a protected path by a symlink (to /etc, say):
        this process writes there with its own rights, so such a link is replaced by a real folder first."""
        here = self.workdir
        for part in dst.relative_to(self.workdir).parts[:-1]:
            here = here / part
            if here.is_symlink() or (here.exists() and not here.is_dir()):
                here.unlink()
            if not here.exists():
                here.mkdir()

    async def evaluate(self) -> EvalResult:
        assert self.root is not None
        try:
            await asyncio.to_thread(self._restore_protected)
        except OSError as e:
            raise EnvError(f"task {self.task.id}: restoring protected files failed: {e}") from None
        extra = {"DF_BASELINE_DIR": str(self.root / "baseline")}
        if self.task.evaluator:
            return await self._python_evaluator(extra)
        if not self.task.eval_command:
            raise EnvError(f"task {self.task.id} has neither eval_command nor evaluator")
        res = await self._run(["bash", "-c", self.task.eval_command], timeout=self.config.eval_timeout, extra_env=extra)
        return parse_eval_output(res)

    async def _python_evaluator(self, extra: dict[str, str]) -> EvalResult:
        """`module:function` runs in a Python subprocess inside the sandbox (see envs/pyeval.py)."""
        assert self.root is not None and self.task.evaluator
        task_file = self.root / "tmp" / ".df-task.json"
        await asyncio.to_thread(task_file.write_text, json.dumps(self.task.to_dict()))
        paths = [os.getcwd() if p == "" else p for p in sys.path]
        env = {**extra, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        argv = [sys.executable, "-m", "dialogforge.workflows.agent.envs.pyeval", self.task.evaluator,
                "/tmp/.df-task.json" if self.sandbox else str(task_file), str(self.workdir), str(self.root / "baseline")]
        res = await self._run(argv, timeout=self.config.eval_timeout, extra_env=env, expose=paths, cap=50_000_000)
        if res.timed_out:
            return EvalResult(success=False, details={"reason": "evaluation timed out", "output": res.output[-4000:]})
        marks = [ln for ln in res.output.splitlines() if ln.startswith(EVAL_MARK)]
        if res.returncode != 0 or not marks:
            raise EnvError(f"evaluator {self.task.evaluator} failed (exit {res.returncode}): {res.output.strip()[-500:]}")
        data = json.loads(marks[-1][len(EVAL_MARK):])
        return EvalResult(**data)

    @property
    def network_mode(self) -> bool | str:
        return self.config.network if self.task.network is None else self.task.network

    async def close(self) -> None:
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            await bridge.close()
        if self.root is not None:
            root, self.root, self.sandbox = self.root, None, None
            await remove_tree(root)
