"""Turning a model reply into actions: one fenced shell block, or native tool calls."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh"}

# ``` or ~~~ fences; the info string is the first word after the fence.
_FENCE = re.compile(r"^(?P<fence>```|~~~)[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)


@dataclass
class Action:
    kind: str  # "command" | "submit"
    command: str = ""
    tool_call_id: str | None = None
    tool_name: str | None = None


@dataclass
class FormatError:
    message: str  # why the reply was rejected (for the format-error template)
    found: int = 0  # number of actions found
    tool_call_id: str | None = None


def bash_tools(submit_signal: str) -> list[dict]:
    """The JSON-schema tools offered in tool_calls mode."""
    return [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run one shell command in the task's workspace and return its exit code and output.",
                "parameters": {
                    "type": "object",
                    "properties": {"command": {"type": "string", "description": "The command line to run with bash."}},
                    "required": ["command"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "submit",
                "description": "Finish the task: the workspace as it is now gets evaluated. No further actions are possible.",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]


def is_submit(command: str, signal: str) -> bool:
    c = command.strip()
    return c == signal or c in (f"echo {signal}", f"echo '{signal}'", f'echo "{signal}"')


def shell_blocks(text: str) -> list[str]:
    """Bodies of the fenced blocks whose language is a shell (or unnamed)."""
    return [m.group("body").rstrip("\n") for m in _FENCE.finditer(text or "") if m.group("lang").lower() in SHELL_LANGS]


def parse_shell_reply(text: str | None, signal: str) -> Action | FormatError:
    blocks = shell_blocks(text or "")
    if len(blocks) != 1:
        return FormatError(f"expected exactly one fenced shell block, found {len(blocks)}", found=len(blocks))
    cmd = blocks[0].strip()
    if not cmd:
        return FormatError("the shell block is empty", found=1)
    if is_submit(cmd, signal):
        return Action("submit", cmd)
    return Action("command", cmd)


def parse_tool_calls(tool_calls: list[dict] | None, signal: str) -> list[Action | FormatError]:
    """One entry per tool call, in order; an empty list means the reply had no tool call."""
    out: list[Action | FormatError] = []
    for tc in tool_calls or []:
        tc_id = tc.get("id")
        fn = tc.get("function") or {}
        name = fn.get("name")
        raw = fn.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            out.append(FormatError(f"arguments of {name!r} are not valid JSON: {e}", found=1, tool_call_id=tc_id))
            continue
        if not isinstance(args, dict):
            out.append(FormatError(f"arguments of {name!r} must be a JSON object", found=1, tool_call_id=tc_id))
        elif name == "submit":
            out.append(Action("submit", "", tool_call_id=tc_id, tool_name=name))
        elif name == "bash":
            cmd = args.get("command")
            if not isinstance(cmd, str) or not cmd.strip():
                out.append(FormatError("bash needs a non-empty string 'command'", found=1, tool_call_id=tc_id))
            elif is_submit(cmd, signal):
                out.append(Action("submit", cmd, tool_call_id=tc_id, tool_name=name))
            else:
                out.append(Action("command", cmd.strip(), tool_call_id=tc_id, tool_name=name))
        else:
            out.append(FormatError(f"unknown tool {name!r}; available: bash, submit", found=1, tool_call_id=tc_id))
    return out
