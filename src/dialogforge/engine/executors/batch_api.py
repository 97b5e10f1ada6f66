"""A provider's OpenAI Batch API (files + batches), through the openai SDK, and the run store's
record of the batch jobs a run submitted.

A job's input file and the batch itself carry ``metadata`` naming the run (``dialogforge_run``)
and the round; a rerun lists the provider's batches and adopts its run's jobs instead of
submitting again, also when it was killed after creating a batch and before storing its id.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..config import EndpointConfig
from ..errors import ConfigError
from ..store import RunStore

TERMINAL = ("completed", "failed", "expired", "cancelled")
RUN_KEY = "dialogforge_run"

def record_job(store: RunStore, *, batch_id: str, run_id: str, endpoint: str, round_: int, status: str,
               requests: int = 0, completed: int = 0, failed: int = 0, prompt_tokens: int = 0,
               completion_tokens: int = 0, cost: float = 0.0) -> None:
    now = time.time()
    store.db.execute(
        "INSERT INTO batch_jobs (batch_id, run_id, endpoint, round, status, requests, completed, failed,"
        " prompt_tokens, completion_tokens, cost, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(batch_id) DO UPDATE SET status=excluded.status, requests=excluded.requests,"
        " completed=excluded.completed, failed=excluded.failed, prompt_tokens=excluded.prompt_tokens,"
        " completion_tokens=excluded.completion_tokens, cost=excluded.cost, updated_at=excluded.updated_at",
        (batch_id, run_id, endpoint, round_, status, requests, completed, failed, prompt_tokens, completion_tokens,
         cost, now, now))


def jobs(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    """The run's batch jobs, oldest first (table ``batch_jobs``, store migration 4)."""
    rows = store.db.execute(
        "SELECT batch_id, endpoint, round, status, requests, completed, failed, prompt_tokens, completion_tokens,"
        " cost, created_at, updated_at FROM batch_jobs WHERE run_id=? ORDER BY created_at", (run_id,)).fetchall()
    keys = ("batch_id", "endpoint", "round", "status", "requests", "completed", "failed", "prompt_tokens",
            "completion_tokens", "cost", "created_at", "updated_at")
    return [dict(zip(keys, r)) for r in rows]


@dataclass
class Outcome:
    """What one finished job said about each request: answers and failures by custom_id."""

    answers: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the whole job failed (validation): why


class BatchAPI:
    """One endpoint's files and batches endpoints."""

    def __init__(self, name: str, cfg: EndpointConfig, api_key: str | None):
        import openai
        self.name = name
        self.cfg = cfg
        self.client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=api_key or "none", timeout=cfg.timeout,
                                         max_retries=cfg.max_retries)

    async def check(self) -> None:
        """Preflight: refuse a server without the batches endpoint (vLLM, SGLang, Ollama have none)."""
        import openai
        try:
            await self.client.batches.list(limit=1)
        except (openai.NotFoundError, openai.BadRequestError) as e:
            raise ConfigError(f"endpoint {self.name!r} ({self.cfg.base_url}) has no files/batches endpoints "
                              f"({type(e).__name__}): batch mode needs a provider Batch API; run it live, or use "
                              "--batch-file for vLLM's run-batch") from None
        except openai.AuthenticationError as e:
            raise ConfigError(f"endpoint {self.name!r}: the API key was rejected ({e})") from None
        except openai.APIConnectionError as e:
            raise ConfigError(f"endpoint {self.name!r} ({self.cfg.base_url}) is unreachable: {e}") from None

    async def submit(self, lines: bytes, metadata: dict[str, str]) -> Any:
        f = await self.client.files.create(file=(f"{metadata[RUN_KEY]}.jsonl", io.BytesIO(lines)), purpose="batch")
        return await self.client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                                completion_window="24h", metadata=metadata)

    async def retrieve(self, batch_id: str) -> Any:
        return await self.client.batches.retrieve(batch_id)

    async def ours(self, run_id: str, since: float) -> list[Any]:
        """The provider's batches whose metadata names this run, oldest first (paged back to ``since``)."""
        found = []
        page = await self.client.batches.list(limit=100)
        while True:
            for b in page.data:
                if (b.metadata or {}).get(RUN_KEY) == run_id:
                    found.append(b)
            if not page.data or page.data[-1].created_at < since or not page.has_more:
                break
            page = await self.client.batches.list(limit=100, after=page.data[-1].id)
        return sorted(found, key=lambda b: b.created_at)

    async def outcome(self, batch: Any) -> Outcome:
        out = Outcome()
        if batch.output_file_id:
            for row in _lines((await self.client.files.content(batch.output_file_id)).content):
                resp = row.get("response") or {}
                if resp.get("status_code") == 200 and isinstance(resp.get("body"), dict):
                    out.answers[row["custom_id"]] = resp["body"]
                else:
                    out.failures[row["custom_id"]] = _reason(row)
        if batch.error_file_id:
            for row in _lines((await self.client.files.content(batch.error_file_id)).content):
                out.failures.setdefault(row["custom_id"], _reason(row))
        return out

    async def aclose(self) -> None:
        await self.client.close()


def _lines(data: bytes) -> list[dict]:
    return [orjson.loads(ln) for ln in data.splitlines() if ln.strip()]


def _reason(row: dict) -> str:
    err = row.get("error") or {}
    if err:
        return f"{err.get('code')}: {err.get('message')}"
    resp = row.get("response") or {}
    body = resp.get("body") or {}
    msg = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
    return f"HTTP {resp.get('status_code')}: {msg or body}"
