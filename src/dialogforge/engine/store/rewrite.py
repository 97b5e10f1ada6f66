"""A run's bytes in the segment layout, and cutting out what a finished run no longer needs (``runs prune``).

Segments are shared by every row a group commit wrote (usually one run's, but concurrent runs in one process
share commits), so a run's part of a segment is its raw bytes there (requests, responses, lines) times that
segment's stored/raw ratio. Prune may drop a run's request bodies and its failed attempts: nothing reads
them back but `runs calls` (resume and the cache go by cache key to responses, rebuilds by lines, and
request deltas never cross runs: a chain is one item's calls). Responses, lines, memos and items stay.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import StoreCore

def drop_requests(store: "StoreCore", run_id: str) -> None:
    """Inside the caller's transaction: delete the run's failed attempts and cut its request bodies out of the
    segments (and the inline blobs of rows from before segments); positions of the rows kept are updated."""
    db = store.db
    run = store.names.find(run_id)
    if run is None:
        return
    segs = [s for (s,) in db.execute("SELECT DISTINCT seg FROM call_log WHERE run=? AND seg IS NOT NULL", (run,))]
    db.execute("DELETE FROM call_log WHERE run=? AND rlen IS NULL AND response IS NULL", (run,))
    # the response stays where it is until the rewrite: pos moves past the request's bytes
    db.execute("UPDATE call_log SET pos=pos + COALESCE(qlen, 0), qlen=NULL, request=NULL, base=NULL WHERE run=?",
               (run,))
    # each rewrite finds its segment's rows: indexes for this transaction only (without them every segment
    # scanned both tables: 34 s for a 100,000-call run); dropped before the commit, so no store keeps them
    db.execute("CREATE INDEX prune_call_seg ON call_log (seg)")
    db.execute("CREATE INDEX prune_line_seg ON lines (seg)")
    for seg in segs:
        _rewrite(store, seg)
    db.execute("DROP INDEX prune_call_seg")
    db.execute("DROP INDEX prune_line_seg")


def _rewrite(store: "StoreCore", seg: int) -> None:
    """Rebuild a segment from the rows still pointing into it (a pruned request has qlen NULL)."""
    db = store.db
    raw = store.segments.read(seg)
    calls = db.execute("SELECT id, pos, qlen, rlen FROM call_log WHERE seg=?", (seg,)).fetchall()
    lines = db.execute("SELECT file, offset, pos, length FROM lines WHERE seg=?", (seg,)).fetchall()
    parts: list[bytes] = []
    size = 0
    moved_calls, moved_lines = [], []
    for cid, pos, qlen, rlen in calls:
        n = (qlen or 0) + (rlen or 0)
        parts.append(raw[pos:pos + n])
        moved_calls.append((size, cid))
        size += n
    for file_id, offset, pos, length in lines:
        parts.append(raw[pos:pos + length])
        moved_lines.append((size, file_id, offset))
        size += length
    db.executemany("UPDATE call_log SET pos=? WHERE id=?", moved_calls)
    db.executemany("UPDATE lines SET pos=? WHERE file=? AND offset=?", moved_lines)
    store.segments.replace(seg, b"".join(parts))
