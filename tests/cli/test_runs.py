"""`dialogforge runs`: --store before or after the subcommand; the newest run by default."""
from __future__ import annotations

from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.testing.fake_server import FakeServer


def test_store_option_in_either_position(tmp_path):
    store = tmp_path / "elsewhere" / "s.sqlite"
    (tmp_path / "in.jsonl").write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    with FakeServer() as srv:
        r = CliRunner().invoke(app, ["generate", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                                     "--base-url", srv.base_url, "--model", "m", "--store", str(store), "-q"])
    assert r.exit_code == 0, r.output
    env = {"COLUMNS": "200"}
    before = CliRunner().invoke(app, ["runs", "--store", str(store), "show"], env=env)
    after = CliRunner().invoke(app, ["runs", "show", "--store", str(store)], env=env)
    listed = CliRunner().invoke(app, ["runs", "--store", str(store)], env=env)
    assert before.exit_code == after.exit_code == listed.exit_code == 0, before.output + after.output
    run_id = listed.output.split("generate-", 1)[1].split()[0]
    assert f"generate-{run_id}" in before.output and before.output == after.output
    assert "2 done" in before.output
    calls = CliRunner().invoke(app, ["runs", "--store", str(store), "calls", "-o", str(tmp_path / "calls.jsonl")])
    assert calls.exit_code == 0 and len((tmp_path / "calls.jsonl").read_text().splitlines()) == 2
