"""`persona check`: quality control over dialogues people already have."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.engine.errors import InputError
from dialogforge.testing.fake_server import FakeServer
from dialogforge.workflows import persona

import persona_fake as F
import persona_samples as S


def _sharegpt(msgs):
    m = {"user": "human", "assistant": "gpt", "system": "system"}
    return [{"from": m[x["role"]], "value": x["content"]} for x in msgs]


def _inputs(tmp_path):
    rows = [
        {"id": "clean-en", "messages": S.clean("en"), "source": "mine"},
        {"id": "clean-ko", "conversations": _sharegpt(S.clean("ko"))},
        {"id": "catch-ja", "messages": [{"role": m["role"], "contents": m["content"]} for m in S.with_catchphrase("ja")]},
        {"id": "shrink-zh", "messages": S.shrinking("zh"), "system": "You are a tea expert."},
        {"id": "echo-en", "conversations": _sharegpt(S.to_messages(S.CLEAN["en"], system="Be kind.")),
         "note": "fine"},
        {"id": "echo-ko", "messages": S.echoed_answer("ko")},
        {"id": "repeat-zh", "messages": S.repeated_question("zh")},
    ]
    jl = tmp_path / "in.jsonl"
    jl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    js = tmp_path / "in.json"
    js.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return jl, js


EXPECTED = {"clean-en": [], "clean-ko": [], "catch-ja": ["catchphrase"], "shrink-zh": ["shrinking"],
            "echo-en": [], "echo-ko": ["echo"], "repeat-zh": ["echo"]}


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_heuristic_check_over_mixed_formats(tmp_path, fmt):
    jl, js = _inputs(tmp_path)
    out = tmp_path / "out.jsonl"
    summary = persona.check(jl if fmt == "jsonl" else js, out, filtered=tmp_path / "ok.jsonl", progress=False)
    recs = {r["id"]: r for r in F.read_jsonl(out)}
    assert {k: r["filter_reasons"] for k, r in recs.items()} == EXPECTED
    assert recs["shrink-zh"]["system"] == "You are a tea expert."
    assert recs["echo-en"]["system"] == "Be kind." and recs["echo-en"]["meta"] == {"note": "fine"}
    assert recs["clean-ko"]["messages"][0] == {"role": "user", "content": S.CLEAN["ko"][0][0]}
    assert recs["catch-ja"]["answer_stats"][0]["words"] > 50  # Japanese counted per character, not per space
    assert recs["clean-en"]["judge"] is None and "judge" not in recs["clean-en"]["checks"]
    assert {r["id"] for r in F.read_jsonl(tmp_path / "ok.jsonl")} == {"clean-en", "clean-ko", "echo-en"}
    assert summary["dialogues"] == 7 and summary["kept"] == 3
    assert summary["dropped_by_reason"] == {"echo": 2, "catchphrase": 1, "shrinking": 1}
    saved = json.loads((tmp_path / "out.summary.json").read_text())
    assert saved["kept"] == 3


def test_bad_dialogue_input_names_the_record(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"id": "a", "messages": [{"role": "wizard", "content": "x"}]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl: record a.*unknown role 'wizard'"):
        persona.check(p, tmp_path / "o.jsonl", progress=False)
    p.write_text(json.dumps({"id": "b", "text": "hello"}) + "\n")
    with pytest.raises(InputError, match=r"record b: no messages"):
        persona.check(p, tmp_path / "o.jsonl", progress=False)


def test_cli_check_with_judge(tmp_path):
    jl, _ = _inputs(tmp_path)

    def judge(body):
        text = body["messages"][-1]["content"]
        good = "volcano" in text.lower() or "무지개" in text
        return json.dumps({"correctness": 4.5 if good else 2.0, "relevance": 4.0, "feedback": "checked"})

    with FakeServer.background(responder=judge) as srv:
        out = tmp_path / "judged.jsonl"
        args = ["persona", "check", str(jl), "-o", str(out), "--judge", "--base-url", srv.base_url, "--model", "jm",
                "--min-score", "3.5", "--store", str(tmp_path / "s.sqlite"), "--quiet"]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        recs = {x["id"]: x for x in F.read_jsonl(out)}
        # two of the seven dialogues ask the judge the same thing: that request is sent once (engine single-flight)
        sent = len(srv.requests)
        assert len(recs) == 7 and sent == len({json.dumps(b, sort_keys=True) for b in srv.requests}) == 6
        assert recs["clean-en"]["judge"]["score"] == 4.25 and recs["clean-en"]["passed"]
        assert recs["catch-ja"]["judge"]["score"] == 3.0 and recs["catch-ja"]["filter_reasons"] == ["catchphrase", "judge"]
        assert recs["shrink-zh"]["checks"]["judge"]["reason"].startswith("score 3 < min 3.5")
        assert recs["clean-ko"]["judge"]["score"] == 4.25 and recs["clean-ko"]["passed"]
        assert recs["echo-ko"]["filter_reasons"] == ["echo"]
        assert all(x["judge"]["model"] == "jm" for x in recs.values())
        # rerunning the same command resumes: nothing is judged twice, nothing written twice
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0 and len(srv.requests) == sent and len(F.read_jsonl(out)) == 7
