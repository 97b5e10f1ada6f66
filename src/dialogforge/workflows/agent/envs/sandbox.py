"""The confinement `local` runs every command in: bubblewrap (`bwrap`) over a read-only host.

Inside the sandbox:
  - the host filesystem is mounted read-only; the user's home folder(s) and the paths in
    `hide` (the run store, the output folder) are replaced by empty folders / empty files;
  - writable: the rollout's work folder and its HOME folder, and a private /tmp (the rollout's
    own, kept between its steps);
  - own PID, IPC, UTS, cgroup and user namespaces: nothing a command starts outlives it;
  - own network namespace with no route out; `network: true` forwards the host's loopback servers
    into it (envs/loopnet.py) and nothing else; `network: host` shares the host's network;
  - rlimits on CPU seconds, address space, processes and written file size; when dialogforge runs
    as root, bwrap sets up the mounts as root and the command then drops to an unprivileged uid of
    its own with no capabilities (the process limit counts per uid; root is exempt from it).
What is needed to run the commands and lies in a hidden place (the Python of dialogforge, a Python
evaluator's module folders, the folders in `environment.expose`) is mounted back read-only.
"""
from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from ..config import EnvironmentConfig
from .loopnet import FORWARDER

HOW_TO_FIX = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) on a Linux kernel that allows user "
              "namespaces (sysctl kernel.unprivileged_userns_clone=1; user.max_user_namespaces > 0), use "
              "environment.type: docker, or run unconfined with --unsafe-local (environment.unsafe_local: true)")

_uids = itertools.count()


def sandbox_uid() -> int | None:
    """A uid of its own for one rollout's commands when dialogforge runs as root (None otherwise)."""
    if os.geteuid() != 0:
        return None
    return 200_000 + (os.getpid() % 4000) * 100 + next(_uids) % 100


# Run first in every child: close every descriptor above stderr (uvloop passes some of its own on),
# so a command gets stdin, stdout and stderr only.
CLOSE_FDS = 'for f in /proc/$$/fd/*; do n=${f##*/}; case $n in 0|1|2) ;; *) exec {n}>&- ;; esac; done; '


def plain(argv: list[str]) -> list[str]:
    """argv unconfined, but still with stdin, stdout and stderr only."""
    return ["/bin/bash", "-c", CLOSE_FDS + 'exec "$@"', "df-command", *argv]


def _base_args(uid: int | None, network: bool = False) -> list[str]:
    """As root, bwrap sets up the mounts and namespaces itself and the command drops to `uid` (see _drop);
    as any other user, bwrap works through an unprivileged user namespace."""
    if uid is None:
        ns = ["--unshare-all", *(["--share-net"] if network else [])]
    else:
        ns = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
              *([] if network else ["--unshare-net"])]
    return ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *ns, "--die-with-parent", "--new-session"]


