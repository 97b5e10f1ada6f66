"""Benchmark for count_primes: best-of-N wall time, and speedup over the untouched copy.

    python3 bench.py             time the current code
    python3 bench.py --json      one JSON line; with $DF_BASELINE_DIR set, includes "speedup"
"""
import importlib.util
import json
import os
import sys
import time

MODULE, FUNCTION = "primes", "count_primes"


def workload():
    return (2000,)


def load(folder, alias):
    spec = importlib.util.spec_from_file_location(alias, os.path.join(folder, MODULE + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, FUNCTION)


def best_time(fn, repeats=3):
    args = workload()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    current = best_time(load(os.getcwd(), "current_impl"))
    result = {"seconds": round(current, 6)}
    baseline_dir = os.environ.get("DF_BASELINE_DIR")
    if baseline_dir:
        base = best_time(load(baseline_dir, "baseline_impl"))
        result["baseline_seconds"] = round(base, 6)
        result["speedup"] = round(base / max(current, 1e-9), 3)
    print(json.dumps(result) if "--json" in sys.argv else f"{FUNCTION}: {result}")


if __name__ == "__main__":
    main()
