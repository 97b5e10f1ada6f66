"""The typer app behind `dialogforge` (see cli/main.py: the command table, the console script)."""
from __future__ import annotations

import importlib
from typing import Any, Optional

import click
import typer
from typer.core import TyperGroup

from .main import COMMANDS, ROOT_HELP, VERSION_HELP


class _Listed(click.Command):
    """What `--help` shows for a command whose module is not imported yet."""

    def __init__(self, name: str, short_help: str) -> None:
        super().__init__(name, help=short_help, short_help=short_help)


class LazyGroup(TyperGroup):
    """A typer group that imports an area's module only when one of its commands runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*COMMANDS, *self.commands]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in COMMANDS:
            return _Listed(cmd_name, COMMANDS[cmd_name][1])
        return None

    def load(self, cmd_name: str) -> click.Command:
        """Import the module that defines `cmd_name` and add the commands it registers."""
        if cmd_name not in self.commands:
            module = importlib.import_module(f"{__package__}.{COMMANDS[cmd_name][0]}")
            area = typer.Typer()
            module.register(area)
            for name, cmd in typer.main.get_group(area).commands.items():
                self.commands.setdefault(name, cmd)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        name = args[0] if args else None
        if name in COMMANDS:
            self.load(name)
        elif name is not None and name not in self.commands and not name.startswith("-"):
            from difflib import get_close_matches
            hint = get_close_matches(name, self.list_commands(ctx))
            ctx.fail(f"No such command {name!r}." + (f" Did you mean {', '.join(map(repr, hint))}?" if hint else ""))
        return super().resolve_command(ctx, args)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version
        typer.echo(f"dialogforge {version('dialogforge')}")
        raise typer.Exit()


app = typer.Typer(
    name="dialogforge",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback(help=ROOT_HELP)
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help=VERSION_HELP),
) -> None:
    """The group's own options (its help is ROOT_HELP, shared with cli/help.py)."""
