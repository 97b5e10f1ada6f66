"""Start-up: `dialogforge --help` imports no area, a command imports only its own (timed in benchmarks/cli_startup.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
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
    assert not {m for m in mods if m.startswith("dialogforge.cli.") and m not in ("dialogforge.cli.main", "dialogforge.cli.app")}


def test_generate_imports_only_what_it_runs(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    mods = imported_by(tmp_path, "generate", "in.jsonl", "-o", "out.jsonl", "--base-url", "http://127.0.0.1:9/v1",
                       "--model", "m", "-q")
    assert "dialogforge.workflows.generate" in mods and "aiohttp" in mods  # it did run
    unneeded = ("dialogforge.workflows.persona", "dialogforge.workflows.agent", "dialogforge.formats",
                "dialogforge.cli.persona", "dialogforge.cli.agent", "dialogforge.cli.formats", "matplotlib",
                "jinja2", "datasketch", "openai",
                "yaml",  # no config file given: PyYAML loads only to read one
                "typer.rich_utils", "markdown_it", "pygments", "rich.live", "rich.markdown")  # no help, no live bar
    assert not {m for m in mods if m.startswith(unneeded)}


def test_generate_help_does_not_import_the_engine(tmp_path):
    mods = imported_by(tmp_path, "generate", "--help")
    assert "dialogforge.cli.generate" in mods
    assert not {m for m in mods if m.startswith(("dialogforge.engine", "dialogforge.workflows", "aiohttp"))}


# `dialogforge --help` as the console script runs it (cli/main.py:main draws it through cli/help.py)
SCRIPT = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv[0] = "dialogforge"
from dialogforge.cli.main import main
main()
"""
# the same screen drawn by typer itself
TYPER = "import sys; sys.argv[0] = 'dialogforge'; from dialogforge.cli.app import app; app()"
STYLE_VARS = ("COLUMNS", "LINES", "TERMINAL_WIDTH", "FORCE_COLOR", "NO_COLOR", "PY_COLORS", "GITHUB_ACTIONS",
              "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TYPER_USE_RICH")


def _run(code: str, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in STYLE_VARS}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, env={**base, **env}, timeout=120)


def test_console_help_loads_neither_typer_nor_click():
    r = _run(SCRIPT, {}, "--help")
    assert r.returncode == 0
    mods = set(json.loads(r.stderr.decode().split("MODULES ", 1)[1]))
    assert not {m for m in mods if m.split(".")[0] in ("typer", "click", "markdown_it", "pygments", *HEAVY)}
    assert "dialogforge.cli.help" in mods


@pytest.mark.parametrize("env", [{}, {"COLUMNS": "200"}, {"COLUMNS": "60", "FORCE_COLOR": "1"},
                                 {"TERMINAL_WIDTH": "100", "FORCE_COLOR": "1"}, {"NO_COLOR": "1", "COLUMNS": "120"}],
                         ids=lambda e: " ".join(f"{k}={v}" for k, v in e.items()) or "default")
def test_console_help_is_typers_own_screen(env):
    """Byte for byte what typer draws, in colour and plain, at any width: cli/help.py cannot drift from typer."""
    fast, slow = _run(SCRIPT, env, "--help"), _run(TYPER, env, "--help")
    assert (fast.returncode, slow.returncode) == (0, 0)
    assert fast.stdout == slow.stdout
    assert b"Commands" in fast.stdout and b"completion" in fast.stdout


def test_anything_else_goes_to_typer():
    r = _run(SCRIPT, {}, "-h")  # not a help flag of ours: typer's error, exit 2
    assert r.returncode == 2 and b"No such option" in r.stderr
    r = _run(SCRIPT, {"TYPER_USE_RICH": "0"}, "--help")  # a typer setting: typer draws (plain click help)
    assert r.returncode == 0 and b"typer" in r.stderr.split(b"MODULES ", 1)[1]


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


def test_a_config_file_still_loads_yaml(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    (tmp_path / "c.yaml").write_text("concurrency: 8\n")
    mods = imported_by(tmp_path, "generate", "in.jsonl", "-o", "out.jsonl", "-c", "c.yaml", "--base-url",
                       "http://127.0.0.1:9/v1", "--model", "m", "-q")
    assert "yaml" in mods


def test_console_script_is_main_and_freezes_the_heap_at_exit(tmp_path):
    """The console script runs `main`: after the command it collects once and freezes the heap, so that
    interpreter exit does not walk it again (benchmarks/README.md, "Whole process")."""
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "dialogforge"]
    assert ep.value == "dialogforge.cli.main:main"
    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
             "from dialogforge.cli.main import main\nsys.argv[1:] = ['--version']\nmain()\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("dialogforge ") and "frozen True" in r.stdout, r


def test_a_run_closes_its_store_before_the_process_exits(tmp_path):
    """Freezing the heap at exit must not leave anything unfinished: the run store's SQLite connection is
    closed (its WAL checkpointed and removed), the output is complete, the exit code is kept."""
    from dialogforge.testing.fake_server import FakeServer
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(20)))
    with FakeServer.background() as srv:
        r = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "generate", "in.jsonl", "-o", "out.jsonl",
                            "--base-url", srv.base_url, "--model", "m", "--store", "s.sqlite", "-q"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "s.sqlite"]


GC_PROBE = """
import gc, json, sys
import dialogforge.cli.common as common
import dialogforge.engine as engine
seen = {"before": gc.get_threshold()}
require_rows = common.require_rows
def probe_rows(*a):
    seen["start-up"] = gc.get_threshold()
    return require_rows(*a)
common.require_rows = probe_rows
run = engine.Engine.run
async def probe_run(self, **kw):
    seen["run"] = gc.get_threshold()
    return await run(self, **kw)
engine.Engine.run = probe_run
import atexit
atexit.register(lambda: print("SEEN " + json.dumps(seen)))
sys.argv[0] = "dialogforge"
from dialogforge.cli.main import main
main()
"""


def test_start_up_collects_rarely_and_the_run_collects_as_the_engine_sets_it(tmp_path):
    from dialogforge.testing.fake_server import FakeServer
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    with FakeServer.background() as srv:
        r = subprocess.run([sys.executable, "-c", GC_PROBE, "generate", "in.jsonl", "-o", "out.jsonl", "--base-url",
                            srv.base_url, "--model", "m", "--store", "s.sqlite", "-q"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout.split("SEEN ", 1)[1])
    from dialogforge.cli.main import STARTUP_GEN0
    assert seen["start-up"][0] == STARTUP_GEN0
    assert seen["run"] == seen["before"]  # the interpreter's own; lean_gc sets the run's from these
