"""Start-up of `dialogforge` commands: imports (`python -X importtime`), and time to the first request and to exit.

    .venv/bin/python benchmarks/cli_startup.py            # --runs 15; the fastest run of each command counts
    .venv/bin/python benchmarks/cli_startup.py --top 15   # also the costliest top-level imports of that run

Each command runs in a fresh interpreter exactly as the `dialogforge` script starts it (the console script imports
`dialogforge.cli.main:main` and calls it). The import figure is the sum of the top-level imports' cumulative
times (everything the process imported, `site` excluded). On a shared machine other jobs inflate every run; the
fastest of several runs is the least disturbed one.

Our modules are compiled first (`compileall`, as `make` does): an installed package has its bytecode, and where
PYTHONDONTWRITEBYTECODE is set an uncompiled editable install would compile every module on every start.

The bare aiohttp script of benchmarks/engine_throughput.py is measured next to `generate`: what it imports is the
floor of any run through aiohttp (asyncio, and aiohttp's own import, which builds two SSL contexts from the
system's CA bundle). The second table times one prompt against the local test server: from the process's start
to the first chat request the server sees, and to the process's exit, for both.
"""
from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_throughput import BARE_AIOHTTP  # noqa: E402  (the same bare script as the throughput benchmark)

STARTUP = "import sys; from dialogforge.cli.main import main; sys.argv[0] = 'dialogforge'; main()"
SRC = Path(__file__).resolve().parent.parent / "src"


def import_times(code: str, argv: list[str], cwd: str) -> tuple[float, list[tuple[float, str]]]:
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv], cwd=cwd, capture_output=True,
                       text=True, env={**os.environ, "COLUMNS": "100"})
    top: list[tuple[float, str]] = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit() or name.startswith("  "):  # header, or not top level
            continue
        if name.strip() not in ("site", "encodings"):
            top.append((int(cumulative) / 1000, name.strip()))
    return sum(t for t, _ in top), sorted(top, reverse=True)


def first_request(runs: int, tmp: str) -> dict[str, list[tuple[float, float]]]:
    """(ms to the first chat request, ms to exit) of one-prompt runs, the bare script's and ours interleaved."""
    from dialogforge.testing.fake_server import FakeServer
    seen: list[float] = []

    def responder(body: dict) -> str:
        seen.append(time.perf_counter())  # CLOCK_MONOTONIC: the same clock as the clients'
        return "ok"
    bare = Path(tmp, "bare.py")
    bare.write_text(BARE_AIOHTTP)
    cli = str(Path(sys.executable).parent / "dialogforge")
    out: dict[str, list[tuple[float, float]]] = {"bare": [], "cli": []}
    with FakeServer(responder=responder) as srv:
        for k in range(runs):
            for name, cmd in (("bare", [sys.executable, str(bare), srv.base_url, "1", "1", "uvloop"]),
                              ("cli", [cli, "generate", "in.jsonl", "-o", f"o{k}.jsonl", "--store", f"s{k}.sqlite",
                                       "--base-url", srv.base_url, "--model", "m", "-q"])):
                seen.clear()
                t0 = time.perf_counter()
                subprocess.run(cmd, cwd=tmp, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                t1 = time.perf_counter()
                out[name].append(((seen[0] - t0) * 1000, (t1 - t0) * 1000))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--top", type=int, default=0, help="Show the N costliest top-level imports of the best run.")
    args = ap.parse_args()
    compileall.compile_dir(str(SRC), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        # one row and a server that refuses connections: `generate` imports all it needs for a run (config, run
        # store, HTTP client), checks the server and stops there, so the figure is start-up alone
        Path(tmp, "in.jsonl").write_text('{"prompt": "hi"}\n')
        refused = ["in.jsonl", "-o", "out.jsonl", "-q", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
        commands = {
            "dialogforge --help": (STARTUP, ["--help"]),
            "dialogforge --version": (STARTUP, ["--version"]),
            "dialogforge generate (everything a run imports)": (STARTUP, ["generate", *refused]),
            "bare aiohttp script (its imports: the floor of a run through aiohttp)":
                ("import asyncio, json, resource, aiohttp, orjson, uvloop", []),
            "dialogforge generate --help": (STARTUP, ["generate", "--help"]),
            "dialogforge export --help": (STARTUP, ["export", "--help"]),
        }
        print(f"| command | import time, best of {args.runs} | median |")
        print("|---|---:|---:|")
        for label, (code, argv) in commands.items():
            runs = sorted((import_times(code, argv, tmp) for _ in range(args.runs)), key=lambda r: r[0])
            print(f"| `{label}` | {runs[0][0]:.0f} ms | {runs[len(runs) // 2][0]:.0f} ms |")
            for t, name in runs[0][1][:args.top]:
                print(f"|   {name} | {t:.1f} ms | |")

        times = first_request(args.runs, tmp)
        print(f"\nOne prompt against the local test server, {args.runs} interleaved runs each, median (best); "
              f"load average {os.getloadavg()[0]:.1f}")
        print("| process | to the first request | to exit |")
        print("|---|---:|---:|")
        for name, key in (("bare aiohttp script", "bare"), ("`dialogforge generate`", "cli")):
            first, end = zip(*times[key])
            print(f"| {name} | {statistics.median(first):.0f} ms ({min(first):.0f}) | "
                  f"{statistics.median(end):.0f} ms ({min(end):.0f}) |")


if __name__ == "__main__":
    main()
