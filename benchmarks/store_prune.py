"""What `runs prune` frees (#15): a run made through the real workflow against the local fake server, then
`dialogforge runs prune RUN` as a user runs it (the console script, timed start to exit); the store file and
its WAL before and after, and each run's share as `runs` computes it.

    .venv/bin/python benchmarks/store_prune.py persona --n 300 --turns 10 [--judge]
    .venv/bin/python benchmarks/store_prune.py generate --n 20000
    .venv/bin/python benchmarks/store_prune.py agent --n 24 --turns 20
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_size import bench_agent, bench_generate, bench_persona, sizes  # noqa: E402

from dialogforge.engine.store import RunStore  # noqa: E402

CLI = str(Path(sys.executable).with_name("dialogforge"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["generate", "persona", "agent"])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--turns", type=int, default=10, help="persona: turns per dialogue; agent: steps per rollout")
    ap.add_argument("--judge", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if a.what == "generate":
            bench_generate(tmp, a.n)
            label = f"generate, {a.n:,} single calls"
        elif a.what == "agent":
            bench_agent(tmp, a.n, a.turns)
            label = f"agent run, {a.n} rollouts, {a.turns} steps"
        else:
            bench_persona(tmp, a.n, a.turns, a.judge)
            label = f"persona run, {a.n} dialogues, {a.turns} turns, judge {'on' if a.judge else 'off'}"
        db = tmp / "store.sqlite"
        st = RunStore(db)
        (run,) = st.runs()
        share = st.shares().percent(run.run_id)
        plan = st.prune(run.run_id, dry_run=True)
        st.close()
        before = sizes(db, [])[0]
        t0 = time.perf_counter()
        subprocess.run([CLI, "runs", "prune", run.run_id, "--store", str(db)], check=True)
        dt = time.perf_counter() - t0
        after = sizes(db, [])[0]
    print(f"| {label} | {before / 1e6:.2f} MB (run's share {share:.0f}%) | {plan.requests:,} bodies, "
          f"{plan.failed} failed | {after / 1e6:.2f} MB | {(before - after) / 1e6:.2f} MB "
          f"({100 * (before - after) / before:.0f}%) | {dt:.1f} s |")


if __name__ == "__main__":
    main()