def _drop(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def _bwrap() -> list[str]:
    """$DIALOGFORGE_BWRAP names another bubblewrap binary (a path or a name on PATH)."""
    return [shutil.which(os.environ.get("DIALOGFORGE_BWRAP", "bwrap")) or "bwrap"]


@lru_cache(maxsize=1)
def probe() -> str | None:
    """None when the sandbox starts on this machine; otherwise why not."""
    if not sys.platform.startswith("linux"):
        return f"the sandbox needs Linux (this is {sys.platform})"
    if not shutil.which(os.environ.get("DIALOGFORGE_BWRAP", "bwrap")):
        return f"bubblewrap (`{os.environ.get('DIALOGFORGE_BWRAP', 'bwrap')}`) is not installed"
    uid = sandbox_uid()
    if uid is not None and not shutil.which("setpriv"):
        return "`setpriv` (util-linux) is missing: dialogforge runs as root and drops to an own uid with it"
    try:
        r = subprocess.run([*_bwrap(), *_base_args(uid), "--", *_drop(uid), "true"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap could not be run: {e}"
    if r.returncode != 0:
        return f"bwrap cannot create its namespaces here: {(r.stderr or r.stdout).strip()[-300:]}"
    return None


def homes() -> list[Path]:
    out: list[Path] = []
    for h in (os.environ.get("HOME"), str(Path.home()), "/root"):
        if h and h != "/" and Path(h).is_dir() and Path(h).resolve() not in out:
            out.append(Path(h).resolve())
    return out


def _under(p: Path, roots: list[Path]) -> bool:
    return any(p == r or r in p.parents for r in roots)


class Sandbox:
    """Builds the argv that runs one command confined, for one rollout folder."""

    def __init__(self, config: EnvironmentConfig, *, work: Path, home: Path, tmp: Path, baseline: Path | None,
                 uid: int | None, network: bool | str, hide: list[str]):
        self.config = config
        self.work, self.home, self.tmp, self.baseline = work, home, tmp, baseline
        self.uid = uid
        # False: no network; True: the host's loopback servers only (envs/loopnet.py); "host": the host's network
        self.network = network
        self.sockdir = tmp.parent / "net"
        self.hide = [Path(h).resolve() for h in hide]
        self._made: set[Path] = set()
        self.empty = tmp.parent / "empty"
        self.empty.touch(mode=0o444)
        for p in (work, home, baseline):
            if p is not None:
                self._mountpoint(p)
        if network is True:
            self.sockdir.mkdir(exist_ok=True)
            self.sockdir.chmod(0o755)
            self._mountpoint(self.sockdir)

    def _mountpoint(self, target: Path) -> None:
        """A bind target inside the private /tmp needs its folders there, readable by the sandbox's uid
        (bwrap would create them mode 0700, owned by root)."""
        if target in self._made or not _under(target, [Path("/tmp")]) or target == Path("/tmp"):
            return
        here = self.tmp
        for part in target.relative_to("/tmp").parts:
            here = here / part
            if not here.is_dir():
                here.mkdir()
                here.chmod(0o755)
        self._made.add(target)

    def _hidden_roots(self) -> list[Path]:
        return homes() + [Path("/tmp")]

    def _expose(self, env: dict[str, str], extra: list[str]) -> list[str]:
        """Read-only mounts for what the command needs that lies under a hidden place."""
        # not the PATH entries in a home: a pyenv shim there, say, needs its whole tree; `expose` names such folders
        wanted = [sys.prefix, sys.base_prefix, sys.exec_prefix, *self.config.expose, *extra]
        hidden = self._hidden_roots()
        args: list[str] = []
        seen: set[Path] = set()
        for w in wanted:
            p = Path(w).resolve()
            if p in seen or not p.is_dir() or not _under(p, hidden) or p == Path("/tmp"):
                continue
            seen.add(p)
            self._mountpoint(p)
            for h in homes():  # folders between an (empty) home and the path: traversable by the sandbox's uid
                if h in p.parents:
                    for anc in reversed([a for a in p.parents if h in a.parents]):
                        args += ["--perms", "0755", "--dir", str(anc)]
            args += ["--ro-bind", str(p), str(p)]
        return args

    def _hides(self) -> list[str]:
        args: list[str] = []
        for p in self.hide:
            if _under(p, self._hidden_roots()) or _under(self.work, [p]):
                continue  # not visible anyway, or the work folder itself
            if p.is_dir():
                args += ["--tmpfs", str(p)]
            elif p.exists():  # an empty file of the rollout's (a device node may not open here)
                args += ["--ro-bind", str(self.empty), str(p)]
        return args

    def limits_script(self, ports: list[int] | None = None) -> str:
        lim = self.config.limits
        script = (CLOSE_FDS + f"ulimit -t {lim.cpu_s} && ulimit -v {lim.memory_mb * 1024} && ulimit -u {lim.processes} "
                  f"&& ulimit -f {lim.file_mb * 1024} || exit 126; ")
        if self.network is True and ports:
            ready = "/tmp/.df-net-ready"
            fwd = " ".join(shlex.quote(a) for a in (sys.executable, "-I", "-S", "-c", FORWARDER, str(self.sockdir),
                                                      ready, *map(str, ports)))
            script += (f"{fwd} </dev/null >/dev/null 2>&1 & i=0; while [ ! -e {ready} ] && [ $i -lt 500 ]; "
                       f"do sleep 0.01; i=$((i+1)); done; rm -f {ready}; ")
        return script + 'exec "$@"'


    def wrap(self, argv: list[str], *, cwd: Path, env: dict[str, str], expose: list[str] | None = None,
             ports: list[int] | None = None) -> list[str]:
        args = [*_bwrap(), *_base_args(self.uid, self.network == "host")]
        for h in homes():
            args += ["--tmpfs", str(h)]
        args += ["--bind", str(self.tmp), "/tmp"]
        args += self._expose(env, expose or [])
        args += self._hides()
        args += ["--bind", str(self.work), str(self.work), "--bind", str(self.home), str(self.home)]
        if self.baseline is not None:
            args += ["--ro-bind", str(self.baseline), str(self.baseline)]
        if self.network is True:
            args += ["--ro-bind", str(self.sockdir), str(self.sockdir)]
        args += ["--chdir", str(cwd), "--", *_drop(self.uid), "/bin/bash", "-c", self.limits_script(ports), "df-sandbox",
                 *argv]
        return args
