"""Backends: one protocol, a registry with entry points loaded lazily, preflight through the protocol,
and an endpoint whose server does not answer (5xx included) stops the run before it starts (#8)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dialogforge.engine import Engine
from dialogforge.engine.config import parse_config
from dialogforge.engine.errors import ConfigError
from dialogforge.testing.fake_server import FakeServer

PLUGIN = '''
class EchoBackend:
    """A plugin backend: answers with the last message reversed; lists two models."""
    name = "echo"
    seen_keys = []

    def __init__(self, prefix):
        self.prefix = prefix

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.params.get("prefix", ""))

    async def complete(self, body, *, api_key=None, timeout=None, payload=None):
        text = self.prefix + body["messages"][-1]["content"][::-1]
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    async def list_models(self, *, api_key=None, timeout=10.0):
        EchoBackend.seen_keys.append(api_key)
        return ["echo-1", "echo-2"]

    async def aclose(self):
        pass
'''


def _plugin_package(tmp_path) -> str:
    """An installed-looking plugin package: a module plus a dist-info declaring the entry point."""
    (tmp_path / "echo_plugin.py").write_text(PLUGIN)
    di = tmp_path / "echo_plugin-0.1.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n")
    (di / "entry_points.txt").write_text("[dialogforge.backends]\necho = echo_plugin:EchoBackend\n")
    return str(tmp_path)


def _run(code: str, path: str, tmp_path) -> subprocess.CompletedProcess:
    import os
    env = {**os.environ, "PYTHONPATH": path, "ECHO_KEY": "k-echo"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def test_a_plugin_backend_comes_from_an_entry_point_and_loads_only_when_used(tmp_path):
    path = _plugin_package(tmp_path)
    r = _run('''
        import asyncio, sys
        from dialogforge.engine import Engine
        eng = Engine.from_dict({"endpoints": {"e": {"backend": "echo", "model": "echo-2", "api_key_env": "ECHO_KEY",
                                                    "params": {"prefix": ">"}}}}, store="s.sqlite")
        assert "echo_plugin" not in sys.modules, "loaded before use"
        assert "dialogforge.engine.backends.embedded" not in sys.modules
        assert "dialogforge.engine.backends.remote" not in sys.modules
        async def main():
            await eng.preflight(["generator"])
            r = await eng.chat([{"role": "user", "content": "abc"}])
            await eng.aclose()
            return r.text
        print(asyncio.run(main()))
        import echo_plugin
        print(echo_plugin.EchoBackend.seen_keys)
    ''', path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == [">cba", "['k-echo']"]  # the key reached list_models through the protocol


def test_preflight_asks_a_plugin_backend_for_its_models(tmp_path):
    path = _plugin_package(tmp_path)
    r = _run('''
        import asyncio
        from dialogforge.engine import Engine
        eng = Engine.from_dict({"endpoints": {"e": {"backend": "echo", "model": "echo-9"}}}, store="s.sqlite")
        asyncio.run(eng.preflight(["generator"]))
    ''', path, tmp_path)
    assert r.returncode != 0 and "does not serve model 'echo-9'; it serves: echo-1, echo-2" in r.stderr


def test_an_unknown_backend_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"endpoints.e.backend.*unknown backend 'ecko' \(known: embedded, openai"):
        parse_config({"endpoints": {"e": {"backend": "ecko"}}})


def test_the_client_does_not_inspect_signatures():
    import inspect

    import dialogforge.engine.client as client
    assert "inspect" not in inspect.getsource(client)
    from dialogforge.engine.backends import Backend
    from dialogforge.engine.backends.embedded import EmbeddedBackend
    from dialogforge.engine.backends.remote import RemoteBackend
    for cls in (EmbeddedBackend, RemoteBackend):  # both implement the whole protocol, same signatures
        for name in ("from_config", "complete", "list_models", "aclose"):
            assert inspect.signature(getattr(cls, name)).parameters.keys() == \
                inspect.signature(getattr(Backend, name)).parameters.keys(), (cls, name)


def _engine(srv: FakeServer, tmp_path, **ep) -> Engine:
    return Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m", **ep}}},
                            store=tmp_path / "s.sqlite")


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_answering_5xx_fails_the_run_before_it_starts(tmp_path, status):
    async with FakeServer(models=["m"]) as srv:
        srv.models_status = status
        eng = _engine(srv, tmp_path)

        async def process(item, ctx):
            return {"r": (await ctx.chat([{"role": "user", "content": "x"}])).text}
        with pytest.raises(ConfigError, match=rf"endpoint 'main' \({srv.base_url}\) answers with an error \(HTTP {status}\)"):
            await eng.run(name="t", items=[("a", {})], process=process, output=tmp_path / "o.jsonl", progress=False)
        await eng.aclose()
        assert srv.count == 0 and not (tmp_path / "o.jsonl").exists()


async def test_a_server_without_a_model_list_passes(tmp_path):
    async with FakeServer(models=None) as srv:  # GET /models -> 404
        eng = _engine(srv, tmp_path)
        await eng.preflight(["generator"])
        await eng.aclose()


async def test_every_configured_key_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("K_GOOD", "sk-good")
    monkeypatch.setenv("K_BAD", "sk-bad")
    async with FakeServer(models=["m"], api_keys={"sk-good"}) as srv:
        eng = _engine(srv, tmp_path, api_key_env=["K_GOOD", "K_BAD"])
        with pytest.raises(ConfigError, match="the API key was rejected"):
            await eng.preflight(["generator"])
        await eng.aclose()
        assert "sk-bad" not in str(srv.keys_seen)  # /models is not counted; the key never reached a chat call


async def test_a_server_that_warms_up_gets_one_more_try(tmp_path):
    from dialogforge.engine import preflight
    async with FakeServer(models=["m"]) as srv:
        srv.models_status = 503
        eng = _engine(srv, tmp_path)

        async def recover():
            await __import__("asyncio").sleep(preflight.RETRY_DELAY / 2)
            srv.models_status = None
        import asyncio
        task = asyncio.create_task(recover())
        await eng.preflight(["generator"])
        await task
        await eng.aclose()
