"""An OpenAI-compatible chat server on loopback for tests and benchmarks.

Real HTTP, with injected latency and faults (error statuses with Retry-After, dropped
connections), a request log, and a pluggable responder for scripted replies. It stands in
for a remote model; the client code path under test is the real one.

    async with FakeServer(latency=0.05) as srv:
        srv.inject(status=429, count=2, retry_after=0.1)
        ... point the engine at srv.base_url ...
        assert len(srv.requests) == ...

As a process (benchmarks, kill -9 tests):
    python -m dialogforge.testing.fake_server --port 0 --latency 0.1 --port-file port.txt
GET /stats there returns {"requests": N, "keys": {...}, "batches": {...}}; GET /requests the request bodies.
The OpenAI files and batches endpoints live in fake_batches.py (``srv.batches``).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable

import orjson
from aiohttp import web

from .fake_batches import BatchService

Responder = Callable[[dict], Any]


@dataclass
class Fault:
    status: int | None = None
    retry_after: float | None = None
    drop: bool = False
    message: str = "injected fault"
    delay: float = 0.0


def _example_for(schema: dict, defs: dict) -> Any:
    """A value valid for a (simple) JSON schema, as a cooperative model would return."""
    if "$ref" in schema:
        return _example_for(defs.get(schema["$ref"].split("/")[-1], {}), defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return _example_for(schema[key][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t == "object" or "properties" in schema:
        return {k: _example_for(v, defs) for k, v in schema.get("properties", {}).items()}
    if t == "array":
        return [_example_for(schema.get("items", {}), defs)] * max(1, schema.get("minItems", 1))
    if t in ("number", "integer"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", float("-inf")))
        hi = schema.get("maximum", schema.get("exclusiveMaximum", float("inf")))
        v = min(max(4.0, lo), hi)
        return int(v) if t == "integer" else v
    if t == "boolean":
        return True
    if t == "null":
        return None
    return "ok"


def default_reply(body: dict) -> str:
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        schema = rf.get("json_schema", {}).get("schema", {})
        return orjson.dumps(_example_for(schema, schema.get("$defs", {}))).decode()
    if rf.get("type") == "json_object":
        return "{}"
    msgs = body.get("messages") or []
    last = next((m.get("content") for m in reversed(msgs) if m.get("role") == "user"), "") or ""
    if not isinstance(last, str):
        last = str(last)
    tag = hashlib.blake2b(orjson.dumps(msgs) + str(body.get("seed")).encode(), digest_size=4).hexdigest()
    return f"Reply {tag}: here is a considered answer about {last[:80]!s}."


class FakeServer:
    def __init__(self, *, latency: float = 0.0, responder: Responder | None = None, models: list[str] | None = None,
                 api_keys: set[str] | None = None, host: str = "127.0.0.1", port: int = 0, keep_requests: bool = True,
                 batches: bool = True, batch_delay: float = 0.0):
        self.latency = latency
        self.responder = responder
        self.models = models
        self.api_keys = api_keys
        self.host = host
        self.port = port
        self.keep_requests = keep_requests
        self.requests: list[dict] = []
        self.count = 0
        self.keys_seen: Counter[str] = Counter()
        self.faults: deque[Fault] = deque()
        self.models_status: int | None = None  # answer GET /models with this error status instead
        # the OpenAI files and batches endpoints (fake_batches.py); None: a server without them, like vLLM's
        self.batches = BatchService(self, delay=batch_delay) if batches else None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- control -------------------------------------------------------------------------
    def inject(self, *, status: int | None = None, count: int = 1, retry_after: float | None = None,
               drop: bool = False, message: str = "injected fault", delay: float = 0.0) -> None:
        """The next `count` requests fail this way (in order, before any normal reply)."""
        for _ in range(count):
            self.faults.append(Fault(status, retry_after, drop, message, delay))

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # --- handlers ------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        auth = request.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        self.count += 1
        self.keys_seen[key] += 1
        if self.keep_requests:
            self.requests.append(body)
        if self.api_keys is not None and key not in self.api_keys:
            return _error(401, "invalid api key")
        if self.faults:
            f = self.faults.popleft()
            if f.delay:
                await asyncio.sleep(f.delay)
            if f.drop:
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
            return _error(f.status or 500, f.message, headers)
        if self.models is not None and body.get("model") not in self.models:
            return _error(404, f"The model `{body.get('model')}` does not exist.")
        if self.latency:
            await asyncio.sleep(self.latency)
        message, finish, usage = self.reply(body)
        if body.get("stream"):
            return await self._stream(request, body, message, finish, usage)
        out = {"id": f"chatcmpl-{self.count}", "object": "chat.completion", "created": int(time.time()),
               "model": body.get("model"), "choices": [{"index": 0, "message": message, "finish_reason": finish}],
               "usage": usage}
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    def reply(self, body: dict) -> tuple[dict, str, dict]:
        """The assistant message, finish reason and usage this server answers ``body`` with."""
        reply = self.responder(body) if self.responder else None
        if reply is None:
            reply = default_reply(body)
        message = {"role": "assistant", "content": reply} if isinstance(reply, str) else {"role": "assistant", **reply}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 1
        completion_tokens = len(str(message.get("content") or "").split()) + 1
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        return message, finish, usage

    async def _stream(self, request: web.Request, body: dict, message: dict, finish: str, usage: dict):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": f"chatcmpl-{self.count}", "object": "chat.completion.chunk", "model": body.get("model")}
        text = message.get("content") or ""
        pieces = [text[i:i + 8] for i in range(0, len(text), 8)]
        for p in pieces:
            await resp.write(b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {"content": p}}]}) + b"\n\n")
        for i, tc in enumerate(message.get("tool_calls") or []):
            fn = tc["function"]
            args = fn.get("arguments", "")
            half = len(args) // 2
            for j, part in enumerate((args[:half], args[half:])):
                delta: dict[str, Any] = {"index": i, "function": {"arguments": part}}
                if j == 0:
                    delta.update(id=tc.get("id"), type="function")
                    delta["function"]["name"] = fn["name"]
                await resp.write(b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {"tool_calls": [delta]}}]}) + b"\n\n")
        await resp.write(b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                                                   "usage": usage}) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if self.api_keys is not None and auth.removeprefix("Bearer ") not in self.api_keys:
            return _error(401, "invalid api key")
        if self.models_status is not None:
            return _error(self.models_status, "injected fault")
        if self.models is None:
            return _error(404, "not found")
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _stats(self, request: web.Request) -> web.Response:
        out: dict[str, Any] = {"requests": self.count, "keys": dict(self.keys_seen)}
        if self.batches is not None:
            out["batches"] = self.batches.stats()
        return web.json_response(out)

    async def _requests(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.requests), content_type="application/json")

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> "FakeServer":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/requests", self._requests)
        if self.batches is not None:
            self.batches.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeServer":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # --- in a thread, for synchronous tests ------------------------------------------------
    def __enter__(self) -> "FakeServer":
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    @classmethod
    def background(cls, **kwargs: Any) -> "FakeServer":
        """`with FakeServer.background(latency=0.1) as srv:` — served from its own thread."""
        return cls(**kwargs)


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, headers=headers,
                        body=orjson.dumps({"error": {"message": message, "type": "fake_error", "code": status}}),
                        content_type="application/json")


def main() -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible fake chat server for tests and benchmarks")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--model", action="append", help="models to serve (default: any)")
    ap.add_argument("--no-keep", action="store_true", help="do not keep request bodies (benchmarks)")
    ap.add_argument("--batch-delay", type=float, default=0.0, help="seconds a batch job stays in progress")
    ap.add_argument("--no-batches", action="store_true", help="no files/batches endpoints (like vLLM)")
    args = ap.parse_args()

    async def run() -> None:
        srv = FakeServer(latency=args.latency, models=args.model, host=args.host, port=args.port,
                         keep_requests=not args.no_keep, batches=not args.no_batches, batch_delay=args.batch_delay)
        await srv.start()
        if args.port_file:
            with open(args.port_file + ".tmp", "w") as f:
                f.write(str(srv.port))
            import os
            os.replace(args.port_file + ".tmp", args.port_file)
        print(srv.base_url, flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run())


if __name__ == "__main__":
    main()
