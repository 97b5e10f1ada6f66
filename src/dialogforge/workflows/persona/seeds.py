"""Seeds -> dialogue items.

A seed is one single-turn QA pair (``instruction`` / ``output``, plus Alpaca's optional
``input``, appended to the question; other names are mapped with ``seeds.fields``).  Every other field (id, url, ...) is kept as
provenance.  A seed's id is its ``id_field`` (or ``id``/``_id``/``uid``) when it
has one, else a hash of its question, so the same seed keeps its id when the file
is reordered or grows.  A dialogue's id is ``<seed id>:<persona name>``.
"""
from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path
from typing import Any

from dialogforge.engine.errors import InputError
from dialogforge.engine.io import read_items

from .config import PersonaConfig

log = logging.getLogger(__name__)


def _hash(text: str, n: int = 10) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()[:n]


def load_seeds(cfg: PersonaConfig, path: str | Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Read, shuffle (``shuffle_seed``), then cut (``start``, ``limit``) the seeds."""
    sc = cfg.seeds
    p = Path(path) if path else cfg.resolve(sc.path)
    assert p is not None
    fields = {"instruction": "instruction", "output": "output", **sc.fields}
    seeds: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    dup = 0
    for pos, (iid, row) in enumerate(read_items(p, id_field=sc.id_field, fields=fields)):
        for ours in ("instruction", "output"):
            v = row.get(ours)
            if not isinstance(v, str) or not v.strip():
                theirs = fields[ours]
                raise InputError(f"{p}: seed {iid!r}: field {theirs!r} ({ours}) is missing or empty "
                                 f"(fields present: {', '.join(sorted(row))}; map names with persona.seeds.fields)")
        question = row["instruction"].strip()
        extra_input = row.get(fields.get("input", "input"))
        if isinstance(extra_input, str) and extra_input.strip():  # Alpaca's optional context
            question = f"{question}\n\n{extra_input.strip()}"
        has_id = (sc.id_field and row.get(sc.id_field) is not None) or any(row.get(k) is not None for k in ("id", "_id", "uid"))
        sid = str(iid) if has_id else "s" + _hash(question)
        if sid in seen:
            dup += 1
            continue
        seen.add(sid)
        keep = sc.provenance_fields
        prov = {k: v for k, v in row.items() if k != "output" and k != fields["output"] and (keep is None or k in keep)}
        prov["instruction"] = row["instruction"]
        prov["seed_id"] = sid
        prov["file"] = p.name
        seeds.append((sid, {"instruction": question, "output": row["output"].strip(), "provenance": prov}))
    if dup:
        log.warning("%s: skipped %d duplicate seed(s)", p, dup)
    if sc.shuffle_seed is not None:
        random.Random(sc.shuffle_seed).shuffle(seeds)
    end = None if sc.limit is None else sc.start + sc.limit
    return seeds[sc.start:end]


def turns_for(cfg: PersonaConfig, dialogue_id: str) -> int:
    if isinstance(cfg.turns, int):
        return cfg.turns
    lo, hi = cfg.turns
    return random.Random(_hash(dialogue_id, 16)).randint(lo, hi)


def dialogue_items(cfg: PersonaConfig, seeds: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """One item per dialogue: the seed, its persona (by ``assign``) and its number of turns."""
    names = [p.name for p in cfg.personas]
    items: list[tuple[str, dict]] = []
    for i, (sid, seed) in enumerate(seeds):
        if cfg.assign == "each":
            chosen = names
        elif cfg.assign == "round_robin":
            chosen = [names[i % len(names)]]
        else:
            chosen = [names[int(_hash(sid, 8), 16) % len(names)]]
        for name in chosen:
            did = f"{sid}:{name}"
            items.append((did, {**seed, "persona": name, "turns": turns_for(cfg, did)}))
    return items
