"""The ids one pass over an input has met, in memory that stays small as the input grows.

The first ``exact`` ids are kept as they are, with the index of the row each came from. Past
them every id is kept as its 64-bit hash (8 bytes) in sorted arrays merged like a binary counter
(a handful of arrays at any size; a page of ids is checked against each with one vectorised
search). A hash met again only makes an id a *candidate*: the caller confirms it against the
input itself, so two ids whose hashes collide are never reported as one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

EXACT = 50_000  # ids kept exactly, with their row (~5 MB)


class SeenIds:
    """Ids met so far; ``add`` takes them a page at a time and names the ones that may repeat."""

    __slots__ = ("exact", "first", "levels", "_np")

    def __init__(self, exact: int | None = None):
        self.exact = EXACT if exact is None else exact
        self.first: dict[str, int] = {}  # id -> the index of its row
        self.levels: list["np.ndarray"] = []  # sorted hashes, largest first
        self._np: Any = None

    def where(self, item_id: str) -> int | None:
        """The row index of an id kept exactly, if it is one of them."""
        return self.first.get(item_id)

    def add(self, ids: list[str], index: int) -> list[int]:
        """Record a page of ids, those of rows ``index``, ``index + 1``, ...; return, in order, the
        positions in the page whose id may have been met before (earlier in the page, or before)."""
        if self.levels:
            return self._add_hashed(ids, 0)
        first = self.first
        if len(first) + len(ids) < self.exact and first.keys().isdisjoint(ids) and len(set(ids)) == len(ids):
            first.update(zip(ids, range(index, index + len(ids))))  # the common case: a plain dict, no repeat
            return []
        repeats: list[int] = []
        k = 0
        for k, iid in enumerate(ids):
            if iid in first:
                repeats.append(k)
            else:
                first[iid] = index + k
                if len(first) >= self.exact:
                    break
        else:
            return repeats
        self._merge(self._hashes(list(first)))  # from now on hashes only (the exact ids' too)
        return repeats + self._add_hashed(ids, k + 1)

    def _hashes(self, ids: list[str]) -> "np.ndarray":
        np = self._np
        if np is None:
            import numpy
            np = self._np = numpy
        return np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))

    def _add_hashed(self, ids: list[str], start: int) -> list[int]:
        if start >= len(ids):
            return []
        np = self._np
        hs = self._hashes(ids[start:] if start else ids)
        new = np.sort(hs)  # sorted queries: each search starts where the last one ended
        hit = bool((new[1:] == new[:-1]).any())
        for level in self.levels:
            if hit:
                break
            at = np.searchsorted(level, new)
            at[at == len(level)] = 0
            hit = bool((level[at] == new).any())
        if hit:  # rare: say which (a repeat within the page too)
            out = set()
            for level in self.levels:
                at = np.searchsorted(level, hs)
                at[at == len(level)] = 0
                out.update((start + np.flatnonzero(level[at] == hs)).tolist())
            met: set[int] = set()
            for k, h in enumerate(hs.tolist()):
                if h in met:
                    out.add(start + k)
                met.add(h)
            self._merge(new)
            return sorted(out)
        self._merge(new)
        return []

    def _merge(self, new: "np.ndarray") -> None:
        np = self._np
        levels = self.levels
        while levels and len(levels[-1]) <= len(new):
            new = np.sort(np.concatenate((levels.pop(), new)), kind="stable")  # two sorted runs: a merge
        levels.append(new)

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels) if self.levels else len(self.first)
