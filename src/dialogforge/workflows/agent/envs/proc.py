"""Process and file helpers every environment shares: capped subprocesses, off-loop copies, host diffs.

Nothing here blocks the event loop: subprocesses are asyncio's, file-tree work runs in a thread.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from .base import EnvError, ExecResult

IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache")


def _no_inherited_fds() -> None:
    """Mark every descriptor above stderr close-on-exec, so a child gets stdin, stdout and stderr only.

    Plain asyncio closes them in the child; uvloop (libuv) passes on whatever is inheritable."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:  # not Linux: asyncio's own close_fds applies
        return
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own descriptor, already closed


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_capped(argv: list[str], *, cwd: str | None, env: dict[str, str], timeout: float, cap: int) -> ExecResult:
    """Run argv, merge stdout+stderr, keep at most `cap` bytes, kill the process group on timeout.

    The step ends when the command exits: output still held open by something it left running
    in the background is not waited for, and its process group is killed."""
    t0 = time.monotonic()
    _no_inherited_fds()
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

    async def until_exit() -> None:
        reader = asyncio.ensure_future(drain())
        await proc.wait()
        try:  # what the command wrote before exiting is in the pipe: read it, but no longer than briefly
            await asyncio.wait_for(asyncio.shield(reader), 0.2)
        except asyncio.TimeoutError:
            pass
        finally:
            _kill_group(proc.pid)  # background processes the command left behind
            try:
                await asyncio.wait_for(reader, 1.0)
            except asyncio.TimeoutError:
                reader.cancel()

    timed_out = False
    try:
        await asyncio.wait_for(until_exit(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
        _kill_group(proc.pid)
        await proc.wait()
    except asyncio.CancelledError:
        _kill_group(proc.pid)
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


def copy_tree(src: str | Path, dst: str | Path, *, symlinks: bool = True) -> None:
    """A workspace copy without caches and .git (blocking: call through `asyncio.to_thread`)."""
    shutil.copytree(src, dst, ignore=IGNORE, symlinks=symlinks)


async def remove_tree(path: str | Path) -> None:
    await asyncio.to_thread(shutil.rmtree, path, True)


async def dir_diff(base: Path | None, work: Path) -> str:
    """Unified diff (git format, paths relative to the folders) turning `base` into `work`; needs only host git.

    Both sides are copied (in a thread) into a scratch folder that no repository config reaches."""
    tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="df-diff-"))
    try:
        a, b = tmp / "a", tmp / "b"

        def copy_both() -> None:
            if base is not None and base.is_dir():
                copy_tree(base, a)
            else:
                a.mkdir()
            copy_tree(work, b)

        await asyncio.to_thread(copy_both)
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
        await remove_tree(tmp)
