"""`dialogforge merge`: several runs and rounds -> one dataset, provenance kept.

Each record keeps (or gets) its provenance: `run` (the record's own, else a name
derived from its file), `round`, `instance`, `repeat`, `sample_index`, plus
`source` = {"file", "line"}. A record is a duplicate only when its provenance *and*
its content are the same as an earlier one (the same file given twice, a resumed run
that wrote a record again), so equal text from distinct rounds or samples is kept.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import orjson

from ..core.errors import InputError
from ..core.records import MetaKey
from ..core.records import meta as metafield
from .jsonl import JsonlWriter, expand_inputs, iter_lines

KEY_FIELDS: tuple[MetaKey, ...] = ("run", "round", "instance", "repeat", "sample_index", "purpose", "turn", "id")


@dataclass
class FileStats:
    path: str
    run: str
    rows: int = 0
    kept: int = 0
    duplicates: int = 0
    bad: int = 0


@dataclass
class MergeReport:
    output: str
    files: list[FileStats] = field(default_factory=list)
    rounds: Counter = field(default_factory=Counter)  # "run/round" -> records kept
    bad_lines: list[str] = field(default_factory=list)  # "file:line: why", first 50

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "kept": self.kept, "duplicates": self.duplicates,
                "files": [f.__dict__ for f in self.files], "rounds": dict(self.rounds), "bad_lines": self.bad_lines}


def run_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """A run name per file: its stem, or parent/stem where stems collide."""
    stems = [Path(p).name.split(".")[0] for p in paths]
    counts = Counter(stems)
    return [s if counts[s] == 1 else f"{Path(p).resolve().parent.name}/{s}" for p, s in zip(paths, stems)]


def record_key(rec: dict[str, Any]) -> bytes:
    """Provenance + content; `source` (where we read it) is not part of the content."""
    body = {k: v for k, v in rec.items() if k != "source"}
    prov = [metafield(rec, k) for k in KEY_FIELDS]
    h = hashlib.blake2b(digest_size=16)
    h.update(orjson.dumps(prov, default=str))
    h.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str))
    return h.digest()


def merge(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
          runs: Sequence[str] | None = None) -> MergeReport:
    """Concatenate `inputs` into `output` (JSONL), filling `run` and `source`."""
    paths = expand_inputs(inputs)
    if not paths:
        raise InputError("merge needs at least one input file")
    if runs is not None and len(runs) != len(paths):
        raise InputError(f"{len(runs)} run names for {len(paths)} files")
    names = list(runs) if runs is not None else run_names(paths)
    out_path = Path(output).resolve()
    for p in paths:
        if Path(p).resolve() == out_path:
            raise InputError(f"output {output} is also an input")
    report = MergeReport(str(output))
    seen: set[bytes] = set()
    with JsonlWriter(output) as w:
        for path, run in zip(paths, names):
            st = FileStats(str(path), run)
            report.files.append(st)
            for line in iter_lines(path):
                st.rows += 1
                if line.record is None:
                    st.bad += 1
                    if len(report.bad_lines) < 50:
                        report.bad_lines.append(f"{path}:{line.lineno}: {line.error}")
                    continue
                rec = line.record
                if metafield(rec, "run") is None:
                    rec = {"run": run, **rec}
                key = record_key(rec)
                if key in seen:
                    st.duplicates += 1
                    continue
                seen.add(key)
                w.write({**rec, "source": {"file": str(path), "line": line.lineno}})
                st.kept += 1
                report.rounds[f"{metafield(rec, 'run')}/round {metafield(rec, 'round', '-')}"] += 1
    return report
