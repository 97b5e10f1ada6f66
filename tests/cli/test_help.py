"""`--help` reads like typer's usual output: no type placeholders, every flag explained, nothing cut at 80 columns."""
from __future__ import annotations

import importlib
import inspect

import click
import pytest
import typer
from typer.testing import CliRunner

from dialogforge.cli.main import COMMANDS, app


def every_command() -> list[tuple[list[str], click.Command]]:
    out: list[tuple[list[str], click.Command]] = []
    seen: set[str] = set()
    for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
        area = typer.Typer()
        importlib.import_module(f"dialogforge.cli.{module}").register(area)
        for name, cmd in typer.main.get_group(area).commands.items():
            if name in seen:
                continue
            seen.add(name)
            out.append(([name], cmd))
            if isinstance(cmd, click.Group):
                out.extend(([name, sub], c) for sub, c in cmd.commands.items())
    return out


COMMAND_PATHS = [path for path, _ in every_command()]


@pytest.mark.parametrize("path", [[]] + COMMAND_PATHS, ids=lambda p: " ".join(p) or "dialogforge")
def test_help_at_80_columns_is_plain_and_whole(path):
    r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output and "<str>" not in r.output and "<path>" not in r.output
    usage = next(ln for ln in r.output.splitlines() if "Usage:" in ln)
    assert "{" not in usage, usage  # arguments show as INPUT, not {input}
    assert "…" not in r.output, r.output  # nothing cut off


def test_every_flag_and_argument_has_help():
    missing = []
    for path, cmd in every_command():
        for p in cmd.params:
            if not (getattr(p, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {p.opts[0]}")
    assert not missing, missing


def test_one_demo_command():
    cmds = dict((" ".join(p), c) for p, c in every_command())
    flags = lambda c: sorted(o for p in c.params for o in p.opts)  # noqa: E731
    assert flags(cmds["demo"]) == flags(cmds["persona demo"]) == ["--limit", "--out", "--quiet", "-n", "-q"]
    assert inspect.unwrap(cmds["demo"].callback) is inspect.unwrap(cmds["persona demo"].callback)


def test_each_command_lists_with_a_one_line_summary():
    """The first paragraph of a command's help is what its group lists: a hard line break there shows as a
    line cut in the middle of the table (`runs --help` showed `prune`'s summary broken in two)."""
    broken = [" ".join(path) for path, cmd in every_command()
              if "\n" in inspect.cleandoc(cmd.help or "").split("\n\n")[0]]
    assert not broken, broken
