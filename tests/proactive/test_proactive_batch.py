"""`proactive eval --batch`: the agent's and judge's calls go out as provider batch jobs; the metrics equal live."""
from __future__ import annotations

import csv

from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.testing.fake_server import FakeServer

import proactive_fake as F


def test_eval_in_batch_mode_matches_live(tmp_path):
    F.marked_trace(tmp_path / "code_1.json", ["[good]", "[good]", "[bad]", "[calm]", "[need]", "[junk]"])
    F.marked_trace(tmp_path / "writing_1.json", ["[calm]", "[bad]"])
    got = {}
    with FakeServer.background(responder=F.responder) as srv:
        for mode, extra in (("live", []), ("batch", ["--batch", "--batch-poll", "0.05"])):
            (tmp_path / mode).mkdir()
            cfg = F.write_config(srv.base_url, tmp_path / mode)
            r = CliRunner().invoke(app, ["proactive", "eval", str(tmp_path / "code_1.json"),
                                         str(tmp_path / "writing_1.json"), "-o", str(tmp_path / mode / "ev"),
                                         "-c", str(cfg), "-q", *extra])
            assert r.exit_code == 0, r.output
            got[mode] = list(csv.DictReader((tmp_path / mode / "ev" / "metrics.csv").open()))
        assert srv.batches is not None and srv.batches.created >= 1
    assert got["batch"] == got["live"] and len(got["live"]) >= 2
