"""Engine throughput against bare loops on the same local test server, in one run.

    .venv/bin/python benchmarks/engine_throughput.py [--n 5000] [--concurrency 256] [--latency 0.1]

Starts the fake OpenAI-compatible server in its own process (100 ms per request), then runs,
each in a fresh process so CPU time is measured per client:
  1. a bare aiohttp + semaphore loop (the bar),
  2. a bare openai.AsyncOpenAI loop (for reference),
  3. `dialogforge generate` through the Python API (run store, cache, output file included),
  4. the same command again over the finished items (all cached; whole CLI process timed).
Client CPU per item is user+sys CPU of the client process during the run, divided by N.

Whole process, as a user times it (`--whole`, or `--whole-only` for just this part): the bare aiohttp
script run as `python bare.py ...` and `dialogforge generate ... -o OUT` (the console script: imports,
preflight, run store, input and output files), each timed from start to exit, interleaved, medians.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

BARE_AIOHTTP = r'''
import asyncio, json, sys, time, resource, aiohttp, orjson
url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
async def main():
    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        async def one(i):
            async with sem:
                body = {"model": "bench", "messages": [{"role": "user", "content": f"prompt number {i}"}], "max_tokens": 32}
                async with s.post(url + "/chat/completions", data=orjson.dumps(body), headers={"Content-Type": "application/json"}) as r:
                    out = orjson.loads(await r.read())
                    return out["choices"][0]["message"]["content"]
        c0, t0 = cpu(), time.perf_counter()
        res = await asyncio.gather(*(one(i) for i in range(n)))
        t1, c1 = time.perf_counter(), cpu()
    assert len(res) == n
    print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0}))
if len(sys.argv) > 4 and sys.argv[4] == "uvloop":
    import uvloop; uvloop.install()
asyncio.run(main())
'''

BARE_OPENAI = r'''
import asyncio, json, sys, time, resource, openai
url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
async def main():
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    sem = asyncio.Semaphore(conc)
    async def one(i):
        async with sem:
            r = await client.chat.completions.create(model="bench", messages=[{"role": "user", "content": f"prompt number {i}"}], max_tokens=32)
            return r.choices[0].message.content
    c0, t0 = cpu(), time.perf_counter()
    res = await asyncio.gather(*(one(i) for i in range(n)))
    t1, c1 = time.perf_counter(), cpu()
    assert len(res) == n
    print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0}))
if len(sys.argv) > 4 and sys.argv[4] == "uvloop":
    import uvloop; uvloop.install()
asyncio.run(main())
'''

ENGINE = r'''
import asyncio, json, sys, time, resource
from dialogforge.engine import Engine
import dialogforge.engine.backends.remote  # aiohttp, imported before the clock starts as in the bare loop
from dialogforge.workflows.generate import GenerateOptions, generate
url, n, conc, inp, out, store = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
async def main():
    eng = Engine.from_dict({"endpoints": {"bench": {"base_url": url, "model": "bench", "concurrency": conc}},
                            "concurrency": conc}, store=store)
    c0, t0 = cpu(), time.perf_counter()
    res = await generate(eng, inp, out, GenerateOptions(params={"max_tokens": 32}), concurrency=conc, progress=False)
    t1, c1 = time.perf_counter(), cpu()
    await eng.aclose()
    assert res.done == n, res
    print(json.dumps({"wall": t1 - t0, "cpu": c1 - c0}))
from dialogforge.engine.loop import install_fast_loop
install_fast_loop()
asyncio.run(main())
'''


def run_client(code: str, *args: str) -> dict:
    out = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _timed(cmd: list[str]) -> tuple[float, float]:
    """Seconds from start to exit, and the process's CPU (user + sys) over its whole life."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read() if p.stderr else b""
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status:
        raise SystemExit(f"{cmd[0]} failed ({status}): {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def whole_process(t: Path, url: str, inp: Path, n: int, conc: int, repeat: int) -> dict[str, list[tuple[float, float]]]:
    """(seconds start to exit, CPU seconds) of the bare script and of the `dialogforge generate` process, interleaved."""
    bare_py = t / "bare_aiohttp.py"
    bare_py.write_text(BARE_AIOHTTP)
    cli = str(Path(PY).parent / "dialogforge")
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "cli": []}
    for k in range(repeat):
        times["bare"].append(_timed([PY, str(bare_py), url, str(n), str(conc), "uvloop"]))
        times["cli"].append(_timed([cli, "generate", str(inp), "-o", str(t / f"whole{k}.jsonl"), "--base-url", url,
                                    "--model", "bench", "--store", str(t / f"whole{k}.sqlite"), "-q", "--max-tokens",
                                    "32", "-j", str(conc)]))
    return times


