"""`dialogforge generate` at scale: peak memory, the rerun of a finished run, whole-process throughput.

    .venv/bin/python benchmarks/generate_million.py --n 1000000            # the #15 bars
    .venv/bin/python benchmarks/generate_million.py --n 20000 --n 100000   # RSS against n
    .venv/bin/python benchmarks/generate_million.py --n 100000 --bare      # also the bare loop, interleaved

Starts the fake OpenAI-compatible server in its own process (``--latency``, 100 ms by default; request
bodies not kept), writes an input of N prompts, then for each N runs the console script
``dialogforge generate IN -o OUT`` as a user would (imports, preflight, run store, input and output
files) and reports, each from start to exit:
  - seconds and items/s; the peak RSS of the whole process (``ru_maxrss`` from ``wait4``) and its RSS
    sampled every 0.5 s (the curve: at a quarter, half, three quarters and the end of the run);
  - the same command again over the finished run (everything skipped as done): seconds and peak RSS;
  - with ``--bare``: a bare aiohttp loop as a process (uvloop, ``--concurrency`` workers pulling prompts
    from a counter: the leanest client there is, with flat memory), alternating with the CLI.
Bars (#15, at N = 1,000,000): peak RSS < 150 MB; rerun < 10 s; CLI items/s >= 0.95x the bare loop's.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PY = sys.executable
CLI = str(Path(PY).parent / "dialogforge")

# the bare client: fixed workers, no list of every coroutine (at 1,000,000 a gather over all would cost GBs)
BARE = r'''
import asyncio, sys, aiohttp, orjson, uvloop
url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    it = iter(range(n))
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        async def worker():
            nonlocal done
            for i in it:
                body = {"model": "bench", "messages": [{"role": "user", "content": f"prompt number {i}"}], "max_tokens": 32}
                async with s.post(url + "/chat/completions", data=orjson.dumps(body),
                                  headers={"Content-Type": "application/json"}) as r:
                    out = orjson.loads(await r.read())
                    out["choices"][0]["message"]["content"]
                done += 1
        await asyncio.gather(*(worker() for _ in range(conc)))
    assert done == n
uvloop.install()
asyncio.run(main())
'''


def measured(cmd: list[str]) -> dict:
    """Run a process; its wall seconds, peak RSS (MB) and RSS samples (seconds, MB) every 0.5 s."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                return
            samples.append((time.perf_counter() - t0, rss / 1024))
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} exited {p.returncode}: {err[-2000:]}")
    return {"wall": wall, "peak": usage.ru_maxrss / 1024, "samples": samples, "cpu": usage.ru_utime + usage.ru_stime}


def curve(samples: list[tuple[float, float]]) -> str:
    if not samples:
        return "-"
    k = len(samples)
    return " / ".join(f"{samples[min(k - 1, int(k * q))][1]:.0f}" for q in (0.25, 0.5, 0.75, 0.999))


