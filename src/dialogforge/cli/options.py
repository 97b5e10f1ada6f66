"""Command-line parameters declared as data, for typer and for the fast path of `generate`.

Most commands declare their parameters the usual typer way. `generate` is the command people run at scale from
scripts, where start-up is paid on every call, and typer with click add about 10 ms to its imports
(benchmarks/README.md, "Start-up"). So its parameters are declared here once, as `Param`s, and used twice:

- `typer_command` turns them into the typer command: `--help`, every error message and shell completion are
  typer's, as for every other command;
- `parse_fast` reads a command line with nothing imported. It understands only the plain forms (`--flag VALUE`,
  `--flag=VALUE`, `-f VALUE`, flags, arguments) and values that pass their checks; for anything else (`--help`,
  an unknown or misspelt flag, a value out of range, `-j5`, `--`) it returns None and typer reads the line
  instead, so every message a user can get comes from typer. tests/cli/test_fast_parse.py holds the two readings
  equal over many command lines.

The shared options of the commands that call a model (--config, --base-url, ...) are declared here too;
cli/common.py offers them to the other commands as typer options.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Param:
    """One option (`flags` given) or argument (`flags` empty) of a command."""

    type: type  # str, int, float, bool or Path; with `multiple`, the type of each value
    help: str
    flags: tuple[str, ...] = ()  # "--output", "-o"
    default: Any = None
    required: bool = False
    min: float | None = None
    multiple: bool = False  # repeatable option: a list of values

    @property
    def annotation(self) -> Any:
        if self.multiple:
            return Optional[list[self.type]]  # type: ignore[name-defined]
        return self.type if self.required or self.default is not None else Optional[self.type]

    def typer(self) -> Any:
        """This parameter as a typer.Option (or typer.Argument) default."""
        import typer
        if not self.flags:
            return typer.Argument(... if self.required else self.default, help=self.help)
        default = ... if self.required else self.default
        if self.min is not None:
            return typer.Option(default, *self.flags, help=self.help, min=self.min)
        return typer.Option(default, *self.flags, help=self.help)


def typer_command(fn: Callable[..., Any], params: dict[str, Param]) -> Callable[..., Any]:
    """`fn(**values)` as a function typer can register: its signature says what `params` declare."""
    import inspect

    def command(**values: Any) -> Any:
        return fn(**values)
    command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=p.typer(), annotation=p.annotation)
        for name, p in params.items()])
    command.__annotations__ = {name: p.annotation for name, p in params.items()}
    command.__doc__ = fn.__doc__
    command.__name__ = fn.__name__
    return command


def parse_fast(params: dict[str, Param], args: list[str]) -> dict[str, Any] | None:
    """The values of `params` on this command line, or None where typer should read it (see the module doc)."""
    if os.environ.get("_DIALOGFORGE_COMPLETE"):  # shell completion: typer's
        return None
    by_flag = {flag: name for name, p in params.items() for flag in p.flags}
    arguments = [name for name, p in params.items() if not p.flags]
    values: dict[str, Any] = {}
    given: list[Any] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("-") or token == "-":
            if token == "-" or len(given) == len(arguments):
                return None
            given.append(token)
            continue
        flag, eq, value = token.partition("=") if token.startswith("--") else (token, "", "")
        name = by_flag.get(flag)
        if name is None:
            return None
        p = params[name]
        if p.type is bool:
            if eq or name in values:
                return None
            values[name] = True
            continue
        if not eq:
            if i == len(args) or (args[i].startswith("-") and not _number(args[i])):
                return None
            value = args[i]
            i += 1
        converted = _convert(p, value)
        if converted is None:
            return None
        if p.multiple:
            values.setdefault(name, []).append(converted)
        elif name in values:
            return None
        else:
            values[name] = converted
    for name, value in zip(arguments, given):
        converted = _convert(params[name], value)
        if converted is None:
            return None
        values[name] = converted
    out = {}
    for name, p in params.items():
        if name in values:
            out[name] = values[name]
        elif p.required:
            return None
        else:
            out[name] = False if p.type is bool and p.default is None else p.default
    return out


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _convert(p: Param, text: str) -> Any:
    """`text` as the parameter's type, or None where typer should say what is wrong with it."""
    if p.type is str:
        return text
    if p.type is Path:
        return Path(text) if text else None
    try:
        value = p.type(text)
    except ValueError:
        return None
    if p.min is not None and value < p.min:
        return None
    if p.type is float and value != value:  # nan passes no range
        return None
    return value


# --- the options every command that calls a model shares (cli/common.py makes typer options of them) -----------
CONFIG = Param(Path, "YAML config with endpoints and roles.", ("--config", "-c"))
BASE_URL = Param(str, "OpenAI-compatible server URL (overrides the config).", ("--base-url",))
MODEL = Param(str, "Model name on that server (overrides the config).", ("--model",))
KEY_ENV = Param(str, "Environment variable that holds the API key.", ("--api-key-env",))
CONTINUE = Param(bool, "Go on into outputs made with other settings (model, sampling, templates, inputs) instead of "
                 "refusing; finished items stay as they are.", ("--continue",), default=False)
STORE = Param(Path, "Run store, a SQLite file (default: store.sqlite in $DIALOGFORGE_HOME, else in .dialogforge/).",
              ("--store",))
EXECUTOR = Param(str, "Where items run: local (default) or ray.", ("--executor",), default="local")
RAY_ADDRESS = Param(str, "Ray cluster to join from one of its nodes: auto, or the head's HOST:6379; default: a local "
                    "Ray instance.", ("--ray-address",))
RAY_WORKERS = Param(int, "Ray worker actors (default: one per CPU of the cluster).", ("--ray-workers",), min=1)
BATCH = Param(bool, "Batch mode: uncached calls go out as provider batch jobs, round by round (about half the price; "
              "hours, not minutes). Same as `mode: batch` on the endpoints.", ("--batch",), default=False)
BATCH_POLL = Param(float, "Seconds between looks at a running batch job.", ("--batch-poll",), default=30.0, min=0)
BATCH_FILE = Param(Path, "Offline batch round: write the calls every waiting item needs to FILE (vLLM run-batch "
                   "input) and stop (exit 3); `dialogforge batch import OUT` then rerun goes one round further.",
                   ("--batch-file",))
