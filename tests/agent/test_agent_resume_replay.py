"""A rollout that dies mid-way and runs again replays what the model saw: no answered call is re-sent,
even when the commands print something different the second time."""
from __future__ import annotations

from agent_helpers import EXAMPLES, SIGNAL, read_jsonl
from test_agent_rollout import agent_cfg, make_engine

from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows.agent import load_tasks, run_agent

RANDOM = "python3 -c 'import uuid; print(uuid.uuid4())'"


async def test_resumed_rollout_replays_observations_and_resends_nothing(tmp_path):
    tasks = [t for t in load_tasks(EXAMPLES / "tasks.jsonl") if t.id == "median-fix"]
    state = {"crash_after_step": 2}

    def responder(body):
        step = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        if step == state["crash_after_step"]:
            srv.inject(status=400, count=1, message="simulated crash")  # the next call fails the item
        if step <= 3:
            return f"Step {step}: look at something random.\n\n```bash\n{RANDOM}\n```"
        return f"Done.\n\n```bash\necho {SIGNAL}\n```"

    async with FakeServer(responder=responder) as srv:
        engine = make_engine(srv, tmp_path)
        cfg = agent_cfg(context={})
        async with engine:
            first = await run_agent(engine, cfg, tasks, tmp_path / "out", progress=False)
            assert first.rounds[1].failed == 1
            sent_first = len(srv.requests)  # steps 1, 2 answered; step 3 refused
            state["crash_after_step"] = 0
            again = await run_agent(engine, cfg, tasks, tmp_path / "out", retry_failed=True, progress=False)
            assert again.rounds[1].done == 1
        resent = srv.requests[sent_first:]
    # the rerun executed the random command again, yet the model was shown the first outputs,
    # so steps 1 and 2 came from the run store: only step 3 (refused before) and step 4 went out
    assert [sum(1 for m in b["messages"] if m["role"] == "assistant") + 1 for b in resent] == [3, 4]
    assert resent[0]["messages"] == srv.requests[sent_first - 1]["messages"]  # the refused call, word for word
    [traj] = read_jsonl(tmp_path / "out" / "round_1" / "trajectories.jsonl")
    assert traj["status"] == "submitted"
