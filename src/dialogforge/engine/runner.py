"""The run loop: items in, an async function per item, output lines out — exactly once.

Each finished item's records are appended to the output file(s) as soon as the item
completes (no stage waits for a batch); then the item and the files' new sizes are
committed to the run store together. A rerun of the same command cuts any uncommitted
tail off the files, skips finished items, and serves every LLM call that already has a
response from the store, so a half-finished multi-turn item replays for free.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

import orjson
from rich.console import Console

from .errors import DialogforgeError
from .limits import Gate
from .progress import RunProgress
from .types import ChatResponse

if TYPE_CHECKING:
    from . import Engine


class ItemContext:
    """What a per-item function gets besides its item: LLM access bound to this run and item."""

    __slots__ = ("engine", "run_id", "item_id", "item", "use_cache")

    def __init__(self, engine: "Engine", run_id: str, item_id: str, item: dict, use_cache: bool = True):
        self.engine = engine
        self.run_id = run_id
        self.item_id = item_id
        self.item = item
        self.use_cache = use_cache

    async def chat(self, messages: list[dict], *, role: str = "generator", purpose: str = "main",
                   sample: int = 0, **kwargs: Any) -> ChatResponse:
        llm = self.engine.llm(role)
        return await llm.chat(messages, purpose=purpose, sample=sample, run_id=self.run_id,
                              item_id=self.item_id, use_cache=self.use_cache, **kwargs)

    def memo(self, key: str, value: Any) -> Any:
        """Record a value this item computed outside the model (a tool's output, a timing), or,
        when the item runs again after a crash, return the value recorded the first time.

        Multi-turn items replay from the cache only while each request is identical to the
        first run's; an observation that differs on replay (a timing, a temp path) would break
        that. Passing it through ``memo`` keeps the replayed conversation identical."""
        return self.engine.store.memo(self.run_id, self.item_id, key, value)


ProcessFn = Callable[[dict, ItemContext], Awaitable[Any]]


@dataclass
class RunResult:
    run_id: str
    done: int = 0
    failed: int = 0
    skipped: int = 0  # finished in an earlier invocation
    skipped_failed: int = 0  # failed earlier, not retried
    outputs: dict[str, Path] = field(default_factory=dict)
    failures_path: Path | None = None


def run_id_for(name: str, outputs: dict[str, Path]) -> str:
    h = hashlib.blake2b("|".join(f"{k}={v}" for k, v in sorted(outputs.items())).encode(), digest_size=5).hexdigest()
    return f"{name}-{h}"


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


class OutputFiles:
    """Append-only JSONL outputs whose committed sizes live in the run store."""

    def __init__(self, store, outputs: dict[str, Path], console: Console):
        self.store = store
        self.paths = outputs
        self.handles: dict[str, Any] = {}
        for name, path in outputs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = str(path)
            actual = path.stat().st_size if path.exists() else 0
            committed = store.committed_size(key)
            if committed is None or actual < committed:
                if committed is not None:
                    console.print(f"[yellow]note:[/] {path} is shorter than dialogforge wrote it; taking it as it is")
                store.set_committed_size(key, actual)
            elif actual > committed:
                console.print(f"[yellow]resume:[/] cutting {actual - committed} uncommitted bytes off the end of {path}")
                with path.open("r+b") as f:
                    f.truncate(committed)
            self.handles[name] = path.open("ab")

    def write(self, records: dict[str, list]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for name, recs in records.items():
            if not recs:
                continue
            fh = self.handles.get(name)
            if fh is None:
                raise DialogforgeError(f"the workflow wrote to an unknown output {name!r} (known: {', '.join(self.handles)})")
            fh.write(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY) for r in recs))
            sizes[str(self.paths[name])] = fh.tell()
        return sizes

    def flush(self) -> None:
        """Called by the store before each group commit, so the lines land before the commit."""
        for fh in self.handles.values():
            fh.flush()

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()


def _records_by_output(result: Any, default: str, names: dict) -> dict[str, list]:
    """A dict whose keys are all output names is {output: [records]}; anything else goes to `default`."""
    if result is None:
        return {}
    if isinstance(result, dict) and result and all(k in names and isinstance(v, list) for k, v in result.items()):
        return result
    if isinstance(result, list):
        return {default: result}
    return {default: [result]}


async def execute(engine: "Engine", *, name: str, items: Iterable[tuple[str, dict]], process: ProcessFn,
                  output: str | os.PathLike | dict[str, Any], concurrency: int = 64, retry_failed: bool = False,
                  run_id: str | None = None, total: int | None = None, use_cache: bool = True,
                  progress: bool = True, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True)
    outputs = _normalise_outputs(output)
    primary = next(iter(outputs))
    rid = run_id or run_id_for(name, outputs)
    store = engine.store
    store.drain()
    store.begin_run(rid, name, {k: str(v) for k, v in outputs.items()}, " ".join(sys.argv))
    statuses = store.item_statuses(rid)
    files = OutputFiles(store, outputs, console)
    store.before_commit.append(files.flush)
    result = RunResult(run_id=rid, outputs=outputs, failures_path=_failures_path(outputs[primary]))
    prog = RunProgress(name, total, engine.stats, console, enabled=progress)
    sem = Gate(concurrency)
    tasks: set[asyncio.Task] = set()

    def commit(item_id: str, status: str, **kw: Any) -> None:
        # group commit: items finishing in the same event-loop turn share one transaction
        store.commit_item(rid, item_id, status, defer=True, **kw)

    async def work(item_id: str, item: dict) -> None:
        try:
            ctx = ItemContext(engine, rid, item_id, item, use_cache)
            try:
                out = await process(item, ctx)
                records = _records_by_output(out, primary, outputs)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the item fails; the run goes on
                msg = f"{type(e).__name__}: {e}"
                commit(item_id, "failed", error=msg)
                result.failed += 1
                prog.failed += 1
                return
            sizes = files.write(records)
            commit(item_id, "done", records=sum(len(v) for v in records.values()), file_sizes=sizes)
            result.done += 1
            prog.done += 1
        finally:
            sem.release()

    prog.start()
    status = "interrupted"
    try:
        for item_id, item in items:
            st = statuses.get(item_id)
            if st == "done":
                result.skipped += 1
                prog.skipped += 1
                continue
            if retry_failed and st != "failed":
                prog.skipped += 1
                continue
            if st == "failed" and not retry_failed:
                result.skipped_failed += 1
                prog.skipped += 1
                continue
            await sem.acquire()
            t = asyncio.ensure_future(work(item_id, item))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        status = "finished"
    finally:
        for t in tasks:
            t.cancel()
        prog.stop()
        store.drain()
        store.before_commit.remove(files.flush)
        files.close()
        if result.failures_path is not None:
            _write_failures(store, rid, result.failures_path)
        store.end_run(rid, status)
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
