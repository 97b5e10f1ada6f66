"""A pruned agent run (request bodies dropped) still retries its failed rollout from the cache, and the SFT
samples it writes are what the server received, word for word: samples never read stored request bodies."""
from __future__ import annotations

from agent_helpers import EXAMPLES, SIGNAL, read_jsonl
from test_agent_rollout import agent_cfg, make_engine

from dialogforge.engine.store import RunStore
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks, run_agent


async def test_pruned_agent_run_retries_from_the_cache_with_exact_samples(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    state = {"fail_at_step": 3}

    def responder(body):
        step = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        if step == state["fail_at_step"] - 1:
            srv.inject(status=400, count=1, message="refused once")  # the next call fails the rollout
        if step <= 3:
            return f"Step {step}: look around.\n\n```bash\necho step {step}\n```"
        return f"Done.\n\n```bash\necho {SIGNAL}\n```"

    out = tmp_path / "out"
    async with FakeServer(responder=responder) as srv:
        engine = make_engine(srv, tmp_path)
        cfg = agent_cfg(context={})
        async with engine:
            first = await run_agent(engine, cfg, tasks, out, progress=False)
            assert first.rounds[1].failed == 1
            sent_first = len(srv.requests)
            st = RunStore(engine.store.path)
            plan = st.prune(str(out / "round_1" / "samples.jsonl"))  # the run, named by one of its outputs
            assert plan.requests == 2 and plan.failed == 1 and plan.file_after is not None
            assert all(c["request"] is None for c in st.calls(plan.run_id))
            st.close()
            state["fail_at_step"] = 0
            again = await run_agent(engine, cfg, tasks, out, retry_failed=True, progress=False)
            assert again.rounds[1].done == 1
        received = [b["messages"] for b in srv.requests if b["messages"]]
    steps = [sum(1 for m in b["messages"] if m["role"] == "assistant") + 1 for b in srv.requests[sent_first:]]
    assert steps == [3, 4]  # steps 1 and 2 were answered from the pruned run's kept responses
    samples = read_jsonl(out / "round_1" / "samples.jsonl")
    assert len(samples) == 4
    for s in samples:  # every sample's input is a request the server received, exactly
        assert s["messages"][:-1] in received, s["id"]
