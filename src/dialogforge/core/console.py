"""The console messages and progress go to: rich's, made when the first thing is drawn.

rich costs about 20 ms of imports (benchmarks/cli_startup.py). A command that prints its first line only when
it ends (a quiet `generate`, any run until its first progress tick) should not pay that before its first request,
so the engine and the CLI hold a `LazyConsole` and rich is imported on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


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


def stderr_console() -> Console:
    """A console on standard error, made on first use (typed as the rich Console it stands for)."""
    return LazyConsole(stderr=True)  # type: ignore[return-value]
