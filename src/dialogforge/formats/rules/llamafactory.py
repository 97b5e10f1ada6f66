"""LLaMA-Factory's loading rules, restated so that a row we accept is a row it trains on.

What LLaMA-Factory does with a row (parser.py, converter.py, processor/*.py):
- dataset_info.json: when an entry has `columns`, every column it does not list is
  None; when it has `tags`, every tag it does not list is None.
- ShareGPT: a first turn with the system tag becomes the system prompt. Then turn k
  (0-based) must carry the user/observation tag when k is even and the
  assistant/function_call tag when k is odd, else "Invalid role tag" and the row is
  emptied. The count must be even for SFT/KTO and odd for ranking, else "Invalid
  message count". The supervised processor then drops rows whose prompt is not odd
  or whose response is not exactly one turn (so an empty conversation is dropped).
- Ranking: `chosen` and `rejected` are single turns with an assistant/function tag.
- KTO: `kto_tag` must be a bool, else the row is treated as plain SFT and dropped.
- Alpaca: `output` (or chosen/rejected for ranking) must be a string, else the row has
  no response and is dropped; `history` is a list of [prompt, response] pairs.
- function_call values are JSON {"name", "arguments"} (or a list); `arguments` is
  re-serialised with json.dumps, so it must be an object, not JSON text. The tools
  column is JSON text of a list of schemas whose `parameters.properties` is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import Problem, kind, parse_json, snippet

SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
LF_OPENAI_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                  "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"}
ALPACA_DEFAULTS = {"prompt": "instruction", "query": "input", "response": "output"}
SHAREGPT_COLUMNS = ("system", "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag", "messages")
ALPACA_COLUMNS = ("system", "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag",
                  "prompt", "query", "response", "history")


@dataclass
class LFSpec:
    """A dataset_info.json entry, resolved the way LLaMA-Factory's parser resolves it."""

    formatting: str = "sharegpt"
    ranking: bool = False
    columns: dict[str, str | None] = field(default_factory=dict)
    tags: dict[str, str | None] = field(default_factory=dict)

    @property
    def kto(self) -> bool:
        return bool(self.columns.get("kto_tag"))

    @classmethod
    def sharegpt(cls, task: str = "sft") -> "LFSpec":
        return cls._chat(task, "conversations", SHAREGPT_TAGS)

    @classmethod
    def lf_openai(cls, task: str = "sft") -> "LFSpec":
        return cls._chat(task, "messages", LF_OPENAI_TAGS)

    @classmethod
    def _chat(cls, task: str, messages: str, tags: dict) -> "LFSpec":
        cols: dict[str, str | None] = {"messages": messages, "system": "system", "tools": "tools"}
        if task == "preference":
            cols.update(chosen="chosen", rejected="rejected")
        if task == "kto":
            cols["kto_tag"] = "kto_tag"
        return cls("sharegpt", task == "preference", cols, dict(tags))

    @classmethod
    def alpaca(cls, task: str = "sft") -> "LFSpec":
        cols: dict[str, str | None] = {**ALPACA_DEFAULTS, "system": "system", "history": "history"}
        if task == "preference":
            cols.pop("response")
            cols.update(chosen="chosen", rejected="rejected")
        if task == "kto":
            cols["kto_tag"] = "kto_tag"
        return cls("alpaca", task == "preference", cols, {})

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> "LFSpec":
        formatting = entry.get("formatting", "alpaca")
        names = SHAREGPT_COLUMNS if formatting == "sharegpt" else ALPACA_COLUMNS
        if "columns" in entry:
            cols = {n: entry["columns"].get(n) for n in names}
        else:
            cols = {n: None for n in names}
            cols.update(ALPACA_DEFAULTS if formatting == "alpaca" else {"messages": "conversations"})
        tags: dict[str, str | None] = dict(SHAREGPT_TAGS)
        if formatting == "sharegpt" and "tags" in entry:
            tags = {n: entry["tags"].get(n) for n in SHAREGPT_TAGS}
        return cls(formatting, bool(entry.get("ranking", False)), cols, tags)

    def entry(self, file_name: str, present: set[str]) -> dict[str, Any]:
        """The entry to write: only columns that some row has (LLaMA-Factory fails on a
        declared column that the file lacks), and every tag spelled out."""
        cols = {k: v for k, v in self.columns.items() if v and (v in present or k in ("messages", "prompt"))}
        out: dict[str, Any] = {"file_name": file_name, "formatting": self.formatting}
        if self.ranking:
            out["ranking"] = True
        out["columns"] = cols
        if self.formatting == "sharegpt":
            out["tags"] = dict(self.tags)
        return out


