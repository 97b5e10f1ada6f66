"""The lazy console writes a plain line exactly as rich would, and leaves everything else to rich (core/console.py)."""
from __future__ import annotations

import io
import random
import sys

import pytest

from dialogforge.core.console import LazyConsole, strip_markup

MESSAGES = [
    "[green]done[/]: 5000 items written, 12 already finished earlier · run generate-3826f47ee5",
    "[bold red]error:[/] in.jsonl:3: not valid JSON (Expecting value)",
    "[bold red]error:[/] --to hf needs `datasets`: pip install 'dialogforge\\[hf]'",
    "[yellow]note:[/] out.jsonl was missing 3 rows; rebuilt them from the run store (no request sent)",
    "a literal \\\\[b] and \\\\\\[c] and \\[d] and [e] [/e]", "", "two\nlines", " leading space", "x" * 79,
    "x" * 80, "x" * 120, "trailing space ", "tab\there", "caf\u00e9", "emoji :smile: code", "url http://h:9/v1 x",
    "[link=https://example.org]link[/link] [#ff0000]hex[/] [@click]handler[/]", "[not a tag because of Capital]",
]


def rich_output(text, console_kwargs, print_kwargs, monkeypatch):
    from rich.console import Console
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    Console(**console_kwargs).print(text, **print_kwargs)
    return stream.getvalue()


def lazy_output(text, console_kwargs, print_kwargs, monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    console = LazyConsole(**console_kwargs)
    console.print(text, **print_kwargs)
    return stream.getvalue(), console._console is None


@pytest.mark.parametrize("columns", ["80", "60", "200"])
@pytest.mark.parametrize("console_kwargs", [{"stderr": True}, {"stderr": True, "emoji": False}])
@pytest.mark.parametrize("print_kwargs", [{}, {"highlight": False}, {"soft_wrap": True}])
def test_same_bytes_as_rich(monkeypatch, columns, console_kwargs, print_kwargs):
    monkeypatch.setenv("COLUMNS", columns)
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    plain_taken = 0
    for text in MESSAGES:
        ours, plain = lazy_output(text, console_kwargs, print_kwargs, monkeypatch)
        assert ours == rich_output(text, console_kwargs, print_kwargs, monkeypatch), text
        plain_taken += plain
    assert plain_taken >= (5 if columns == "60" else 8)  # the usual one-line messages did not need rich


def test_random_markup_matches_rich(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    rng = random.Random(3)
    pieces = ["[b]", "[/b]", "[red]", "[/]", "\\", "\\[", "[", "]", "a", " ", "x=1", "[i]", "[/i]", "/", "#", "@"]
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        try:
            expected = rich_output(text, {"stderr": True, "emoji": False}, {"soft_wrap": True}, monkeypatch)
        except Exception:  # markup rich refuses (a closing tag with nothing to close): no claim about it
            continue
        ours, _ = lazy_output(text, {"stderr": True, "emoji": False}, {"soft_wrap": True}, monkeypatch)
        assert ours == expected, repr(text)
        checked += 1
    assert checked > 1000


def test_a_terminal_or_forced_colour_goes_to_rich(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    out, plain = lazy_output("[green]done[/]: 1 items written", {"stderr": True}, {}, monkeypatch)
    assert not plain and "\x1b[32m" in out  # rich drew the colour


def test_strip_markup():
    assert strip_markup("[bold red]error:[/] pip install 'dialogforge\\[hf]'") == "error: pip install 'dialogforge[hf]'"


def test_random_lines_wrapped_or_not_match_rich(monkeypatch):
    """Words of every kind (wide and accented letters, colons, URLs, markup) at random widths: where the plain
    path answers, it answers as rich; long lines and emoji codes go to rich."""
    rng = random.Random(11)
    words = ["done:", "items", "written", "·", "run", "generate-3826f47ee5", "café", "한국어", "http://h:9/v1",
             "[red]failed[/]", ":smile:", "a:b", "x" * 30, "\\[hf]", "é" * 12, "--retry-failed", "(see", "out.jsonl)"]
    plain_taken = 0
    for _ in range(1500):
        monkeypatch.setenv("COLUMNS", str(rng.choice([40, 60, 80, 100, 200])))
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 14)))
        console_kwargs = {"stderr": True, "emoji": rng.random() < 0.5}
        print_kwargs = {"soft_wrap": True} if rng.random() < 0.5 else {"highlight": False}
        ours, plain = lazy_output(text, console_kwargs, print_kwargs, monkeypatch)
        assert ours == rich_output(text, console_kwargs, print_kwargs, monkeypatch), (text, console_kwargs,
                                                                                     print_kwargs)
        plain_taken += plain
    assert plain_taken > 300


def test_escape_is_rich_escape_and_prints_as_itself(monkeypatch):
    from rich.markup import escape as rich_escape

    from dialogforge.core.console import escape
    rng = random.Random(5)
    pieces = ["[b]", "[/]", "\\", "[", "]", "a", "[hf]", "dialogforge", "[#f00]", "[@x]", "[Capital]", " "]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        assert escape(text) == rich_escape(text), repr(text)
        line = f"[red]error:[/] {escape(text)}"
        ours, _ = lazy_output(line, {"stderr": True, "emoji": False}, {"soft_wrap": True}, monkeypatch)
        assert ours == rich_output(line, {"stderr": True, "emoji": False}, {"soft_wrap": True}, monkeypatch)
        if "\\" not in text:  # (backslashes: rich's own quirks, which the line above holds us to)
            assert ours == f"error: {text}\n", repr(text)


def test_narrow_characters_take_one_cell_as_rich_counts_them():
    from rich.cells import cell_len

    from dialogforge.core.console import _cells_at_most
    every = "".join(chr(c) for c in range(0x20, 0x3000) if chr(c).isprintable())
    for c in every:
        assert _cells_at_most(c) >= cell_len(c), hex(ord(c))  # never fewer cells than rich counts
    assert _cells_at_most("done: 5000 items written · run generate-3826f47ee5") == 50
