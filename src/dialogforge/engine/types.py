"""Plain data types shared by every layer of the engine.

Requests and responses travel as OpenAI wire-format dicts between the client and
its backends (remote HTTP or embedded); these classes are what callers see.
They are slotted dataclasses rather than pydantic models because they sit on the
hot path of every call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Message = dict[str, Any]  # {"role": ..., "content": ..., optional "tool_calls", "tool_call_id", "name"}


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ChatResponse:
    """One chat completion, as the workflow sees it."""

    text: str | None
    finish_reason: str | None
    usage: Usage
    model: str
    tool_calls: list[dict] | None = None  # OpenAI form: {"id", "type": "function", "function": {"name", "arguments"}}
    raw: dict = field(default_factory=dict)  # the response body as received
    parsed: Any = None  # the validated pydantic object when a schema was requested
    cached: bool = False  # served from the run store instead of the network
    latency: float = 0.0  # seconds, of the call that produced it
    call_id: str | None = None  # the call's cache key in the run store (`calls.cache_key`)

    @property
    def message(self) -> Message:
        """The assistant message to append to a conversation."""
        msg: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = self.tool_calls
        return msg

    @classmethod
    def from_body(cls, body: dict, *, latency: float = 0.0) -> "ChatResponse":
        choices = body.get("choices") or []
        if not choices:
            raise ValueError("response has no choices")
        choice = choices[0]
        msg = choice.get("message") or {}
        usage = body.get("usage") or {}
        return cls(
            text=msg.get("content"),
            finish_reason=choice.get("finish_reason"),
            usage=Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0),
            model=body.get("model") or "",
            tool_calls=msg.get("tool_calls") or None,
            raw=body,
            latency=latency,
        )


class ItemStatus(StrEnum):
    """An item's state in the run store."""

    DONE = "done"
    FAILED = "failed"


class RunStatus(StrEnum):
    """A run's state in the run store."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # stopped from outside (Ctrl-C, a kill); rerun to resume
    CRASHED = "crashed"  # stopped by an error that is not an item's; the traceback is in the store