def print_whole(times: dict[str, list[tuple[float, float]]], n: int, conc: int, latency: float) -> None:
    med = {k: sorted(w for w, _ in v)[len(v) // 2] for k, v in times.items()}
    cpu = {k: sorted(c for _, c in v)[len(v) // 2] for k, v in times.items()}
    print(f"\nWhole process, start to exit: N={n}, concurrency={conc}, server latency={latency * 1000:.0f} ms, "
          f"{len(times['bare'])} interleaved runs each, medians (all runs in brackets); load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| process | seconds | items/s | vs bare aiohttp script | process CPU |")
    print("|---|---:|---:|---:|---:|")
    for name, key in (("bare aiohttp script (uvloop)", "bare"), ("`dialogforge generate` (CLI)", "cli")):
        runs = ", ".join(f"{w:.2f}" for w, _ in times[key])
        print(f"| {name} | {med[key]:.2f} ({runs}) | {n / med[key]:,.0f} | {med['bare'] / med[key]:.2f}x "
              f"| {cpu[key]:.2f} s |")
    print("bar (>= 0.95x the bare script's items/s):", "MET" if med["bare"] / med["cli"] >= 0.95 else "NOT MET")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the bare loop and the engine (interleaved); medians")
    ap.add_argument("--whole", action="store_true", help="also time both as whole processes, start to exit")
    ap.add_argument("--whole-only", action="store_true", help="only the whole-process comparison")
    args = ap.parse_args()
    n, conc = args.n, args.concurrency

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        port_file = t / "port"
        server = subprocess.Popen([PY, "-m", "dialogforge.testing.fake_server", "--port", "0", "--latency",
                                   str(args.latency), "--port-file", str(port_file), "--no-keep"],
                                  stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if port_file.exists():
                    break
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port_file.read_text()}/v1"
            inp = t / "prompts.jsonl"
            with inp.open("w") as f:
                for i in range(n):
                    f.write(json.dumps({"id": f"p{i}", "prompt": f"prompt number {i}"}) + "\n")
            run_client(BARE_AIOHTTP, url, "500", str(conc))  # warm the server up
            if args.whole or args.whole_only:
                whole = whole_process(t, url, inp, n, conc, args.repeat)
                print_whole(whole, n, conc, args.latency)
                if args.whole_only:
                    return

            def median(rs):
                rs = sorted(rs, key=lambda r: r["wall"])
                return rs[len(rs) // 2]

            counter = iter(range(1000))

            def engine_run():
                k = next(counter)
                return run_client(ENGINE, url, str(n), str(conc), str(inp), str(t / f"out{k}.jsonl"), str(t / f"store{k}.sqlite"))

            # the bar pair is interleaved so that load from anything else on the machine hits both alike
            bare, ours = [], []
            for _ in range(args.repeat):
                bare.append(run_client(BARE_AIOHTTP, url, str(n), str(conc), "uvloop"))
                ours.append(engine_run())
            rows = {}
            rows["bare aiohttp + semaphore (uvloop)"] = median(bare)
            rows["bare aiohttp + semaphore (asyncio)"] = run_client(BARE_AIOHTTP, url, str(n), str(conc))
            rows["bare openai.AsyncOpenAI (uvloop)"] = run_client(BARE_OPENAI, url, str(n), str(conc), "uvloop")
            rows["dialogforge generate (API, run store)"] = median(ours)
            # second run over the same finished items, whole CLI process, same store and output
            last = next(counter) - 1
            t0 = time.perf_counter()
            subprocess.run([str(Path(PY).parent / "dialogforge"), "generate", str(inp), "-o", str(t / f"out{last}.jsonl"),
                            "--base-url", url, "--model", "bench", "--store", str(t / f"store{last}.sqlite"), "-q",
                            "--max-tokens", "32", "-j", str(conc)], check=True, capture_output=True)
            rerun = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait()

    base = rows["bare aiohttp + semaphore (uvloop)"]
    print(f"\nN={n}, concurrency={conc}, server latency={args.latency * 1000:.0f} ms, {os.cpu_count()} cores\n")
    print("| client | items/s | vs bare aiohttp (uvloop) | client CPU per item |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        ips = n / r["wall"]
        print(f"| {name} | {ips:,.0f} | {ips / (n / base['wall']):.2f}x | {r['cpu'] / n * 1000:.2f} ms |")
    print(f"\nsecond run over the finished items (CLI process, start to exit): {rerun:.2f} s")
    eng = rows["dialogforge generate (API, run store)"]
    ok = (n / eng["wall"]) >= 0.9 * (n / base["wall"]) and eng["cpu"] / n * 1000 <= 1.0 and rerun < 5
    print("bar (>=0.9x bare items/s, <=1.0 ms CPU/item, rerun < 5 s):", "MET" if ok else "NOT MET")


if __name__ == "__main__":
    main()
