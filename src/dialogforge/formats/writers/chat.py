"""TRL datasets and OpenAI fine-tuning files.

TRL: conversational `messages`, `prompt`/`completion`, `prompt`/`chosen`/`rejected`
and unpaired `prompt`/`completion`/`label`; tool-call arguments are objects (what
chat templates expect), each value of the type its tool's schema names; `tools` is a
list of schemas by default (TRL 0.24 passes the column to the chat template as it is,
so JSON text fails there; newer TRL takes both), JSON text with `tools_as_list=False`.
SFT that trains on the last reply only (`train_on="last"`) is written as prompt +
completion: TRL computes the loss on the completion only. A preference or KTO prompt
that ends with a tool result is refused unless `tool_prompts="keep"` (TRL 0.24's DPO
and KTO trainers raise on it; later releases accept it).

OpenAI: {"messages": [...], "tools": [...]}, arguments as JSON text, every call with
an id and every tool message with the `tool_call_id` it answers; preference rows in
the DPO form {"input", "preferred_output", "non_preferred_output"}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..conversation import Conversation, ConversionError, Message, json_text, message_to_openai
from .base import Writer, split_last_reply


TOOL_PROMPTS = ("refuse", "keep")


@dataclass(frozen=True, slots=True)
class TRLOptions:
    """What the TRL rules need to know of the writer: whether a preference/KTO prompt may
    end with a tool result ("keep": TRL releases after 0.24 only)."""

    tool_prompts: str = "refuse"
    tools_as_text: bool = False  # JSON text `tools` (TRL after 0.24 only; 0.24 passes the string to the template)


class TRLWriter(Writer):
    name = "trl"
    tasks = ("sft", "prompt-completion", "preference", "kto")

    def __init__(self, task: str = "sft", *, tools_as_list: bool = True, tool_prompts: str = "refuse",
                 merge_consecutive: bool = True, train_on: str = "all"):
        super().__init__(task, merge_consecutive=merge_consecutive, train_on=train_on)
        if tool_prompts not in TOOL_PROMPTS:
            raise ValueError(f"tool_prompts must be one of {', '.join(TOOL_PROMPTS)}, not {tool_prompts!r}")
        self.tools_as_list = tools_as_list
        self.spec = TRLOptions(tool_prompts, tools_as_text=not tools_as_list)

    @property
    def row_task(self) -> str:
        return "prompt-completion" if self.task == "sft" and self.train_on == "last" else self.task

    def _msgs(self, msgs: list[Message]) -> list[dict[str, Any]]:
        out = [message_to_openai(m, arguments_as_object=True) for m in msgs]
        for d in out:  # TRL 0.24 drops null values (Arrow padding) before it asks is_conversational
            if d["content"] is None:
                d["content"] = ""
        return out

    def _prompt(self, conv: Conversation, msgs: list[Message]) -> list[dict[str, Any]]:
        head = [{"role": "system", "content": conv.system}] if conv.system else []
        return head + self._msgs(msgs)

    def _tools(self, conv: Conversation, row: dict[str, Any]) -> dict[str, Any]:
        if conv.tools:
            row["tools"] = conv.tools if self.tools_as_list else json_text(conv.tools)
        return row

    def sft(self, conv: Conversation) -> dict[str, Any]:
        if self.train_on == "last":
            return self.prompt_completion(conv)
        return self._tools(conv, {"messages": self._prompt(conv, conv.messages)})

    def prompt_completion(self, conv: Conversation) -> dict[str, Any]:
        prompt, completion = split_last_reply(conv.messages)
        return self._tools(conv, {"prompt": self._prompt(conv, prompt), "completion": self._msgs(completion)})

    def preference(self, conv: Conversation) -> dict[str, Any]:
        return self._tools(conv, {"prompt": self._prompt(conv, conv.messages),
                                  "chosen": self._msgs(conv.chosen or []),
                                  "rejected": self._msgs(conv.rejected or [])})

    def kto(self, conv: Conversation, label: bool) -> dict[str, Any]:
        prompt, completion = split_last_reply(conv.messages)
        return self._tools(conv, {"prompt": self._prompt(conv, prompt), "completion": self._msgs(completion),
                                  "label": label})


class OpenAIWriter(Writer):
    name = "openai"
    tasks = ("sft", "preference")
    alternating = False  # OpenAI fine-tuning takes any order of roles

    def _msgs(self, msgs: list[Message], ids: list[str]) -> list[dict[str, Any]]:
        """OpenAI messages with call ids filled in and tool results linked to them."""
        out: list[dict[str, Any]] = []
        pending: list[str] = []
        for m in msgs:
            d = message_to_openai(m)
            if d.get("tool_calls"):
                pending = []
                for c in d["tool_calls"]:
                    c.setdefault("id", f"call_{len(ids)}")
                    ids.append(c["id"])
                    pending.append(c["id"])
            elif m.role == "tool":
                if not d.get("tool_call_id"):
                    if not pending:
                        raise ConversionError("orphan_tool", "a tool result answers no preceding call")
                    d["tool_call_id"] = pending[0]
                if d["tool_call_id"] in pending:
                    pending.remove(d["tool_call_id"])
                d.pop("name", None)
            out.append(d)
        return out

    def _head(self, conv: Conversation) -> list[dict[str, Any]]:
        return [{"role": "system", "content": conv.system}] if conv.system else []

    def sft(self, conv: Conversation) -> dict[str, Any]:
        msgs = self._msgs(conv.messages, [])
        if self.train_on == "last":  # OpenAI's per-message weight: 0 keeps a reply out of the loss
            replies = [m for m in msgs if m["role"] == "assistant"]
            for m in replies[:-1]:
                m["weight"] = 0
        row: dict[str, Any] = {"messages": self._head(conv) + msgs}
        if conv.tools:
            row["tools"] = conv.tools
        return row

    def preference(self, conv: Conversation) -> dict[str, Any]:
        ids: list[str] = []
        inner: dict[str, Any] = {"messages": self._head(conv) + self._msgs(conv.messages, ids)}
        if conv.tools:
            inner["tools"] = conv.tools
        return {"input": inner,
                "preferred_output": self._msgs(conv.chosen or [], list(ids)),
                "non_preferred_output": self._msgs(conv.rejected or [], list(ids))}
