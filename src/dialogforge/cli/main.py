"""The `dialogforge` command.

Each area's commands live in their own module (`dialogforge.cli.<module>`, with a
`register(app: typer.Typer)` function). The table below names them, so `dialogforge --help` lists
every command without importing any area, and a command imports only its own module: start-up
stays small however many areas there are. To add an area, add its lines to COMMANDS.

The typer app (`app`, in cli/app.py) is imported on first use: this module stays cheap, so that the
console script (`main`) can draw `dialogforge --help` (cli/help.py), and run the commands in FAST
(`generate`), without loading typer at all.
"""
from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

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

# Commands whose parameters are declared as data (cli/options.py): module -> its PARAMS and COMMAND. The console
# script runs them without typer when their command line is a plain one (options.parse_fast).
FAST = {"generate": "generate"}

ROOT_HELP = ("Make training data for chat and agent LLMs: persona dialogues and agent trajectories, exported to\n"
             "LLaMA-Factory, TRL and OpenAI formats. Every model call is logged; every run resumes.")
VERSION_HELP = "Print the version and exit."


def __getattr__(name: str) -> Any:
    """`app` (the typer app) is built on first use."""
    if name == "app":
        from .app import app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    app: typer.Typer


# Young collections while the command starts (imports, flags, config): every this many allocations,
# not Python's 700. Start-up makes almost no garbage, yet the default passes cost about a tenth of
# `generate`'s import time. `end_startup()` (cli/common.py: when a command builds its engine or starts
# its event loop) puts the interpreter's thresholds back and freezes what start-up loaded (modules,
# classes: they live until exit), so that no later pass walks it again: not the runs' (the runner
# leaves a heap the program froze as it is) and not the one at exit (`main`). A command that never
# builds an engine keeps the start-up threshold, a bounded cost.
STARTUP_GEN0 = 100_000
_thresholds: tuple[int, ...] | None = None  # the interpreter's, while start-up ones are set


def start_startup() -> None:
    global _thresholds
    if _thresholds is None:
        _thresholds = gc.get_threshold()
        if 0 < _thresholds[0] < STARTUP_GEN0:  # 0: the collector is off; leave it so
            gc.set_threshold(STARTUP_GEN0, *_thresholds[1:])


def end_startup() -> None:
    global _thresholds
    if _thresholds is not None:
        if gc.get_threshold()[0] == STARTUP_GEN0:  # not changed since by anyone else
            gc.set_threshold(*_thresholds)
        _thresholds = None
        gc.freeze()


def main() -> None:
    """The `dialogforge` console script: the app, then a quick exit.

    Whatever the command leaves on the heap goes away with the process. Frozen first, it is left out of
    the collector's passes at interpreter exit, which otherwise cost more CPU than a small command's
    imports (measured in benchmarks/README.md, "Whole process"). One collection first, while every module
    is still intact, finalizes what the command left unreachable (a run store's SQLite connection closes
    and removes its WAL, as before; what start-up loaded is frozen already, see `end_startup`, so it walks
    only what the command made); then the rest is frozen. Nothing else at exit changes: atexit
    handlers run, threads are joined, files are flushed, objects are freed by their reference counts."""
    start_startup()
    try:
        if not _root_help(sys.argv) and not fast_command(sys.argv):
            from .app import app
            app()
    finally:
        gc.collect()
        gc.freeze()


def _root_help(argv: list[str]) -> bool:
    if argv[1:] != ["--help"]:
        return False
    from .help import fast_root_help
    return fast_root_help(argv)


def fast_command(argv: list[str]) -> bool:
    """Run a FAST command without typer, when its command line is one `parse_fast` reads; else False."""
    if len(argv) < 2 or argv[1] not in FAST:
        return False
    import importlib

    from .options import parse_fast
    module = importlib.import_module(f"dialogforge.cli.{FAST[argv[1]]}")
    values = parse_fast(module.PARAMS, argv[2:])
    if values is None:
        return False
    module.COMMAND(**values)
    return True


if __name__ == "__main__":  # `python -m dialogforge.cli.main`: run the importable module, whose state cli/common sees
    import dialogforge.cli.main
    dialogforge.cli.main.main()
