"""``mode: batch`` / ``--batch``: every uncached model call waits for a provider batch job.

All items start at once. A call that the cache cannot answer is *parked*: its request joins
the round being collected and the item waits. When every unfinished item waits on a parked
call, the round is sent as one batch job (split by the provider's request and byte limits),
polled, and its answers are handed back to the waiting calls, which the client logs in the
run store as ordinary calls (costed at batch prices). The items then go one step further, to
their next uncached call. Single-turn runs finish in one round; a 4-turn dialogue in about 8.

Failed and expired requests go to the next round, up to ``max_attempts``, then fail their
item with the provider's reason. A rerun adopts the run's existing jobs (by their metadata)
before submitting anything, so a kill at any moment bills nothing twice.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

import orjson

from ..client import LLM
from ..config import EndpointConfig, Price
from ..errors import APIError, ConfigError
from ..limits import Gate
from . import BatchFileWritten, ProcessFn, offline
from .batch_api import RUN_KEY, TERMINAL, BatchAPI, Outcome, record_job

if TYPE_CHECKING:
    from .. import Engine
    from ..runner import ItemContext

UNLIMITED = 10**9
_ITEM: contextvars.ContextVar[str] = contextvars.ContextVar("batch_item")  # the item a parked call belongs to


class BatchRequestFailed(APIError):
    """A request the batch job did not answer; retryable until the executor's bound."""

    retryable = True


def batch_price(cfg: EndpointConfig) -> Price | None:
    """The endpoint's batch prices (``price.batch_*_per_1m``; unset: half the live prices)."""
    return cfg.price.batch() if cfg.price is not None else None


@dataclass
class Parked:
    custom_id: str
    endpoint: str
    payload: bytes
    future: asyncio.Future


@dataclass
class Round:
    parked: list[Parked] = field(default_factory=list)


class _BatchBackend:
    """Stands in for an endpoint's backend: parks the request and waits for its round."""

    def __init__(self, ctl: "Controller", endpoint: str, model: str):
        self.ctl = ctl
        self.endpoint = endpoint
        self.name = model

    async def complete(self, body: dict, *, api_key: str | None = None, timeout: float | None = None,
                       payload: bytes | None = None) -> dict:
        return await self.ctl.park(self.endpoint, payload if payload is not None else orjson.dumps(body))

    @classmethod
    def from_config(cls, cfg: EndpointConfig) -> "_BatchBackend":
        raise ConfigError("the batch backend is made by the batch executor, not from a config")

    async def list_models(self, *, api_key: str | None = None, timeout: float = 10.0) -> list[str] | None:
        return None

    async def aclose(self) -> None:
        pass


class _BatchEngine:
    """The engine as a batch-mode item sees it: the same store and config, batch-mode LLMs."""

    def __init__(self, engine: "Engine", ctl: "Controller"):
        self._engine = engine
        self._ctl = ctl
        self._llms: dict[str, LLM] = {}
        self._gate = Gate(UNLIMITED)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def llm(self, role: str) -> LLM:
        name = self._engine.endpoint_name(role)
        if name not in self._ctl.endpoints:
            return self._engine.llm(role)  # an endpoint that stays live
        llm = self._llms.get(name)
        if llm is None:
            cfg = self._engine.endpoint_config(role)
            # parked calls hold no slot: the limits are the provider's per-file limits, applied per round
            cfg = cfg.model_copy(update={"concurrency": UNLIMITED, "rpm": None, "tpm": None, "price": batch_price(cfg),
                                         "max_retries": self._ctl.max_attempts - 1})
            llm = self._llms[name] = LLM(name, cfg, _BatchBackend(self._ctl, name, cfg.model or name),
                                         self._engine.store, self._gate, self._engine.stats)
            llm.single_flight = False  # every waiting call must be parked, or the round waits for it forever
        return llm


