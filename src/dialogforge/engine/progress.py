"""Progress for long runs: items done/failed/total, requests/s, tokens/s, cost, ETA.

In a terminal it is a live rich bar; elsewhere (CI logs, pipes) a line every 10 seconds.
It reads counters on a timer, so it costs nothing per item.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..core.console import stderr_console
from .client import Stats

if TYPE_CHECKING:
    from rich.console import Console


class RunProgress:
    def __init__(self, name: str, total: int | None, stats: Stats, console: Console | None = None,
                 enabled: bool = True):
        self.name = name
        self.total = total
        self.stats = stats
        self.console = console or stderr_console()
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.t0 = time.monotonic()
        self._base = (0, 0, 0)
        self._item_tokens = (0, 0)  # (items finished, their tokens)

    def item_tokens(self, tokens: int) -> None:
        """An item finished after calls worth `tokens` (prompt + completion)."""
        n, t = self._item_tokens
        self._item_tokens = (n + 1, t + tokens)

    def eta(self, elapsed: float) -> float | None:
        """Seconds left. While few items have finished, from tokens: the finished items' mean tokens times the
        items left, less the tokens already spent on items still running, at the current token rate. With many
        finished, from items. Items finish in bursts, so counting them alone makes an early ETA climb."""
        if self.total is None:
            return None
        finished = self.done + self.failed
        left = self.total - self.skipped - finished
        n, item_tok = self._item_tokens
        spent = self.stats.prompt_tokens + self.stats.completion_tokens - self._base[1]
        if 0 < n and finished < 20 and item_tok > 0 and spent > 0:
            work = left * item_tok / n
            # the items still running count as at most half done: one that needs more tokens than the mean
            # (asked again, longer answers) must not drive the estimate to zero while it runs
            in_flight = min(max(0, spent - item_tok), work / 2)
            return (work - in_flight) / (spent / elapsed)
        rate = finished / elapsed
        return left / rate if rate > 0 else None

    def line(self) -> str:
        el = max(1e-6, time.monotonic() - self.t0)
        st = self.stats
        finished = self.done + self.failed
        total = f"/{self.total - self.skipped}" if self.total is not None else ""
        rate = finished / el
        toks = (st.prompt_tokens + st.completion_tokens - self._base[1]) / el
        parts = [f"{self.name}: {self.done}{total} done", f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} resumed")
        parts += [f"{rate:.1f} items/s", f"{(st.requests - self._base[0]) / el:.1f} req/s", f"{toks:,.0f} tok/s"]
        if st.cached:
            parts.append(f"{st.cached} cached")
        if st.retries:
            parts.append(f"{st.retries} retries")
        if st.cost:
            parts.append(f"${st.cost:.4f}")
        eta = self.eta(el)
        if eta is not None:
            parts.append(f"ETA {_fmt_secs(eta)}")
        parts.append(f"elapsed {_fmt_secs(el)}")
        return " · ".join(parts)

    # Runs going on at once (an agent's rounds) share one live display, a line each.
    _active: list["RunProgress"] = []
    _live: Any = None  # rich.live.Live, imported only for a terminal
    _task: asyncio.Task | None = None

    @classmethod
    def _render(cls) -> str:
        return "\n".join(p.line() for p in cls._active)

    @classmethod
    async def _tick(cls, console: Console) -> None:
        # The first look comes half a second in, with the first requests already out: the console (rich's
        # imports) is made then, not before them (core/console.py). A run that ends sooner draws only its last line.
        await asyncio.sleep(0.5)
        interactive = console.is_terminal
        if interactive:
            from rich.live import Live
            cls._live = Live(cls._render(), console=getattr(console, "real", console), refresh_per_second=2,
                             transient=True)
            cls._live.start()
        while True:
            if cls._live is not None:
                cls._live.update(cls._render())
            await asyncio.sleep(0.5 if interactive else 10.0)
            if cls._live is None:
                console.print(cls._render(), highlight=False)

    def start(self) -> None:
        if not self.enabled:
            return
        self.t0 = time.monotonic()
        st = self.stats
        self._base = (st.requests, st.prompt_tokens + st.completion_tokens, 0)
        cls = RunProgress
        loop = asyncio.get_running_loop()
        if cls._task is not None and (cls._task.get_loop() is not loop or cls._task.done()):
            cls._active, cls._task, cls._live = [], None, None  # left over from another event loop
        cls._active.append(self)
        if cls._task is None:
            cls._task = loop.create_task(cls._tick(self.console))

    def stop(self) -> None:
        if not self.enabled or self not in RunProgress._active:
            return
        cls = RunProgress
        cls._active.remove(self)
        if cls._live is not None:
            cls._live.update(cls._render())
        if not cls._active:
            if cls._task is not None:
                cls._task.cancel()
                cls._task = None
            if cls._live is not None:
                cls._live.stop()
                cls._live = None
        self.console.print(self.line(), highlight=False)  # each run's final line stays on screen


def _fmt_secs(s: float) -> str:
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
