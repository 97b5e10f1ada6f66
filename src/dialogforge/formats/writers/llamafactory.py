"""LLaMA-Factory: ShareGPT, OpenAI-style messages (ShareGPT with role/content tags) and Alpaca.

Conventions LLaMA-Factory relies on (data/README.md, data/converter.py, formatter.py):
- ShareGPT turns alternate: human/observation at odd positions (1st, 3rd, ...),
  gpt/function_call at even ones; the system prompt goes in the `system` column.
- A function_call value is the JSON text of {"name", "arguments": <object>} (a list
  of them for parallel calls); the `tools` column is the JSON text of the list of
  bare function schemas {name, description, parameters}.
- Results of parallel calls become one observation turn, joined the way
  LLaMA-Factory joins them for OpenAI-style data.
- Alpaca: `instruction` (last user turn), `input` (""), `output`, `system`,
  `history` ([user, assistant] pairs); the system prompt never goes in `instruction`.
"""
from __future__ import annotations

from typing import Any

from ..conversation import Conversation, ConversionError, Message, function_schema, json_text
from ..readers import OBSERVATION_JOINER
from ..rules.llamafactory import LFSpec
from .base import Writer


class _ShareGPTLike(Writer):
    """ShareGPT proper and the OpenAI-style variant differ only in keys and tags."""

    messages_column = "conversations"

    def __init__(self, task: str = "sft", **options: Any):
        super().__init__(task, **options)
        self.spec = self.make_spec()

    def make_spec(self) -> LFSpec:
        raise NotImplementedError

    def _turn(self, tag: str | None, value: Any) -> dict[str, Any]:
        t = self.spec.tags
        return {t["role_tag"] or "from": tag, t["content_tag"] or "value": value}

    def _turns(self, msgs: list[Message]) -> list[dict[str, Any]]:
        t = self.spec.tags
        out: list[dict[str, Any]] = []
        observations: list[str] = []
        for m in msgs:
            if m.role == "tool":
                observations.append(m.content if m.content is not None else "")
                continue
            if observations:
                out.append(self._turn(t["observation_tag"], OBSERVATION_JOINER.join(observations)))
                observations = []
            if m.role == "user":
                out.append(self._turn(t["user_tag"], m.content))
            elif m.role == "assistant" and m.tool_calls:
                if m.content and m.content.strip():
                    self.notes["assistant text beside tool calls dropped (function_call turns carry calls only)"] += 1
                calls = [{"name": c.name, "arguments": c.parsed_arguments()} for c in m.tool_calls]
                out.append(self._turn(t["function_tag"], json_text(calls[0] if len(calls) == 1 else calls)))
            elif m.role == "assistant":
                out.append(self._turn(t["assistant_tag"], m.content))
            else:
                raise ConversionError("system_position", "a system message that is not the first message")
        if observations:
            out.append(self._turn(t["observation_tag"], OBSERVATION_JOINER.join(observations)))
        return out

    def _base(self, conv: Conversation, msgs: list[Message]) -> dict[str, Any]:
        row: dict[str, Any] = {self.messages_column: self._turns(msgs)}
        if conv.system:
            row["system"] = conv.system
        if conv.tools:
            row["tools"] = json_text([function_schema(t) for t in conv.tools])
        return row

    def sft(self, conv: Conversation) -> dict[str, Any]:
        return self._base(conv, conv.messages)

    def preference(self, conv: Conversation) -> dict[str, Any]:
        row = self._base(conv, conv.messages)
        for key, seq in (("chosen", conv.chosen or []), ("rejected", conv.rejected or [])):
            turns = self._turns(seq)
            if len(turns) != 1:
                raise ConversionError(
                    "pair_length", f"LLaMA-Factory takes exactly one {key} message, this record has {len(turns)}")
            row[key] = turns[0]
        return row

    def kto(self, conv: Conversation, label: bool) -> dict[str, Any]:
        return {**self._base(conv, conv.messages), "kto_tag": label}

    def dataset_info(self, file_name: str) -> dict[str, Any]:
        return self.spec.entry(file_name, self.columns_seen)


class ShareGPTWriter(_ShareGPTLike):
    name = "sharegpt"

    def make_spec(self) -> LFSpec:
        return LFSpec.sharegpt(task=self.task)


class LFOpenAIWriter(_ShareGPTLike):
    """OpenAI-style `messages` for LLaMA-Factory: system first, role/content keys,
    tool-call turns tagged `function_call`, tool results `tool`."""

    name = "lf-openai"
    messages_column = "messages"

    def make_spec(self) -> LFSpec:
        return LFSpec.lf_openai(task=self.task)

    def _base(self, conv: Conversation, msgs: list[Message]) -> dict[str, Any]:
        row = super()._base(conv, msgs)
        system = row.pop("system", None)
        if system is not None:
            row["messages"].insert(0, self._turn(self.spec.tags["system_tag"], system))
        return row


class AlpacaWriter(Writer):
    name = "alpaca"

    def __init__(self, task: str = "sft", **options: Any):
        super().__init__(task, **options)
        self.spec = LFSpec.alpaca(task=task)

    def _prompt(self, conv: Conversation, msgs: list[Message]) -> dict[str, Any]:
        """Alternating user/assistant turns ending with a user turn -> alpaca columns."""
        if conv.tools or any(m.tool_calls or m.role in ("tool", "system") for m in msgs):
            raise ConversionError("alpaca_tools", "alpaca cannot carry tools or tool calls; export as sharegpt")
        for i, m in enumerate(msgs):
            expected = "user" if i % 2 == 0 else "assistant"
            if m.role != expected:
                raise ConversionError("role_order", f"message {i + 1} is {m.role}, alpaca needs {expected} there")
        if not msgs or msgs[-1].role != "user":
            raise ConversionError("role_order", "alpaca needs the prompt to end with a user turn")
        row: dict[str, Any] = {"instruction": msgs[-1].content, "input": ""}
        if conv.system:
            row["system"] = conv.system
        history = [[msgs[i].content, msgs[i + 1].content] for i in range(0, len(msgs) - 1, 2)]
        if history:
            row["history"] = history
        return row

    def _split(self, conv: Conversation) -> tuple[list[Message], Message]:
        msgs = conv.messages
        if not msgs or msgs[-1].role != "assistant":
            raise ConversionError("message_count", "alpaca needs the conversation to end with an assistant reply")
        return msgs[:-1], msgs[-1]

    def sft(self, conv: Conversation) -> dict[str, Any]:
        prompt, reply = self._split(conv)
        row = self._prompt(conv, prompt)
        row["output"] = reply.content
        return _order(row)

    def preference(self, conv: Conversation) -> dict[str, Any]:
        row = self._prompt(conv, conv.messages)
        for key, seq in (("chosen", conv.chosen or []), ("rejected", conv.rejected or [])):
            if len(seq) != 1 or seq[0].role != "assistant" or seq[0].tool_calls:
                raise ConversionError("pair_length", f"alpaca takes exactly one plain assistant {key} answer")
            row[key] = seq[0].content
        return _order(row)

    def kto(self, conv: Conversation, label: bool) -> dict[str, Any]:
        row = self.sft(conv)
        row["kto_tag"] = label
        return row

    def dataset_info(self, file_name: str) -> dict[str, Any]:
        return self.spec.entry(file_name, self.columns_seen)


_ORDER = ("system", "instruction", "input", "output", "chosen", "rejected", "kto_tag", "history")


def _order(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _ORDER if k in row}
