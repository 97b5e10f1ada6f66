"""Time per agent command in the `local` environment: in the bubblewrap sandbox vs unconfined.

    .venv/bin/python benchmarks/agent_sandbox.py --n 60

Each mode gets a fresh rollout folder (the example task `median-fix`) and runs the same commands N
times each, one after another, timing each from the call to `execute` to its result (the process
start, bwrap's namespaces and mounts, the command, the output read). Modes alternate per round, so
outside load hits both alike. Prints median, p90 and max per command and mode, and the time of a
whole reset (copy + git init/add/commit) + diff + evaluation.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from dialogforge.workflows.agent.config import EnvironmentConfig  # noqa: E402
from dialogforge.workflows.agent.envs.local import LocalEnvironment  # noqa: E402
from dialogforge.workflows.agent.envs.sandbox import probe  # noqa: E402
from dialogforge.workflows.agent.tasks import load_tasks  # noqa: E402

COMMANDS = {"true": "true", "ls + cat": "ls -la && cat stats.py > /dev/null",
            "python3 -c pass": "python3 -c pass"}


async def main(n: int) -> None:
    if probe() is not None:
        raise SystemExit(f"no sandbox here: {probe()}")
    task = next(t for t in load_tasks(REPO / "examples/agent/tasks.jsonl") if t.id == "median-fix")
    path = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    modes = {"sandbox": False, "unconfined": True}
    envs = {m: LocalEnvironment(EnvironmentConfig(env={"PATH": path}, unsafe_local=u), task) for m, u in modes.items()}
    times: dict[tuple[str, str], list[float]] = {}
    whole: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(3):
        for m, env in envs.items():
            t0 = time.perf_counter()
            await env.reset()
            await env.execute("echo x >> stats.py")
            await env.diff()
            await env.evaluate()
            whole[m].append(time.perf_counter() - t0)
    for _ in range(n):
        for m, env in envs.items():
            for name, cmd in COMMANDS.items():
                t0 = time.perf_counter()
                res = await env.execute(cmd)
                assert res.returncode == 0, res.output
                times.setdefault((name, m), []).append(time.perf_counter() - t0)
    for env in envs.values():
        await env.close()
    print(f"| command | mode | median ms | p90 ms | max ms |  (n={n} each)")
    for (name, m), ts in times.items():
        ts.sort()
        print(f"| `{name}` | {m} | {statistics.median(ts) * 1000:.1f} | {ts[int(len(ts) * 0.9)] * 1000:.1f} | "
              f"{ts[-1] * 1000:.1f} |")
    for m, ts in whole.items():
        print(f"reset + 1 command + diff + eval ({m}): median {statistics.median(ts):.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    asyncio.run(main(ap.parse_args().n))
