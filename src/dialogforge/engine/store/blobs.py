"""Where the run store's bytes live: segments (one zstd frame per group commit), interned names, cache keys.

A group commit writes every request, response and output line it records into one segment: the blobs
concatenated, compressed as one zstd frame, optionally with a dictionary. A row (a call, an appended
line) points into it by (segment, position, length). Compressing a commit's blobs together is what
makes the JSON around the text, and the text an output line repeats from the response it came from,
nearly free; the dictionary (raw content of earlier segments, one per store session) does the same for
commits that hold only a call or two. Reading a blob decompresses its segment; a small cache of
decompressed segments keeps a resume or a listing from decompressing one segment per row.
"""
from __future__ import annotations

import struct
from collections import OrderedDict

import zstandard as zstd

_LEVEL = 3
DICT_SAMPLE = 32 << 10  # raw bytes a session writes before it makes its dictionary from them
DICT_SIZE = 32 << 10  # the dictionary: the most recent raw bytes of that sample (stored compressed)
_CACHE_BYTES = 8 << 20  # decompressed segments kept for reads


def key_ints(cache_key: str) -> tuple[int, int]:
    """A 32-hex-digit cache key as two signed 64-bit integers (what SQLite stores in 8 bytes each)."""
    raw = bytes.fromhex(cache_key)
    if len(raw) != 16:
        raise ValueError(f"cache key {cache_key!r} is not 16 bytes of hex")
    a, b = struct.unpack(">qq", raw)
    return a, b


def key_hex(k1: int, k2: int) -> str:
    return struct.pack(">qq", k1, k2).hex()


class Names:
    """Strings that repeat on every row (run ids, purposes, endpoints, models, replicas) as small integers."""

    def __init__(self, db) -> None:
        self.db = db
        self.ids: dict[str, int] = {}

    def id(self, name: str | None) -> int | None:
        if name is None:
            return None
        got = self.ids.get(name)
        if got is None:
            row = self.db.execute("SELECT id FROM names WHERE name=?", (name,)).fetchone()
            if row is None:
                row = self.db.execute("INSERT INTO names (name) VALUES (?) RETURNING id", (name,)).fetchone()
            got = self.ids[name] = row[0]
        return got

    def find(self, name: str) -> int | None:
        """The id of a name already stored (no insert)."""
        got = self.ids.get(name)
        if got is None:
            row = self.db.execute("SELECT id FROM names WHERE name=?", (name,)).fetchone()
            if row is None:
                return None
            got = self.ids[name] = row[0]
        return got

    def forget(self) -> None:
        """After a rolled-back transaction: ids handed out in it may not exist."""
        self.ids.clear()


class Segments:
    """Writes segments (with the session's dictionary once it has one) and reads them back, cached."""

    def __init__(self, db) -> None:
        self.db = db
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cached = 0
        self._dicts: dict[int, zstd.ZstdCompressionDict] = {}
        self._dict_id: int | None = None
        self._sample: list[bytes] | None = []  # this session's first raw bytes, until its dictionary exists
        self._sampled = 0
        self.stored = 0
        row = db.execute("SELECT MAX(id) FROM dicts").fetchone()
        if row and row[0] is not None:  # until this session makes its own, the newest one serves
            self._dict_id = row[0]
        self._plain = zstd.ZstdCompressor(level=_LEVEL)
        self._compressor: zstd.ZstdCompressor | None = None

    def _dict(self, dict_id: int) -> zstd.ZstdCompressionDict:
        d = self._dicts.get(dict_id)
        if d is None:
            (data,) = self.db.execute("SELECT data FROM dicts WHERE id=?", (dict_id,)).fetchone()
            raw = zstd.ZstdDecompressor().decompress(bytes(data))  # kept compressed: it is JSON text too
            d = self._dicts[dict_id] = zstd.ZstdCompressionDict(raw, dict_type=zstd.DICT_TYPE_RAWCONTENT)
        return d

    def write(self, raw: bytes) -> int:
        """Store one segment (inside the caller's transaction); return its id."""
        if self._sample is not None:
            self._sample.append(raw)
            self._sampled += len(raw)
            if self._sampled >= DICT_SAMPLE:
                data = b"".join(self._sample)[-DICT_SIZE:]
                self._sample = None
                (self._dict_id,) = self.db.execute("INSERT INTO dicts (data) VALUES (?) RETURNING id",
                                                   (self._plain.compress(data),)).fetchone()
                self._compressor = None
        dict_id = self._dict_id
        if dict_id is None:
            blob = self._plain.compress(raw)
        else:
            if self._compressor is None:
                self._compressor = zstd.ZstdCompressor(level=_LEVEL, dict_data=self._dict(dict_id))
            blob = self._compressor.compress(raw)
        (seg,) = self.db.execute("INSERT INTO segments (dict, data) VALUES (?, ?) RETURNING id",
                                 (dict_id, blob)).fetchone()
        self.stored = len(blob)  # the last segment's stored size (its runs' counters, sizes.Tally)
        return int(seg)

    def replace(self, seg: int, raw: bytes) -> None:
        """Rewrite one segment with new content (inside the caller's transaction), compressed with its own dictionary."""
        (dict_id,) = self.db.execute("SELECT dict FROM segments WHERE id=?", (seg,)).fetchone()
        c = zstd.ZstdCompressor(level=_LEVEL, dict_data=self._dict(dict_id)) if dict_id is not None else self._plain
        self.db.execute("UPDATE segments SET data=? WHERE id=?", (c.compress(raw), seg))
        if self._cache.pop(seg, None) is not None:
            self._cache.clear()
            self._cached = 0

    def rolled_back(self) -> None:
        """The transaction that wrote segments (and maybe a dictionary) was rolled back."""
        self._cache.clear()
        self._cached = 0
        gone = [d for d in self._dicts if self.db.execute("SELECT 1 FROM dicts WHERE id=?", (d,)).fetchone() is None]
        for d in gone:  # a dictionary made in that transaction: later segments must not name it
            del self._dicts[d]
        if self._dict_id is not None and self._dict_id not in self._dicts:
            row = self.db.execute("SELECT MAX(id) FROM dicts").fetchone()
            self._dict_id = row[0] if row else None
        self._compressor = None

    def read(self, seg: int) -> bytes:
        raw = self._cache.get(seg)
        if raw is not None:
            self._cache.move_to_end(seg)
            return raw
        row = self.db.execute("SELECT dict, data FROM segments WHERE id=?", (seg,)).fetchone()
        if row is None:
            raise KeyError(f"segment {seg} is missing from the run store")
        d = zstd.ZstdDecompressor(dict_data=self._dict(row[0])) if row[0] is not None else zstd.ZstdDecompressor()
        raw = d.decompress(bytes(row[1]))
        self._keep(seg, raw)
        return raw

    def _keep(self, seg: int, raw: bytes) -> None:
        self._cache[seg] = raw
        self._cached += len(raw)
        while self._cached > _CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached -= len(old)


class Builder:
    """One group commit's blobs, concatenated; rows get the position of theirs."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> int:
        pos = self.size
        self.parts.append(data)
        self.size += len(data)
        return pos

    def bytes(self) -> bytes:
        return b"".join(self.parts)
