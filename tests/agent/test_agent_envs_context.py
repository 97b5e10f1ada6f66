"""The local sandbox, custom/docker environments, and context management."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent_helpers import EXAMPLES, FAST_ENV
from dialogforge.engine.errors import ConfigError
from dialogforge.workflows.agent.config import EnvironmentConfig, parse_agent_config
from dialogforge.workflows.agent.context import MESSAGE_OVERHEAD, ContextManager, TokenCounter, cut_middle
from dialogforge.workflows.agent.envs import (Environment, EnvError, EvalResult, ExecResult, make_environment,
                                                   parse_eval_output)
from dialogforge.workflows.agent.envs.docker import docker_available
from dialogforge.workflows.agent.envs.local import LocalEnvironment
from dialogforge.workflows.agent.prompts import agent_prompts
from dialogforge.workflows.agent.tasks import Task, load_tasks


def median_task():
    return next(t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix")


async def test_local_env_sandbox_diff_protected_and_eval(tmp_path):
    task = median_task()
    env = LocalEnvironment(EnvironmentConfig(timeout=5, output_cap=2000, env=FAST_ENV), task)
    await env.reset()
    root = env.root
    try:
        r = await env.execute("pwd; ls; echo $HOME; env | sort | cut -d= -f1 | tr '\\n' ' '")
        assert r.returncode == 0
        assert str(env.workdir) in r.output and "stats.py" in r.output
        names = set(r.output.strip().splitlines()[-1].split())
        assert names <= {"PATH", "HOME", "LANG", "PAGER", "GIT_PAGER", "PYTHONDONTWRITEBYTECODE", "PWD", "SHLVL", "_", "OLDPWD"}
        assert str(root / "home") in r.output
        # the source workspace is never touched
        await env.execute("echo '# agent was here' >> stats.py && echo 'x' > new_file.txt && rm tests/test_stats.py")
        assert "# agent was here" not in (Path(task.workspace) / "stats.py").read_text()
        d = await env.diff()
        assert "+# agent was here" in d and "new_file.txt" in d and "deleted file mode" in d
        # evaluation restores the protected tests first: they still fail for the unfixed median
        ev = await env.evaluate()
        assert ev.success is False and ev.metrics == {"tests_passed": False}
        assert (env.workdir / "tests" / "test_stats.py").is_file()
        # timeout kills the whole process group; the output cap keeps the head
        t = await env.execute("sleep 30 & sleep 30; echo never", timeout=0.5)
        assert t.timed_out and t.returncode is None and "never" not in t.output and t.duration < 5
        big = await env.execute("head -c 100000 /dev/zero | tr '\\0' 'a'")
        assert big.truncated and big.output.startswith("a" * 2000) and "more bytes not kept" in big.output
        fail = await env.execute("exit 3")
        assert fail.returncode == 3
    finally:
        await env.close()
    assert not root.exists()


async def test_local_env_fix_passes_and_reset_errors(tmp_path):
    task = median_task()
    env = LocalEnvironment(EnvironmentConfig(env=FAST_ENV), task)
    await env.reset()
    try:
        await env.execute("python3 - <<'EOF'\nimport re\ns = open('stats.py').read()\n"
                          "s = s.replace('    return ordered[mid]\\n', '    if len(ordered) % 2 == 0:\\n"
                          "        return (ordered[mid - 1] + ordered[mid]) / 2\\n    return ordered[mid]\\n')\n"
                          "open('stats.py', 'w').write(s)\nEOF")
        ev = await env.evaluate()
        assert ev.success is True and ev.status == "ok"
    finally:
        await env.close()
    bad = LocalEnvironment(EnvironmentConfig(), Task(id="x", problem_statement="p", workspace=str(tmp_path / "nope")))
    with pytest.raises(EnvError, match="is not a folder"):
        await bad.reset()
    await bad.close()
    failing_setup = LocalEnvironment(EnvironmentConfig(), Task(id="y", problem_statement="p", setup_command="exit 4"))
    with pytest.raises(EnvError, match=r"setup command failed \(4\)"):
        await failing_setup.reset()
    await failing_setup.close()
    no_eval = LocalEnvironment(EnvironmentConfig(), Task(id="z", problem_statement="p"))
    await no_eval.reset()
    with pytest.raises(EnvError, match="neither eval_command nor evaluator"):
        await no_eval.evaluate()
    await no_eval.close()


def test_eval_output_protocol():
    r = parse_eval_output(ExecResult(1, 'noise\n{"success": true, "speedup": 2.5, "reward": 0.9}\n'))
    assert r.success is True and r.metrics == {"speedup": 2.5} and r.reward == 0.9
    assert parse_eval_output(ExecResult(0, "all good")).success is True
    assert parse_eval_output(ExecResult(2, "FAILED")).success is False
    t = parse_eval_output(ExecResult(None, "", timed_out=True))
    assert t.success is False and t.status == "ok" and "timed out" in t.details["reason"]


class RemoteEvalEnv(Environment):
    """A custom environment as users write them: here a fake remote evaluation service."""
    calls: list = []

    async def reset(self):
        RemoteEvalEnv.calls.append(("reset", self.task.id, self.config.options.get("url")))

    async def execute(self, command, timeout=None):
        return ExecResult(0, f"ran {command}")

    async def evaluate(self):
        return EvalResult(success=True, metrics={"speedup": 1.5})


def test_custom_environment_by_import_path():
    cfg = EnvironmentConfig(type=f"{__name__}:RemoteEvalEnv", options={"url": "http://eval"})
    env = make_environment(cfg, Task(id="k1", problem_statement="p"))
    assert isinstance(env, RemoteEvalEnv)
    with pytest.raises(ConfigError, match="cannot import module 'no_such_mod'"):
        make_environment(EnvironmentConfig(type="no_such_mod:X"), Task(id="k", problem_statement="p"))
    with pytest.raises(ConfigError, match="has no attribute 'Nope'"):
        make_environment(EnvironmentConfig(type=f"{__name__}:Nope"), Task(id="k", problem_statement="p"))
    with pytest.raises(ConfigError, match="not a subclass"):
        make_environment(EnvironmentConfig(type=f"{__name__}:median_task"), Task(id="k", problem_statement="p"))


@pytest.mark.skipif(not docker_available(), reason="no docker daemon")
async def test_docker_environment(tmp_path):
    task = median_task()
    task.image = os.environ.get("DF_TEST_DOCKER_IMAGE", "python:3.11-slim")
    env = make_environment(EnvironmentConfig(type="docker", timeout=20), task)
    try:
        await env.reset()
        r = await env.execute("ls")
        assert "stats.py" in r.output
    finally:
        await env.close()


# -- context management -------------------------------------------------------------------------
def test_cut_middle_and_byte_counter():
    text, cut = cut_middle("A" * 50 + "B" * 100 + "C" * 50, 100)
    assert cut and text.startswith("A" * 50) and text.endswith("C" * 50) and "100 characters elided" in text
    assert cut_middle("short", 100) == ("short", False)
    tc = TokenCounter(parse_agent_config({}).context.tokenizer)
    assert tc.kind == "bytes" and tc.count("héllo") == 6  # UTF-8 bytes: an upper bound for byte-level BPE
    assert tc.count_message({"role": "user", "content": "abc"}) == 3 + MESSAGE_OVERHEAD


def _manager(**ctx):
    cfg = parse_agent_config({"context": ctx})
    replies = []

    async def aux(messages, purpose, max_tokens):
        replies.append((purpose, messages))
        return SimpleNamespace(text=f"summary for {purpose}")
    return ContextManager(cfg.context, agent_prompts(cfg), TokenCounter(cfg.context.tokenizer), aux), replies


async def test_context_estimate_uses_server_usage_plus_new_messages():
    cm, _ = _manager(max_context_tokens=1000)
    cm.live = [{"role": "system", "content": "s" * 400}, {"role": "user", "content": "u" * 400},
               {"role": "assistant", "content": "a"}]
    assert cm.estimate() == (3 * MESSAGE_OVERHEAD + 801, "bytes")  # nothing measured yet
    cm.record_usage(prompt_tokens=210, completion_tokens=5)
    obs = {"role": "user", "content": "o" * 50}
    cm.live.append(obs)
    assert cm.estimate() == (215 + 50 + MESSAGE_OVERHEAD, "server_usage+bytes")


async def test_history_summary_keeps_tool_results_with_their_call():
    cm, replies = _manager(max_context_tokens=300, keep_recent_messages=2)
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]}
    cm.live = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"},
               {"role": "assistant", "content": "x" * 300}, {"role": "user", "content": "y" * 300},
               call, {"role": "tool", "tool_call_id": "c1", "content": "out"}]
    assert await cm.maybe_compress(step=3, task_text="task")
    # ONE user message after the system prompt: the task, then the summary (strict alternation holds)
    assert [m["role"] for m in cm.live] == ["system", "user", "assistant", "tool"]
    assert cm.live[1]["content"].startswith("task\n\n")
    assert "summary for history_summary" in cm.live[1]["content"] and "2 messages" in cm.live[1]["content"]
    assert replies[0][0] == "history_summary" and "x" * 50 in replies[0][1][0]["content"]
    assert cm.events[-1].dropped_messages == 2 and cm.events[-1].after_tokens is None
    cm.record_usage(prompt_tokens=120, completion_tokens=10)
    assert cm.events[-1].after_tokens == 120
    # under budget: nothing happens
    assert not await cm.maybe_compress(step=4, task_text="task")


async def test_observation_summary_beyond_threshold_and_cut_below():
    cm, replies = _manager(observation_max_chars=300, observation_summary_tokens=1000)
    text, info = await cm.prepare_observation("z" * 800, step=1, task_text="t")
    assert info.get("cut") and "elided" in text and not replies
    text, info = await cm.prepare_observation("w" * 5000, step=2, task_text="t")
    assert info.get("summarized") and "summary for observation_summary" in text
    assert replies[0][0] == "observation_summary"
    assert [e.kind for e in cm.events] == ["observation_cut", "observation_summary"]


def test_hf_tokenizer_counts_exactly(tmp_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["def unique_in_order(items):\n    seen = set()\n    return out\n"] * 50 + ["exit code: 0\nRan 5 tests OK"] * 50
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    cfg = parse_agent_config({"context": {"tokenizer": {"kind": "hf", "path": "tokenizer.json"}}, "base_dir": str(tmp_path)})
    counter = TokenCounter(cfg.context.tokenizer, cfg.base_dir)
    text = "def unique_in_order(items):\n    seen = set()\nexit code: 0"
    assert counter.count(text) == len(tok.encode(text, add_special_tokens=False).ids)
    assert 0 < counter.count(text) < len(text.encode())  # merges learned: fewer tokens than bytes
    with pytest.raises(ConfigError, match="is not a file"):
        TokenCounter(parse_agent_config({"context": {"tokenizer": {"kind": "hf", "path": "nope.json"}}}).context.tokenizer)
    with pytest.raises(ConfigError, match="tokenizer.path: required"):
        TokenCounter(parse_agent_config({"context": {"tokenizer": {"kind": "hf"}}}).context.tokenizer)


async def test_dir_diff_matches_the_sandbox_git_diff(tmp_path):
    from dialogforge.workflows.agent.envs.local import dir_diff
    task = median_task()
    env = LocalEnvironment(EnvironmentConfig(), task)
    await env.reset()
    try:
        await env.execute("sed -i 's/ordered\\[mid\\]$/ordered[mid]  # middle/' stats.py && printf 'n\\n' > notes.txt "
                          "&& rm evaluate.py && mkdir -p __pycache__ && touch __pycache__/x.pyc")
        in_sandbox = await env.diff()
        from_host = await dir_diff(Path(task.workspace), env.workdir)
    finally:
        await env.close()
    assert from_host == in_sandbox
    assert "+++ b/notes.txt" in from_host and "--- a/evaluate.py" in from_host and "pyc" not in from_host


async def test_remote_evaluation_service(tmp_path):
    from aiohttp import web
    from dialogforge.workflows.agent.envs.remote import RemoteEvalEnvironment
    seen = []

    async def evaluate(request):
        body = await request.json()
        seen.append(body)
        if body["instance_id"] == "broken-service":
            return web.Response(status=503, text="farm down")
        ok = "return (ordered[mid - 1] + ordered[mid]) / 2" in body["diff"]
        return web.json_response({"success": ok, "speedup": 1.0, "error": None if ok else "tests failed"})
    app = web.Application()
    app.router.add_post("/evaluate", evaluate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        cfg = EnvironmentConfig(type="dialogforge.workflows.agent.envs.remote:RemoteEvalEnvironment",
                                options={"url": f"http://127.0.0.1:{port}/evaluate"})
        task = median_task()
        env = make_environment(cfg, task)
        assert isinstance(env, RemoteEvalEnvironment)
        await env.reset()
        try:
            ev = await env.evaluate()
            assert ev.success is False and ev.details["error"] == "tests failed"
            await env.execute("sed -i 's/    return ordered\\[mid\\]/    if len(ordered) % 2 == 0:\\n"
                              "        return (ordered[mid - 1] + ordered[mid]) \\/ 2\\n    return ordered[mid]/' stats.py")
            ev = await env.evaluate()
            assert ev.success is True and ev.metrics == {"speedup": 1.0}
            assert seen[-1]["instance_id"] == "median-fix" and seen[-1]["metadata"]["kind"] == "bugfix"
        finally:
            await env.close()
        broken = make_environment(cfg, Task(id="broken-service", problem_statement="p"))
        await broken.reset()
        with pytest.raises(EnvError, match="HTTP 503: farm down"):
            await broken.evaluate()
        await broken.close()
        gone = make_environment(EnvironmentConfig(type=cfg.type, options={"url": "http://127.0.0.1:9/x"}),
                                Task(id="t", problem_statement="p"))
        await gone.reset()
        with pytest.raises(EnvError, match="unreachable"):
            await gone.evaluate()
        await gone.close()
    finally:
        await runner.cleanup()


async def test_history_summary_recent_turns_start_with_the_model(tmp_path):
    cm, replies = _manager(max_context_tokens=256, keep_recent_messages=3)
    cm.live = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"}]
    for i in range(4):
        cm.live += [{"role": "assistant", "content": f"a{i} " * 40}, {"role": "user", "content": f"o{i} " * 40}]
    assert await cm.maybe_compress(step=4, task_text="task")
    # 3 recent messages asked for; the cut moves back to the assistant turn before them
    assert [m["role"] for m in cm.live] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert cm.live[2]["content"].startswith("a2")
    assert cm.live[1]["content"].startswith("task\n\n") and cm.live[1]["content"].count("were condensed") == 1
    # a second compression summarises the first summary with the turns since; the task is joined once
    for i in range(4, 8):
        cm.live += [{"role": "assistant", "content": f"a{i} " * 40}, {"role": "user", "content": f"o{i} " * 40}]
    assert await cm.maybe_compress(step=8, task_text="task")
    assert [m["role"] for m in cm.live] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert cm.live[1]["content"].startswith("task\n\n") and cm.live[1]["content"].count("were condensed") == 1
    assert cm.live[1]["content"].count("task") == 1
    assert "summary for history_summary" in replies[-1][1][0]["content"]  # the old summary was read


def test_sandboxes_of_killed_runs_are_swept(tmp_path, monkeypatch):
    import os
    import subprocess
    import tempfile

    from dialogforge.workflows.agent.envs import local

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(local, "_swept", False)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f"df-agent-{dead.pid}-abc"
    mine = tmp_path / f"df-agent-{os.getpid()}-def"
    other = tmp_path / "df-agent-notapid"
    for d in (stale, mine, other):
        (d / "work").mkdir(parents=True)
    assert local.sweep_stale_sandboxes() == 1
    assert not stale.exists() and mine.exists() and other.exists()
    assert local.sweep_stale_sandboxes() == 0  # once per process
