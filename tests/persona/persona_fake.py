"""A scripted 'model' for the persona workflow behind the fake server, and config helpers.

The reply depends only on the request body, so a re-sent request can be recognised at the
server, and it varies enough that dialogues pass the heuristic checks unless a test wants a fault.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

VOCAB = """river mountain signal copper lantern meadow harbor engine crystal orchard glacier canyon
compass velvet thunder pepper marble falcon prairie comet ribbon quartz willow beacon saddle
tundra cobalt juniper walnut ember harvest lagoon summit cedar plaza violin anchor basalt
pebble spruce fossil nectar zephyr mosaic granite lotus tapestry cinder puzzle delta heron
gravel papaya sonnet tripod oyster cactus banjo kettle marsh pylon quiver raft satchel
thimble umbrella vortex wagon yarrow bramble crater dune ferry goblet hammock igloo jigsaw""".split()


def _rng(body: dict) -> random.Random:
    h = hashlib.blake2b(json.dumps(body["messages"], sort_keys=True).encode(), digest_size=8).hexdigest()
    return random.Random(h)


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def kind(body: dict) -> str:
    if body.get("response_format"):
        return "judge"
    last = body["messages"][-1]["content"]
    if "Write only the rewritten question." in last:
        return "rewrite"
    if "Your next question:" in last:
        return "user"
    return "answer"


def responder(body: dict) -> str:
    rng = _rng(body)
    k = kind(body)
    if k == "judge":
        c = round(rng.uniform(1.5, 5.0), 1)
        return json.dumps({"correctness": c, "relevance": round(rng.uniform(2.0, 5.0), 1), "feedback": f"Judged {_words(rng, 4)}."})
    if k in ("rewrite", "user"):
        return _words(rng, 6).capitalize() + "?"
    return " ".join(_words(rng, 7).capitalize() + "." for _ in range(5))


def write_seeds(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"Seed question {i}: what is item {i}?",
                                "output": f"Reference answer {i}: item {i} is a thing with several properties.",
                                "url": f"https://example.org/q/{i}"}) + "\n")
    return path


def config(base_url: str, tmp: Path, *, seeds: Path, turns=4, judge_same=False, **persona) -> dict:
    eps = {"gen": {"base_url": base_url, "model": "gen-model", "max_retries": 3},
           "judge": {"base_url": base_url, "model": "judge-model", "max_retries": 3}}
    p = {"seeds": {"path": str(seeds)}, "personas": ["orbit", "medician"], "turns": turns,
         "output": {"raw_dir": str(tmp / "raw"), "filtered_dir": str(tmp / "filtered")},
         "quality": {"min_score": 3.0}}
    p.update(persona)
    return {"endpoints": eps, "roles": {"generator": "gen", "judge": "gen" if judge_same else "judge"},
            "store": str(tmp / "store.sqlite"), "persona": p}


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
