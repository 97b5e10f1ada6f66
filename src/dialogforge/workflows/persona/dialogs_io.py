"""Reading dialogues people already have, for ``persona check``.

Accepted per record (JSONL line or JSON list element):
* ``messages`` (or ``conversation``/``conversations``/``dialogue``): a list of ``{"role", "content"}``
  (``contents`` is accepted for ``content``), or ShareGPT ``{"from", "value"}``;
* an optional top-level ``system`` string; a system message inside the list also works.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from dialogforge.engine.errors import InputError
from dialogforge.engine.io import read_items

MESSAGE_KEYS = ("messages", "conversations", "conversation", "dialogue", "dialog")
ROLE_MAP = {
    "user": "user", "human": "user", "question": "user", "prompter": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bot": "assistant", "model": "assistant",
    "bard": "assistant", "bing": "assistant", "answer": "assistant", "persona": "assistant",
    "system": "system",
}
_TEXT_KEYS = ("content", "contents", "value", "text")
_ROLE_KEYS = ("role", "from", "speaker")


def normalize_messages(raw: Any, where: str) -> tuple[list[dict], str | None]:
    """(user/assistant messages as role/content, system prompt found in the list)."""
    if not isinstance(raw, list):
        raise InputError(f"{where}: messages must be a list, got {type(raw).__name__}")
    out: list[dict] = []
    system = None
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise InputError(f"{where}: message [{i}] is not an object")
        rk = next((k for k in _ROLE_KEYS if k in m), None)
        tk = next((k for k in _TEXT_KEYS if k in m), None)
        if rk is None or tk is None:
            raise InputError(f"{where}: message [{i}] needs a role ('role' or 'from') and a text "
                             f"('content', 'contents' or 'value'); has {', '.join(sorted(m)) or 'nothing'}")
        role = ROLE_MAP.get(str(m[rk]).strip().lower())
        if role is None:
            raise InputError(f"{where}: message [{i}]: unknown role {m[rk]!r} (known: {', '.join(sorted(ROLE_MAP))})")
        text = m[tk]
        if isinstance(text, list):  # content parts
            text = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in text)
        text = "" if text is None else str(text)
        if role == "system":
            system = text if system is None else f"{system}\n\n{text}"
            continue
        out.append({"role": role, "content": text})
    return out, system


def read_dialogues(path: str | os.PathLike) -> Iterator[tuple[str, dict]]:
    """Yield (dialogue id, {"messages", "system", "row"}) for each record of a JSONL file or a JSON list."""
    p = Path(path)
    for pos, (iid, row) in enumerate(read_items(p)):
        key = next((k for k in MESSAGE_KEYS if k in row), None)
        where = f"{p}: record {iid}"
        if key is None:
            raise InputError(f"{where}: no messages (looked for {', '.join(MESSAGE_KEYS)}; "
                             f"fields present: {', '.join(sorted(row)) or 'none'})")
        messages, sys_in = normalize_messages(row[key], f"{where}, field {key!r}")
        system = row.get("system") if isinstance(row.get("system"), str) else sys_in
        yield str(iid), {"messages": messages, "system": system, "row": row, "messages_key": key}
