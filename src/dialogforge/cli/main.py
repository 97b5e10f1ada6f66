"""The `dialogforge` command. Each area registers its commands from its own module."""
from __future__ import annotations

import typer

from . import demo, generate, runs
from . import agent as agent_cli
from . import persona as persona_cli
from . import formats as formats_cli

app = typer.Typer(
    name="dialogforge",
    help="Make training data for chat and agent LLMs: persona dialogues, agent trajectories, proactive-assistant data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

generate.register(app)
runs.register(app)
demo.register(app)
agent_cli.register(app)
persona_cli.register(app)
formats_cli.register(app)

if __name__ == "__main__":
    app()
