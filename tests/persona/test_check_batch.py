"""`persona check --judge --batch`: the judge's calls go out as one batch job; the results equal a live check's."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.testing.fake_server import FakeServer

import persona_fake as F
from test_check_cmd import _inputs


def test_check_with_judge_in_batch_mode_matches_live(tmp_path):
    jl, _ = _inputs(tmp_path)

    def judge(body):
        good = "volcano" in body["messages"][-1]["content"].lower()
        return json.dumps({"correctness": 4.5 if good else 2.0, "relevance": 4.0, "feedback": "checked"})

    got = {}
    with FakeServer.background(responder=judge) as srv:
        for mode, extra in (("live", []), ("batch", ["--batch", "--batch-poll", "0.05"])):
            out = tmp_path / f"{mode}.jsonl"
            r = CliRunner().invoke(app, ["persona", "check", str(jl), "-o", str(out), "--judge", "--base-url",
                                         srv.base_url, "--model", "jm", "--store", str(tmp_path / f"{mode}.sqlite"),
                                         "--quiet", *extra])
            assert r.exit_code == 0, r.output
            got[mode] = sorted(({k: v for k, v in x.items() if k != "created_at"} for x in F.read_jsonl(out)),
                               key=lambda x: x["id"])
        assert srv.batches is not None and srv.batches.created == 1  # one judge call per dialogue: one round
    assert len(got["live"]) == 7 and got["batch"] == got["live"]
