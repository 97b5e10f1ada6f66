"""LLM: one endpoint with its backend, limits, retries, cache and structured output.

Every call, failed attempts included, is logged in the run store. A call is keyed by a
hash of (model, messages, params, tools, schema, sample); a key that already has a
response is served from the store and never sent again.
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from . import structured
from .backends import Backend
from .config import EndpointConfig
from .errors import APIError, RateLimitError, StructuredOutputError
from .limits import AdaptiveLimiter, Gate, KeyPool, KeySlot, backoff_delay
from .replicas import ReplicaSet
from .store import RunStore
from .types import ChatResponse


@dataclass(slots=True)
class Stats:
    """Counters the progress display reads."""

    requests: int = 0
    cached: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


def cache_key(model: str, messages: list, params: dict, tools: Any, schema: Any, sample: int) -> str:
    blob = orjson.dumps([model, messages, params, tools, schema, sample], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


class LLM:
    def __init__(self, name: str, cfg: EndpointConfig, backend: "Backend | ReplicaSet", store: RunStore,
                 global_limit: Gate, stats: Stats):
        self.name = name
        self.cfg = cfg
        # one backend, or the servers (replicas) of an endpoint, each with its own backend
        replicas = backend if isinstance(backend, ReplicaSet) else ReplicaSet.one(backend)
        self.replicas = replicas
        self.backend: Backend = replicas.replicas[0].backend  # the first (or only) server's backend
        self.model = cfg.model or self.backend.name
        self.store = store
        self.stats = stats
        self._global = global_limit
        self.limiter = AdaptiveLimiter(cfg.concurrency or global_limit.maximum)
        self.keys = KeyPool(cfg.resolve_keys(), rpm=cfg.rpm, tpm=cfg.tpm)
        self._price = cfg.price
        self.structured_mode = cfg.structured_output
        self._defaults = dict(cfg.params)
        self._inflight: dict[str, asyncio.Future] = {}  # cache key -> done when its request is answered or failed
        # Identical requests in flight at once are sent once. The batch executor turns this off: there a call
        # waiting on another item's call would not count as parked, and the round would never fire.
        self.single_flight = True

    async def chat(self, messages: list[dict], *, purpose: str = "main", sample: int = 0,
                   schema: type[BaseModel] | None = None, tools: list[dict] | None = None,
                   run_id: str | None = None, item_id: str | None = None, use_cache: bool = True,
                   max_repairs: int = 2, **params: Any) -> ChatResponse:
        if schema is None:
            return await self._call(messages, params, tools, None, sample, purpose, run_id, item_id, use_cache)
        fmt = structured.response_format(schema, self.structured_mode)
        msgs = list(messages)
        if fmt is None or fmt["type"] == "json_object":
            msgs = [*msgs[:-1], {**msgs[-1], "content": f"{msgs[-1].get('content') or ''}\n\n{structured.schema_hint(schema)}"}]
        p = dict(params)
        if fmt is not None:
            p["response_format"] = fmt
        last_err: Exception | None = None
        for _ in range(max_repairs + 1):
            resp = await self._call(msgs, p, tools, schema.__name__, sample, purpose, run_id, item_id, use_cache)
            try:
                resp.parsed = structured.validate(schema, resp.text)
                return resp
            except (ValidationError, ValueError) as e:
                last_err = e
                msgs = [*msgs, {"role": "assistant", "content": resp.text or ""},
                        {"role": "user", "content": structured.repair_message(e)}]
        raise StructuredOutputError(
            f"{self.name}: answer did not match {schema.__name__} after {max_repairs + 1} tries: {last_err}")

    async def _call(self, messages: list[dict], params: dict, tools: list[dict] | None, schema_name: str | None,
                    sample: int, purpose: str, run_id: str | None, item_id: str | None,
                    use_cache: bool) -> ChatResponse:
        merged = {**self._defaults, **params} if self._defaults else params
        if sample and merged.get("seed") is not None:
            # another sample is another draw: with a fixed seed the server would repeat itself
            merged = {**merged, "seed": merged["seed"] + sample}
        key = cache_key(self.model, messages, merged, tools, schema_name, sample)
        if not use_cache or not self.single_flight:
            if use_cache and (hit := self.store.lookup(key)) is not None:
                return self._cached(hit, key)
            return await self._request(key, messages, merged, tools, purpose, run_id, item_id)
        hit = self.store.lookup(key)
        leader = self._inflight.get(key)
        if hit is None and leader is not None:  # the same request is on its way for another caller
            await asyncio.shield(leader)
            hit = self.store.lookup(key)  # its answer, unless it failed (then this caller tries itself)
        if hit is not None:
            return self._cached(hit, key)
        done = self._inflight[key] = asyncio.get_running_loop().create_future()
        try:
            return await self._request(key, messages, merged, tools, purpose, run_id, item_id)
        finally:
            if self._inflight.get(key) is done:
                del self._inflight[key]
            done.set_result(None)

    def _cached(self, hit: dict, key: str) -> ChatResponse:
        self.stats.cached += 1
        resp = ChatResponse.from_body(hit)
        resp.cached = True
        resp.call_id = key
        return resp

    async def _request(self, key: str, messages: list[dict], merged: dict, tools: list[dict] | None, purpose: str,
                    run_id: str | None, item_id: str | None) -> ChatResponse:
        """Send one request (with retries), log every attempt, return the answer."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, **merged}
        if tools:
            body["tools"] = tools
        call = _Call(body, orjson.dumps(body), run_id, item_id, purpose)
        est = len(call.request) / 3 + (merged.get("max_tokens") or 256)
        delay = 0.0
        while True:
            if delay:
                await asyncio.sleep(delay)
            slot = None
            await self._global.acquire()
            await self.limiter.acquire()
            try:
                slot = await self.keys.acquire(est)
                resp, replica = await self._send(call, slot.key)
                break
            except APIError as err:
                delay = self._after_error(call, err, slot)
            finally:
                self.limiter.release()
                self._global.release()
        self.limiter.success()
        u = resp.usage
        assert slot is not None
        self.keys.settle(slot, est, u.prompt_tokens + u.completion_tokens)
        cost = self._price.cost(u.prompt_tokens, u.completion_tokens) if self._price else 0.0
        st = self.stats
        st.requests += 1
        st.prompt_tokens += u.prompt_tokens
        st.completion_tokens += u.completion_tokens
        st.cost += cost
        resp.call_id = key
        self.store.log_call(
            run_id=run_id, item_id=item_id, purpose=purpose, endpoint=self.name, model=self.model, cache_key=key,
            request=call.request, response=call.response, prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens, latency=resp.latency, attempt=call.attempt, cost=cost,
            replica=replica)
        return resp

    async def _send(self, call: "_Call", api_key: str | None) -> tuple[ChatResponse, str | None]:
        """One attempt on one replica; errors are logged here and raised as APIError."""
        reps = self.replicas
        r = reps.pick(call.item_id)
        if not reps.single:  # one server: the endpoint's limiter is its limit
            await reps.acquire(r)
        t0 = time.perf_counter()
        try:
            # the body goes already serialised too: it is needed for the log anyway
            request = r.backend.complete(call.body, api_key=api_key, timeout=self.cfg.timeout, payload=call.request)
            out = await (request if reps.single else reps.send(r, request))  # one server: nothing to watch
            resp = ChatResponse.from_body(out, latency=time.perf_counter() - t0)
        except (APIError, ValueError) as e:
            err = e if isinstance(e, APIError) else APIError(str(e))
            call.failover = reps.failed(r, err)
            self.stats.errors += 1
            self.store.log_call(run_id=call.run_id, item_id=call.item_id, purpose=call.purpose, endpoint=self.name,
                                model=self.model, cache_key=None, request=call.request, response=None,
                                latency=time.perf_counter() - t0, attempt=call.attempt,
                                error=_redact(str(err), api_key), replica=r.url)
            raise err from None
        finally:
            reps.release(r)
        reps.succeeded(r)
        call.response = out
        return resp, r.url

    def _after_error(self, call: "_Call", err: APIError, slot: KeySlot | None) -> float:
        """Raise when the error is final; else the delay before the next attempt."""
        key = slot.key if slot else None
        if isinstance(err, RateLimitError):
            self.limiter.backoff()
        if not err.retryable or call.attempt >= self.cfg.max_retries:
            raise type(err)(_redact(str(err), key), status=err.status, retry_after=err.retry_after) from None
        # a replica in trouble: another one takes the retry at once
        delay = 0.0 if call.failover else backoff_delay(call.attempt, err.retry_after)
        if isinstance(err, RateLimitError) and slot is not None:
            self.keys.cool_down(slot, delay)
        call.attempt += 1
        self.stats.retries += 1
        return delay

    async def aclose(self) -> None:
        await self.replicas.aclose()


class _Call:
    """One logical call across its attempts."""

    __slots__ = ("body", "request", "run_id", "item_id", "purpose", "attempt", "failover", "response")

    def __init__(self, body: dict, request: bytes, run_id: str | None, item_id: str | None, purpose: str):
        self.body = body
        self.request = request
        self.run_id = run_id
        self.item_id = item_id
        self.purpose = purpose
        self.attempt = 0
        self.failover = False
        self.response: dict | None = None


def _redact(text: str, key: str | None) -> str:
    if key and key in text:
        text = text.replace(key, "***")
    return text
