"""Final check of this task: the unit tests, then (if there is a bench.py) the speedup.

The last line printed is the result as JSON: {"success", "tests_passed", "speedup"?}.
"""
import json
import os
import subprocess
import sys


def main():
    tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."],
                           capture_output=True, text=True, timeout=300)
    print(tests.stderr[-3000:])
    result = {"success": tests.returncode == 0, "tests_passed": tests.returncode == 0}
    if result["tests_passed"] and os.path.exists("bench.py"):
        bench = subprocess.run([sys.executable, "bench.py", "--json"], capture_output=True, text=True, timeout=300)
        lines = bench.stdout.strip().splitlines()
        if bench.returncode == 0 and lines:
            measured = json.loads(lines[-1])
            result.update({k: measured[k] for k in ("speedup", "seconds", "baseline_seconds") if k in measured})
        else:
            print(bench.stderr[-2000:])
            result["bench_error"] = True
    print(json.dumps(result))


if __name__ == "__main__":
    main()
