"""Shared CLI plumbing: engine options, error reporting, .env loading.

Nothing here imports typer, rich or the engine at import time: the fast path of `generate` (cli/options.py) runs
its command through this module without them (see cli/main.py on start-up time). The shared options are typer
options made on first use from their declarations in cli/options.py.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..core.console import LazyConsole, escape
from ..core.errors import DialogforgeError
from . import options

if TYPE_CHECKING:  # the engine (aiohttp, the runner) loads only for commands that call a model
    from rich.console import Console

    from ..engine import Engine

console: Console = LazyConsole(stderr=True, emoji=False)

# typer option name -> its declaration (cli/options.py)
_SHARED = {"ConfigOpt": options.CONFIG, "BaseUrlOpt": options.BASE_URL, "ModelOpt": options.MODEL,
           "KeyEnvOpt": options.KEY_ENV, "ContinueOpt": options.CONTINUE, "StoreOpt": options.STORE,
           "ExecutorOpt": options.EXECUTOR, "RayAddressOpt": options.RAY_ADDRESS, "RayWorkersOpt": options.RAY_WORKERS,
           "BatchOpt": options.BATCH, "BatchPollOpt": options.BATCH_POLL, "BatchFileOpt": options.BATCH_FILE}


def __getattr__(name: str) -> Any:
    """`ConfigOpt`, `BaseUrlOpt`, ...: the shared options as typer options, for the commands declared with typer."""
    if name in _SHARED:
        return _SHARED[name].typer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_executor_flags(executor: str, ray_address: Optional[str] = None, ray_workers: Optional[int] = None,
                         batch: bool = False, batch_file: Optional[Path] = None) -> None:
    """Refuse executor flags that do not fit together; called before the run store exists (nothing is created)."""
    from ..engine.executors import EXECUTORS
    if executor not in EXECUTORS:
        raise DialogforgeError(f"--executor: unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    if executor != "ray" and (ray_address or ray_workers):
        raise DialogforgeError("--ray-address and --ray-workers go with --executor ray")
    if (batch or batch_file) and executor != "local":
        raise DialogforgeError(f"batch mode is its own executor; it does not combine with --executor {executor}")
    if batch and batch_file:
        raise DialogforgeError("use either --batch (a provider's Batch API) or --batch-file (offline), not both")


def use_executor(engine: Engine, executor: str, ray_address: Optional[str] = None, ray_workers: Optional[int] = None,
                 batch: bool = False, batch_poll: float = 30.0, batch_file: Optional[Path] = None) -> None:
    """Point the engine's runs at the executor the flags name (engine/executors)."""
    from ..engine import make_executor
    check_executor_flags(executor, ray_address, ray_workers, batch, batch_file)
    if batch_file:
        engine.executor = make_executor("batch", file=batch_file)
        return
    if batch or any(c.mode == "batch" for c in engine.config.endpoints.values()):
        eps = None if batch else [n for n, c in engine.config.endpoints.items() if c.mode == "batch"]
        engine.executor = make_executor("batch", endpoints=eps, poll=batch_poll)
        return
    opts = {k: v for k, v in {"address": ray_address, "workers": ray_workers}.items() if v}
    engine.executor = make_executor(executor, **opts)


def make_engine(config: Optional[Path], base_url: Optional[str], model: Optional[str], api_key_env: Optional[str],
                store: Optional[Path], roles: list[str] | None = None) -> "Engine":
    from ..engine import Engine
    from .main import end_startup
    end_startup()  # imports done: the collector as the engine expects it (cli/main.py)
    return Engine.load(config, base_url=base_url, model=model, api_key_env=api_key_env, store=store, roles=roles)


def friendly_errors(fn: Callable) -> Callable:
    """Turn our own errors into one red line and exit code 2, instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DialogforgeError as e:
            if getattr(e, "exit_code", None) == 3:  # BatchFileWritten: not an error, the run waits on a batch file
                console.print(f"[yellow]batch file:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
                raise SystemExit(3) from None
            console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # one line
            raise SystemExit(2) from None
        except Exception as e:
            message = _file_problem(e)
            if message is None:
                raise
            console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # one line
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/] — finished items are saved; rerun the same command to resume")
            raise SystemExit(130) from None
    return wrapper


_OS_PROBLEMS = {IsADirectoryError: "is a folder", NotADirectoryError: "a part of this path is a file, not a folder",
                FileExistsError: "is a file where a folder is needed",
                PermissionError: "permission denied", FileNotFoundError: "not found"}


def _file_problem(e: BaseException) -> Optional[str]:
    """One line for a file the user named that cannot be used: a folder given for a file, text that is not
    UTF-8, ... wherever in the code it surfaced (readers name their file themselves; this is the net under them)."""
    if isinstance(e, OSError) and type(e) in _OS_PROBLEMS and e.filename:
        return f"{e.filename}: {_OS_PROBLEMS[type(e)]}"
    if isinstance(e, UnicodeDecodeError):
        where = _file_being_read(e)
        if isinstance(e.object, bytes) and where:
            where += ":" + str(e.object.count(b"\n", 0, e.start) + 1)
        return f"{where or 'input'}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    return None


def _file_being_read(e: BaseException) -> Optional[str]:
    """The path the innermost of our frames was reading when `e` was raised."""
    tb, found = e.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__", "").startswith("dialogforge"):
            for name in ("path", "p", "source", "file", "filename"):
                value = frame.f_locals.get(name)
                if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
                    found = os.fspath(value)
                    break
        tb = tb.tb_next
    return found


def require_rows(*paths: Path) -> None:
    """Refuse to start, before anything is written, when no input file has a row: "0 rows in FILE".
    Folders are left to the command (it says what it found in them)."""
    from ..core.errors import InputError
    from ..core.rows import iter_lines
    empty = []
    for p in paths:
        if p.is_dir() or next(iter(iter_lines(p)), None) is not None:
            return
        empty.append(str(p))
    if empty:
        raise InputError(f"0 rows in {', '.join(empty)}: nothing to do")


def run_async(coro_fn: Callable[[], Any]) -> Any:
    import asyncio

    from ..engine.loop import install_fast_loop
    from .main import end_startup
    end_startup()  # the collector as the engine expects it (cli/main.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    install_fast_loop()
    return asyncio.run(coro_fn())


def parse_fields(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs or []:
        if "=" not in p:
            from ..core.errors import ConfigError
            raise ConfigError(f"--field expects OURS=THEIRS (e.g. prompt=question), got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def print_result(result: Any, what: str = "items") -> None:
    msg = f"[green]done[/]: {result.done} {what} written"
    if result.skipped:
        msg += f", {result.skipped} already finished earlier"
    if result.failed:
        msg += f", [red]{result.failed} failed[/] (see {escape(str(result.failures_path))}; rerun with --retry-failed)"
    if result.skipped_failed:
        msg += f", [red]{result.skipped_failed} failed earlier[/] (--retry-failed to retry)"
    console.print(msg + f" · run {result.run_id}", highlight=False)
