"""How the run store keeps bytes small and gives them back byte-equal.

Every blob (a response, an appended line, a request) is a zstd frame when that is smaller,
else the bytes as they are (a zstd frame starts with a magic number no JSON text starts with).

A request that repeats its item's previous request of the same purpose (a multi-turn history:
the same messages plus new ones) is stored as a delta: the length of the prefix it shares with
that request, and the rest, zstd-compressed with the previous response as its dictionary (the
new assistant message usually is that response). Each call costs its new text, not its history.
Reading walks the chain back to a request stored whole. Encoding is a memcmp and a small
compression, so it stays cheap on the event loop.
"""
from __future__ import annotations

import struct

import zstandard as zstd

_MAGIC = b"\x28\xb5\x2f\xfd"
_DELTA = b"\x00"  # no JSON text or zstd frame starts with a NUL byte
_MIN = 96  # below this a frame's header outweighs what it saves
_MIN_PREFIX = 64
_WINDOW = 32 << 10  # the tail of the previous response used as dictionary
MAX_DEPTH = 500

_plain = zstd.ZstdCompressor(level=3)
_unplain = zstd.ZstdDecompressor()


def pack(data: bytes) -> bytes:
    if len(data) < _MIN:
        return data
    out = _plain.compress(data)
    return out if len(out) < len(data) else data


def unpack(blob: bytes | None) -> bytes | None:
    if blob is None:
        return None
    blob = bytes(blob)
    return _unplain.decompress(blob) if blob[:4] == _MAGIC else blob


def is_delta(blob: bytes) -> bool:
    return bytes(blob[:1]) == _DELTA


def shared_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes a and b share; tried first where a history ends (the last message)."""
    guess = a.rfind(b"}]") + 1
    if guess > 0 and b[:guess] == a[:guess]:
        lo, hi = guess, min(len(a), len(b))
    else:
        lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # largest n with a[:n] == b[:n], by halving (each step one memcmp)
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _dict(response: bytes) -> zstd.ZstdCompressionDict:
    return zstd.ZstdCompressionDict(response[-_WINDOW:], dict_type=zstd.DICT_TYPE_RAWCONTENT)


def delta(request: bytes, prev_request: bytes, prev_response: bytes) -> bytes | None:
    p = shared_prefix(prev_request, request)
    if p < _MIN_PREFIX:
        return None
    rest = request[p:]
    if len(prev_response) >= _MIN_PREFIX and len(rest) >= _MIN:
        body, flag = zstd.ZstdCompressor(level=3, dict_data=_dict(prev_response)).compress(rest), b"\x01"
    else:
        body, flag = pack(rest), b"\x00"
    return _DELTA + struct.pack(">I", p) + flag + body


def undelta(blob: bytes, prev_request: bytes, prev_response: bytes) -> bytes:
    blob = bytes(blob)
    (p,) = struct.unpack(">I", blob[1:5])
    body = blob[6:]
    rest = zstd.ZstdDecompressor(dict_data=_dict(prev_response)).decompress(body) if blob[5:6] == b"\x01" \
        else unpack(body) or b""
    return prev_request[:p] + rest


class Chains:
    """Per in-flight (item, purpose): its last call's id, request and response, for the next delta."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], dict[str | None, tuple[int, bytes, bytes, int]]] = {}

    def encode(self, call_id: int, run_id: str | None, item_id: str | None, purpose: str | None,
               request: bytes, response: bytes | None) -> tuple[bytes, int | None]:
        """The stored form of a request and the id of the call it is a delta on (None: stored whole, as it is:
        the segment it goes into is compressed)."""
        if not run_id or not item_id:
            return request, None
        mine = self.last.setdefault((run_id, item_id), {})
        prev = mine.get(purpose)
        blob, base, depth = None, None, 0
        if prev is not None and prev[3] < MAX_DEPTH:
            blob = delta(request, prev[1], prev[2])
            base, depth = prev[0], prev[3] + 1
        if blob is None:
            blob, base, depth = request, None, 0
        mine[purpose] = (call_id, request, response or b"", depth)
        return blob, base

    def forget(self, run_id: str, item_id: str) -> None:
        self.last.pop((run_id, item_id), None)
