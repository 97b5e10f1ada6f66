"""`dialogforge dedup`: exact and near-duplicate removal with a report of every cluster.

- Exact: the chosen text, case-folded with whitespace collapsed, hashed.
- Near: MinHash LSH (datasketch) over character n-grams, so Korean, Japanese and
  Chinese text (no spaces between words) is compared as well as English. A row joins
  the cluster of the earlier kept row it resembles most when their estimated Jaccard
  similarity reaches `threshold`.
Two passes over the file: the first finds clusters, the second writes one member of
each cluster (the first, or with keep="best" the one with the highest judge score,
then reward). Records of an unknown shape are written uncompared; lines that are not
JSON objects are listed in the report (they cannot be written as rows).
"""
from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..core.errors import InputError
from ..core.rows import refuse_overwrite
from ..core.records import meta as metafield
from .conversation import Conversation, ConversionError
from .jsonl import JsonlWriter, iter_lines
from .readers import read_record

TEXT_FIELDS = ("all", "assistant", "last", "prompt")


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def text_of(conv: Conversation, which: str) -> str:
    if which == "all":
        return conv.text()
    msgs = conv.messages + list(conv.chosen or [])
    if which == "assistant":
        return "\n".join(m.content or "" for m in msgs if m.role == "assistant")
    if which == "last":
        replies = [m.content or "" for m in msgs if m.role == "assistant"]
        return replies[-1] if replies else ""
    return "\n".join(m.content or "" for m in conv.messages if m.role == "user")


def shingles(text: str, n: int) -> set[bytes]:
    if len(text) <= n:
        return {text.encode()} if text else set()
    return {text[i:i + n].encode() for i in range(len(text) - n + 1)}


@dataclass
class DedupReport:
    input: str
    output: str
    rows: int = 0
    kept: int = 0
    exact_removed: int = 0
    near_removed: int = 0
    unreadable: list[str] = field(default_factory=list)  # lines that are not JSON objects: not written
    uncompared: int = 0  # records of an unknown shape: written, not compared
    clusters: list[dict[str, Any]] = field(default_factory=list)
    clusters_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output, "rows": self.rows, "kept": self.kept,
                "exact_removed": self.exact_removed, "near_removed": self.near_removed,
                "unreadable": self.unreadable, "uncompared": self.uncompared, "clusters": len(self.clusters), "clusters_file": self.clusters_path}


def _quality(meta: dict[str, Any]) -> tuple[float, float]:
    def num(v: Any) -> float:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("-inf")
    return num(metafield(meta, "score")), num(metafield(meta, "reward"))


def dedup(input: str | os.PathLike, output: str | os.PathLike, *, exact: bool = True, near: bool = True,
          threshold: float = 0.85, ngram: int = 5, num_perm: int = 128, text: str = "all", keep: str = "first",
          clusters: str | os.PathLike | None = None) -> DedupReport:
    """Write the rows of `input` that survive deduplication to `output`; the clusters
    report (JSON) goes to `clusters` (default: OUTPUT.clusters.json)."""
    if text not in TEXT_FIELDS:
        raise InputError(f"--text must be one of {', '.join(TEXT_FIELDS)}")
    if keep not in ("first", "best"):
        raise InputError("--keep must be first or best")
    if not 0.0 < threshold <= 1.0:
        raise InputError("--threshold must be in (0, 1]")
    if ngram < 1:
        raise InputError("--ngram must be at least 1")
    if not (exact or near):
        raise InputError("--no-exact with --no-near leaves nothing to do: keep one of them")
    if Path(input).resolve() == Path(output).resolve():
        raise InputError("output must differ from input")
    cpath = Path(clusters) if clusters else Path(output).with_suffix(".clusters.json")
    refuse_overwrite([input], {"--clusters": cpath})
    for p in (Path(output), cpath):  # both checked before either is written
        if p.is_dir():
            raise InputError(f"{p}: is a folder; give a file name")
    lsh = None
    if near:
        from datasketch import MinHash, MinHashLSH
        try:
            lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        except ValueError:  # thresholds near 1 want a single band; four keep recall high, candidates are verified
            lsh = MinHashLSH(num_perm=num_perm, params=(4, num_perm // 4))
    report = DedupReport(str(input), str(output))
    rep_of: list[int] = []  # row -> representative row (itself when unique)
    kind: dict[int, str] = {}  # row -> "exact" | "near" for duplicates
    sim: dict[int, float] = {}
    quality: list[tuple[float, float]] = []
    where: list[tuple[int, Any]] = []  # (line, id) per row
    exact_keys: dict[bytes, int] = {}
    sigs: dict[int, Any] = {}
    for line in iter_lines(input):
        i = line.index
        report.rows += 1
        rep_of.append(i)
        conv = None
        if line.record is not None:
            try:
                conv = read_record(line.record)
            except ConversionError:
                conv = None
        where.append((line.lineno, line.record.get("id") if line.record else None))
        quality.append(_quality(conv.metadata) if conv else (float("-inf"), float("-inf")))
        if line.record is None:
            report.unreadable.append(f"line {line.lineno}: {line.error}")
            continue
        if conv is None:  # valid JSON of an unknown shape: kept, never compared
            report.uncompared += 1
            continue
        norm = normalise(text_of(conv, text))
        if exact:
            key = hashlib.blake2b(norm.encode(), digest_size=16).digest()
            if key in exact_keys:
                rep_of[i], kind[i] = exact_keys[key], "exact"
                continue
            exact_keys[key] = i
        if lsh is not None:
            m = MinHash(num_perm=num_perm, hashfunc=zlib.crc32)
            m.update_batch(list(shingles(norm, ngram)))
            best, best_sim = -1, -1.0
            for cand in lsh.query(m):
                s = m.jaccard(sigs[cand])
                if s > best_sim:
                    best, best_sim = cand, s
            if best >= 0 and best_sim >= threshold:
                rep_of[i], kind[i], sim[i] = best, "near", round(best_sim, 4)
                continue
            lsh.insert(i, m)
            sigs[i] = m
    members: dict[int, list[int]] = {}
    for i, r in enumerate(rep_of):
        if r != i:
            members.setdefault(r, [r]).append(i)
    winner: dict[int, int] = {}
    for r, ms in members.items():
        winner[r] = max(ms, key=lambda j: (quality[j], -j)) if keep == "best" else r
        report.clusters.append({
            "type": "exact" if all(kind.get(j) == "exact" for j in ms if j != r) else "near",
            "kept": winner[r],
            "members": [{"index": j, "line": where[j][0], "id": where[j][1],
                         "match": kind.get(j, "first"), **({"similarity": sim[j]} if j in sim else {})}
                        for j in ms],
        })
        for j in ms:
            if j != winner[r]:
                how = kind.get(j) if j != r else kind.get(winner[r])
                if how == "exact":
                    report.exact_removed += 1
                else:
                    report.near_removed += 1
    keep_rows = {i for i, r in enumerate(rep_of) if r == i and i not in winner} | set(winner.values())
    with JsonlWriter(output) as w:
        for line in iter_lines(input):
            if line.index in keep_rows and line.record is not None:
                w.write(line.record)
    report.kept = w.count
    cpath.write_bytes(orjson.dumps({
        "input": str(input), "output": str(output), "exact": exact, "near": near, "threshold": threshold,
        "ngram": ngram, "num_perm": num_perm, "text": text, "keep": keep, **report.to_dict(),
        "clusters": report.clusters}, option=orjson.OPT_INDENT_2))
    report.clusters_path = str(cpath)
    return report
