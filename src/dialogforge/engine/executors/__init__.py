"""Executors: where a run's per-item work happens. The runner stays the one writer.

The runner (``runner.execute``) walks the items, writes every finished item's lines to the
output files and commits them to the run store. An executor only decides *where* the
per-item function runs:

- ``local`` (the default): in this process, on the event loop.
- ``ray``: on Ray actors (``ray_executor.py``); calls and memos stream back and are logged
  by the driver as they arrive, so a killed worker's item reruns elsewhere from the cache.
- ``batch``: here, but every uncached model call waits for a provider batch job.

An executor turns the workflow's per-item function into another one with the same
signature, for the duration of one run:

    async with executor.session(engine, process, run_id=rid, concurrency=n) as item_fn:
        await execute(engine, ..., process=item_fn)

To leave this process, the per-item function must be a :class:`Shippable`: an importable
factory and plain arguments, built once per worker.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Protocol

from ..errors import ConfigError, DialogforgeError

if TYPE_CHECKING:
    from .. import Engine
    from ..runner import ItemContext

ProcessFn = Callable[[dict, "ItemContext"], Awaitable[Any]]

EXECUTORS = ("local", "ray", "batch")


class BatchFileWritten(DialogforgeError):
    """--batch-file: the run stopped after writing a round of calls for an offline batch runner."""

    exit_code = 3  # the CLI exits with it: "waiting for a batch round", not an error


@dataclass
class Shippable:
    """A per-item function another process can rebuild: ``factory(*args, **kwargs)`` returns the
    async ``process(item, ctx)``. The factory must be importable (module level) and the arguments
    picklable (dataclasses, pydantic models, plain data) — no open files, locks or semaphores.

    It is itself a ``process`` function, built on first use, so the local runner takes it as is."""

    factory: Callable[..., ProcessFn]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    _built: ProcessFn | None = field(default=None, repr=False, compare=False)

    def build(self) -> ProcessFn:
        if self._built is None:
            self._built = self.factory(*self.args, **self.kwargs)
        return self._built

    def __getstate__(self) -> dict:
        return {"factory": self.factory, "args": self.args, "kwargs": self.kwargs, "_built": None}

    async def __call__(self, item: dict, ctx: "ItemContext") -> Any:
        return await self.build()(item, ctx)


class Executor(Protocol):
    name: str

    def session(self, engine: "Engine", process: ProcessFn, *, run_id: str,
                concurrency: int) -> contextlib.AbstractAsyncContextManager[ProcessFn]:
        """For one run: set up (workers, batch rounds), yield the per-item function, tear down."""
        ...


class LocalExecutor:
    """The default: the per-item function runs here, on the event loop."""

    name = "local"

    @contextlib.asynccontextmanager
    async def session(self, engine: "Engine", process: ProcessFn, *, run_id: str,
                      concurrency: int) -> AsyncIterator[ProcessFn]:
        # a Shippable's own function, so that each item's coroutine chain is one frame shorter
        yield process.build() if isinstance(process, Shippable) else process


def make_executor(name: str | None = None, **options: Any) -> Executor:
    """An executor by name: ``local`` (default), ``ray`` (options: address, workers), ``batch``."""
    name = name or "local"
    if name == "local":
        if options:
            raise ConfigError(f"the local executor takes no options (got {', '.join(sorted(options))})")
        return LocalExecutor()
    if name == "ray":
        from .ray_executor import RayExecutor
        return RayExecutor(**options)
    if name == "batch":
        from .batch import BatchExecutor
        return BatchExecutor(**options)
    raise ConfigError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
