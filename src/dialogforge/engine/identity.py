"""What makes a rerun "the same run": the settings that shape its outputs.

A run's identity is a dict of what shapes each item's records: the model and sampling
parameters of each role, and what the workflow adds (templates, environment, evaluator, a hash
of the input items). Concurrency, limits, URLs and keys are not in it: they change how fast,
not what. A rerun into the same output files with another identity is refused, naming what
changed, unless the user says ``--continue``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from .errors import DialogforgeError


class RunChanged(DialogforgeError):
    """A rerun into existing outputs with settings that shape the outputs differently."""


def fingerprint(identity: dict) -> str:
    return hashlib.blake2b(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS),
                           digest_size=12).hexdigest()


def file_digest(path: str | Path) -> str:
    """A hash of a file's bytes (the input items), read in chunks."""
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def describe_changes(old: dict | None, new: dict) -> str:
    if old is None:
        return "settings"
    a, b = _flatten(old), _flatten(new)
    parts = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            x, y = repr(a.get(key)), repr(b.get(key))
            parts.append(f"{key} {x} -> {y}" if len(x) + len(y) < 60 else key)
    more = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
    return ", ".join(parts[:3]) + more


def check_identity(store: Any, run_id: str, identity: dict, continue_: bool, output: Path) -> str:
    """Refuse a rerun with other settings (unless ``continue_``); return the new fingerprint."""
    fp = fingerprint(identity)
    old_fp, old = store.run_identity(run_id)
    if old_fp is not None and old_fp != fp and not continue_:
        changes = describe_changes(old, identity)
        if not Path(output).exists():
            raise RunChanged(f"{output} was made with other settings ({changes}); the file is gone but the run store "
                             "holds its rows: write to another output for a run with the new settings (--continue "
                             "would restore the old rows and make only the missing ones with the new settings)")
        raise RunChanged(f"{output} was made with other settings ({changes}); "
                         "rerun with --continue to go on into the same files with the new settings, "
                         "or write to another output")
    return fp
