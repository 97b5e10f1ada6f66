"""``--executor ray``: items run on Ray actors; the driver stays the one writer.

The driver starts (or joins, with ``address``) a Ray cluster and a pool of actors, each with
its own engine whose endpoint limits are this run's limits divided among the actors. Each
item goes to the least-busy live actor together with its seed (the answered calls and memos
the driver's store holds for it). The actor streams back every call and memo as it happens;
the driver logs them, then the runner writes the item's records and commits it, exactly as
in a local run. An actor that dies takes only its unfinished items with it: they go to a
fresh actor with a new seed, so no call whose answer reached the driver is sent again.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import TYPE_CHECKING, Any, AsyncIterator

from ..errors import ConfigError, DialogforgeError, ItemFailed
from . import ProcessFn, Shippable
from .relay import RelayStore, Seed, apply_message, item_seed, stream_item

if TYPE_CHECKING:
    from .. import Engine
    from ..config import Config
    from ..runner import ItemContext


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'dialogforge[ray]'") from None
    return ray


def share_config(config: "Config", n: int) -> "Config":
    """The config one of ``n`` workers gets: every endpoint's (and replica's) concurrency, rpm and tpm divided by n."""
    def part(v: float | int | None, integer: bool) -> Any:
        if v is None:
            return None
        return max(1, math.ceil(v / n)) if integer else v / n
    endpoints = {name: ep.model_copy(update={"concurrency": part(ep.concurrency, True), "rpm": part(ep.rpm, False),
                                             "tpm": part(ep.tpm, False),
                                             "replicas": [r.model_copy(update={"concurrency": part(r.concurrency, True)})
                                                          for r in ep.replicas]})
                 for name, ep in config.endpoints.items()}
    return config.model_copy(update={"endpoints": endpoints, "concurrency": part(config.concurrency, True)})


class Worker:
    """One Ray actor: an engine over a relay store, and the workflow's per-item function."""

    def __init__(self, config: "Config", process: Shippable):
        from .. import Engine
        self.store = RelayStore()
        self.engine = Engine(config, store=self.store)  # type: ignore[arg-type]
        self.process = process.build()

    def pid(self) -> int:
        return os.getpid()

    async def run(self, run_id: str, item_id: str, item: dict, seed: Seed, use_cache: bool):
        from ..runner import ItemContext
        ctx = ItemContext(self.engine, run_id, item_id, item, use_cache)
        async for msg in stream_item(self.store, self.process, ctx, seed):
            yield msg


class _Pool:
    """The actors serving one per-item function; concurrent runs of it (agent rounds) share them."""

    def __init__(self, ray: Any, config: "Config", process: Shippable, n: int, per_actor: int):
        self.cls = ray.remote(num_cpus=0, max_concurrency=per_actor + 4)(Worker)
        self.config = share_config(config, n)
        self.process_ref = ray.put(process)
        self.actors = [self.cls.remote(self.config, self.process_ref) for _ in range(n)]
        self.busy = [0] * n
        self.sessions = 0

    def replace(self, i: int, dead: Any) -> bool:
        if self.actors[i] is not dead:
            return False  # another item already replaced it
        self.actors[i] = self.cls.remote(self.config, self.process_ref)
        return True


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, max_item_attempts: int = 3,
                 num_cpus: int | None = None):
        self.address = address
        self.workers = workers
        self.max_item_attempts = max_item_attempts
        self.num_cpus = num_cpus  # a local instance's CPUs (default: workers, else Ray's own guess)
        self.replaced = 0  # workers that died and were replaced
        self._pools: dict[int, _Pool] = {}
        self._sessions = 0
        self._started_ray = False

    @property
    def actors(self) -> list[Any]:
        """The live actors of the current runs (tests kill them)."""
        return [a for p in self._pools.values() for a in p.actors]

    def _init(self, ray: Any) -> None:
        if self._sessions == 0 and not ray.is_initialized():
            ray.init(address=self.address, num_cpus=None if self.address else (self.num_cpus or self.workers),
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
            self._started_ray = True
        self._sessions += 1

    def _release(self, ray: Any, pool: _Pool, key: int) -> None:
        pool.sessions -= 1
        if pool.sessions == 0:
            for a in pool.actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
            del self._pools[key]
        self._sessions -= 1
        if self._sessions == 0 and self._started_ray:
            ray.shutdown()
            self._started_ray = False

    @contextlib.asynccontextmanager
    async def session(self, engine: "Engine", process: ProcessFn, *, run_id: str,
                      concurrency: int) -> AsyncIterator[ProcessFn]:
        if not isinstance(process, Shippable):
            raise ConfigError("this workflow's per-item function cannot run on Ray: it is not a Shippable "
                              "(an importable factory with plain arguments)")
        ray = import_ray()
        self._init(ray)
        key = id(process)
        try:
            pool = self._pools.get(key)
            if pool is None:
                n = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
                pool = self._pools[key] = _Pool(ray, engine.config, process, n, max(64, concurrency))
            pool.sessions += 1
        except BaseException:
            self._sessions -= 1
            raise
        try:
            async def run_item(item: dict, ctx: "ItemContext") -> Any:
                return await self._run_item(pool, engine, item, ctx)
            yield run_item
        finally:
            self._release(ray, pool, key)

    async def _run_item(self, pool: _Pool, engine: "Engine", item: dict, ctx: "ItemContext") -> Any:
        from ray.exceptions import RayActorError
        last: Exception | None = None
        for attempt in range(self.max_item_attempts):
            i = min(range(len(pool.busy)), key=pool.busy.__getitem__)
            actor = pool.actors[i]
            seed = item_seed(engine.store, ctx.run_id, ctx.item_id, again=attempt > 0)
            pool.busy[i] += 1
            try:
                gen = actor.run.options(num_returns="streaming").remote(ctx.run_id, ctx.item_id, item, seed,
                                                                        ctx.use_cache)
                async for ref in gen:
                    kind, payload = await ref
                    if kind == "result":
                        return payload
                    if kind == "error":
                        raise payload
                    apply_message(engine.store, engine.stats, ctx.run_id, ctx.item_id, kind, payload)
                raise DialogforgeError(f"item {ctx.item_id}: the Ray worker ended without a result")
            except RayActorError as e:  # the worker died: this item goes to a fresh one
                last = e
                if pool.replace(i, actor):
                    self.replaced += 1
                    engine.console.print(f"[yellow]ray:[/] worker {i} died; its unfinished items run again "
                                         "on a fresh worker")
            finally:
                pool.busy[i] -= 1
        raise ItemFailed(f"item {ctx.item_id}: its Ray worker died {self.max_item_attempts} times ({last})")