def write_input(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            f.write(f'{{"id": "p{i}", "prompt": "prompt number {i}"}}\n')


def generate_cmd(url: str, inp: Path, out: Path, store: Path, conc: int) -> list[str]:
    return [CLI, "generate", str(inp), "-o", str(out), "--base-url", url, "--model", "bench", "--store", str(store),
            "-q", "--max-tokens", "32", "-j", str(conc)]


def start_server(t: Path, latency: float) -> tuple[subprocess.Popen, str]:
    port_file = t / "port"
    server = subprocess.Popen([PY, "-m", "dialogforge.testing.fake_server", "--port", "0", "--latency", str(latency),
                               "--port-file", str(port_file), "--no-keep"], stdout=subprocess.DEVNULL)
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            break
        time.sleep(0.1)
    return server, f"http://127.0.0.1:{port_file.read_text()}/v1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, action="append", help="items (repeat for several sizes; default 1,000,000)")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--bare", action="store_true", help="also time the bare aiohttp loop, alternating with the CLI")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (alternating); medians")
    ap.add_argument("--dir", help="keep input, output and store in this folder; a size whose output is complete there"
                                  " is not run again, only rerun (time the rerun in a quiet moment)")
    args = ap.parse_args()
    sizes = args.n or [1_000_000]
    conc = args.concurrency

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(args.dir or tmp)
        t.mkdir(parents=True, exist_ok=True)
        server, url = start_server(Path(tmp), args.latency)
        rows = []
        try:
            subprocess.run([PY, "-c", BARE, url, "300", "64"], check=True)  # warm the server up
            for n in sizes:
                inp = t / f"prompts{n}.jsonl"
                if not inp.exists():
                    write_input(inp, n)
                runs, bares = [], []
                out, store = t / f"out{n}-0.jsonl", t / f"store{n}-0.sqlite"
                done = args.dir and out.exists() and sum(1 for _ in out.open("rb")) == n
                for k in range(0 if done else args.repeat):
                    if args.bare:
                        bares.append(measured([PY, "-c", BARE, url, str(n), str(conc)]))
                    out, store = t / f"out{n}-{k}.jsonl", t / f"store{n}-{k}.sqlite"
                    runs.append(measured(generate_cmd(url, inp, out, store, conc)))
                    lines = sum(1 for _ in out.open("rb"))
                    assert lines == n, (lines, n)
                first = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2] if runs else None
                rerun = measured(generate_cmd(url, inp, out, store, conc))
                assert sum(1 for _ in out.open("rb")) == n
                bare = sorted(bares, key=lambda r: r["wall"])[len(bares) // 2] if bares else None
                rows.append((n, first, rerun, bare, store.stat().st_size))
                print((f"n={n:,}: {first['wall']:.1f} s, peak {first['peak']:.0f} MB;" if first else f"n={n:,}:")
                      + f" rerun {rerun['wall']:.2f} s, peak {rerun['peak']:.0f} MB"
                      + (f"; bare {bare['wall']:.1f} s, peak {bare['peak']:.0f} MB" if bare else ""), flush=True)
        finally:
            server.terminate()
            server.wait()

    print(f"\nconcurrency={conc}, server latency={args.latency * 1000:.0f} ms, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| items | `generate` s | items/s | vs bare loop | peak RSS | RSS at 1/4, 1/2, 3/4, end | rerun s (CPU) |"
          " rerun peak RSS | bare loop s (peak RSS) | CPU per item: `generate`, bare |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r, rr, b, _ in rows:
        if r is None:
            print(f"| {n:,} | - | - | - | - | - | {rr['wall']:.2f} ({rr['cpu']:.2f}) | {rr['peak']:.0f} MB | - | - |")
            continue
        vs = f"{b['wall'] / r['wall']:.2f}x" if b else "-"
        bare = f"{b['wall']:.1f} ({b['peak']:.0f} MB)" if b else "-"
        cpu = f"{r['cpu'] / n * 1000:.3f} ms" + (f", {b['cpu'] / n * 1000:.3f} ms" if b else "")
        print(f"| {n:,} | {r['wall']:.1f} | {n / r['wall']:,.0f} | {vs} | {r['peak']:.0f} MB | {curve(r['samples'])} MB |"
              f" {rr['wall']:.2f} ({rr['cpu']:.2f}) | {rr['peak']:.0f} MB | {bare} | {cpu} |")
    n, r, rr, b, _ = rows[-1]
    print(f"\nbars at n={n:,}: peak RSS < 150 MB:", "-" if r is None else "MET" if r["peak"] < 150 else "NOT MET",
          "| rerun < 10 s:", "MET" if rr["wall"] < 10 else "NOT MET",
          *(("| >= 0.95x bare:", "MET" if b["wall"] / r["wall"] >= 0.95 else "NOT MET") if b and r else ()))


if __name__ == "__main__":
    main()
