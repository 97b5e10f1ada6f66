"""The `dialogforge` command.

Each area's commands live in their own module (`dialogforge.cli.<module>`, with a
`register(app: typer.Typer)` function). The table below names them, so `dialogforge --help` lists
every command without importing any area, and a command imports only its own module: start-up
stays small however many areas there are. To add an area, add its lines to COMMANDS.
"""
from __future__ import annotations

import gc
import importlib
from typing import Any, Optional

import click
import typer
from typer.core import TyperGroup

# command -> (module in dialogforge.cli that registers it, the one line `dialogforge --help` shows).
# Order is the order of `dialogforge --help`. tests/cli/test_startup.py checks every line against
# the command's own help, so the two cannot drift apart.
COMMANDS: dict[str, tuple[str, str]] = {
    "persona": ("persona", "Persona dialogues: multi-turn generation from single-turn seeds, with quality control."),
    "agent": ("agent", "Agent rollouts in real environments -> trajectories, rewards, exact SFT samples."),
    "proactive": ("proactive", "Proactive-assistant data: scenes, simulated activity traces, the agent's training set, "
                               "ProactiveBench evaluation."),
    "generate": ("generate", "Generate one response (or --n) per prompt; resumable, every call logged."),
    "export": ("formats", "Convert workflow outputs to a training format; every row is validated as it is written."),
    "validate": ("formats", "Check every row against the target's rules; exit 1 when any row is bad."),
    "merge": ("formats", "Combine runs and rounds into one dataset, keeping provenance; drops only exact repeats."),
    "dedup": ("formats", "Remove exact and near duplicates; every cluster and the member kept go to a JSON report."),
    "report": ("formats", "Write a self-contained HTML report with plots, and print a short summary."),
    "batch": ("batch", "Offline batch rounds (--batch-file) through your own GPU box."),
    "runs": ("runs", "Runs recorded in the run store."),
    "annotate": ("annotate", "Annotation server: people judge proactive proposals; their labels become reward data."),
    "demo": ("demo", "Persona dialogues from example seeds, offline on the embedded SmolLM2-135M model."),
}


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


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Make training data for chat and agent LLMs: persona dialogues and agent trajectories, exported to
    LLaMA-Factory, TRL and OpenAI formats. Every model call is logged; every run resumes."""


def main() -> None:
    """The `dialogforge` console script: the app, then a quick exit.

    Whatever the command leaves on the heap goes away with the process. Frozen first, it is left out of
    the collector's passes at interpreter exit, which otherwise cost more CPU than a small command's
    imports (measured in benchmarks/README.md, "Whole process"). One collection first, while every module
    is still intact, finalizes what the command left unreachable (a run store's SQLite connection closes
    and removes its WAL, as before); then the rest is frozen. Nothing else at exit changes: atexit
    handlers run, threads are joined, files are flushed, objects are freed by their reference counts."""
    try:
        app()
    finally:
        gc.collect()
        gc.freeze()


if __name__ == "__main__":
    main()
