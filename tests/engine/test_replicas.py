"""Many replicas of one model behind one endpoint (#13): least-outstanding routing weighted by each
replica's limit, ejection after consecutive failures with retries elsewhere, probing back, affinity
of an item's calls, per-replica and per-endpoint limits, and the replica recorded in the run store."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict

import orjson
import pytest

from dialogforge.engine import Engine
from dialogforge.engine.config import parse_config
from dialogforge.engine.errors import APIConnectionError, ConfigError
from dialogforge.engine.replicas import Replica, ReplicaSet
from dialogforge.testing.fake_server import FakeServer


def _server(tmp_path, name: str, latency: float) -> tuple[subprocess.Popen, str]:
    """A fake server in its own process, so that it can be killed for real."""
    port_file = tmp_path / f"{name}.port"
    proc = subprocess.Popen([sys.executable, "-m", "dialogforge.testing.fake_server", "--latency", str(latency),
                             "--port-file", str(port_file), "--no-keep"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "fake server did not start"
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text()}/v1"


async def test_three_replicas_one_killed_one_ten_times_slower(tmp_path):
    servers = {name: _server(tmp_path, name, lat) for name, lat in (("fast", 0.05), ("slow", 0.5), ("doomed", 0.05))}
    url = {name: u for name, (_, u) in servers.items()}
    try:
        eng = Engine.from_dict({"endpoints": {"vllm": {
            "model": "m", "concurrency": 24, "eject_after": 2, "probe_after": 600, "max_retries": 6, "timeout": 10,
            "replicas": [{"base_url": url["fast"], "concurrency": 8}, {"base_url": url["slow"], "concurrency": 8},
                         url["doomed"]]}}}, store=tmp_path / "s.sqlite")
        finished = 0
        killed_at: list[float] = []

        async def process(item: dict, ctx) -> dict:
            nonlocal finished
            msgs = [{"role": "user", "content": f"question {ctx.item_id}"}]
            first = await ctx.chat(msgs)
            second = await ctx.chat([*msgs, {"role": "assistant", "content": first.text},
                                     {"role": "user", "content": "and then?"}])
            finished += 1
            if finished == 60:
                servers["doomed"][0].send_signal(signal.SIGKILL)  # mid-run, with requests in flight
                killed_at.append(time.time())
            return {"id": ctx.item_id, "text": second.text}

        out = tmp_path / "out.jsonl"
        res = await eng.run(name="replicas", items=[(f"i{n:03d}", {}) for n in range(300)], process=process,
                            output=out, concurrency=24, progress=False)
        await eng.aclose()
    finally:
        for proc, _ in servers.values():
            proc.kill()
            proc.wait()
    assert res.done == 300 and res.failed == 0
    ids = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == [f"i{n:03d}" for n in range(300)]  # every item exactly once

    calls = list(eng.store.calls(res.run_id))
    ok = [c for c in calls if c["error"] is None]
    assert len(ok) == 600 and all(c["replica"] in url.values() for c in calls)
    answered = Counter(c["replica"] for c in ok)
    # the slow replica gets proportionally less (ideal 1/10 of the fast one's work), but some
    print({n: answered[u] for n, u in url.items()})
    assert 0 < answered[url["slow"]] < answered[url["fast"]] / 3, answered
    # the dead one answers nothing after its death; it was tried only by requests in flight when it died and
    # until it was ejected (its limit, 24 by default here, plus eject_after), all retried elsewhere
    late = [c for c in calls if c["replica"] == url["doomed"] and c["created_at"] > killed_at[0] + 0.5]
    assert not [c for c in late if c["error"] is None]
    failed_on_doomed = [c for c in calls if c["replica"] == url["doomed"] and c["error"]]
    assert 1 <= len(failed_on_doomed) <= 24 + 2, len(failed_on_doomed)
    # an item's calls stay on one replica while it is healthy
    by_item: dict[str, list[dict]] = defaultdict(list)
    for c in calls:
        by_item[c["item_id"]].append(c)
    stable = [cs for cs in by_item.values() if url["doomed"] not in {c["replica"] for c in cs}]
    assert stable and all(len({c["replica"] for c in cs}) == 1 for cs in stable)


class _Flaky:
    """A backend stand-in for the routing rules: fails while `down`."""

    name = "flaky"

    def __init__(self) -> None:
        self.down = False

    async def complete(self, body, *, api_key=None, timeout=None, payload=None):
        if self.down:
            raise APIConnectionError("connection refused")
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}

    async def list_models(self, *, api_key=None, timeout=10.0):
        return None

    async def aclose(self):
        pass


def test_routing_weights_by_limit_ejects_and_probes_back(monkeypatch):
    a, b = Replica("a", _Flaky(), 30), Replica("b", _Flaky(), 10)
    rs = ReplicaSet([a, b], eject_after=2, probe_after=5.0)
    picks = Counter()
    for _ in range(40):  # nothing finishes: outstanding grows; the bigger limit takes 3x the work
        r = rs.pick(None)
        r.outstanding += 1
        picks[r.url] += 1
    assert picks == {"a": 30, "b": 10}
    a.outstanding = b.outstanding = 0
    err = APIConnectionError("refused")
    assert rs.failed(a, err) and a.healthy  # one failure: still in rotation; b can take the retry
    assert rs.failed(a, err) and not a.healthy  # two in a row: out
    assert {rs.pick(None).url for _ in range(5)} == {"b"}
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)  # probe time
    assert rs.pick(None) is a and a.probing  # one probe request goes to a ...
    assert rs.pick(None) is b  # ... and only one
    rs.succeeded(a)
    assert a.healthy and not a.probing and a.failures == 0


def test_affinity_keeps_an_item_on_its_replica_while_healthy():
    a, b = Replica("a", _Flaky(), 4), Replica("b", _Flaky(), 4)
    rs = ReplicaSet([a, b], eject_after=1, probe_after=60)
    first = rs.pick("item-1")
    first.outstanding += 3  # busier than the other one now
    assert rs.pick("item-1") is first  # still sticky: the server has the item's prefix cached
    rs.failed(first, APIConnectionError("down"))
    other = rs.pick("item-1")
    assert other is not first and rs.pick("item-1") is other


async def _peaks(eng: Engine, calls) -> Counter:
    r1, r2 = eng.llm("generator").replicas.replicas
    peak: Counter = Counter()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            a, b = r1.gate.in_flight, r2.gate.in_flight
            peak["r1"], peak["r2"], peak["all"] = max(peak["r1"], a), max(peak["r2"], b), max(peak["all"], a + b)
            await asyncio.sleep(0.002)
    w = asyncio.create_task(watch())
    await asyncio.gather(*calls)
    stop.set()
    await w
    return peak


async def test_per_replica_and_per_endpoint_limits_both_hold(tmp_path):
    async with FakeServer(latency=0.05) as s1, FakeServer(latency=0.05) as s2:
        def engine(c1: int, c2: int, store: str) -> Engine:
            return Engine.from_dict({"endpoints": {"e": {"model": "m", "concurrency": 5, "replicas": [
                {"base_url": s1.base_url, "concurrency": c1}, {"base_url": s2.base_url, "concurrency": c2}]}}},
                store=tmp_path / store)
        eng = engine(10, 10, "a.sqlite")
        peak = await _peaks(eng, [eng.chat([{"role": "user", "content": f"q{n}"}]) for n in range(40)])
        await eng.aclose()
        assert peak["all"] == 5 and peak["r1"] >= 2 and peak["r2"] >= 2  # the endpoint's 5 over both replicas
        eng = engine(2, 10, "b.sqlite")
        llm = eng.llm("generator")
        # one item's calls stick to one replica; there its own limit (2) holds although the endpoint allows 5
        r1 = llm.replicas.replicas[0]
        llm.replicas._affinity["one"] = r1  # the item's first call went to replica 1
        peak = await _peaks(eng, [llm.chat([{"role": "user", "content": f"q{n}"}], item_id="one") for n in range(12)])
        await eng.aclose()
        assert peak["r1"] == 2 and peak["r2"] == 0


def test_replicas_config():
    cfg = parse_config({"endpoints": {"e": {"model": "m", "replicas": ["http://a/v1", {"base_url": "http://b/v1",
                                                                                        "concurrency": 4}]}}})
    ep = cfg.endpoints["e"]
    assert ep.backend == "openai" and [r.base_url for r in ep.replica_list()] == ["http://a/v1", "http://b/v1"]
    with pytest.raises(ConfigError, match="base_url .* or replicas"):
        parse_config({"endpoints": {"e": {"model": "m", "base_url": "http://a/v1", "replicas": ["http://b/v1"]}}})


async def test_preflight_goes_on_without_a_dead_replica_and_fails_when_none_answers(tmp_path):
    async with FakeServer(models=["m"]) as live:
        eng = Engine.from_dict({"endpoints": {"e": {"model": "m", "replicas": [live.base_url, "http://127.0.0.1:9/v1"]}}},
                               store=tmp_path / "s.sqlite")
        await eng.preflight(["generator"])
        live_r, dead_r = eng.llm("generator").replicas.replicas
        assert live_r.healthy and not dead_r.healthy
        await eng.aclose()
    eng = Engine.from_dict({"endpoints": {"e": {"model": "m", "replicas": ["http://127.0.0.1:9/v1",
                                                                         "http://127.0.0.1:7/v1"]}}},
                           store=tmp_path / "s2.sqlite")
    with pytest.raises(ConfigError, match="none of its 2 servers answers"):
        await eng.preflight(["generator"])
    await eng.aclose()


async def test_requests_in_flight_on_an_ejected_replica_are_retried_elsewhere_at_once(tmp_path):
    async with FakeServer(latency=5.0) as stuck, FakeServer(latency=0.01) as good:
        stuck.inject(status=500, count=2)  # its first two answers are errors, the others hang for 5 s
        eng = Engine.from_dict({"endpoints": {"e": {"model": "m", "eject_after": 2, "probe_after": 600, "timeout": 30,
                                                    "replicas": [stuck.base_url, good.base_url]}}},
                               store=tmp_path / "s.sqlite")
        t0 = time.monotonic()
        out = await asyncio.gather(*(eng.chat([{"role": "user", "content": f"q{n}"}]) for n in range(20)))
        took = time.monotonic() - t0
        await eng.aclose()
    assert len(out) == 20 and all(r.text for r in out)
    assert took < 2.5, took  # nobody waited for the stuck replica's 5 s
    assert stuck.count > 2  # requests were in flight there when it was ejected


def test_ray_workers_share_each_replicas_limit_too():
    from dialogforge.engine.executors.ray_executor import share_config
    cfg = parse_config({"endpoints": {"e": {"model": "m", "concurrency": 16, "replicas": [
        {"base_url": "http://a/v1", "concurrency": 8}, "http://b/v1"]}}})
    part = share_config(cfg, 2).endpoints["e"]
    assert part.concurrency == 8 and [r.concurrency for r in part.replicas] == [4, None]
    assert [r.base_url for r in part.replica_list()] == ["http://a/v1", "http://b/v1"]
