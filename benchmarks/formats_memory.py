"""Peak memory of `export` and `validate` on 1,000,000 conversations (bar: < 500 MB each).

    .venv/bin/python benchmarks/formats_memory.py              # 1,000,000 rows
    .venv/bin/python benchmarks/formats_memory.py --rows 100000

Writes a JSONL of small conversations (persona-style dialogues, agent samples with
tool calls, plain chats) to a temporary folder, streaming, then runs each step in a
fresh Python process and reads that process's peak resident memory (ru_maxrss), so
every figure is the whole cost of one command: interpreter, imports and data.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOL = {"type": "function", "function": {"name": "bash", "description": "Run a command.", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}


def conversation(i: int) -> dict:
    kind = i % 3
    if kind == 0:
        return {"id": f"p{i}", "system": "You are a friendly guide.", "messages": [
            {"role": "user", "content": f"Where should I go on day {i % 7}?"},
            {"role": "assistant", "content": "The old harbour is lovely in the morning."},
            {"role": "user", "content": "And after lunch?"},
            {"role": "assistant", "content": f"Try the hill park; route {i} has the best view."}],
            "judge": {"score": i % 10}, "passed": i % 4 != 0}
    if kind == 1:
        args = json.dumps({"command": f"grep -n todo file_{i}.py"})
        return {"id": f"a{i}", "messages": [
            {"role": "system", "content": "You fix code."}, {"role": "user", "content": f"Fix file_{i}.py"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": args}}]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": "3: # todo"},
            {"role": "assistant", "content": "Done: removed the todo."}],
            "tools": [TOOL], "instance": f"t{i % 100}", "round": i % 3, "repeat": 0, "sample_index": i,
            "purpose": "main", "reward": (i % 5) / 4, "success": i % 2 == 0, "run": "bench"}
    return {"messages": [{"role": "user", "content": f"Say a number near {i}."},
                         {"role": "assistant", "content": str(i + 1)}]}


def generate(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps(conversation(i)) + "\n")


def phase(args: argparse.Namespace) -> None:
    """Runs inside the child process: one step, then prints its figures as JSON."""
    t0 = time.perf_counter()
    if args.phase == "export":
        from dialogforge.formats import export
        r = export(args.input, args.output, args.format, task="sft")
        rows = {"read": r.read, "written": r.written, "rejected": sum(r.rejected.values())}
    else:
        from dialogforge.formats import validate
        r = validate(args.input, args.format)
        rows = {"read": r.rows, "written": r.valid, "rejected": r.invalid}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({**rows, "seconds": round(time.perf_counter() - t0, 1), "peak_mb": round(peak_kb / 1024, 1)}))


def child(step: str, fmt: str, src: Path, dst: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--phase", step, "--format", fmt, "--input", str(src)]
    if dst is not None:
        cmd += ["--output", str(dst)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--formats", default="sharegpt,trl", help="comma-separated; hf/parquet are export-only "
                    "(export validates every row it writes)")
    ap.add_argument("--phase", choices=["export", "validate"], help=argparse.SUPPRESS)
    ap.add_argument("--format", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        phase(args)
        return
    with tempfile.TemporaryDirectory(prefix="df-formats-bench-") as tmp:
        src = Path(tmp) / "conversations.jsonl"
        t0 = time.perf_counter()
        generate(src, args.rows)
        size = src.stat().st_size / 1e6
        print(f"generated {args.rows:,} conversations ({size:.0f} MB) in {time.perf_counter() - t0:.1f}s")
        print(f"{'step':<22}{'rows read':>12}{'written':>12}{'rejected':>10}{'seconds':>10}{'peak RSS MB':>13}")
        worst = 0.0
        for fmt in args.formats.split(","):
            out = Path(tmp) / (f"{fmt}.jsonl" if fmt not in ("hf", "parquet") else f"{fmt}.out")
            steps = [("export", src, out)] + ([("validate", out, None)] if fmt not in ("hf", "parquet") else [])
            for step, s, d in steps:
                r = child(step, fmt, s, d)
                worst = max(worst, r["peak_mb"])
                print(f"{step + ' ' + fmt:<22}{r['read']:>12,}{r['written']:>12,}{r['rejected']:>10,}"
                      f"{r['seconds']:>10}{r['peak_mb']:>13}")
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        verdict = "PASS" if worst < 500 else "FAIL"
        print(f"worst peak: {worst} MB (bar: < 500 MB) {verdict}")
        if worst >= 500:
            sys.exit(1)


if __name__ == "__main__":
    main()
