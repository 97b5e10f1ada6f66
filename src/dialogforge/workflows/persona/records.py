"""The dialogue record written to the raw/filtered files (and by ``persona check``).

```
{"id", "messages": [{"role", "content"}...], "system", "persona", "seed", "turns",
 "answer_stats": [{"turn", "words", "chars", "paragraphs"}], "judge": {...} | null,
 "checks": {name: {"passed", "reason", "value"}}, "passed", "filter_reasons", "created_at"}
```
``messages`` holds the user/assistant turns; the system prompt is in ``system``.
Statistics are computed per assistant message, from the final (cleaned) text, and
``turn`` is the 1-based index of the answer, so they stay aligned with ``messages``.
Words: whitespace tokens, except that each Chinese/Japanese character counts as a word.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from dialogforge.core.records import ChatMessage, PersonaDialogue

from .checks import decide
from .text import char_count, paragraphs, word_count


def answer_stats(messages: list[dict]) -> list[dict]:
    out = []
    turn = 0
    for m in messages:
        if m.get("role") != "assistant":
            continue
        turn += 1
        text = str(m.get("content") or "")
        out.append({"turn": turn, "words": word_count(text), "chars": char_count(text), "paragraphs": len(paragraphs(text))})
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_record(*, dialogue_id: str, messages: list[dict], system: str | None, persona: str | None,
                 seed: dict | None, judge: dict | None, checks: dict, extra: dict[str, Any] | None = None,
                 advisory: Sequence[str] = ()) -> PersonaDialogue:
    convo: list[ChatMessage] = [{"role": m["role"], "content": m["content"]} for m in messages
                                if m.get("role") != "system"]
    passed, reasons = decide(checks, advisory)
    rec: PersonaDialogue = {
        "id": dialogue_id,
        "messages": convo,
        "system": system,
        "persona": persona,
        "seed": seed,
        "turns": sum(1 for m in convo if m["role"] == "assistant"),
        "answer_stats": answer_stats(convo),
        "judge": judge,
        "checks": checks,
        "passed": passed,
        "filter_reasons": reasons,
        "created_at": now_iso(),
    }
    if extra:
        rec.update(extra)  # type: ignore[typeddict-item,unused-ignore]  # language, cleanup, meta: in the schema
    return rec
