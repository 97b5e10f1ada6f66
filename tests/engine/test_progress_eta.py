"""The ETA of a run with few items comes from tokens, so it does not climb while items are in flight."""
from __future__ import annotations

from dialogforge.engine.client import Stats
from dialogforge.engine.progress import RunProgress


def test_eta_from_tokens_while_few_items_finished():
    st = Stats()
    p = RunProgress("demo", 6, st, enabled=False)
    # 1 of 6 dialogues done after 100 s; it took 1000 tokens; 1500 more went into the 4 still running
    p.done, st.prompt_tokens, st.completion_tokens = 1, 2000, 500
    p.item_tokens(1000)
    first = p.eta(100.0)
    assert first is not None and abs(first - (5 * 1000 - 1500) / 25) < 1e-6  # 140 s, not 5 x 100 s
    # 100 s later, no new dialogue finished, but tokens kept flowing: the estimate falls (items alone would say 1000 s)
    st.completion_tokens += 2500
    later = p.eta(200.0)
    assert later is not None and later < first
    assert "ETA" in p.line()


def test_eta_from_items_when_many_finished():
    st = Stats()
    p = RunProgress("gen", 1000, st, enabled=False)
    p.done, st.completion_tokens = 500, 10_000
    for _ in range(500):
        p.item_tokens(20)
    assert abs(p.eta(50.0) - 50.0) < 1e-6  # 500 left at 10 items/s


def test_eta_does_not_reach_zero_while_items_left_run_long():
    """3 of 6 finished at 1000 tokens each; the 3 still running have used 4000 (they were asked again): the estimate
    stays at half their expected work (it used to say 0 s with minutes to go)."""
    st = Stats()
    p = RunProgress("demo", 6, st, enabled=False)
    p.done, st.completion_tokens = 3, 7000
    for _ in range(3):
        p.item_tokens(1000)
    eta = p.eta(140.0)
    assert eta is not None and abs(eta - 1500 / 50) < 1e-6
