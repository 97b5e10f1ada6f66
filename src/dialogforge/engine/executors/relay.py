"""The run store as a remote worker sees it, and the driver's side of the same exchange.

A worker has no run store of its own. Each item it runs arrives with a *seed*: the responses
of the item's calls and the memos the driver's store already holds. Lookups are answered
from seeds; every new call and memo is put on the item's outbox, which the worker streams
back, and the driver logs it in the real store as it arrives. So a call whose response
reached the driver is in the next seed of that item, wherever it runs, and is never sent
again.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from ..errors import DialogforgeError
from ..store import RunStore

ItemKey = tuple[str, str]  # (run_id, item_id)


@dataclass
class Seed:
    """What the driver knows of one item before it (re)runs: call responses and memos."""

    calls: dict[str, dict] = field(default_factory=dict)  # cache_key -> response body
    memos: dict[str, Any] = field(default_factory=dict)


def item_seed(store: RunStore, run_id: str, item_id: str, *, again: bool = False) -> Seed:
    """The item's answered calls and memos from the driver's store. ``again``: the item ran before in this
    invocation (its worker died), so its calls may still be queued: commit them first."""
    if again:
        store.drain()
    calls = store.item_responses(run_id, item_id)
    memos = {k: orjson.loads(v) for k, v in store.db.execute(
        "SELECT key, value FROM memos WHERE run_id=? AND item_id=?", (run_id, item_id))}
    return Seed(calls, memos)


def apply_message(store: RunStore, stats: Any, run_id: str, item_id: str, kind: str, payload: Any) -> None:
    """Log one streamed call or memo in the driver's store (and count it in the progress stats)."""
    if kind == "call":
        store.log_call(**payload)
        if payload.get("response") is not None:
            stats.requests += 1
            stats.prompt_tokens += payload.get("prompt_tokens") or 0
            stats.completion_tokens += payload.get("completion_tokens") or 0
            stats.cost += payload.get("cost") or 0.0
        else:
            stats.errors += 1
    elif kind == "memo":
        key, value = payload
        store.memo(run_id, item_id, key, value)


class RelayStore:
    """Duck-types the parts of :class:`RunStore` that an engine uses while running items."""

    def __init__(self) -> None:
        self._cache: dict[str, dict] = {}
        self._refs: dict[str, int] = {}
        self._memos: dict[ItemKey, dict[str, Any]] = {}
        self._keys: dict[ItemKey, list[str]] = {}
        self._outbox: dict[ItemKey, Callable[[tuple[str, Any]], None]] = {}
        self.before_commit: list[Callable[[], None]] = []

    # --- one item's life on this worker ---------------------------------------------------
    def open_item(self, run_id: str, item_id: str, seed: Seed, send: Callable[[tuple[str, Any]], None]) -> None:
        k = (run_id, item_id)
        self._outbox[k] = send
        self._memos[k] = dict(seed.memos)
        self._keys[k] = []
        for key, resp in seed.calls.items():
            self._hold(k, key, resp)

    def close_item(self, run_id: str, item_id: str) -> None:
        k = (run_id, item_id)
        self._outbox.pop(k, None)
        self._memos.pop(k, None)
        for key in self._keys.pop(k, []):
            self._refs[key] -= 1
            if not self._refs[key]:
                del self._refs[key]
                self._cache.pop(key, None)

    def _hold(self, k: ItemKey, key: str, resp: dict) -> None:
        self._cache[key] = resp
        self._refs[key] = self._refs.get(key, 0) + 1
        self._keys[k].append(key)

    # --- what LLM and ItemContext call ----------------------------------------------------
    def lookup(self, cache_key: str) -> dict | None:
        return self._cache.get(cache_key)

    def log_call(self, **row: Any) -> None:
        k = (row.get("run_id"), row.get("item_id"))
        send = self._outbox.get(k)  # type: ignore[arg-type]
        if send is None:
            return  # a call outside any item (none in a run)
        if row.get("response") is not None and row.get("cache_key"):
            self._hold(k, row["cache_key"], row["response"])  # type: ignore[arg-type]
        send(("call", row))

    def memo(self, run_id: str, item_id: str, key: str, value: Any) -> Any:
        memos = self._memos.setdefault((run_id, item_id), {})
        if key in memos:
            return memos[key]
        memos[key] = value
        send = self._outbox.get((run_id, item_id))
        if send is not None:
            send(("memo", (key, value)))
        return value

    def drain(self) -> None:
        pass

    flush = drain

    def close(self) -> None:
        pass


async def stream_item(store: RelayStore, process: Callable, ctx: Any, seed: Seed):
    """Run one item against a relay store, yielding ("call"|"memo", payload) messages as they
    happen, then ("result", value) or ("error", exception)."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()
    store.open_item(ctx.run_id, ctx.item_id, seed, queue.put_nowait)
    task = asyncio.ensure_future(process(ctx.item, ctx))
    task.add_done_callback(lambda _t: queue.put_nowait(done))
    try:
        while (msg := await queue.get()) is not done:
            yield msg
        exc = task.exception() if not task.cancelled() else DialogforgeError("the item was cancelled")
        yield ("result", task.result()) if exc is None else ("error", exc)
    finally:
        task.cancel()
        store.close_item(ctx.run_id, ctx.item_id)
