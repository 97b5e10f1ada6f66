"""Progress for long runs: items done/failed/total, requests/s, tokens/s, cost, ETA.

In a terminal it is a live rich bar; elsewhere (CI logs, pipes) a line every 10 seconds.
It reads counters on a timer, so it costs nothing per item.
"""
from __future__ import annotations

import asyncio
import time

from rich.console import Console

from .client import Stats


class RunProgress:
    def __init__(self, name: str, total: int | None, stats: Stats, console: Console | None = None,
                 enabled: bool = True):
        self.name = name
        self.total = total
        self.stats = stats
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.t0 = time.monotonic()
        self._task: asyncio.Task | None = None
        self._live = None
        self._base = (0, 0, 0)

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
        if self.total is not None and rate > 0:
            left = self.total - self.skipped - finished
            parts.append(f"ETA {_fmt_secs(left / rate)}")
        parts.append(f"elapsed {_fmt_secs(el)}")
        return " · ".join(parts)

    async def _tick(self) -> None:
        interactive = self.console.is_terminal
        while True:
            await asyncio.sleep(0.5 if interactive else 10.0)
            if self._live is not None:
                self._live.update(self.line())
            else:
                self.console.print(self.line(), highlight=False)

    def start(self) -> None:
        if not self.enabled:
            return
        self.t0 = time.monotonic()
        st = self.stats
        self._base = (st.requests, st.prompt_tokens + st.completion_tokens, 0)
        if self.console.is_terminal:
            from rich.live import Live
            self._live = Live(self.line(), console=self.console, refresh_per_second=2, transient=False)
            self._live.start()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._live is not None:
            self._live.update(self.line())
            self._live.stop()
            self._live = None
        elif self.enabled:
            self.console.print(self.line(), highlight=False)


def _fmt_secs(s: float) -> str:
    s = int(s)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
