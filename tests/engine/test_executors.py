"""The executor interface without Ray: shippable per-item functions and the workers' share of the limits."""
from __future__ import annotations

import pickle

import pytest

from dialogforge.engine import ConfigError, Engine, Shippable, make_executor
from dialogforge.engine.config import parse_config
from dialogforge.engine.executors.ray_executor import share_config
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.generate import GenerateOptions, make_process

built: list[int] = []


def counting_factory(tag: str):
    built.append(1)

    async def process(item, ctx):
        r = await ctx.chat([{"role": "user", "content": f"{tag} {item['prompt']}"}])
        return {"id": ctx.item_id, "text": r.text}
    return process


def test_shippable_pickles_without_its_built_function_and_builds_once():
    s = Shippable(make_process, (GenerateOptions(n=2, system="Be brief."),))
    fn = s.build()
    assert s.build() is fn
    copy = pickle.loads(pickle.dumps(s))  # what Ray ships: factory + plain arguments
    assert copy._built is None and copy.args[0].system == "Be brief." and copy.build() is not fn


async def test_local_executor_runs_a_shippable_once_built(tmp_path):
    built.clear()
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(f'{{"id": "p{i}", "prompt": "q{i}"}}\n' for i in range(5)))
    from dialogforge.engine import read_items
    async with FakeServer() as srv:
        eng = Engine.from_dict({"endpoints": {"m": {"base_url": srv.base_url, "model": "m"}}}, store=tmp_path / "s.db")
        res = await eng.run(name="t", items=read_items(inp), process=Shippable(counting_factory, ("tag",)),
                            output=tmp_path / "out.jsonl", progress=False)
        await eng.aclose()
    assert res.done == 5 and built == [1]


def test_each_worker_gets_an_equal_share_of_every_limit():
    cfg = parse_config({"endpoints": {"a": {"base_url": "http://x/v1", "model": "m", "concurrency": 9, "rpm": 600,
                                            "tpm": 90000},
                                      "b": {"base_url": "http://y/v1", "model": "n"}},
                        "concurrency": 100})
    part = share_config(cfg, 4)
    a, b = part.endpoints["a"], part.endpoints["b"]
    assert (a.concurrency, a.rpm, a.tpm) == (3, 150, 22500)  # concurrency rounds up: no worker gets 0
    assert (b.concurrency, b.rpm, b.tpm) == (None, None, None) and part.concurrency == 25
    assert cfg.endpoints["a"].concurrency == 9  # the driver's config is untouched


def test_unknown_executor_and_options_are_refused():
    with pytest.raises(ConfigError, match="unknown executor"):
        make_executor("spark")
    with pytest.raises(ConfigError, match="takes no options"):
        make_executor("local", address="x")
