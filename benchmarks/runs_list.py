"""How long `dialogforge runs` (the listing, with each run's share of the store) takes, start to exit, on a store
made by a generate run against the local fake server; and how far its estimated shares are from the exact walk.

    .venv/bin/python benchmarks/runs_list.py --n 100000 [--store PATH]   # PATH: time an existing store instead
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_size import bench_generate  # noqa: E402

from dialogforge.engine.store import RunStore  # noqa: E402

CLI = str(Path(sys.executable).with_name("dialogforge"))


def _timed(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([CLI, "runs", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--store", type=Path, default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = a.store
        if db is None:
            bench_generate(Path(d), a.n)
            db = Path(d) / "store.sqlite"
        RunStore(db).close()  # a store from before the counters is migrated here, not in the timings
        listed = sorted(_timed("--store", str(db)) for _ in range(3))
        exact = _timed("--exact-sizes", "--store", str(db))
        st = RunStore(db)
        est, ex = st.shares(), st.shares(exact_sizes=True)
        worst = max((abs(est.runs[r] - ex.runs[r]) / max(1, ex.runs[r]) for r in ex.runs), default=0.0)
        st.close()
        print(f"| {db.stat().st_size / 1e6:.1f} MB, {len(ex.runs)} run(s) | runs: {listed[1]:.2f} s (min "
              f"{listed[0]:.2f}) | runs --exact-sizes: {exact:.2f} s | estimate vs exact: worst {100 * worst:.1f}% |")


if __name__ == "__main__":
    main()
