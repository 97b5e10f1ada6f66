"""The run loop: items in, an async function per item, output lines out — exactly once.

Each finished item's records are committed to the run store together with the item (group
commit), then appended to the output file(s) (see ``outputs``). A rerun of the same command
skips finished items, restores output rows the files lost, and serves every LLM call that
already has a response from the store, so a half-finished multi-turn item replays for free.

Only an item's own errors fail an item (``ITEM_ERRORS``): an API error after retries, an
``ItemFailed`` the workflow raises, an answer that never matched its schema. Anything else is
a bug or a broken setup: the run stops, its traceback goes into the store, the user gets one line.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import sys
import traceback
from itertools import islice
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Iterator, Union

import orjson

from .errors import APIError, DialogforgeError, ItemFailed, StructuredOutputError
from .identity import check_identity, fingerprint
from .limits import Gate
from .outputs import OutputFiles
from .progress import RunProgress
from ..core.console import stderr_console
from .types import ChatResponse, ItemStatus, RunStatus

if TYPE_CHECKING:
    from rich.console import Console

    from . import Engine

__all__ = ["ItemContext", "Records", "ItemResult", "ProcessFn", "RunResult", "RunCrashed", "ItemStatus", "RunStatus",
           "ITEM_ERRORS", "execute", "run_id_for"]

ITEM_ERRORS: tuple[type[BaseException], ...] = (APIError, ItemFailed, StructuredOutputError)


class RunCrashed(DialogforgeError):
    """The run stopped on an error that is not an item's own; its traceback is in the run store."""


class Records(dict[str, list]):
    """What one item writes: output name -> the records for that output, e.g.
    ``Records(raw=[rec], filtered=[rec] if ok else [])``."""


# A process function returns Records, a list of records or one record (a dict) for the run's only
# output, or None for nothing.
ItemResult = Union[Records, list, dict, None]


class ItemContext:
    """What a per-item function gets besides its item: LLM access bound to this run and item."""

    __slots__ = ("engine", "run_id", "item_id", "item", "use_cache", "tokens")

    def __init__(self, engine: "Engine", run_id: str, item_id: str, item: dict, use_cache: bool = True):
        self.engine = engine
        self.run_id = run_id
        self.item_id = item_id
        self.item = item
        self.use_cache = use_cache
        self.tokens = 0  # prompt + completion tokens of this item's calls (the progress ETA uses it)

    async def chat(self, messages: list[dict], *, role: str = "generator", purpose: str = "main",
                   sample: int = 0, **kwargs: Any) -> ChatResponse:
        llm = self.engine.llm(role)
        resp = await llm.chat(messages, purpose=purpose, sample=sample, run_id=self.run_id,
                              item_id=self.item_id, use_cache=self.use_cache, **kwargs)
        self.tokens += resp.usage.prompt_tokens + resp.usage.completion_tokens
        return resp

    def memo(self, key: str, value: Any) -> Any:
        """Record a value this item computed outside the model (a tool's output, a timing), or,
        when the item runs again after a crash, return the value recorded the first time.

        Multi-turn items replay from the cache only while each request is identical to the
        first run's; an observation that differs on replay (a timing, a temp path) would break
        that. Passing it through ``memo`` keeps the replayed conversation identical."""
        return self.engine.store.memo(self.run_id, self.item_id, key, value)


ProcessFn = Callable[[dict, ItemContext], Awaitable[ItemResult]]


@dataclass
class RunResult:
    run_id: str
    done: int = 0
    failed: int = 0
    skipped: int = 0  # finished in an earlier invocation
    skipped_failed: int = 0  # failed earlier, not retried
    outputs: dict[str, Path] = field(default_factory=dict)
    failures_path: Path | None = None

    @property
    def failures_remain(self) -> bool:
        """Items of this run that are failed now (this time or earlier, not retried)."""
        return bool(self.failed or self.skipped_failed)


def run_id_for(name: str, outputs: dict[str, Path]) -> str:
    h = hashlib.blake2b("|".join(f"{k}={v}" for k, v in sorted(outputs.items())).encode(), digest_size=5).hexdigest()
    return f"{name}-{h}"


def seen_before(engine: "Engine", *, name: str, output: str | os.PathLike | dict[str, Any], identity: dict,
                roles: Iterable[str], run_id: str | None = None) -> bool:
    """Whether the run into ``output`` last started with this very identity (as ``Engine.run`` records it):
    a rerun of the same command. A workflow whose identity holds a hash of its input may then skip checks it
    made before that run started."""
    rid = run_id or run_id_for(name, _normalise_outputs(output))
    store = engine.existing_store()  # asking must not create the store: the inputs are not checked yet
    if store is None:
        return False
    recorded, _ = store.run_identity(rid)
    return recorded is not None and recorded == fingerprint({"models": engine.model_identity(roles), **identity})


