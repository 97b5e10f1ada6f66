"""The OpenAI files and batches endpoints of the fake server.

    POST   /v1/files                    multipart upload (purpose=batch), returns a file object
    GET    /v1/files/{id}[/content]     the file object / its bytes
    DELETE /v1/files/{id}
    POST   /v1/batches                  {input_file_id, endpoint, completion_window, metadata}
    GET    /v1/batches[?after=&limit=]  newest first, with has_more / last_id paging
    GET    /v1/batches/{id}
    POST   /v1/batches/{id}/cancel

A batch is validated when it is created (lines, endpoint, the request and byte limits), then
stays ``in_progress`` for ``delay`` seconds and completes on the first look after that: each
request is answered as the chat endpoint would (same responder, same default reply), into an
output file; failed requests go to an error file. Faults are injected per request
(``fail_requests``) and per batch (``expire_next``: the batch expires with part of its
requests answered).
"""
from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from .fake_server import FakeServer

ENDPOINTS = ("/v1/chat/completions",)


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def obj(self) -> dict:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose}


@dataclass
class Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict | None
    created_at: float
    status: str = "in_progress"
    errors: dict | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    times: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    expire_fraction: float | None = None  # set: this batch expires with this share answered

    def obj(self) -> dict:
        return {"id": self.id, "object": "batch", "endpoint": self.endpoint, "errors": self.errors,
                "input_file_id": self.input_file_id, "completion_window": self.completion_window,
                "status": self.status, "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
                "created_at": int(self.created_at), "expires_at": int(self.created_at) + 86400,
                "request_counts": dict(self.counts), "metadata": self.metadata, **self.times}


@dataclass
class RequestFault:
    status: int = 500
    message: str = "injected batch request failure"


