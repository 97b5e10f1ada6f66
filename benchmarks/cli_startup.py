"""Import time of `dialogforge` commands, as `python -X importtime` reports it.

    .venv/bin/python benchmarks/cli_startup.py            # --runs 15; the fastest run of each command counts
    .venv/bin/python benchmarks/cli_startup.py --top 15   # also the costliest top-level imports of that run

Each command runs in a fresh interpreter exactly as the `dialogforge` script starts it (the console
script imports `dialogforge.cli.main:main` and calls it). The figure is the sum of the top-level
imports' cumulative times (everything the process imported, `site` excluded). On a shared machine
other jobs inflate every run; the fastest of several runs is the least disturbed one.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STARTUP = "import sys; from dialogforge.cli.main import main; sys.argv[0] = 'dialogforge'; main()"


def import_times(argv: list[str], cwd: str) -> tuple[float, list[tuple[float, str]]]:
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", STARTUP, *argv], cwd=cwd, capture_output=True,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--top", type=int, default=0, help="Show the N costliest top-level imports of the best run.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # one row and a server that refuses connections: `generate` imports all it needs for a run (config, run
        # store, HTTP client), checks the server and stops there, so the figure is start-up alone
        Path(tmp, "in.jsonl").write_text('{"prompt": "hi"}\n')
        commands = {
            "dialogforge --help": ["--help"],
            "dialogforge --version": ["--version"],
            "dialogforge generate (everything a run imports)": ["generate", "in.jsonl", "-o", "out.jsonl", "-q",
                                                                "--base-url", "http://127.0.0.1:9/v1", "--model", "m"],
            "dialogforge generate --help": ["generate", "--help"],
            "dialogforge export --help": ["export", "--help"],
        }
        print(f"| command | import time, best of {args.runs} | median |")
        print("|---|---:|---:|")
        for label, argv in commands.items():
            runs = sorted((import_times(argv, tmp) for _ in range(args.runs)), key=lambda r: r[0])
            print(f"| `{label}` | {runs[0][0]:.0f} ms | {runs[len(runs) // 2][0]:.0f} ms |")
            for t, name in runs[0][1][:args.top]:
                print(f"|   {name} | {t:.1f} ms | |")


if __name__ == "__main__":
    main()