def _normalise_outputs(output: str | os.PathLike | dict[str, Any]) -> dict[str, Path]:
    if isinstance(output, dict):
        outs = {k: Path(v).resolve() for k, v in output.items()}
    else:
        outs = {"output": Path(output).resolve()}
    if not outs:
        raise DialogforgeError("a run needs at least one output file")
    return outs


def _failures_path(primary: Path) -> Path:
    name = primary.name[: -len(primary.suffix)] if primary.suffix else primary.name
    return primary.with_name(name + ".failures.jsonl")


def records_by_output(result: ItemResult, outputs: dict[str, Path]) -> dict[str, list]:
    """The records a process function returned, by output name (see ``ItemResult``)."""
    if result is None:
        return {}
    if isinstance(result, Records):
        return result
    if len(outputs) > 1:
        raise TypeError(f"a run with several outputs ({', '.join(outputs)}) needs its process function to "
                        f"return Records(name=[...]), not {type(result).__name__}")
    only = next(iter(outputs))
    if isinstance(result, list):
        return {only: result}
    if isinstance(result, dict):
        if all(k in outputs and isinstance(v, list) for k, v in result.items()):
            raise TypeError(f"ambiguous result {{{', '.join(map(repr, result))}: [...]}}: return Records(...) "
                            "for records by output, or a dict without output names as keys for one record")
        return {only: [result]}
    raise TypeError(f"a process function returns Records, a list or a dict, not {type(result).__name__}")


class _Run:
    """One invocation of ``execute``: its counters, its in-flight tasks and how it ended."""

    def __init__(self, engine: "Engine", rid: str, files: OutputFiles, outputs: dict[str, Path],
                 result: RunResult, prog: RunProgress, process: ProcessFn, use_cache: bool):
        self.engine, self.rid, self.files, self.outputs = engine, rid, files, outputs
        self.result, self.prog, self.process, self.use_cache = result, prog, process, use_cache
        self.crash: tuple[BaseException, str] | None = None

    async def work(self, item_id: str, item: dict, sem: Gate) -> None:
        store = self.engine.store
        try:
            ctx = ItemContext(self.engine, self.rid, item_id, item, self.use_cache)
            try:
                records = records_by_output(await self.process(item, ctx), self.outputs)
                appends = self.files.write(records)
            except ITEM_ERRORS as e:  # the item fails; the run goes on
                store.commit_item(self.rid, item_id, ItemStatus.FAILED, error=f"{type(e).__name__}: {e}", defer=True)
                self.result.failed += 1
                self.prog.failed += 1
                self.prog.item_tokens(ctx.tokens)
                return
            except Exception as e:  # not the item's fault: stop the run (asyncio.CancelledError passes)
                if self.crash is None:
                    self.crash = (e, traceback.format_exc())
                return
            # group commit: items finishing in the same event-loop turn share one transaction
            store.commit_item(self.rid, item_id, ItemStatus.DONE, records=sum(len(v) for v in records.values()),
                              appends=appends, defer=True)
            self.result.done += 1
            self.prog.done += 1
            self.prog.item_tokens(ctx.tokens)
        finally:
            sem.release()

    async def feed(self, items: Iterable[tuple[str, dict]], retry_failed: bool, concurrency: int) -> None:
        sem = Gate(concurrency)
        tasks: set[asyncio.Task] = set()
        settled: list[asyncio.Future] = []  # after the feeding: set when the last task ends or one crashes

        def done(t: asyncio.Task) -> None:
            tasks.discard(t)
            if settled and (not tasks or self.crash is not None) and not settled[0].done():
                settled[0].set_result(None)
        try:
            for item_id, item, st in with_statuses(self.engine.store, self.rid, items):
                if st == ItemStatus.DONE or (retry_failed and st != ItemStatus.FAILED):
                    self.result.skipped += st == ItemStatus.DONE
                    self.prog.skipped += 1
                    continue
                if st == ItemStatus.FAILED and not retry_failed:
                    self.result.skipped_failed += 1
                    self.prog.skipped += 1
                    continue
                await sem.acquire()
                if self.crash is not None:
                    break
                t = asyncio.ensure_future(self.work(item_id, item, sem))
                tasks.add(t)
                t.add_done_callback(done)
            if tasks and self.crash is None:
                settled.append(asyncio.get_running_loop().create_future())
                await settled[0]  # one wake-up at the end, not a wait over every task per completion
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)


PAGE = 512  # items whose recorded status is asked for together


