"""Flow control: adaptive concurrency (AIMD), per-key rate buckets, key rotation, backoff."""
from __future__ import annotations

import asyncio
import random
import time
from collections import deque


class Gate:
    """A concurrency cap: a lean semaphore (asyncio's scans its waiters on every acquire)."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> None:
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # we were granted a slot but will not use it
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < max(1, int(self.limit)):
            fut = self._waiters.popleft()
            if not fut.done():
                self.in_flight += 1
                fut.set_result(None)


class AdaptiveLimiter(Gate):
    """A concurrency cap that halves on 429 and creeps back up on success (AIMD).

    The cap starts at ``maximum``; ``backoff()`` halves it (at most once per second, so a
    burst of 429s from one overload counts once); each ``success()`` adds 1/cap, i.e. about
    one slot per round-trip window, until the maximum is reached again.
    """

    def __init__(self, maximum: int):
        super().__init__(maximum)
        self._last_cut = 0.0

    def backoff(self) -> None:
        now = time.monotonic()
        if now - self._last_cut >= 1.0:
            self.limit = max(1.0, self.limit / 2)
            self._last_cut = now

    def success(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()


class TokenBucket:
    """A per-minute budget (requests or tokens) refilled continuously.

    The burst is ten seconds' worth, so a fresh run does not fire a whole minute's budget
    at once and then stall (servers count in rolling windows)."""

    def __init__(self, per_minute: float, burst_seconds: float = 10.0):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, amount: float) -> float:
        self._refill()
        amount = min(amount, self.capacity)  # a request larger than the burst waits for a full bucket
        if self.tokens >= amount:
            return 0.0
        return (amount - self.tokens) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.tokens -= amount  # may go negative after a correction; refill pays it back

    def refund(self, amount: float) -> None:
        self.tokens = min(self.capacity, self.tokens + amount)


class KeySlot:
    """One API key with its own RPM/TPM buckets."""

    __slots__ = ("key", "index", "rpm", "tpm", "cooldown_until")

    def __init__(self, key: str | None, index: int, rpm: float | None, tpm: float | None):
        self.key = key
        self.index = index
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None
        self.cooldown_until = 0.0

    def wait_time(self, tokens: float) -> float:
        w = max(0.0, self.cooldown_until - time.monotonic())
        if self.rpm:
            w = max(w, self.rpm.wait_time(1))
        if self.tpm:
            w = max(w, self.tpm.wait_time(tokens))
        return w


class KeyPool:
    """Rotates requests across keys; each key has its own limits.

    ``acquire`` picks the key that can send soonest (round-robin among the ready ones)
    and waits if none can send yet. A 429 puts the key that got it in a short cooldown.
    """

    def __init__(self, keys: list[str | None], rpm: float | None = None, tpm: float | None = None):
        self.slots = [KeySlot(k, i, rpm, tpm) for i, k in enumerate(keys)] or [KeySlot(None, 0, rpm, tpm)]
        self._next = 0
        self._limited = bool(rpm or tpm) or len(self.slots) > 1

    def keys(self) -> list[str | None]:
        """Each distinct key once (None: no key), in configured order."""
        return list(dict.fromkeys(s.key for s in self.slots))

    async def acquire(self, est_tokens: float) -> KeySlot:
        if not self._limited:
            return self.slots[0]
        while True:
            n = len(self.slots)
            best, best_wait = None, float("inf")
            for i in range(n):
                slot = self.slots[(self._next + i) % n]
                w = slot.wait_time(est_tokens)
                if w < best_wait:
                    best, best_wait = slot, w
                    if w == 0.0:
                        break
            assert best is not None
            if best_wait == 0.0:
                self._next = (best.index + 1) % n
                if best.rpm:
                    best.rpm.take(1)
                if best.tpm:
                    best.tpm.take(est_tokens)
                return best
            await asyncio.sleep(min(best_wait, 1.0))

    def settle(self, slot: KeySlot, est_tokens: float, actual_tokens: float) -> None:
        """Correct the TPM debit once the real usage is known."""
        if slot.tpm:
            if actual_tokens > est_tokens:
                slot.tpm.take(actual_tokens - est_tokens)
            else:
                slot.tpm.refund(est_tokens - actual_tokens)

    def cool_down(self, slot: KeySlot, seconds: float) -> None:
        slot.cooldown_until = max(slot.cooldown_until, time.monotonic() + seconds)


def backoff_delay(attempt: int, retry_after: float | None, base: float = 0.5, cap: float = 30.0) -> float:
    """Capped exponential backoff with full jitter; a server's Retry-After wins when given."""
    if retry_after is not None:
        return min(retry_after, 120.0)
    return random.uniform(0, min(cap, base * (2 ** attempt)))
