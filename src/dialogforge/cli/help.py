"""`dialogforge --help` without importing typer, click or an area.

The screen typer draws for the top-level group (usage, the group's help, an Options panel, a Commands
panel), drawn with the same rich renderables, styles, console settings and highlighters from the table
in `cli/main.py`. Importing typer's help renderer loads typer, click, rich's Markdown (markdown-it) and
rich's tracebacks (pygments) first: three times the work of the screen itself. tests/cli/test_startup.py
checks that this screen and typer's own are byte for byte the same, in colour and plain, at several
widths, so the two cannot drift apart; anything else (`-h`, completion, `python -m`, a typer setting
in the environment) goes to typer.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

# The root group's options after `--version` (cli/app.py), as typer adds them: (flag, help).
TYPER_OPTIONS = (
    ("--install-completion", "Install completion for the current shell."),
    ("--show-completion", "Show completion for the current shell, to copy it or customize the installation."),
    ("--help", "Show this message and exit."),
)

# typer.rich_utils' styles and highlighter patterns (the ones this screen uses)
_THEME = {"option": "bold cyan", "switch": "bold green", "negative_option": "bold magenta",
          "negative_switch": "bold red", "metavar": "bold yellow", "metavar_sep": "dim", "usage": "yellow"}
_OPTION_PATTERNS = [r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])", r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
                    r"(?P<metavar>\<[^\>]+\>)", r"(?P<usage>Usage: )"]
_NEGATIVE_PATTERNS = [r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
                      r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])"]
_METAVAR_PATTERNS = [r"^(?P<metavar_sep>(\[|<))", r"(?P<metavar_sep>\|)", r"(?P<metavar_sep>(\]|>))(\.\.\.)?$"]


def fast_root_help(argv: list[str]) -> bool:
    """Print the top-level help and return True when `argv` asks for exactly that and nothing in the
    environment changes how typer would draw it; else return False (typer handles the command)."""
    if argv[1:] != ["--help"] or os.path.basename(argv[0]) != "dialogforge":
        return False
    if getattr(sys.modules.get("__main__"), "__package__", None):  # `python -m ...`: click names it otherwise
        return False
    if any(k == "TYPER_USE_RICH" or k.startswith(("_TYPER", "_DIALOGFORGE")) for k in os.environ):
        return False
    from .main import COMMANDS, ROOT_HELP, VERSION_HELP
    render(ROOT_HELP, [("--version", VERSION_HELP), *TYPER_OPTIONS], [(name, line) for name, (_, line) in COMMANDS.items()], prog="dialogforge")
    return True


def render(help_text: str, options: Iterable[tuple[str, str]], commands: list[tuple[str, str]], *,
           prog: str) -> None:
    """Draw the screen as typer.rich_utils.rich_format_help does for a group in "rich" markup mode."""
    from rich.columns import Columns
    from rich.console import Console, Group
    from rich.highlighter import RegexHighlighter
    from rich.padding import Padding
    from rich.align import Align
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    from rich.theme import Theme

    def highlighter(patterns: list[str]) -> Any:
        return type("Highlighter", (RegexHighlighter,), {"highlights": patterns})()

    options_hl, negative_hl, metavar_hl = (highlighter(_OPTION_PATTERNS), highlighter(_NEGATIVE_PATTERNS),
                                           highlighter(_METAVAR_PATTERNS))
    width = os.getenv("TERMINAL_WIDTH")
    force = True if os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS") else None
    console = Console(theme=Theme(_THEME), highlighter=options_hl, color_system="auto", force_terminal=force,
                      width=int(width) if width else None, stderr=False)

    console.print(Padding(options_hl(f"Usage: {prog} [OPTIONS] COMMAND [ARGS]..."), 1), style="bold")
    first = " ".join(help_text.split("\n"))  # one paragraph: typer joins its lines
    console.print(Padding(Align(Group(options_hl(Text.from_markup(first.strip(), style=""))), pad=False),
                          (0, 1, 1, 1)))

    table = Table(highlight=True, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                  border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))
    for flag, text in options:
        table.add_row(options_hl(flag), options_hl(""), negative_hl(""), negative_hl(""),
                      metavar_hl(Text(style="bold yellow", overflow="fold")),
                      Columns([options_hl(Text.from_markup(text, style=""))]))
    console.print(Panel(table, border_style="dim", title="Options", title_align="left"))

    table = Table(highlight=False, show_header=False, expand=True, box=None, show_lines=False, leading=0,
                  border_style=None, row_styles=None, pad_edge=False, padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True, width=max(len(name) for name, _ in commands))
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for name, line in commands:
        table.add_row(Text(name), options_hl(Text.from_markup(line.split("\n\n")[0].strip(), style="")))
    console.print(Panel(table, border_style="dim", title="Commands", title_align="left"))
    sys.stdout.write("\n")  # click then echoes the help text typer left empty: one newline
