"""The persona workflow end to end against the fake OpenAI-compatible server."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows import persona

import persona_fake as F

DATE = "2026-03-04"


async def _run(cfg: dict, **kw):
    engine, pcfg = persona.load(cfg)
    try:
        return await persona.arun(engine=engine, persona_config=pcfg, date=DATE, progress=False, **kw)
    finally:
        await engine.aclose()


def _bodies(srv) -> Counter:
    return Counter(json.dumps(b, sort_keys=True) for b in srv.requests)


async def test_200_seeds_4_turns_every_dialogue_exactly_once(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 200)
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=4, concurrency=64)
        res = await _run(cfg)
        raw, filt = F.read_jsonl(res.raw_path), F.read_jsonl(res.filtered_path)
        assert res.raw_path.name == f"persona_raw_{DATE}.jsonl"
        assert len(raw) == 200 and len({r["id"] for r in raw}) == 200
        for r in raw:
            msgs = r["messages"]
            assert [m["role"] for m in msgs] == ["user", "assistant"] * 4
            assert all(m["content"].strip() for m in msgs)
            assert [s["turn"] for s in r["answer_stats"]] == [1, 2, 3, 4]
            assert r["answer_stats"][0]["words"] > 10
            assert r["persona"] in ("orbit", "medician") and r["id"].endswith(":" + r["persona"])
            assert r["seed"]["url"].startswith("https://example.org/q/")
            assert r["system"].startswith("You are ")
            assert r["judge"]["model"] == "judge-model" and 1 <= r["judge"]["score"] <= 5
            assert set(r["checks"]) == {"structure", "catchphrase", "shrinking", "echo", "judge"}
            assert r["passed"] == (r["judge"]["score"] >= 3.0) and r["passed"] == (not r["filter_reasons"])
        assert {r["id"] for r in filt} == {r["id"] for r in raw if r["passed"]}
        assert 0 < len(filt) < 200
        # one rewrite + 4 answers + 3 follow-up questions + 1 judge per dialogue, nothing sent twice
        kinds = Counter(F.kind(b) for b in srv.requests)
        assert kinds == {"rewrite": 200, "answer": 800, "user": 600, "judge": 200}
        assert max(_bodies(srv).values()) == 1
        # roles use their own endpoints and temperatures
        by_kind = {F.kind(b): b for b in srv.requests}
        assert by_kind["judge"]["model"] == "judge-model" and by_kind["answer"]["model"] == "gen-model"
        assert by_kind["user"]["temperature"] == 0.9 and by_kind["answer"]["temperature"] == 0.7
        s = json.loads(res.summary_path.read_text())
        assert s["dialogues"] == 200 and s["kept"] == len(filt) and s["dropped"] == 200 - len(filt)
        assert s["dropped_by_reason"] == {"judge": 200 - len(filt)}
        assert sum(s["score_histogram"].values()) == 200
        assert res.warnings == []


async def test_rerun_and_fresh_store_never_duplicate_a_day_file(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 12)
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=2)
        cfg["persona"]["seeds"]["limit"] = 8
        await _run(cfg)
        sent = len(srv.requests)
        raw_path = tmp_path / "raw" / f"persona_raw_{DATE}.jsonl"
        first = raw_path.read_bytes()
        res = await _run(cfg)  # same store: the runner skips everything
        assert len(srv.requests) == sent and raw_path.read_bytes() == first
        cfg["store"] = str(tmp_path / "other-store.sqlite")  # no memory of the run: the day file decides
        res = await _run(cfg)
        assert res.already_in_day_file == 8 and len(srv.requests) == sent
        assert raw_path.read_bytes() == first
        cfg["persona"]["seeds"]["limit"] = 12  # four more seeds: only those are made
        res = await _run(cfg)
        raw = F.read_jsonl(raw_path)
        assert len(raw) == 12 and len({r["id"] for r in raw}) == 12
        assert res.summary["dialogues"] == 12 and res.already_in_day_file == 8
        assert max(_bodies(srv).values()) == 1


async def test_api_failure_fails_the_dialogue_never_an_empty_turn(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 6)
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=3, concurrency=1)
        srv.inject(status=503, count=2, retry_after=0.01)  # retried by the engine
        srv.inject(status=400, count=1, message="bad request for this one")  # not retryable: that dialogue fails
        res = await _run(cfg)
        raw = F.read_jsonl(res.raw_path)
        assert res.engine_result.failed == 1 and len(raw) == 5 and res.summary["failed"] == 1
        for r in raw:
            assert len(r["messages"]) == 6 and all(m["content"].strip() for m in r["messages"])
        fails = F.read_jsonl(res.engine_result.failures_path)
        assert len(fails) == 1 and "bad request for this one" in fails[0]["error"]
        res = await _run(cfg, retry_failed=True)
        assert res.engine_result.done == 1 and len(F.read_jsonl(res.raw_path)) == 6


async def test_empty_answers_are_asked_again_with_a_new_sample(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 3)
    seen: Counter = Counter()

    def flaky(body):
        key = json.dumps(body["messages"], sort_keys=True)
        seen[key] += 1
        if F.kind(body) == "answer" and seen[key] == 1:
            return '  ""  '  # nothing left after clean-up
        return F.responder(body)

    async with FakeServer(responder=flaky) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=2, rewrite_question=False)
        res = await _run(cfg)
        raw = F.read_jsonl(res.raw_path)
        assert len(raw) == 3 and all(m["content"].strip() for r in raw for m in r["messages"])
        assert Counter(F.kind(b) for b in srv.requests)["answer"] == 2 * 3 * 2  # each answer asked twice

    def silent(body):
        return "" if F.kind(body) == "answer" else F.responder(body)

    async with FakeServer(responder=silent) as srv:
        cfg = F.config(srv.base_url, tmp_path / "b", seeds=seeds, turns=2, max_attempts=2)
        res = await _run(cfg)
        assert res.engine_result.failed == 3 and F.read_jsonl(res.raw_path) == []
        assert "empty after clean-up in 2 attempt" in F.read_jsonl(res.engine_result.failures_path)[0]["error"]


async def test_prefix_suffix_judge_warning_and_no_judge(tmp_path, capsys):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 4)
    pirate = {"name": "pirate", "role_name": "Captain Reed", "description": "A retired sea captain.",
              "language": "English", "answer_prefixes": ["Arr, listen well."], "answer_suffixes": ["Fair winds to ye!"],
              "suffix_turns": "last"}
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=3, personas=[pirate], judge_same=True)
        res = await _run(cfg)
        assert res.warnings == ["judge_same_as_generator"]
        for r in F.read_jsonl(res.raw_path):
            answers = [m["content"] for m in r["messages"] if m["role"] == "assistant"]
            assert answers[0].startswith("Arr, listen well.") and not answers[1].startswith("Arr")
            assert answers[2].endswith("Fair winds to ye!") and not answers[1].endswith("Fair winds to ye!")
        n = len(srv.requests)
        cfg2 = F.config(srv.base_url, tmp_path / "nojudge", seeds=seeds, turns=2, personas=["orbit"])
        res = await _run(cfg2, judge=False, min_score=4.5)
        assert all(r["judge"] is None and "judge" not in r["checks"] and r["passed"] for r in F.read_jsonl(res.raw_path))
        assert not any(F.kind(b) == "judge" for b in srv.requests[n:])


def test_cli_run_with_overrides(tmp_path):
    from typer.testing import CliRunner
    from dialogforge.cli.main import app
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 10)
    with FakeServer.background(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=4)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
        r = CliRunner().invoke(app, ["persona", "run", str(tmp_path / "c.yaml"), "--limit", "3", "--turns", "2-3",
                                     "--persona", "medician", "--min-score", "1", "--raw-dir", str(tmp_path / "r2"),
                                     "--date", DATE, "--quiet"])
        assert r.exit_code == 0, r.output
        raw = F.read_jsonl(tmp_path / "r2" / f"persona_raw_{DATE}.jsonl")
        assert len(raw) == 3 and all(r["persona"] == "medician" and r["turns"] in (2, 3) for r in raw)
        assert all(r["passed"] for r in raw)  # --min-score 1: every judged dialogue passes
        bad = CliRunner().invoke(app, ["persona", "run", str(tmp_path / "c.yaml"), "--turns", "x"])
        assert bad.exit_code == 2 and "--turns" in bad.output


async def test_stored_turns_stay_clean_and_guidance_goes_to_the_request(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 2)
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=2, personas=["orbit"], rewrite_question=False)
        res = await _run(cfg)
        rec = F.read_jsonl(res.raw_path)[0]
        assert rec["messages"][0]["content"] == rec["seed"]["instruction"]  # no rewrite: the seed question itself
        answers = [b for b in srv.requests if F.kind(b) == "answer"]
        first = next(b for b in answers if len(b["messages"]) == 2 and
                     b["messages"][1]["content"] == rec["seed"]["instruction"])
        assert first["messages"][0]["role"] == "system"
        assert first["messages"][0]["content"].startswith(rec["system"])
        assert "Reference answer" in first["messages"][0]["content"]  # the seed answer's facts
        follow = next(b for b in answers if len(b["messages"]) == 4 and b["messages"][1] == rec["messages"][0])
        assert follow["messages"][1:3] == rec["messages"][:2] and follow["messages"][3] == rec["messages"][2]


async def test_realdata_korean_seeds_run(tmp_path):
    from pathlib import Path
    real = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "lingo_chat" / "koalpaca_v1.1_sample.jsonl"
    if not real.exists():
        pytest.skip("../shared/realdata is not available")
    async with FakeServer(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=real, turns=3, personas=["neuroticism"])
        cfg["persona"]["seeds"]["limit"] = 5
        res = await _run(cfg)
        raw = F.read_jsonl(res.raw_path)
        assert len(raw) == 5
        for r in raw:
            assert r["seed"]["url"].startswith("https://") and r["seed"]["instruction"]
            first = r["messages"][1]["content"]
            assert any(first.startswith(p) for p in persona.BUILTIN_PERSONAS["neuroticism"]["answer_prefixes"])
            assert any(r["messages"][-1]["content"].endswith(s)
                       for s in persona.BUILTIN_PERSONAS["neuroticism"]["answer_suffixes"])


def test_python_api_run_from_a_yaml_path(tmp_path):
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 5)
    with FakeServer.background(responder=F.responder) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=2)
        cfg["persona"]["seeds"]["path"] = "seeds.jsonl"  # relative to the config file
        cfg["persona"]["output"] = {"raw_dir": "out/raw", "filtered_dir": "out/ok"}
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
        res = persona.run(tmp_path / "c.yaml", limit=3, date=DATE, progress=False)
        assert res.raw_path == tmp_path / "out" / "raw" / f"persona_raw_{DATE}.jsonl"
        assert res.summary["dialogues"] == 3 and len(F.read_jsonl(res.raw_path)) == 3
        assert res.filtered_path.parent == tmp_path / "out" / "ok"
        # the records are what the formats module reads (for export to training formats)
        from dialogforge.formats.readers import read_record
        for rec in F.read_jsonl(res.raw_path):
            conv = read_record(rec)
            assert conv.system == rec["system"] and len(conv.messages) == 4
            assert conv.metadata["score"] == rec["judge"]["score"] and conv.metadata["persona"] == rec["persona"]


async def test_reask_asks_an_answer_again_when_it_would_fail_a_named_check(tmp_path):
    """`reask: [echo]`: a follow-up answer that repeats the one before it is asked again with a new sample; the
    checks still judge what comes out. Without it the echo stays and the dialogue is filtered out."""
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 2)
    first: dict[str, str] = {}
    tries: Counter = Counter()

    def echoing(body):
        if F.kind(body) != "answer":
            return F.responder(body)
        turn = sum(1 for m in body["messages"] if m["role"] == "user")
        seed_q = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if turn == 1:
            first[seed_q] = F.responder(body)
            return first[seed_q]
        tries[seed_q] += 1
        return first[seed_q] if tries[seed_q] == 1 else F.responder(body)  # the first try echoes answer 1

    for reask, passed, asked in (([], False, 1), (["echo"], True, 2)):
        first.clear(), tries.clear()
        async with FakeServer(responder=echoing) as srv:
            cfg = F.config(srv.base_url, tmp_path / f"r{len(reask)}", seeds=seeds, turns=2, rewrite_question=False,
                           reask=reask)
            res = await _run(cfg)
        raw = F.read_jsonl(res.raw_path)
        assert len(raw) == 2 and all(r["checks"]["echo"]["passed"] is passed for r in raw), raw
        assert set(tries.values()) == {asked}
        answers = [[m["content"] for m in r["messages"] if m["role"] == "assistant"] for r in raw]
        assert all((a[0] == a[1]) is not passed for a in answers)


async def test_follow_up_pattern_asks_the_simulated_user_again(tmp_path):
    """`follow_up_pattern`: a follow-up that does not match (here: no question mark) is asked again with a new
    sample; the user's first try never reaches the dialogue."""
    seeds = F.write_seeds(tmp_path / "seeds.jsonl", 2)
    seen: Counter = Counter()

    def chatty(body):
        if F.kind(body) != "user":
            return F.responder(body)
        key = json.dumps(body["messages"], sort_keys=True)
        seen[key] += 1
        return "I am happy to help with anything." if seen[key] == 1 else F.responder(body)

    async with FakeServer(responder=chatty) as srv:
        cfg = F.config(srv.base_url, tmp_path, seeds=seeds, turns=3, rewrite_question=False,
                       follow_up_pattern=r"\?$")
        res = await _run(cfg)
    raw = F.read_jsonl(res.raw_path)
    questions = [m["content"] for r in raw for m in r["messages"] if m["role"] == "user"]
    assert len(raw) == 2 and len(questions) == 6 and all(q.endswith("?") for q in questions)
    assert set(seen.values()) == {2}  # every follow-up asked twice
    assert all(r["checks"]["follow_up"]["passed"] for r in raw)

    def never(body):  # a follow-up that never matches: kept after the last attempt, and the dialogue filtered out
        return "I am happy to help with anything." if F.kind(body) == "user" else F.responder(body)

    async with FakeServer(responder=never) as srv:
        cfg = F.config(srv.base_url, tmp_path / "never", seeds=seeds, turns=2, rewrite_question=False,
                       follow_up_pattern=r"\?$", max_attempts=2)
        res = await _run(cfg)
    raw = F.read_jsonl(res.raw_path)
    assert len(raw) == 2 and not F.read_jsonl(res.filtered_path)
    assert all(not r["passed"] and "follow_up" in r["filter_reasons"] and r["checks"]["follow_up"]["value"] == [2]
               for r in raw)
    with pytest.raises(Exception, match="follow_up_pattern: not a regular expression"):
        persona.load(F.config(srv.base_url, tmp_path, seeds=seeds, follow_up_pattern="(unclosed"))
