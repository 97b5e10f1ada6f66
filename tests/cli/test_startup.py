"""Start-up: `dialogforge --help` imports no area, a command imports only its own (timed in benchmarks/cli_startup.py)."""
from __future__ import annotations

import json
import subprocess
import sys

import typer
from typer.testing import CliRunner

from dialogforge.cli.main import COMMANDS, app

PROBE = """
import json, sys
from dialogforge.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit:
    pass
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def imported_by(tmp_path, *argv: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


HEAVY = ("aiohttp", "pydantic", "yaml", "jinja2", "matplotlib", "datasketch", "numpy", "openai",
         "dialogforge.engine", "dialogforge.workflows", "dialogforge.formats")


def test_help_imports_no_area(tmp_path):
    mods = imported_by(tmp_path, "--help")
    assert not {m for m in mods if m.split(".")[0] in HEAVY or m.startswith(HEAVY)}
    assert not {m for m in mods if m.startswith("dialogforge.cli.") and m != "dialogforge.cli.main"}


def test_generate_imports_only_what_it_runs(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    mods = imported_by(tmp_path, "generate", "in.jsonl", "-o", "out.jsonl", "--base-url", "http://127.0.0.1:9/v1",
                       "--model", "m", "-q")
    assert "dialogforge.workflows.generate" in mods and "aiohttp" in mods  # it did run
    unneeded = ("dialogforge.workflows.persona", "dialogforge.workflows.agent", "dialogforge.formats",
                "dialogforge.cli.persona", "dialogforge.cli.agent", "dialogforge.cli.formats", "matplotlib",
                "jinja2", "datasketch", "openai")
    assert not {m for m in mods if m.startswith(unneeded)}


def test_generate_help_does_not_import_the_engine(tmp_path):
    mods = imported_by(tmp_path, "generate", "--help")
    assert "dialogforge.cli.generate" in mods
    assert not {m for m in mods if m.startswith(("dialogforge.engine", "dialogforge.workflows", "aiohttp"))}


def test_help_lists_every_command_with_its_own_help():
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for name, (module, short) in COMMANDS.items():
        assert name in r.output and short in r.output
        # the table's line is the command's own (first line of its help), so they cannot drift apart
        import importlib
        area = typer.Typer()
        importlib.import_module(f"dialogforge.cli.{module}").register(area)
        cmd = typer.main.get_group(area).commands[name]
        assert (cmd.help or "").strip().split("\n")[0] == short, name


def test_version_and_unknown_command():
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("dialogforge 0.")
    r = CliRunner().invoke(app, ["genrate"])
    assert r.exit_code == 2 and "Did you mean 'generate'" in r.output
