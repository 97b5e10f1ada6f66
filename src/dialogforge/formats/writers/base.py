"""What every writer shares: the tasks and how a conversation becomes samples of one.

Tasks:
- `sft`: the whole conversation (a preference record contributes prompt + chosen);
- `preference`: prompt + chosen + rejected (reward models, DPO);
- `kto`: prompt + completion + a boolean label (from `label`/`kto_tag`, from
  success/passed, or both halves of a chosen/rejected pair);
- `prompt-completion` (TRL only): everything before the last assistant reply, and that reply.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from ..conversation import Conversation, ConversionError, Message
from ..toolargs import coerce_conversation

TASKS = ("sft", "preference", "kto", "prompt-completion")
TRAIN_ON = ("last", "all")  # SFT targets: the last assistant reply of a row, or every reply


class Writer:
    """Turns Conversations into rows of one target format."""

    name: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("sft", "preference", "kto")
    alternating: ClassVar[bool] = True  # the target needs user and assistant turns to alternate

    def __init__(self, task: str = "sft", *, merge_consecutive: bool = True, train_on: str = "all"):
        if task not in self.tasks:
            raise ValueError(f"format {self.name!r} supports tasks {', '.join(self.tasks)}, not {task!r}")
        if train_on not in TRAIN_ON:
            raise ValueError(f"train_on must be one of {', '.join(TRAIN_ON)}, not {train_on!r}")
        self.task = task
        self.train_on = train_on
        self.merge_consecutive = merge_consecutive and self.alternating
        self.notes: Counter[str] = Counter()  # normalisations, counted
        self.columns_seen: set[str] = set()

    @property
    def row_task(self) -> str:
        """The task the rows' shape says (a writer may write SFT as prompt + completion)."""
        return self.task

    def rows(self, conv: Conversation) -> list[dict[str, Any]]:
        conv, coerced = coerce_conversation(conv)
        if coerced:
            self.notes["tool-call argument values converted to their schema's type"] += coerced
        if self.merge_consecutive:
            msgs, merged = merge_consecutive(conv.messages)
            if merged:
                conv = conv.copy(messages=msgs)
                for what, n in merged.items():
                    self.notes[f"consecutive {what} messages merged into one turn"] += n
        if self.task == "sft":
            out = [self.sft(as_sft(conv))]
        elif self.task == "preference":
            require_pair(conv)
            out = [self.preference(conv)]
        elif self.task == "kto":
            out = [self.kto(c, label) for c, label in kto_items(conv)]
        else:
            out = [self.prompt_completion(as_sft(conv))]
        for row in out:
            self.columns_seen.update(k for k, v in row.items() if v is not None)
        return out

    # Each target implements the tasks it lists.
    def sft(self, conv: Conversation) -> dict[str, Any]:
        raise NotImplementedError

    def preference(self, conv: Conversation) -> dict[str, Any]:
        raise NotImplementedError

    def kto(self, conv: Conversation, label: bool) -> dict[str, Any]:
        raise NotImplementedError

    def prompt_completion(self, conv: Conversation) -> dict[str, Any]:
        raise NotImplementedError

    def dataset_info(self, file_name: str) -> dict[str, Any] | None:
        """The LLaMA-Factory dataset_info.json entry for the file written, if any."""
        return None


def as_sft(conv: Conversation) -> Conversation:
    if conv.is_preference:
        return conv.copy(messages=conv.messages + list(conv.chosen or []), chosen=None, rejected=None)
    return conv


def require_pair(conv: Conversation) -> None:
    if not conv.chosen or not conv.rejected:
        raise ConversionError("not_preference", "record has no chosen/rejected pair")


def kto_items(conv: Conversation) -> list[tuple[Conversation, bool]]:
    if conv.label is not None:
        return [(as_sft(conv), conv.label)]
    if conv.is_preference:
        require_pair(conv)
        return [(conv.copy(messages=conv.messages + list(conv.chosen or []), chosen=None, rejected=None), True),
                (conv.copy(messages=conv.messages + list(conv.rejected or []), chosen=None, rejected=None), False)]
    success = conv.metadata.get("success")
    if isinstance(success, bool):
        return [(conv, success)]
    raise ConversionError("kto_label", "no KTO label: needs label/kto_tag, success/passed, or a chosen/rejected pair")


def split_last_reply(msgs: list[Message]) -> tuple[list[Message], list[Message]]:
    """(prompt, completion): the completion is the last assistant message."""
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i].role == "assistant":
            return msgs[:i], msgs[i:]
    raise ConversionError("no_reply", "conversation has no assistant reply")


def merge_consecutive(msgs: list[Message]) -> tuple[list[Message], Counter]:
    """Join a user turn that follows a user turn, and an assistant text turn that is
    followed by another assistant turn (its text goes before that turn's content and
    tool calls), so that user and assistant alternate as LLaMA-Factory and strict chat
    templates require. Agent contexts produce these, e.g. a history summary that
    follows the task message."""
    out: list[Message] = []
    merged: Counter = Counter()
    for m in msgs:
        prev = out[-1] if out else None
        if prev is not None and m.role == prev.role == "user":
            out[-1] = Message(role="user", content=_join(prev.content, m.content))
            merged["user"] += 1
        elif prev is not None and m.role == prev.role == "assistant" and not prev.tool_calls:
            out[-1] = Message(role="assistant", content=_join(prev.content, m.content), tool_calls=m.tool_calls)
            merged["assistant"] += 1
        else:
            out.append(m)
    return out, merged


def _join(a: str | None, b: str | None) -> str | None:
    parts = [x for x in (a, b) if x]
    return "\n\n".join(parts) if parts else (a if a is not None else b)

