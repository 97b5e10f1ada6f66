"""Tokens per second of the embedded backend (SmolLM2-135M through xllamacpp), in-process.

    .venv/bin/python benchmarks/embedded_speed.py [--runs 5] [--max-tokens 128] [--threads N]

For each mode (1 request alone, 4 at once, 4 at once with a JSON schema) it runs `--runs` rounds
after one warm-up request. A round sends the requests together through `EmbeddedBackend.complete`
and times them end to end (prompt processing included). Free-text requests set llama.cpp's
`ignore_eos` so every answer is exactly `--max-tokens` long and rounds compare like with like; the
JSON-schema requests stop when the grammar closes the object.

Columns: total tok/s = completion tokens of the round / wall time of the round; per request =
llama.cpp's own generation speed of each request (prompt excluded), averaged; latency = mean
seconds per request. Median over rounds, with min-max.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dialogforge.engine.backends.embedded import EmbeddedBackend  # noqa: E402

TOPICS = ["lighthouses", "bread baking", "the moon", "chess openings", "rivers", "bees", "trains", "volcanoes"]
SCHEMA = {"type": "object", "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5},
                                           "feedback": {"type": "string", "maxLength": 200}},
          "required": ["score", "feedback"]}


def body(i: int, max_tokens: int, structured: bool) -> dict:
    topic = TOPICS[i % len(TOPICS)]
    b = {"model": "smollm2", "temperature": 0.7, "seed": i, "max_tokens": max_tokens,
         "messages": [{"role": "system", "content": "You are a helpful assistant."},
                      {"role": "user", "content": f"Write a short paragraph about {topic} for a curious child."}]}
    if structured:
        b["messages"][-1]["content"] = f"Rate from 1 to 5 how interesting {topic} are, and say why."
        b["response_format"] = {"type": "json_schema", "json_schema": {"name": "Rating", "schema": SCHEMA}}
    else:
        b["ignore_eos"] = True
    return b


async def one_round(backend: EmbeddedBackend, n: int, max_tokens: int, structured: bool, offset: int) -> dict:
    async def timed(i: int):
        t0 = time.perf_counter()
        out = await backend.complete(body(offset + i, max_tokens, structured))
        return out, time.perf_counter() - t0

    t0 = time.perf_counter()
    results = await asyncio.gather(*(timed(i) for i in range(n)))
    wall = time.perf_counter() - t0
    tokens = sum(out["usage"]["completion_tokens"] for out, _ in results)
    per_req = [out.get("timings", {}).get("predicted_per_second") or 0.0 for out, _ in results]
    return {"total": tokens / wall, "per_request": statistics.mean(per_req),
            "latency": statistics.mean(lat for _, lat in results), "tokens": tokens / n}


def fmt(values: list[float], digits: int = 1) -> str:
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return f"{cpu or platform.machine()}, {cores} cores usable, {platform.system()} {platform.release()}"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: usable cores, max 8)")
    ap.add_argument("--parallel", type=int, default=4, help="server slots (n_parallel)")
    args = ap.parse_args()

    from importlib.metadata import version
    backend = EmbeddedBackend(n_parallel=args.parallel, n_threads=args.threads)
    load = await backend.load()
    await backend.complete(body(0, 8, False))  # warm-up
    print(f"machine: {machine()}")
    print(f"xllamacpp {version('xllamacpp')}, model {backend.model}, threads {backend.n_threads}, "
          f"slots {backend.n_parallel}, context/request {backend.context_per_request}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load {load:.2f} s")
    print(f"{args.runs} rounds per mode, max_tokens {args.max_tokens}\n")
    modes = [("1 request", 1, False), ("4 concurrent", 4, False), ("4 concurrent, JSON schema", 4, True)]
    header = f"{'mode':28s} {'total tok/s':>20s} {'per request tok/s':>20s} {'latency s':>16s} {'tokens/req':>10s}"
    print(header)
    print("-" * len(header))
    for label, n, structured in modes:
        rounds = [await one_round(backend, n, args.max_tokens, structured, offset=r * n) for r in range(args.runs)]
        print(f"{label:28s} {fmt([r['total'] for r in rounds]):>20s} {fmt([r['per_request'] for r in rounds]):>20s} "
              f"{fmt([r['latency'] for r in rounds], 2):>16s} {statistics.mean(r['tokens'] for r in rounds):10.0f}")
    await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main())
