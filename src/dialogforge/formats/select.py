"""Which conversations an export keeps, and per-turn splitting."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from ..core.errors import InputError
from ..core.records import meta as metafield
from .conversation import Conversation


@dataclass(slots=True, frozen=True)
class Selection:
    min_reward: float | None = None
    min_score: float | None = None
    only_success: bool = False
    include_auxiliary: bool = False  # agent samples whose purpose is not "main" (summaries, ...)
    per_turn: bool = False  # one sample per assistant turn instead of one per conversation
    keep_format_errors: bool = False  # agent replies that held no valid action stay SFT targets

    def __post_init__(self) -> None:
        for flag, v in (("--min-reward", self.min_reward), ("--min-score", self.min_score)):
            if v is not None and not math.isfinite(v):  # NaN compares false with anything: the filter would pass all
                raise InputError(f"{flag} {v}: give a finite number")

    def format_error(self, conv: Conversation) -> bool:
        """An agent sample whose reply (the row's target) held no valid action; such replies
        are left out of SFT targets unless kept (they stay in trajectories and in the
        history of later samples)."""
        return metafield(conv.metadata, "format_error") is True and not self.keep_format_errors

    def skip_reason(self, conv: Conversation) -> str | None:
        """Why this conversation is left out, or None to keep it."""
        meta = conv.metadata
        purpose = metafield(meta, "purpose")
        if not self.include_auxiliary and purpose not in (None, "main"):
            return f"auxiliary ({purpose})"
        if self.format_error(conv):
            return "format error (the reply held no valid action; --keep-format-errors keeps it)"
        if self.min_reward is not None:
            r = metafield(meta, "reward")
            if not isinstance(r, (int, float)) or isinstance(r, bool):
                return "no reward"
            if r < self.min_reward:
                return "reward below minimum"
        if self.min_score is not None:
            s = metafield(meta, "score")
            if not isinstance(s, (int, float)) or isinstance(s, bool):
                return "no judge score"
            if s < self.min_score:
                return "score below minimum"
        if self.only_success and metafield(meta, "success") is not True:
            return "not successful"
        return None

    def expand(self, conv: Conversation) -> Iterator[Conversation]:
        """The samples one selected conversation becomes."""
        if not self.per_turn or conv.is_preference:
            yield conv
            return
        yield from split_turns(conv)


def split_turns(conv: Conversation) -> Iterator[Conversation]:
    """One sample per assistant message: everything before it plus that reply.
    `metadata["turn"]` is the 0-based number of the assistant reply."""
    turn = 0
    for i, m in enumerate(conv.messages):
        if m.role == "assistant":
            yield conv.copy(messages=conv.messages[: i + 1], metadata={**conv.metadata, "turn": turn})
            turn += 1