class Controller:
    """Collects parked calls into rounds and runs each round as batch jobs."""

    def __init__(self, engine: "Engine", run_id: str, endpoints: set[str], apis: dict[str, BatchAPI], *,
                 poll: float, max_attempts: int, max_requests: int, max_bytes: int, file: Path | None = None):
        self.engine = engine
        self.run_id = run_id
        self.endpoints = endpoints
        self.apis = apis
        self.file = file  # --batch-file: rounds go to this file for an offline runner instead of a provider
        self.written = 0  # requests written to it; the run then stops
        self.main: asyncio.Task | None = None  # the task running the run (cancelled once the file is written)
        self.poll = poll
        self.max_attempts = max_attempts
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.active = 0  # items started and not finished
        self.waiting: dict[str, int] = {}  # item id -> its parked calls
        self.same: dict[str, int] = {}  # payload hash -> identical requests parked so far (custom ids stay unique)
        self.round = Round()
        self.rounds = 0
        self.failures: dict[str, int] = {}
        self.known: dict[str, Outcome] = {}  # batch id -> its outcome (downloaded once per session)
        # the provider's batches are listed back to the run's first start (a day, for a new run)
        row = engine.store.db.execute("SELECT created_at FROM runs WHERE run_id=?", (run_id,)).fetchone()
        self.since = (row[0] if row else time.time()) - 86400
        self._check: asyncio.TimerHandle | None = None
        self._busy = False
        self.error: BaseException | None = None

    # --- items ----------------------------------------------------------------------------
    def item_started(self) -> None:
        self.active += 1

    def item_finished(self, item_id: str) -> None:
        self.active -= 1
        self.waiting.pop(item_id, None)
        self._schedule()

    async def park(self, endpoint: str, payload: bytes) -> dict:
        if self.error is not None:
            raise self.error
        h = hashlib.blake2b(payload, digest_size=12).hexdigest()
        n = self.same.get(h, 0)
        self.same[h] = n + 1
        fut = asyncio.get_running_loop().create_future()
        self.round.parked.append(Parked(f"{h}-{n}", endpoint, payload, fut))
        me = _ITEM.get()
        self.waiting[me] = self.waiting.get(me, 0) + 1
        self._schedule()
        try:
            return await fut
        finally:
            left = self.waiting.get(me, 1) - 1
            if left:
                self.waiting[me] = left
            else:
                self.waiting.pop(me, None)

    def _schedule(self) -> None:
        """Look again shortly: a round starts when every unfinished item waits on a parked call."""
        if self._check is None and not self._busy:
            self._check = asyncio.get_running_loop().call_later(0.05, self._maybe_fire)

    def _maybe_fire(self) -> None:
        self._check = None
        if self._busy or not self.round.parked or len(self.waiting) < self.active:
            return
        rnd, self.round = self.round, Round()
        self._busy = True
        task = asyncio.ensure_future(self._run_round(rnd))
        task.add_done_callback(self._round_done)

    def _round_done(self, task: asyncio.Task) -> None:
        self._busy = False
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
        self._schedule()

    # --- rounds ---------------------------------------------------------------------------
    async def _run_round(self, rnd: Round) -> None:
        self.rounds += 1
        try:
            if self.file is not None:
                return await self._file_round(rnd)
            by_ep: dict[str, list[Parked]] = {}
            for p in rnd.parked:
                by_ep.setdefault(p.endpoint, []).append(p)
            for ep, parked in by_ep.items():
                await self._round_for(ep, parked)
        except BaseException as e:
            for p in rnd.parked:
                if not p.future.done():
                    p.future.set_exception(e if isinstance(e, Exception) else APIError("batch round cancelled"))
            raise

    async def _file_round(self, rnd: Round) -> None:
        """--batch-file: answer from imported results; when nothing can be answered, write the calls out, stop."""
        got = offline.answers(self.engine.store, self.run_id)
        waiting = [p for p in rnd.parked if p.custom_id not in got]
        for p in rnd.parked:
            if p.custom_id in got:
                p.future.set_result(got[p.custom_id])
        if len(waiting) < len(rnd.parked):
            self.round.parked.extend(waiting)  # still waiting: they join what the others ask next
            return
        assert self.file is not None
        self.written = offline.write_requests(self.engine.store, self.run_id, self.file,
                                              ((p.custom_id, _request_line(p)) for p in waiting))
        if self.main is not None:
            self.main.cancel()

    async def _round_for(self, ep: str, parked: list[Parked]) -> None:
        api = self.apis[ep]
        answers, failed = await self._adopt(api, ep)
        todo = [p for p in parked if p.custom_id not in answers]
        for chunk in self._chunks(todo):
            lines = b"".join(_request_line(p) for p in chunk)
            meta = {RUN_KEY: self.run_id, "dialogforge_round": str(self.rounds), "dialogforge_endpoint": ep}
            b = await api.submit(lines, meta)
            record_job(self.engine.store, batch_id=b.id, run_id=self.run_id, endpoint=ep, round_=self.rounds,
                       status=b.status, requests=len(chunk))
            self.engine.console.print(f"batch: round {self.rounds}: submitted {len(chunk)} request(s) to {ep} "
                                      f"as {b.id}", highlight=False, soft_wrap=True)
            got = await self._settle(api, ep, b)
            answers.update(got.answers)
            failed.update(got.failures)
            if got.reason:
                failed.update({p.custom_id: got.reason for p in chunk if p.custom_id not in got.failures})
        for p in parked:
            if p.future.done():
                continue
            if p.custom_id in answers:
                p.future.set_result(answers[p.custom_id])
            else:
                reason = failed.get(p.custom_id, "no answer in the batch's output or error file")
                p.future.set_exception(BatchRequestFailed(f"batch request failed: {reason}"))

    async def _adopt(self, api: BatchAPI, ep: str) -> tuple[dict[str, dict], dict[str, str]]:
        """Answers from this run's jobs already at the provider (waiting for unfinished ones)."""
        answers: dict[str, dict] = {}
        failed: dict[str, str] = {}
        for b in await api.ours(self.run_id, self.since):
            if (b.metadata or {}).get("dialogforge_endpoint", ep) != ep:
                continue
            if b.id not in self.known:
                self.engine.console.print(f"batch: adopting {b.id} ({b.status}), submitted earlier for this run",
                                          highlight=False, soft_wrap=True)
                self.known[b.id] = await self._settle(api, ep, b)
            answers.update(self.known[b.id].answers)
            failed.update(self.known[b.id].failures)
        return answers, failed

    async def _settle(self, api: BatchAPI, ep: str, b: Any) -> Outcome:
        seen = None
        while b.status not in TERMINAL:
            await asyncio.sleep(self.poll)
            b = await api.retrieve(b.id)
            c = b.request_counts
            now = (b.status, c.completed if c else 0, c.failed if c else 0)
            if now != seen:  # a long wait shows where the job is
                seen = now
                self.engine.console.print(f"batch: {b.id} {b.status}: {now[1]}/{c.total if c else '?'} answered, "
                                          f"{now[2]} failed", highlight=False, soft_wrap=True)
        out = Outcome() if b.status == "failed" else await api.outcome(b)
        if b.status == "failed":
            why = "; ".join(f"{e.code}: {e.message}" for e in (b.errors.data if b.errors else [])) or "failed"
            out.reason = f"batch {b.id} failed validation ({why})"
        pt = sum((a.get("usage") or {}).get("prompt_tokens") or 0 for a in out.answers.values())
        ct = sum((a.get("usage") or {}).get("completion_tokens") or 0 for a in out.answers.values())
        price = batch_price(self.engine.config.endpoints[ep])
        cost = (pt * price.input_per_1m + ct * price.output_per_1m) / 1e6 if price else 0.0
        counts = b.request_counts
        record_job(self.engine.store, batch_id=b.id, run_id=self.run_id, endpoint=ep,
                   round_=int((b.metadata or {}).get("dialogforge_round", self.rounds)), status=b.status,
                   requests=counts.total if counts else 0, completed=len(out.answers), failed=len(out.failures),
                   prompt_tokens=pt, completion_tokens=ct, cost=cost)
        self.known[b.id] = out
        return out

    def _chunks(self, parked: list[Parked]) -> list[list[Parked]]:
        chunks: list[list[Parked]] = []
        cur: list[Parked] = []
        size = 0
        for p in parked:
            n = len(_request_line(p))
            if cur and (len(cur) >= self.max_requests or size + n > self.max_bytes):
                chunks.append(cur)
                cur, size = [], 0
            cur.append(p)
            size += n
        if cur:
            chunks.append(cur)
        return chunks


