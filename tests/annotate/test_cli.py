"""The `annotate` commands from the command line: first start, idempotent import, clear errors, export."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dialogforge.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "annotate"


def run(*args: str):
    return CliRunner().invoke(app, ["annotate", *args])


def test_import_export_reset_from_the_command_line(tmp_path):
    proj = str(tmp_path / "annot")
    r = run("import", proj, str(EXAMPLES / "code_demo.json"), str(EXAMPLES / "writing_demo.json"))
    assert r.exit_code == 0, r.output
    assert "admin" in r.output and "password" in r.output and "imported 2 new trace(s)" in r.output
    r = run("import", proj, str(EXAMPLES / "code_demo.json"))
    assert r.exit_code == 0 and "imported 0 new trace(s), 1 already present" in r.output
    assert "password" not in r.output                          # shown on the first start only
    r = run("import", proj, str(tmp_path / "missing.json"))
    assert r.exit_code == 2 and "missing.json: no such file" in r.output and "Traceback" not in r.output
    r = run("export", proj, "-o", str(tmp_path / "out"), "--test-size", "1.5")
    assert r.exit_code == 2 and "--test-size" in r.output
    r = run("export", proj, "-o", str(tmp_path / "out"))
    assert r.exit_code == 0 and "traces not yet complete: 2" in r.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["traces_incomplete"] == 2
    r = run("reset-password", proj, "admin")
    assert r.exit_code == 0 and "new password for admin" in r.output
    r = run("reset-password", proj, "nobody")
    assert r.exit_code == 2 and "no user 'nobody'" in r.output
    r = run("invite", proj, "dana", "--base-url", "http://127.0.0.1:9000")
    assert r.exit_code == 0 and r.output.strip().startswith("http://127.0.0.1:9000/invite/")
    r = run("invite", proj, "admin")
    assert r.exit_code == 2 and "already has an account" in r.output
