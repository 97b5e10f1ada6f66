"""The console messages and progress go to: rich's, made when it is first needed.

rich costs about 13-20 ms of imports (benchmarks/README.md, "Start-up"). The engine and the CLI hold a
`LazyConsole`; rich is imported on its first use, never before a run's first request. A one-line message to a
file or a pipe (a script's log, CI) does not need rich at all: with no colours to draw, what rich writes is the
text without its markup, so `LazyConsole.print` writes that itself while the line is one rich would write
unchanged (printable text, no emoji code, not folded at the console's width). tests/cli/test_console.py holds it
byte-equal to rich's output; anything else goes to rich.
"""
from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")  # rich.markup's tag pattern: a tag, with the backslashes before it
_EMOJI_CODE = re.compile(r":\S*?:")  # where rich could put an emoji (its own pattern is narrower)


class LazyConsole:
    """Stands for `rich.console.Console(**kwargs)`, which it makes on first use and then forwards to."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._kwargs)
        return self._console

    def __getattr__(self, name: str) -> Any:  # only for what this class does not define itself
        return getattr(self.real, name)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self._console is None and len(objects) == 1 and isinstance(objects[0], str) \
                and kwargs.keys() <= {"highlight", "soft_wrap"}:
            stream = sys.stderr if self._kwargs.get("stderr") else sys.stdout
            text = self._plain_line(objects[0], stream, bool(kwargs.get("soft_wrap")))
            if text is not None:
                stream.write(text + "\n")
                stream.flush()
                return
        self.real.print(*objects, **kwargs)

    def _plain_line(self, markup: str, stream: Any, soft_wrap: bool) -> str | None:
        """What rich would write for `markup` on `stream`, where that is the text without its markup; else None."""
        if self._kwargs.keys() - {"stderr", "emoji"} or stream is None or _colour_possible(stream):
            return None
        text = strip_markup(markup)
        lines = text.split("\n")
        if not all(line.isprintable() for line in lines) or (self._kwargs.get("emoji", True) and _EMOJI_CODE.search(text)):
            return None
        if not soft_wrap:  # rich folds at the console's width
            width = _width()
            if any(_cells_at_most(line) >= width or line.endswith(" ") for line in lines):
                return None
        return text


def escape(text: str) -> str:
    """`text` (a path, an error, an install hint such as 'dialogforge[hf]') as markup that prints as itself:
    what `rich.markup.escape` gives, without importing rich."""
    text = _TAG.sub(lambda m: m[2] * 2 + "\\" + m[1][len(m[2]):], text)  # a tag's backslashes doubled, one more
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def strip_markup(markup: str) -> str:
    """rich markup as plain text: tags dropped, escaped brackets and backslashes as rich renders them."""
    out, position = [], 0
    for match in _TAG.finditer(markup):
        full, escapes, _ = match.groups()
        start, end = match.span()
        out.append(markup[position:start].replace("\\[", "["))  # a bracket escaped outside any tag
        if escapes:
            backslashes, escaped = divmod(len(escapes), 2)
            out.append("\\" * backslashes)
            if escaped:
                out.append(full[len(escapes):])
        position = end
    out.append(markup[position:].replace("\\[", "["))
    return "".join(out)


_NARROW = re.compile(r"[\u00a0-\u024f\u2010-\u2027]")  # Latin letters and punctuation ("·", "—", "…"): one cell


def _cells_at_most(line: str) -> int:
    """The cells rich gives `line`, or more: ASCII and _NARROW take one, any other character is counted as two."""
    if line.isascii():
        return len(line)
    return sum(1 if c.isascii() or _NARROW.match(c) else 2 for c in line)


def _colour_possible(stream: Any) -> bool:
    """Whether rich could draw styles on `stream`: a terminal, a forced one, or a notebook."""
    env = os.environ
    if env.get("TTY_COMPATIBLE") == "1" or env.get("FORCE_COLOR") or "IPython" in sys.modules \
            or "idlelib" in sys.modules:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return True


def _width() -> int:
    """rich's console width: COLUMNS, else a terminal on standard input, output or error, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80


def stderr_console() -> Console:
    """A console on standard error, made on first use (typed as the rich Console it stands for)."""
    return LazyConsole(stderr=True)  # type: ignore[return-value]