def _request_line(p: Parked) -> bytes:
    return (b'{"custom_id":"' + p.custom_id.encode() + b'","method":"POST","url":"/v1/chat/completions","body":'
            + p.payload + b"}\n")


class BatchExecutor:
    """Items run here; their uncached calls go out in provider batch jobs (or to a file), round by round."""

    name = "batch"
    all_items_at_once = True

    def __init__(self, endpoints: list[str] | None = None, poll: float = 30.0, max_attempts: int = 3,
                 max_requests: int = 50_000, max_bytes: int = 190 * 1024 * 1024, file: str | Path | None = None):
        self.endpoints = endpoints  # None: every remote endpoint
        self.poll = poll
        self.max_attempts = max_attempts
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.file = Path(file) if file is not None else None
        self.offline = self.file is not None  # no provider to check before the run
        self.controller: Controller | None = None

    def batch_endpoints(self, engine: "Engine") -> dict[str, EndpointConfig]:
        eps = {n: c for n, c in engine.config.endpoints.items()
               if c.backend == "openai" and (self.endpoints is None or n in self.endpoints)}
        if not eps:
            raise ConfigError("batch mode needs an OpenAI-compatible endpoint (--base-url URL --model M; with "
                              "--batch-file the URL is never contacted)")
        return eps

    @contextlib.asynccontextmanager
    async def session(self, engine: "Engine", process: ProcessFn, *, run_id: str,
                      concurrency: int) -> AsyncIterator[ProcessFn]:
        eps = self.batch_endpoints(engine)
        apis = {} if self.offline else {n: BatchAPI(n, c, c.resolve_keys()[0]) for n, c in eps.items()}
        try:
            for api in apis.values():
                await api.check()
            ctl = self.controller = Controller(engine, run_id, set(eps), apis, poll=self.poll,
                                               max_attempts=self.max_attempts, max_requests=self.max_requests,
                                               max_bytes=self.max_bytes, file=self.file)
            ctl.main = asyncio.current_task()
            view = _BatchEngine(engine, ctl)

            async def run_item(item: dict, ctx: "ItemContext") -> Any:
                from ..runner import ItemContext
                ctl.item_started()
                _ITEM.set(ctx.item_id)
                try:
                    return await process(item, ItemContext(view, ctx.run_id, ctx.item_id, item,  # type: ignore[arg-type]
                                                           ctx.use_cache))
                finally:
                    ctl.item_finished(ctx.item_id)
            try:
                yield run_item
            except asyncio.CancelledError:
                if not ctl.written:
                    raise
                me = asyncio.current_task()
                if me is not None:
                    me.uncancel()
                raise BatchFileWritten(
                    f"{ctl.written} request(s) written to {self.file}: run them offline (e.g. `vllm run-batch -i "
                    f"{self.file} -o OUT.jsonl --model MODEL`), then `dialogforge batch import OUT.jsonl` and rerun "
                    "this command to go one round further") from None
        finally:
            for api in apis.values():
                await api.aclose()
