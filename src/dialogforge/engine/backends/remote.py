"""Remote backend: aiohttp speaking the OpenAI chat-completions wire format.

Why not the `openai` SDK? At 256 concurrent requests its default httpx transport costs
4–10 ms of client CPU per request; a bare aiohttp request costs well under 1 ms, and at
scale the client's CPU is the limit. Errors map onto the SDK's semantics (see
``dialogforge.engine.errors``). Streaming responses are assembled into the same
response body a non-streaming call returns, tool-call deltas included.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from ..errors import APIConnectionError, APIStatusError, APITimeoutError, status_error

if TYPE_CHECKING:
    from ..config import EndpointConfig


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: rare from LLM servers; fall back to our own backoff


def _error_message(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")[:500].strip() or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:500]
        return str(err)[:500]
    return str(data)[:500]


class RemoteBackend:
    name = "openai"

    def __init__(self, base_url: str, *, connections: int = 256, headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self._connections = connections
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(cls, cfg: "EndpointConfig") -> "RemoteBackend":
        assert cfg.base_url  # the config requires it for this backend
        return cls(cfg.base_url, connections=cfg.concurrency or 0, headers=cfg.headers)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    def _auth(self, api_key: str | None) -> dict[str, str]:
        if api_key:
            return {**self._headers, "Authorization": f"Bearer {api_key}"}
        return self._headers

    async def complete(self, body: dict, *, api_key: str | None = None, timeout: float | None = None,
                       payload: bytes | None = None) -> dict:
        """POST the body (already serialised as `payload` when the caller has it) and return the reply."""
        session = self._get_session()
        data = payload if payload is not None else orjson.dumps(body)
        to = aiohttp.ClientTimeout(total=timeout)
        try:
            async with session.post(self.url, data=data, headers=self._auth(api_key), timeout=to) as resp:
                if resp.status >= 400:
                    raw = await resp.read()
                    raise status_error(resp.status, _error_message(raw), _parse_retry_after(resp.headers.get("Retry-After")))
                if body.get("stream"):
                    return await _read_stream(resp)
                raw = await resp.read()
        except asyncio.TimeoutError:
            raise APITimeoutError(f"request timed out after {timeout}s") from None
        except aiohttp.ClientError as e:
            raise APIConnectionError(f"connection error: {type(e).__name__}: {e}") from None
        try:
            out = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise APIStatusError(f"invalid JSON in response: {raw[:200]!r}", status=502) from None
        if not isinstance(out, dict) or "choices" not in out:
            raise APIStatusError(f"unexpected response shape: {str(out)[:200]}", status=502)
        return out

    async def list_models(self, *, api_key: str | None = None, timeout: float = 10.0) -> list[str] | None:
        """GET /models — used by the preflight check to report a wrong base URL or model name early."""
        session = self._get_session()
        try:
            async with session.get(self.base_url + "/models", headers=self._auth(api_key),
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise status_error(resp.status, _error_message(raw))
        except asyncio.TimeoutError:
            raise APITimeoutError(f"no answer from {self.base_url} within {timeout}s") from None
        except aiohttp.ClientError as e:
            raise APIConnectionError(f"cannot reach {self.base_url}: {e}") from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # not a model list: the first real call will tell
        if not isinstance(data, dict):
            return None
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_stream(resp: aiohttp.ClientResponse) -> dict:
    """Assemble server-sent chat.completion.chunk events into one chat.completion body."""
    content: list[str] = []
    tool_calls: dict[int, dict[str, Any]] = {}
    finish = None
    usage = None
    model = ""
    rid = ""
    async for line in resp.content:
        line = line.strip()
        if not line or not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            break
        chunk = orjson.loads(payload)
        if "error" in chunk:
            raise APIStatusError(f"error in stream: {_error_message(payload)}", status=500)
        model = chunk.get("model") or model
        rid = chunk.get("id") or rid
        if chunk.get("usage"):
            usage = chunk["usage"]
        for ch in chunk.get("choices") or []:
            delta = ch.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                slot = tool_calls.setdefault(tc.get("index", 0), {"id": None, "type": "function",
                                                                  "function": {"name": "", "arguments": ""}})
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["function"]["name"] += fn["name"]
                if fn.get("arguments"):
                    slot["function"]["arguments"] += fn["arguments"]
            if ch.get("finish_reason"):
                finish = ch["finish_reason"]
    if finish is None:
        raise APIConnectionError("stream ended before a finish_reason arrived")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) if content or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = [tool_calls[i] for i in sorted(tool_calls)]
    return {"id": rid, "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage or {}}
