"""`generate`'s fast path reads a command line exactly as typer does, or leaves it to typer (cli/options.py)."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer

from dialogforge.cli import generate as gen
from dialogforge.cli.options import parse_fast, typer_command


def typer_reading(argv: list[str]) -> dict | None:
    """What typer passes to `generate` for this command line; None where it refuses the line."""
    seen: dict = {}

    def capture(**values):
        seen.update(values)
    app = typer.Typer()
    app.command("generate")(typer_command(capture, gen.PARAMS))
    app.command("other")(lambda: None)  # two commands: the line starts with the command's name, as a user types it
    try:
        typer.main.get_command(app).main(args=["generate", *argv], prog_name="dialogforge", standalone_mode=False)
    except click.ClickException:
        return None
    return seen


PLAIN = [
    ["in.jsonl", "-o", "out.jsonl"],
    ["in.jsonl", "--output", "out.jsonl", "--base-url", "http://127.0.0.1:8000/v1", "--model", "m", "-j", "256", "-q"],
    ["-o", "out.jsonl", "in.jsonl", "--n", "3", "--temperature", "0.7", "--max-tokens", "64"],
    ["in.jsonl", "--output=out.jsonl", "--system=Be brief.", "--concurrency=8"],
    ["in.jsonl", "-o", "o.jsonl", "--field", "prompt=question", "--field", "id=uid", "--keep-input", "--retry-failed"],
    ["in.jsonl", "-o", "o.jsonl", "-c", "cfg.yaml", "--store", "s.sqlite", "--continue", "--api-key-env", "KEY"],
    ["in.jsonl", "-o", "o.jsonl", "--executor", "ray", "--ray-address", "auto", "--ray-workers", "2"],
    ["in.jsonl", "-o", "o.jsonl", "--batch", "--batch-poll", "0.5"],
    ["in.jsonl", "-o", "o.jsonl", "--batch-file", "b.jsonl", "--temperature", "0", "--system", ""],
]

LEFT_TO_TYPER = [
    ["--help"], ["in.jsonl", "-o", "o.jsonl", "--help"], [], ["in.jsonl"], ["-o", "o.jsonl"],
    ["in.jsonl", "-o", "o.jsonl", "-j", "0"], ["in.jsonl", "-o", "o.jsonl", "-j", "-5"],
    ["in.jsonl", "-o", "o.jsonl", "-j5"], ["in.jsonl", "-o", "o.jsonl", "--n", "0"],
    ["in.jsonl", "-o", "o.jsonl", "--temperature", "-1"], ["in.jsonl", "-o", "o.jsonl", "--temperature", "nan"],
    ["in.jsonl", "-o", "o.jsonl", "--modle", "m"], ["in.jsonl", "-o", "o.jsonl", "--quiet=1"],
    ["in.jsonl", "-o", "o.jsonl", "-q", "-q"], ["in.jsonl", "-o", "o.jsonl", "--", "x"], ["in.jsonl", "-o"],
    ["in.jsonl", "-o", "o.jsonl", "extra.jsonl"], ["-", "-o", "o.jsonl"], ["in.jsonl", "-o", "o.jsonl", "-j", "x"],
    ["in.jsonl", "-o", "--quiet"], ["in.jsonl", "-o", "o.jsonl", "-o", "p.jsonl"], ["in.jsonl", "-o", ""],
    ["in.jsonl", "-o", "o.jsonl", "--max-tokens", "1e3"], ["in.jsonl", "-o", "o.jsonl", "--version"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_lines_are_read_as_typer_reads_them(argv):
    fast = parse_fast(gen.PARAMS, argv)
    assert fast is not None, "a plain line must take the fast path"
    assert fast == typer_reading(argv)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=" ".join)
def test_help_errors_and_unusual_forms_go_to_typer(argv):
    assert parse_fast(gen.PARAMS, argv) is None


def test_random_lines_agree_with_typer():
    """Lines built from every flag with good and bad values: whatever the fast path reads, typer reads the same."""
    values = {int: ["1", "7", "0", "-3", "+4", "x", "2.5", " 9"], float: ["0", "0.5", "-0.0", "-1", "inf", "1e-3", "nan", "y"],
              str: ["m", "", "a=b", "-", "--quiet", "http://h/v1"], Path: ["a.jsonl", "d/b.jsonl", "", "-", "~/x"]}
    flags = [(f, p) for p in gen.PARAMS.values() for f in p.flags]
    rng = random.Random(7)
    fast_taken = 0
    for _ in range(1500):
        argv = ["in.jsonl"] if rng.random() < 0.9 else []
        argv += ["-o", "o.jsonl"] if rng.random() < 0.9 else []
        for _ in range(rng.randint(0, 5)):
            flag, p = rng.choice(flags)
            argv.append(flag)
            if p.type is not bool:
                value = rng.choice(values[p.type])
                if rng.random() < 0.2:
                    argv[-1] += "=" + value
                else:
                    argv.append(value)
        rng.shuffle(argv) if rng.random() < 0.1 else None
        fast = parse_fast(gen.PARAMS, argv)
        if fast is not None:
            fast_taken += 1
            assert fast == typer_reading(argv), argv
    assert fast_taken > 300  # the comparison covered many lines


def test_the_console_script_runs_generate_without_typer(tmp_path):
    """Run as users run it (the console script's `main`), a plain `generate` line imports neither typer nor click,
    nor rich before the run's first line is drawn; a line it does not read is typer's, with typer's message."""
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n')
    probe = ("import sys; from dialogforge.cli.main import main; sys.argv[0] = 'dialogforge'\n"
             "try:\n    main()\nfinally:\n    print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('typer', 'click', 'rich')), file=sys.stderr)")
    plain = subprocess.run([sys.executable, "-c", probe, "generate", "in.jsonl", "-o", "out.jsonl", "-q", "--base-url",
                            "http://127.0.0.1:9/v1", "--model", "m"], cwd=tmp_path, capture_output=True, text=True)
    assert plain.returncode == 2 and "unreachable" in plain.stderr  # it ran: the server check refused the run
    loaded = plain.stderr.strip().splitlines()[-1]
    assert "typer" not in loaded and "click" not in loaded, loaded
    odd = subprocess.run([sys.executable, "-c", probe, "generate", "in.jsonl", "-o", "out.jsonl", "-j", "0"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert odd.returncode == 2 and "Invalid value for '--concurrency'" in odd.stderr and "'typer'" in odd.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_help_is_typer_help_from_the_same_declaration():
    """`generate --help` lists every declared flag with its help text (the typer command is made from PARAMS)."""
    from typer.testing import CliRunner

    from dialogforge.cli.main import app
    out = CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    for p in gen.PARAMS.values():
        for flag in p.flags:
            assert flag in out
        assert p.help.split(" (")[0].split(";")[0][:30] in out
