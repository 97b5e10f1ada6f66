"""Local sandbox: a fresh temporary copy of the task's workspace, commands as subprocesses.

Layout of one sandbox (a new temporary folder per rollout):
  work/      the agent's working copy (a git repo committed at reset, so `diff` is exact)
  baseline/  a second pristine copy, given to the evaluation as $DF_BASELINE_DIR
  home/      $HOME for every command
Commands run with `bash -c`, cwd = work/, a timeout (the whole process group is killed),
an output cap, and an environment limited to PATH, HOME, LANG plus the config's and task's variables.
"""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from .base import Environment, EnvError, EvalResult, ExecResult, _import, parse_eval_output

_IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache")
_EXCLUDES = "__pycache__/\n*.pyc\n.pytest_cache/\n"


async def run_capped(argv: list[str], *, cwd: str | None, env: dict[str, str], timeout: float, cap: int) -> ExecResult:
    """Run argv, merge stdout+stderr, keep at most `cap` bytes, kill the process group on timeout."""
    t0 = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        raise EnvError(f"cannot start {argv[0]!r}: {e}") from None
    buf = bytearray()
    dropped = 0

    async def drain() -> None:
        nonlocal dropped
        assert proc.stdout is not None
        while True:
            chunk = await proc.stdout.read(65536)
            if not chunk:
                break
            room = cap - len(buf)
            if room > 0:
                buf.extend(chunk[:room])
            dropped += max(0, len(chunk) - max(room, 0))
        await proc.wait()

    timed_out = False
    try:
        await asyncio.wait_for(drain(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()
    except asyncio.CancelledError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    out = buf.decode("utf-8", errors="replace")
    if dropped:
        out += f"\n[output capped: {dropped} more bytes not kept]"
    if timed_out:
        out += f"\n[command timed out after {timeout:g}s and was killed]"
    return ExecResult(returncode=None if timed_out else proc.returncode, output=out,
                      duration=time.monotonic() - t0, timed_out=timed_out, truncated=dropped > 0)


def _normalise_header(line: str) -> str:
    if not line.startswith("diff --git "):
        return line
    rest = line[len("diff --git "):].rstrip("\n")
    n = len(rest)
    if n % 2 == 1 and rest[n // 2] == " ":
        left, right = rest[: n // 2], rest[n // 2 + 1:]
        if left[2:] == right[2:] and left[:2] in ("a/", "b/") and right[:2] in ("a/", "b/"):
            return f"diff --git a/{left[2:]} b/{left[2:]}\n"
    return line


async def dir_diff(base: Path | None, work: Path) -> str:
    """Unified diff (git format, paths relative to the folders) turning `base` into `work`; needs only host git."""
    tmp = Path(tempfile.mkdtemp(prefix="df-diff-"))
    try:
        a, b = tmp / "a", tmp / "b"
        if base is not None and base.is_dir():
            shutil.copytree(base, a, ignore=_IGNORE, symlinks=True)
        else:
            a.mkdir()
        shutil.copytree(work, b, ignore=_IGNORE, symlinks=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "GIT_CONFIG_NOSYSTEM": "1"}
        res = await run_capped(["git", "-c", "core.quotepath=off", "diff", "--no-index", "--binary",
                                "--src-prefix=", "--dst-prefix=", "a", "b"], cwd=str(tmp), env=env,
                               timeout=120, cap=50_000_000)
        if res.returncode not in (0, 1):  # 1 = differences found
            raise EnvError(f"git diff --no-index failed: {res.output[-500:]}")
        # with empty prefixes the paths read a/x and b/x, the usual git form, except the header of an
        # added or deleted file, which names the one side twice: normalise it to "a/x b/x"
        return "".join(_normalise_header(line) for line in res.output.splitlines(keepends=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_swept = False


def sweep_stale_sandboxes() -> int:
    """Remove sandboxes left by runs that were killed (their process is gone); once per process.

    A sandbox is named `df-agent-<pid>-...`; one whose pid no longer exists cannot be in use."""
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


class LocalEnvironment(Environment):
    root: Path | None = None

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

    async def _git(self, *args: str) -> ExecResult:
        res = await run_capped(["git", "-c", "core.quotepath=off", *args], cwd=str(self.workdir),
                               env=self._env({"GIT_AUTHOR_NAME": "dialogforge", "GIT_AUTHOR_EMAIL": "agent@localhost",
                                              "GIT_COMMITTER_NAME": "dialogforge", "GIT_COMMITTER_EMAIL": "agent@localhost"}),
                               timeout=60, cap=50_000_000)
        if res.returncode != 0:
            raise EnvError(f"git {' '.join(args)} failed: {res.output.strip()[-500:]}")
        return res

    async def reset(self) -> None:
        await self.close()
        sweep_stale_sandboxes()
        self.root = Path(tempfile.mkdtemp(prefix=f"df-agent-{os.getpid()}-"))
        (self.root / "home").mkdir()
        src = self.task.workspace
        try:
            if src:
                if not Path(src).is_dir():
                    raise EnvError(f"task {self.task.id}: workspace {src!r} is not a folder")
                shutil.copytree(src, self.workdir, ignore=_IGNORE, symlinks=True)
                shutil.copytree(src, self.root / "baseline", ignore=_IGNORE, symlinks=True)
            else:
                self.workdir.mkdir()
                (self.root / "baseline").mkdir()
        except OSError as e:
            raise EnvError(f"task {self.task.id}: copying workspace failed: {e}") from None
        await self._git("init", "-q")
        (self.workdir / ".git" / "info").mkdir(parents=True, exist_ok=True)
        (self.workdir / ".git" / "info" / "exclude").write_text(_EXCLUDES)
        await self._git("add", "-A")
        await self._git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", "initial state")
        if self.task.setup_command:
            res = await self.execute(self.task.setup_command, timeout=self.config.eval_timeout)
            if res.returncode != 0:
                raise EnvError(f"task {self.task.id}: setup command failed ({res.returncode}): {res.output[-500:]}")

    async def execute(self, command: str, timeout: float | None = None) -> ExecResult:
        return await run_capped(["bash", "-c", command], cwd=str(self.workdir), env=self._env(),
                                timeout=timeout or self.config.timeout, cap=self.config.output_cap)

    async def diff(self) -> str:
        await self._git("add", "-A")
        res = await self._git("diff", "--cached", "--binary", "HEAD")
        return res.output

    def _restore_protected(self) -> None:
        if not self.task.protected or not self.task.workspace:
            return
        src_root = Path(self.task.workspace)
        for rel in self.task.protected:
            src, dst = src_root / rel, self.workdir / rel
            if not src.exists():
                raise EnvError(f"task {self.task.id}: protected path {rel!r} does not exist in the workspace")
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            elif dst.exists() or dst.is_symlink():
                dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=_IGNORE)
            else:
                shutil.copy2(src, dst)

    async def evaluate(self) -> EvalResult:
        assert self.root is not None
        try:
            self._restore_protected()
        except OSError as e:
            raise EnvError(f"task {self.task.id}: restoring protected files failed: {e}") from None
        if self.task.evaluator:
            fn = _import(self.task.evaluator)
            try:
                res = fn(task=self.task, workdir=self.workdir, env=self)
                if inspect.isawaitable(res):
                    res = await res
            except EnvError:
                raise
            except Exception as e:  # the evaluator's own crash is the environment's failure
                raise EnvError(f"evaluator {self.task.evaluator} raised {type(e).__name__}: {e}") from None
            if isinstance(res, dict):
                res = EvalResult(**res)
            if not isinstance(res, EvalResult):
                raise EnvError(f"evaluator {self.task.evaluator} returned {type(res).__name__}, not EvalResult or dict")
            return res
        if not self.task.eval_command:
            raise EnvError(f"task {self.task.id} has neither eval_command nor evaluator")
        res = await run_capped(["bash", "-c", self.task.eval_command], cwd=str(self.workdir),
                               env=self._env({"DF_BASELINE_DIR": str(self.root / "baseline")}),
                               timeout=self.config.eval_timeout, cap=self.config.output_cap)
        return parse_eval_output(res)

    async def close(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