def with_statuses(store: Any, run_id: str, items: Iterable[tuple[str, dict]]) -> Iterator[tuple[str, dict, str | None]]:
    """Each item with the status the store recorded for it in an earlier invocation (None: never finished).

    The store is asked a page of items at a time (one indexed query), never for the whole run: memory
    stays flat with the number of items. A run with nothing recorded yet asks nothing."""
    if not store.has_items(run_id):
        for item_id, item in items:
            yield item_id, item, None
        return
    source = iter(items)
    while page := list(islice(source, PAGE)):
        statuses = store.statuses_of(run_id, [item_id for item_id, _ in page])
        for item_id, item in page:
            yield item_id, item, statuses.get(item_id)


class _GcState:
    runs = 0  # runs going on in this process
    saved: tuple[int, ...] = (700, 10, 10)  # the collector's thresholds before the first of them
    froze = False  # whether we froze the heap (not when the program had frozen its own already)


GC_GEN0 = 100_000  # objects allocated between two young collections while a run goes on (Python's default: 700)


@contextlib.contextmanager
def lean_gc() -> Iterator[None]:
    """While runs go on: what was alive at the start (modules, config, engine) is left out of the
    collector's passes (``gc.freeze``), and young collections come every 100,000 allocations, not 700
    (10,000 still cost 0.02 ms per item: each pass walks the in-flight items' coroutines; peak memory is
    the same).
    Per item a run allocates many short-lived objects that reference counting frees anyway; the
    collector's passes over them and over the whole heap were the largest part of the engine's
    CPU per item. All back as it was when the last run ends (``gc.unfreeze``: cycles that were
    garbage at the start are collected then); a heap the program froze itself is left as it is."""
    st = _GcState
    if st.runs == 0:
        st.saved = gc.get_threshold()
        st.froze = gc.get_freeze_count() == 0
        if st.froze:
            gc.freeze()
        if 0 < st.saved[0] < GC_GEN0:  # 0: the program turned the collector off; leave it so
            gc.set_threshold(GC_GEN0, *st.saved[1:])
    st.runs += 1
    try:
        yield
    finally:
        st.runs -= 1
        if st.runs == 0:
            gc.set_threshold(*st.saved)
            if st.froze:
                gc.unfreeze()


def _crash_line(rid: str, exc: BaseException, tb: str) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return (f"run {rid} stopped: {type(exc).__name__}: {exc}{where} — not an item's error, so no item was marked "
            f"failed; fix it and rerun to resume (traceback: dialogforge runs show {rid})")


async def execute(engine: "Engine", *, name: str, items: Iterable[tuple[str, dict]], process: ProcessFn,
                  output: str | os.PathLike | dict[str, Any], concurrency: int = 64, retry_failed: bool = False,
                  run_id: str | None = None, total: int | None = None, use_cache: bool = True,
                  progress: bool = True, console: Console | None = None, identity: dict | None = None,
                  continue_: bool = False) -> RunResult:
    console = console or stderr_console()
    outputs = _normalise_outputs(output)
    rid = run_id or run_id_for(name, outputs)
    store = engine.store
    store.drain()
    fp = check_identity(store, rid, identity, continue_, next(iter(outputs.values()))) if identity is not None else None
    store.begin_run(rid, name, {k: str(v) for k, v in outputs.items()}, " ".join(sys.argv))
    if identity is not None and fp is not None:
        store.set_run_identity(rid, fp, identity)
    files = OutputFiles(store, outputs, console)
    store.after_commit.append(files.write_committed)
    result = RunResult(run_id=rid, outputs=outputs, failures_path=_failures_path(next(iter(outputs.values()))))
    prog = RunProgress(name, total, engine.stats, console, enabled=progress)
    run = _Run(engine, rid, files, outputs, result, prog, process, use_cache)
    prog.start()
    status, error = RunStatus.INTERRUPTED, None
    try:
        with lean_gc():
            await run.feed(items, retry_failed, concurrency)
        if run.crash is not None:
            status, error = RunStatus.CRASHED, run.crash[1]
            raise RunCrashed(_crash_line(rid, *run.crash))
        status = RunStatus.FINISHED
    except DialogforgeError:
        if error is None:
            status, error = RunStatus.CRASHED, traceback.format_exc()
        raise
    finally:
        prog.stop()
        store.drain()
        store.after_commit.remove(files.write_committed)
        files.close()
        if result.failures_path is not None:
            _write_failures(store, rid, result.failures_path)
        store.end_run(rid, status, error)
    return result


def _write_failures(store, run_id: str, path: Path) -> None:
    """Rewrite the failures file from the store (atomic rename); remove it when nothing failed."""
    fails = store.failures(run_id)
    if not fails:
        if path.exists():
            path.unlink()
        return
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        for item_id, error in fails:
            f.write(orjson.dumps({"id": item_id, "error": error}, option=orjson.OPT_APPEND_NEWLINE))
    tmp.replace(path)
