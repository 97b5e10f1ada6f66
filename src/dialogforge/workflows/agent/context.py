"""Context management: observation cut/summary, history summary and context rebuild, token counts.

Token accounting. The size of the context about to be sent is
    measured + counted(new messages)
where `measured` is the server's own `prompt_tokens + completion_tokens` of the last main call
(the exact size of everything up to and including that reply) and only the messages appended
since (observations, format errors) are counted locally, with the configured tokenizer:
  - "hf": a tokenizer.json through the `tokenizers` package (exact for that model),
  - "bytes" (default): the UTF-8 byte count, an upper bound for byte-level BPE vocabularies
    (GPT-2/Llama-3/Qwen/SmolLM style: every token covers at least one byte), so the budget is
    never exceeded by undercounting. Each message adds `MESSAGE_OVERHEAD` tokens for its chat
    template markers. When the server reports no usage, the whole context is counted locally.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ...engine.errors import ConfigError
from .config import ContextConfig, TokenizerConfig
from .prompts import Prompts

MESSAGE_OVERHEAD = 8  # role + start/end markers of one chat-template turn, rounded up


class TokenCounter:
    def __init__(self, cfg: TokenizerConfig, base_dir: str = "."):
        self.kind = cfg.kind
        self._encode: Callable[[str], Any] | None = None
        if cfg.kind == "hf":
            if not cfg.path:
                raise ConfigError("agent.context.tokenizer.path: required for kind 'hf' (a tokenizer.json)")
            try:
                from tokenizers import Tokenizer
            except ImportError:
                raise ConfigError("agent.context.tokenizer: kind 'hf' needs the `tokenizers` package "
                                  "(pip install 'dialogforge[agent]')") from None
            from pathlib import Path
            p = Path(cfg.path) if Path(cfg.path).is_absolute() else Path(base_dir) / cfg.path
            if not p.is_file():
                raise ConfigError(f"agent.context.tokenizer.path: {p} is not a file")
            try:
                tok = Tokenizer.from_file(str(p))
            except Exception as e:  # the library raises its own exception type
                raise ConfigError(f"agent.context.tokenizer.path: {p} is not a tokenizer.json: {e}") from None
            self._encode = lambda s: tok.encode(s, add_special_tokens=False).ids

    def count(self, text: str | None) -> int:
        if not text:
            return 0
        if self._encode is None:
            return len(text.encode("utf-8"))
        return len(self._encode(text))

    def count_message(self, m: dict) -> int:
        n = MESSAGE_OVERHEAD + self.count(m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content")))
        if m.get("tool_calls"):
            n += self.count(json.dumps(m["tool_calls"], ensure_ascii=False))
        return n

    def count_messages(self, msgs: list[dict]) -> int:
        return sum(self.count_message(m) for m in msgs)


def cut_middle(text: str, max_chars: int) -> tuple[str, bool]:
    """Keep the head and tail of a long text with a note of how much was left out."""
    if len(text) <= max_chars:
        return text, False
    half = max_chars // 2
    elided = len(text) - 2 * half
    return f"{text[:half]}\n[... {elided} characters elided ...]\n{text[-half:]}", True


# (messages, purpose, max_tokens) -> ChatResponse; the rollout records the call.
AuxCall = Callable[[list[dict], str, int], Awaitable[Any]]


@dataclass
class ContextEvent:
    kind: str  # "observation_cut" | "observation_summary" | "history_summary"
    step: int
    before_tokens: int | None = None
    after_tokens: int | None = None
    dropped_messages: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ContextManager:
    """Owns the live context (what the next call sends) and the accounting of its size."""

    def __init__(self, cfg: ContextConfig, prompts: Prompts, counter: TokenCounter, aux_call: AuxCall, head_len: int = 2):
        self.cfg = cfg
        self.prompts = prompts
        self.counter = counter
        self.aux_call = aux_call
        self.head_len = head_len  # system + instance message stay at the front
        self.live: list[dict] = []
        self.measured_tokens: int | None = None
        self.measured_len = 0
        self.events: list[ContextEvent] = []
        self.head: list[dict] | None = None  # system + task as first sent, before any summary joined the task
        self.summary_text: str | None = None  # the summary block now joined to the task message

    # -- accounting -------------------------------------------------------------------------
    def record_usage(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Call after appending the assistant reply of a main call to `live`."""
        pending = [e for e in self.events if e.kind == "history_summary" and e.after_tokens is None]
        for e in pending:  # the rebuilt context's real size, as the server counted it
            e.after_tokens = prompt_tokens or None
        if prompt_tokens > 0:
            self.measured_tokens = prompt_tokens + completion_tokens
            self.measured_len = len(self.live)
        else:
            self.measured_tokens = None

    def estimate(self) -> tuple[int, str]:
        """(tokens of the live context, how they were obtained)."""
        if self.measured_tokens is not None and self.measured_len <= len(self.live):
            return self.measured_tokens + self.counter.count_messages(self.live[self.measured_len:]), "server_usage+" + self.counter.kind
        return self.counter.count_messages(self.live), self.counter.kind

    # -- observations -----------------------------------------------------------------------
    async def prepare_observation(self, output: str, step: int, task_text: str) -> tuple[str, dict]:
        """Cut a long output to head+tail; summarise it by an auxiliary call beyond the token threshold."""
        info: dict = {"chars": len(output)}
        threshold = self.cfg.observation_summary_tokens
        if threshold is not None:
            n = self.counter.count(output)
            info["tokens"] = n
            if n > threshold:
                shown, _ = cut_middle(output, self.cfg.summary_input_chars)
                msgs = [{"role": "user", "content": self.prompts.render("observation_summary", observation=shown, task=task_text)}]
                r = await self.aux_call(msgs, "observation_summary", self.cfg.summary_max_tokens)
                summary = (r.text or "").strip()
                if summary:
                    self.events.append(ContextEvent("observation_summary", step, n, self.counter.count(summary)))
                    info["summarized"] = True
                    return f"[The output was {len(output)} characters long; summary of it:]\n{summary}", info
        text, cut = cut_middle(output, self.cfg.observation_max_chars)
        if cut:
            self.events.append(ContextEvent("observation_cut", step, len(output), len(text)))
            info["cut"] = True
        return text, info

    # -- history ----------------------------------------------------------------------------
    def _split_point(self) -> int:
        """Index where the kept recent messages start: at an assistant message, so a tool result stays with
        its call and the task + summary (a user message) is followed by the model's turn."""
        start = max(self.head_len, len(self.live) - self.cfg.keep_recent_messages)
        while start > self.head_len and start < len(self.live) and self.live[start].get("role") != "assistant":
            start -= 1
        return start

    @staticmethod
    def transcript(msgs: list[dict], per_message_chars: int) -> str:
        parts = []
        for m in msgs:
            body = m.get("content") or ""
            if m.get("tool_calls"):
                calls = "; ".join(f"{tc['function']['name']}({tc['function'].get('arguments', '')})" for tc in m["tool_calls"])
                body = f"{body}\n[tool calls: {calls}]".strip()
            body, _ = cut_middle(body, per_message_chars)
            parts.append(f"### {m.get('role')}\n{body}")
        return "\n\n".join(parts)

    async def maybe_compress(self, step: int, task_text: str) -> bool:
        """Summarise the middle of the history when the live context exceeds the budget."""
        budget = self.cfg.max_context_tokens
        if budget is None:
            return False
        before, _ = self.estimate()
        if before <= budget:
            return False
        split = self._split_point()
        middle = self.live[self.head_len:split]
        if not middle:
            return False
        if self.summary_text is not None:  # the previous summary is part of what gets summarised now
            middle = [{"role": "user", "content": self.summary_text}] + middle
        text = self.transcript(middle, self.cfg.observation_max_chars)
        text, _ = cut_middle(text, self.cfg.summary_input_chars)
        msgs = [{"role": "user", "content": self.prompts.render("history_summary", transcript=text, task=task_text)}]
        r = await self.aux_call(msgs, "history_summary", self.cfg.summary_max_tokens)
        summary = (r.text or "").strip() or "(no summary was produced)"
        self.summary_text = self.prompts.render("summary_message", summary=summary, dropped=len(middle))
        # one user message (the task, then the summary): chat templates that require strict
        # user/assistant alternation accept it, and the recent turns start with the model's reply
        head = self.head or [dict(m) for m in self.live[: self.head_len]]
        self.head = head
        task_msg = dict(head[-1])
        task_msg["content"] = f"{task_msg.get('content') or ''}\n\n{self.summary_text}"
        self.live = head[:-1] + [task_msg] + self.live[split:]
        self.measured_tokens = None  # the rebuilt context has not been measured by the server yet
        # after_tokens is filled in from the next main call's prompt_tokens (see record_usage)
        self.events.append(ContextEvent("history_summary", step, before, None, dropped_messages=len(middle)))
        return True
