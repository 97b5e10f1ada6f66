"""The `dialogforge` command. Each area registers its commands from its own module."""
from __future__ import annotations

import typer

from . import agent, annotate, batch, demo, formats, generate, persona, proactive, runs

app = typer.Typer(
    name="dialogforge",
    help="Make training data for chat and agent LLMs: persona dialogues and agent trajectories, "
         "exported to LLaMA-Factory, TRL and OpenAI formats. Every model call is logged; every run resumes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# typer lists typer groups after plain commands; within each, in registration order
for area in (persona, agent, proactive, formats, generate, batch, runs, annotate, demo):
    area.register(app)

if __name__ == "__main__":
    app()