class BatchService:
    """Files and batches for one FakeServer; ``srv.batches`` in tests."""

    def __init__(self, server: "FakeServer", *, delay: float = 0.0, max_requests: int = 50_000,
                 max_bytes: int = 200 * 1024 * 1024):
        self.server = server
        self.delay = delay  # seconds a batch stays in_progress
        self.max_requests = max_requests  # per input file, as providers limit them
        self.max_bytes = max_bytes
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, Batch] = {}
        self.created = 0  # batches created (the double-submission check)
        self.request_faults: deque[RequestFault] = deque()
        self.expiring: deque[float] = deque()

    # --- control -------------------------------------------------------------------------
    def fail_requests(self, count: int = 1, *, status: int = 500, message: str = "injected batch request failure") -> None:
        """The next ``count`` requests answered inside batches fail (they land in the error file)."""
        self.request_faults.extend(RequestFault(status, message) for _ in range(count))

    def expire_next(self, count: int = 1, *, answered: float = 0.5) -> None:
        """The next ``count`` batches created expire, with the first ``answered`` share of their requests done."""
        self.expiring.extend([answered] * count)

    # --- handlers ------------------------------------------------------------------------
    def _auth(self, request: web.Request) -> web.Response | None:
        keys = self.server.api_keys
        auth = request.headers.get("Authorization", "")
        if keys is not None and (auth[7:] if auth.startswith("Bearer ") else "") not in keys:
            return _error(401, "invalid api key")
        return None

    async def upload(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        if not request.content_type.startswith("multipart/"):
            return _error(400, "expected a multipart/form-data upload with fields 'purpose' and 'file'")
        form = await request.post()
        purpose, upload = form.get("purpose"), form.get("file")
        if purpose != "batch":
            return _error(400, f"purpose must be 'batch' here, got {purpose!r}")
        if not isinstance(upload, web.FileField):
            return _error(400, "missing the 'file' part")
        data = upload.file.read()
        f = StoredFile(f"file-{uuid.uuid4().hex[:24]}", upload.filename or "upload.jsonl", "batch", data,
                       int(time.time()))
        self.files[f.id] = f
        return web.json_response(f.obj())

    def _file(self, request: web.Request) -> StoredFile | web.Response:
        f = self.files.get(request.match_info["file_id"])
        return f if f is not None else _error(404, f"No such File object: {request.match_info['file_id']}")

    async def get_file(self, request: web.Request) -> web.Response:
        f = self._auth(request) or self._file(request)
        return f if isinstance(f, web.Response) else web.json_response(f.obj())

    async def file_content(self, request: web.Request) -> web.Response:
        f = self._auth(request) or self._file(request)
        return f if isinstance(f, web.Response) else web.Response(body=f.data, content_type="application/octet-stream")

    async def delete_file(self, request: web.Request) -> web.Response:
        f = self._auth(request) or self._file(request)
        if isinstance(f, web.Response):
            return f
        del self.files[f.id]
        return web.json_response({"id": f.id, "object": "file", "deleted": True})

    async def create(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "the body is not JSON")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            return _error(400, f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be '24h'")
        meta = body.get("metadata")
        if meta is not None and (not isinstance(meta, dict) or len(meta) > 16
                                 or any(not isinstance(v, str) or len(v) > 512 for v in meta.values())):
            return _error(400, "metadata: at most 16 string values of up to 512 characters")
        f = self.files.get(body.get("input_file_id") or "")
        if f is None:
            return _error(404, f"No such File object: {body.get('input_file_id')}")
        now = time.time()
        b = Batch(f"batch_{uuid.uuid4().hex[:24]}", f.id, endpoint, "24h", meta, now,
                  times={"in_progress_at": int(now)})
        if self.expiring:
            b.expire_fraction = self.expiring.popleft()
        problem = self._validate(f, endpoint)
        if problem is not None:
            b.status, b.errors, b.times = "failed", {"object": "list", "data": [problem]}, {"failed_at": int(now)}
        else:
            b.counts["total"] = sum(1 for line in f.data.splitlines() if line.strip())
        self.batches[b.id] = b
        self.created += 1
        return web.json_response(b.obj())

    def _validate(self, f: StoredFile, endpoint: str) -> dict | None:
        if len(f.data) > self.max_bytes:
            return {"code": "file_too_large", "message": f"input file over {self.max_bytes} bytes", "line": None}
        seen: set[str] = set()
        lines = [ln for ln in f.data.splitlines() if ln.strip()]
        if len(lines) > self.max_requests:
            return {"code": "too_many_requests", "message": f"over {self.max_requests} requests", "line": None}
        for n, line in enumerate(lines, 1):
            try:
                req = orjson.loads(line)
            except orjson.JSONDecodeError:
                return {"code": "invalid_json_line", "message": "not JSON", "line": n}
            cid = req.get("custom_id") if isinstance(req, dict) else None
            if not isinstance(cid, str) or cid in seen:
                return {"code": "invalid_custom_id", "message": "missing or repeated custom_id", "line": n}
            seen.add(cid)
            if req.get("method") != "POST" or req.get("url") != endpoint or not isinstance(req.get("body"), dict):
                return {"code": "invalid_request", "message": f"needs method POST, url {endpoint} and a body", "line": n}
        return None

    def _advance(self, b: Batch) -> None:
        """Finish a batch whose time has come: answer its requests into output and error files."""
        if b.status not in ("in_progress", "cancelling") or time.time() - b.created_at < self.delay:
            return
        lines = [orjson.loads(ln) for ln in self.files[b.input_file_id].data.splitlines() if ln.strip()]
        cutoff = len(lines) if b.expire_fraction is None else int(len(lines) * b.expire_fraction)
        if b.status == "cancelling":
            cutoff = 0
        out, err = [], []
        for n, req in enumerate(lines):
            rid = f"batch_req_{uuid.uuid4().hex[:16]}"
            if n >= cutoff:
                code = "batch_cancelled" if b.status == "cancelling" else "batch_expired"
                err.append({"id": rid, "custom_id": req["custom_id"], "response": None,
                            "error": {"code": code, "message": "not executed before the batch ended"}})
                continue
            fault = self.request_faults.popleft() if self.request_faults else None
            if fault is not None:
                err.append({"id": rid, "custom_id": req["custom_id"], "error": None,
                            "response": {"status_code": fault.status, "request_id": rid,
                                         "body": {"error": {"message": fault.message, "type": "fake_error"}}}})
                continue
            out.append({"id": rid, "custom_id": req["custom_id"], "error": None,
                        "response": {"status_code": 200, "request_id": rid, "body": self._answer(req["body"], n)}})
        b.counts.update(completed=len(out), failed=len(err))
        now = int(time.time())
        b.output_file_id = self._store_lines(out, b.id, "output")
        b.error_file_id = self._store_lines(err, b.id, "error")
        if b.status == "cancelling":
            b.status, b.times["cancelled_at"] = "cancelled", now
        elif b.expire_fraction is not None:
            b.status, b.times["expired_at"] = "expired", now
        else:
            b.status = "completed"
            b.times.update(finalizing_at=now, completed_at=now)

    def _answer(self, body: dict, n: int) -> dict:
        srv = self.server
        srv.count += 1
        if srv.keep_requests:
            srv.requests.append(body)
        message, finish, usage = srv.reply(body)
        return {"id": f"chatcmpl-b{srv.count}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage}

    def _store_lines(self, rows: list[dict], batch_id: str, kind: str) -> str | None:
        if not rows:
            return None
        data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows)
        f = StoredFile(f"file-{uuid.uuid4().hex[:24]}", f"{batch_id}_{kind}.jsonl", f"batch_{kind}", data,
                       int(time.time()))
        self.files[f.id] = f
        return f.id

    def _batch(self, request: web.Request) -> Batch | web.Response:
        b = self.batches.get(request.match_info["batch_id"])
        if b is None:
            return _error(404, f"No such Batch object: {request.match_info['batch_id']}")
        self._advance(b)
        return b

    async def retrieve(self, request: web.Request) -> web.Response:
        b = self._auth(request) or self._batch(request)
        return b if isinstance(b, web.Response) else web.json_response(b.obj())

    async def cancel(self, request: web.Request) -> web.Response:
        b = self._auth(request) or self._batch(request)
        if isinstance(b, web.Response):
            return b
        if b.status == "in_progress":
            b.status, b.times["cancelling_at"] = "cancelling", int(time.time())
        return web.json_response(b.obj())

    async def list(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        newest = sorted(self.batches.values(), key=lambda b: b.created_at, reverse=True)
        after = request.query.get("after")
        if after:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1:] if after in ids else []
        limit = max(1, min(100, int(request.query.get("limit", "20"))))
        page = newest[:limit]
        for b in page:
            self._advance(b)
        return web.json_response({"object": "list", "data": [b.obj() for b in page],
                                  "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None,
                                  "has_more": len(newest) > limit})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}", self.get_file)
        app.router.add_get("/v1/files/{file_id}/content", self.file_content)
        app.router.add_delete("/v1/files/{file_id}", self.delete_file)
        app.router.add_post("/v1/batches", self.create)
        app.router.add_get("/v1/batches", self.list)
        app.router.add_get("/v1/batches/{batch_id}", self.retrieve)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self.cancel)

    def stats(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for b in self.batches.values():
            by_status[b.status] = by_status.get(b.status, 0) + 1
        return {"created": self.created, "by_status": by_status}


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"error": {"message": message, "type": "fake_error",
                                                                   "code": status}}),
                        content_type="application/json")
