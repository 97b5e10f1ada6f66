"""Replicas of one model behind one endpoint (several vLLM/SGLang servers): routing and health.

- **Routing**: a request goes to the healthy replica with the fewest outstanding requests relative to
  its concurrency limit, so a slow replica (whose requests pile up) gets proportionally less work.
- **Affinity**: the calls of one item (a dialogue, a rollout) stay on the replica its first call went
  to while that replica is healthy, so the server's prefix cache serves the growing history.
- **Ejection**: ``eject_after`` consecutive failures (connection errors, timeouts, 5xx) take a replica
  out of rotation; the failed requests are retried elsewhere at once. After ``probe_after`` seconds
  one request probes it: a success brings it back, a failure ejects it again.
- **Limits**: each replica has its own gate (its ``concurrency``); the endpoint's limiter and the
  global gate still hold above it.

One replica (the usual ``base_url:`` endpoint) takes a fast path with no routing at all.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable

from .errors import APIConnectionError, APIError
from .limits import Gate

if TYPE_CHECKING:
    from .backends import Backend
    from .config import EndpointConfig

log = logging.getLogger(__name__)
AFFINITY_ITEMS = 100_000  # items remembered for affinity (oldest forgotten first)


class Replica:
    __slots__ = ("url", "backend", "limit", "gate", "outstanding", "failures", "ejected_until", "probing", "inflight")

    def __init__(self, url: str | None, backend: "Backend", limit: int):
        self.url = url
        self.backend = backend
        self.limit = limit
        self.gate = Gate(limit)
        self.outstanding = 0  # requests routed here and not finished (waiting for its gate included)
        self.failures = 0  # consecutive
        self.ejected_until = 0.0  # 0: in rotation; else monotonic time of the next probe
        self.probing = False
        self.inflight: set[asyncio.Future] = set()  # requests being sent (cancelled when it is ejected)

    @property
    def healthy(self) -> bool:
        return self.ejected_until == 0.0


def is_replica_failure(err: APIError) -> bool:
    """Errors that say the server is in trouble (not the request): they count towards ejection."""
    return isinstance(err, APIConnectionError) or (err.status or 0) >= 500


class ReplicaSet:
    def __init__(self, replicas: list[Replica], *, eject_after: int = 3, probe_after: float = 10.0,
                 endpoint: str = ""):
        self.replicas = replicas
        self.single = len(replicas) == 1
        self.eject_after = eject_after
        self.probe_after = probe_after
        self.endpoint = endpoint
        self._affinity: OrderedDict[str, Replica] = OrderedDict()

    @classmethod
    def from_config(cls, name: str, cfg: "EndpointConfig", default_limit: int) -> "ReplicaSet":
        from .backends import make_backend
        limit = cfg.concurrency or default_limit
        reps = [Replica(r.base_url, make_backend(cfg.model_copy(update={"base_url": r.base_url, "replicas": []})),
                        r.concurrency or limit) for r in cfg.replica_list()]
        if not reps:  # a backend without a URL (embedded, plugins)
            reps = [Replica(None, make_backend(cfg), limit)]
        return cls(reps, eject_after=cfg.eject_after, probe_after=cfg.probe_after, endpoint=name)

    @classmethod
    def one(cls, backend: "Backend") -> "ReplicaSet":
        """A single server (the fast path: no routing, the endpoint's limiter is the limit)."""
        return cls([Replica(None, backend, 1)])

    # --- routing ----------------------------------------------------------------------------------
    def pick(self, item_id: str | None) -> Replica:
        if self.single:
            return self.replicas[0]
        now = time.monotonic()
        if item_id is not None:
            r = self._affinity.get(item_id)
            if r is not None and r.healthy:
                self._affinity.move_to_end(item_id)
                return r
        usable = [r for r in self.replicas if r.healthy or (now >= r.ejected_until and not r.probing)]
        if usable:
            best = min(usable, key=lambda r: (r.outstanding + 1) / r.limit)
        else:  # every replica is out: try the one due back first rather than wait
            best = min(self.replicas, key=lambda r: r.ejected_until)
        if not best.healthy:
            best.probing = True
        if item_id is not None:
            self._affinity[item_id] = best
            if len(self._affinity) > AFFINITY_ITEMS:
                self._affinity.popitem(last=False)
        return best

    async def acquire(self, r: Replica) -> None:
        if self.single:  # the endpoint's own limiter is the limit
            return
        r.outstanding += 1
        await r.gate.acquire()

    def release(self, r: Replica) -> None:
        if self.single:
            return
        r.gate.release()
        r.outstanding -= 1
        if r.probing and not r.healthy:  # the probe ended without a verdict (cancelled): probe again later
            r.probing = False

    async def send(self, r: Replica, request: Awaitable[Any]) -> Any:
        """Await one request on ``r``; when ``r`` is ejected meanwhile, it ends as a connection error
        (so the caller retries it on another replica at once)."""
        if self.single:
            return await request
        task = asyncio.ensure_future(request)
        r.inflight.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                raise  # the caller itself is being cancelled
            raise APIConnectionError(f"replica {r.url} was taken out of rotation during the request") from None
        finally:
            r.inflight.discard(task)

    # --- health -----------------------------------------------------------------------------------
    def succeeded(self, r: Replica) -> None:
        if r.failures or not r.healthy:
            if not r.healthy:
                log.warning("endpoint %s: replica %s is back in rotation", self.endpoint, r.url)
            r.failures = 0
            r.ejected_until = 0.0
            r.probing = False

    def failed(self, r: Replica, err: APIError) -> bool:
        """Record a failed request; True when another replica can take the retry at once."""
        if self.single or not is_replica_failure(err):
            return False
        r.failures += 1
        if r.probing or (r.healthy and r.failures >= self.eject_after):
            self.eject(r, f"{r.failures} consecutive failures, last: {err}")
        return any(o.healthy for o in self.replicas if o is not r)

    def eject(self, r: Replica, why: str) -> None:
        if r.healthy:
            log.warning("endpoint %s: replica %s taken out of rotation (%s)", self.endpoint, r.url, why)
        r.ejected_until = time.monotonic() + self.probe_after
        r.probing = False
        for task in list(r.inflight):  # its requests in flight: retried elsewhere now, not after a timeout
            task.cancel()

    async def aclose(self) -> None:
        for r in self.replicas:
            await r.backend.aclose()