class LFRules:
    """Checks one row at a time; `declared_missing` reports columns no row had."""

    def __init__(self, spec: LFSpec):
        self.spec = spec
        self.present: set[str] = set()

    def check(self, row: dict[str, Any]) -> list[Problem]:
        self.present.update(k for k, v in row.items() if v is not None)
        if self.spec.formatting == "sharegpt":
            return self._sharegpt(row)
        return self._alpaca(row)

    def declared_missing(self) -> list[str]:
        return sorted(c for c in self.spec.columns.values() if c and c not in self.present)

    # ------------------------------------------------------------ ShareGPT

    def _sharegpt(self, row: dict[str, Any]) -> list[Problem]:
        s, t = self.spec, self.spec.tags
        col = s.columns.get("messages")
        if not col or col not in row:
            return [Problem("missing_column", f"no {col!r} column")]
        turns = row[col]
        if not isinstance(turns, list):
            return [Problem("messages_type", f"{col!r} must be a list, got {kind(turns)}")]
        probs: list[Problem] = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict) or t["role_tag"] not in turn or t["content_tag"] not in turn:
                return [Problem("message_keys", f"message {i + 1} needs keys {t['role_tag']!r} and {t['content_tag']!r}")]
        if t["system_tag"] and turns and turns[0][t["role_tag"]] == t["system_tag"]:
            if not isinstance(turns[0][t["content_tag"]], str):
                probs.append(Problem("content_type", "the system message content must be a string"))
            turns = turns[1:]
        odd, even = (t["user_tag"], t["observation_tag"]), (t["assistant_tag"], t["function_tag"])
        for i, turn in enumerate(turns):
            role = turn[t["role_tag"]]
            if role not in (odd, even)[i % 2]:
                want = "/".join(str(x) for x in (odd, even)[i % 2] if x)
                probs.append(Problem("role_order", f"message {i + 1} has role tag {role!r} where LLaMA-Factory "
                                                   f"expects {want} (it logs 'Invalid role tag' and skips the row)"))
                break
        n = len(turns)
        if s.ranking and n % 2 == 0:
            probs.append(Problem("message_count", f"{n} messages; a preference prompt needs an odd count "
                                                  "(LLaMA-Factory: 'Invalid message count')"))
        elif not s.ranking and n % 2 == 1:
            probs.append(Problem("message_count", f"{n} messages; SFT needs an even count ending with the assistant "
                                                  "(LLaMA-Factory: 'Invalid message count')"))
        elif n == 0:
            probs.append(Problem("empty", "no messages (LLaMA-Factory drops the row)"))
        tool_names = self._tools(row, probs)
        probs += self._turn_contents(turns, tool_names)
        if s.ranking:
            probs += self._pair(row, even)
        probs += self._common(row)
        return probs

    def _turn_contents(self, turns: list[dict], tool_names: set[str] | None) -> list[Problem]:
        t, probs = self.spec.tags, []
        for i, turn in enumerate(turns):
            role, value = turn[t["role_tag"]], turn[t["content_tag"]]
            if not isinstance(value, str):
                probs.append(Problem("content_type", f"message {i + 1} value must be a string, got {kind(value)}"))
                continue
            if role == t["function_tag"]:
                probs += self._calls(value, f"message {i + 1}", tool_names)
                nxt = turns[i + 1][t["role_tag"]] if i + 1 < len(turns) else None
                if nxt is not None and nxt != t["observation_tag"]:
                    probs.append(Problem("unanswered_call", f"message {i + 1} calls a tool but message {i + 2} "
                                                            "is not its observation"))
            elif role == t["observation_tag"]:
                prev = turns[i - 1][t["role_tag"]] if i > 0 else None
                if prev != t["function_tag"]:
                    probs.append(Problem("orphan_observation",
                                         f"message {i + 1} is a tool result that answers no function call"))
            elif role == t["assistant_tag"] and not value.strip():
                probs.append(Problem("empty_reply", f"message {i + 1} is an empty assistant reply"))
        return probs

    def _calls(self, value: str, where: str, tool_names: set[str] | None) -> list[Problem]:
        calls, err = parse_json(value)
        if err:
            return [Problem("tool_call", f"{where}: function_call value is {err}")]
        items = calls if isinstance(calls, list) else [calls]
        if not items:
            return [Problem("tool_call", f"{where}: function_call value is an empty list")]
        for c in items:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or "arguments" not in c:
                return [Problem("tool_call", f"{where}: each call needs a name and arguments: {snippet(c)}")]
            if not isinstance(c["arguments"], dict):
                return [Problem("tool_args", f"{where}: arguments of {c['name']!r} must be a JSON object, got "
                                             f"{kind(c['arguments'])} (LLaMA-Factory would double-encode it)")]
            if tool_names is not None and c["name"] not in tool_names:
                return [Problem("unknown_tool", f"{where}: calls {c['name']!r}, which the tools column lacks")]
        return []

    def _tools(self, row: dict[str, Any], probs: list[Problem]) -> set[str] | None:
        col = self.spec.columns.get("tools")
        value = row.get(col) if col else None
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            probs.append(Problem("tools_type", f"the tools column must be JSON text, got {kind(value)}"))
            return None
        tools, err = parse_json(value)
        if err or not isinstance(tools, list):
            probs.append(Problem("tools_type", f"the tools column must be a JSON list of schemas ({err or kind(tools)})"))
            return None
        names: set[str] = set()
        for i, tool in enumerate(tools):
            fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else tool
            params = fn.get("parameters") if isinstance(fn, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(params, dict) \
                    or not isinstance(params.get("properties"), dict):
                probs.append(Problem("tools_schema", f"tool {i + 1} needs a name and parameters.properties"))
                return None
            names.add(fn["name"])
        return names

    def _pair(self, row: dict[str, Any], even: tuple) -> list[Problem]:
        t, probs = self.spec.tags, []
        for key in ("chosen", "rejected"):
            col = self.spec.columns.get(key)
            v = row.get(col) if col else None
            if not isinstance(v, dict) or v.get(t["role_tag"]) not in even or not isinstance(v.get(t["content_tag"]), str):
                probs.append(Problem("pair", f"{key} must be one {'/'.join(x for x in even if x)} message "
                                             f"with string content, got {snippet(v)}"))
            elif v.get(t["role_tag"]) == t["assistant_tag"] and not v[t["content_tag"]].strip():
                probs.append(Problem("empty_reply", f"{key} is empty"))
        return probs

    def _common(self, row: dict[str, Any]) -> list[Problem]:
        probs: list[Problem] = []
        col = self.spec.columns.get("system")
        if col and row.get(col) is not None and not isinstance(row[col], str):
            probs.append(Problem("system_type", f"system must be a string, got {kind(row[col])}"))
        col = self.spec.columns.get("kto_tag")
        if col and not isinstance(row.get(col), bool):
            probs.append(Problem("kto_tag", f"kto_tag must be true or false, got {snippet(row.get(col))}"))
        return probs

    # ------------------------------------------------------------ Alpaca

    def _alpaca(self, row: dict[str, Any]) -> list[Problem]:
        c, probs = self.spec.columns, []
        for key in ("prompt", "query"):
            col = c.get(key)
            if col and row.get(col) is not None and not isinstance(row[col], str):
                probs.append(Problem("content_type", f"{col} must be a string, got {kind(row[col])}"))
        if not (row.get(c.get("prompt") or "") or row.get(c.get("query") or "")):
            probs.append(Problem("empty_prompt", "instruction and input are both empty"))
        answers = ("chosen", "rejected") if self.spec.ranking else ("response",)
        for key in answers:
            col = c.get(key)
            v = row.get(col) if col else None
            if not isinstance(v, str):
                probs.append(Problem("missing_response", f"{col or key} must be a string, got {kind(v)} "
                                                         "(LLaMA-Factory drops rows without a response)"))
            elif not v.strip():
                probs.append(Problem("empty_reply", f"{col} is empty"))
        col = c.get("history")
        hist = row.get(col) if col else None
        if hist is not None:
            if not isinstance(hist, list) or not all(
                    isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in hist):
                probs.append(Problem("history", "history must be a list of [prompt, response] string pairs"))
            else:
                for i, (_, reply) in enumerate(hist):
                    if not reply.strip():
                        probs.append(Problem("empty_reply", f"history[{i}] has an empty response (LLaMA-Factory "
                                                            "would train on the empty turn)"))
                        break
        return probs + self._common(row)


# Rule factories the format registry names: (task, spec from a dataset_info entry or None).
def sharegpt_rules(task: str, spec: LFSpec | None = None) -> LFRules:
    return LFRules(spec or LFSpec.sharegpt(task))


def lf_openai_rules(task: str, spec: LFSpec | None = None) -> LFRules:
    return LFRules(spec or LFSpec.lf_openai(task))


def alpaca_rules(task: str, spec: LFSpec | None = None) -> LFRules:
    return LFRules(spec or LFSpec.alpaca(task))


def task_of(row: dict[str, Any]) -> str:
    """The task a LLaMA-Factory row's columns say."""
    if "chosen" in row or "rejected" in row:
        return "preference"
    return "kto" if "kto_tag" in row else "sft"
