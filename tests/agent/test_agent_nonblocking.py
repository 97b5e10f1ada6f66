"""The agent never blocks its own event loop; environments load from a registry; close failures are reported;
tasks that cannot be scored stop the run before the first model call."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from agent_helpers import EXAMPLES, FAST_ENV, read_jsonl, short_shell_responder
from dialogforge.engine import Engine
from dialogforge.engine.errors import ConfigError
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks, parse_agent_config, run_agent
from dialogforge.workflows.agent.envs import local
from dialogforge.workflows.agent.envs.local import LocalEnvironment
from dialogforge.workflows.agent.tasks import Task


def make_engine(srv, tmp_path):
    return Engine.from_dict({"endpoints": {"gen": {"base_url": srv.base_url, "model": "scripted"}},
                             "roles": {"agent": "gen", "summary": "gen"}}, store=tmp_path / "store.sqlite")


def cfg(**over):
    raw = {"repeats": 1, "concurrency": 2, "temperature": 0.0, "max_tokens": 300, "limits": {"step_limit": 4},
           "environment": {"type": "local", "timeout": 30, "eval_timeout": 60, "env": FAST_ENV}}
    raw.update(over)
    return parse_agent_config(raw)


async def test_a_slow_workspace_copy_does_not_delay_another_rollouts_calls(tmp_path, monkeypatch):
    """One rollout's workspace copy blocks until the other rollout's model call has arrived (at most 30 s):
    copying on the event loop would stall that call for the whole 30 s; off the loop it arrives meanwhile."""
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id in ("dedupe-speed", "median-fix")]
    slow_ws = next(t.workspace for t in tasks if t.id == "dedupe-speed")
    other_called = threading.Event()
    window: dict[str, float] = {}
    real_copy = local.copy_tree

    def slow_copy(src, dst, **kw):
        if str(src) == slow_ws and "start" not in window:  # a huge workspace: blocking file work
            window["start"] = time.monotonic()
            window["saw_other_call"] = other_called.wait(30)
            window["end"] = time.monotonic()
        real_copy(src, dst, **kw)

    monkeypatch.setattr(local, "copy_tree", slow_copy)

    def responder(body):
        if "median" in body["messages"][1]["content"]:
            other_called.set()
        return short_shell_responder(body)

    async with FakeServer(responder=responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            res = await run_agent(engine, cfg(), tasks, tmp_path / "out", progress=False)
    assert res.rounds[1].done == 2
    assert window["saw_other_call"], "the other rollout made no call while the copy ran"
    assert window["end"] - window["start"] < 25


class CloseFails(LocalEnvironment):
    async def close(self) -> None:
        held = self.root is not None
        await super().close()
        if held:
            raise RuntimeError("the sandbox folder vanished")


async def test_environment_close_failures_are_logged_and_recorded(tmp_path, caplog):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    c = cfg(environment={"type": f"{__name__}:CloseFails", "timeout": 30, "env": FAST_ENV})
    async with FakeServer(responder=short_shell_responder) as srv:
        engine = make_engine(srv, tmp_path)
        with caplog.at_level(logging.WARNING):
            async with engine:
                await run_agent(engine, c, tasks, tmp_path / "out", progress=False)
    [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
    assert traj["status"] == "submitted" and traj["close_error"] == "RuntimeError: the sandbox folder vanished"
    assert any("closing the environment failed" in r.getMessage() and "median-fix" in r.getMessage()
               for r in caplog.records)


def test_environment_registry_has_no_import_circle():
    code = ("import sys; import dialogforge.workflows.agent.envs.base as b; "
            "print(sorted(m for m in sys.modules if m.startswith('dialogforge.workflows.agent.envs.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(r.stdout)
    assert "dialogforge.workflows.agent.envs.base" in loaded
    assert not {"dialogforge.workflows.agent.envs.local", "dialogforge.workflows.agent.envs.docker"} & set(loaded)
    from dialogforge.workflows.agent.envs import ENVIRONMENTS, environment_class
    from dialogforge.workflows.agent.envs.docker import DockerEnvironment
    assert environment_class("local") is LocalEnvironment and environment_class("docker") is DockerEnvironment
    assert set(ENVIRONMENTS) == {"local", "docker"}
    with pytest.raises(ConfigError, match="neither one of docker, local nor 'package.module:Class'"):
        environment_class("podman")


async def test_a_task_without_evaluation_fails_before_the_first_model_call(tmp_path):
    tasks = [Task(id="scored", problem_statement="p", eval_command="true"),
             Task(id="unscored-7", problem_statement="p")]
    async with FakeServer(responder=short_shell_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            with pytest.raises(ConfigError) as e:
                await run_agent(engine, cfg(), tasks, tmp_path / "out", progress=False)
        assert not srv.requests
    assert str(e.value).startswith("task unscored-7: no eval_command or evaluator") and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


async def test_a_round_rerun_with_other_settings_is_refused_unless_continued(tmp_path):
    from dialogforge.engine import RunChanged
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    async with FakeServer(responder=short_shell_responder) as srv:
        engine = make_engine(srv, tmp_path)
        async with engine:
            await run_agent(engine, cfg(), tasks, tmp_path / "out", progress=False)
            # concurrency and limits do not shape the outputs: the same run, nothing redone
            same = await run_agent(engine, cfg(concurrency=1, limits={"step_limit": 9}), tasks, tmp_path / "out",
                                   progress=False)
            assert same.rounds[1].done == 0 and same.rounds[1].skipped == 1
            with pytest.raises(RunChanged, match="temperature"):
                await run_agent(engine, cfg(temperature=0.9), tasks, tmp_path / "out", progress=False)
            changed = [Task(**{**tasks[0].to_dict(), "eval_command": "true"})]
            with pytest.raises(RunChanged, match="tasks"):
                await run_agent(engine, cfg(), changed, tmp_path / "out", progress=False)
            with pytest.raises(RunChanged, match="environment.network"):
                await run_agent(engine, cfg(environment={"network": True, "env": FAST_ENV}), tasks, tmp_path / "out",
                                progress=False)
            cont = await run_agent(engine, cfg(temperature=0.9), tasks, tmp_path / "out", progress=False,
                                   continue_=True)
            assert cont.rounds[1].done == 0
        assert len(srv.requests) == 2  # one rollout's two calls, never repeated
