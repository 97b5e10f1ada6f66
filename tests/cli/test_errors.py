"""User errors: one line naming the file or flag, exit 2, no traceback, and nothing created before inputs are good."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dialogforge.cli.main import app


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def one_error_line(r, *needles: str) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit), r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    err = [ln for ln in lines if "error" in ln.lower() or "invalid value" in ln.lower()]
    assert err, r.output
    for n in needles:
        assert n in r.output, (n, r.output)
    return err[0]


def before_after(scratch):
    return {p.relative_to(scratch) for p in scratch.rglob("*")}


@pytest.mark.parametrize("flags", [["-j", "0"], ["-j", "-5"], ["--n", "0"], ["--max-tokens", "0"],
                                   ["--temperature", "-1"]])
def test_generate_numeric_options_are_validated(scratch, server, flags):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    r = run("generate", "in.jsonl", "-o", "out.jsonl", "--base-url", server.base_url, "--model", "m", "-q", *flags)
    one_error_line(r, flags[0])
    assert not (scratch / "out.jsonl").exists() and not (scratch / ".dialogforge").exists()


@pytest.mark.parametrize("args", [["persona", "run", "c.yaml", "-j", "0"], ["persona", "run", "c.yaml", "--limit", "0"],
                                  ["persona", "check", "in.jsonl", "-o", "o.jsonl", "-j", "0"],
                                  ["agent", "run", "t.jsonl", "-j", "-5"], ["agent", "run", "t.jsonl", "--repeats", "0"],
                                  ["agent", "run", "t.jsonl", "--rounds", "0"], ["demo", "--limit", "0"],
                                  ["dedup", "in.jsonl", "-o", "o.jsonl", "--ngram", "0"]])
def test_other_numeric_options_are_validated(scratch, args):
    r = run(*args)
    assert r.exit_code == 2 and "Invalid value" in r.output and "is not in the range" in r.output, r.output


@pytest.mark.parametrize("cmd", [["generate", "{f}", "-o", "out.jsonl", "--base-url", "{url}", "--model", "m"],
                                 ["persona", "check", "{f}", "-o", "out.jsonl"],
                                 ["export", "{f}", "-o", "out.jsonl", "--to", "sharegpt"],
                                 ["validate", "{f}", "-f", "sharegpt", "--rejects", "bad.jsonl"],
                                 ["merge", "{f}", "-o", "out.jsonl"], ["dedup", "{f}", "-o", "out.jsonl"],
                                 ["report", "{f}"]])
def test_empty_input_says_zero_rows_and_fails(scratch, server, cmd):
    (scratch / "empty.jsonl").write_text("\n")
    before = before_after(scratch)
    r = run(*[a.format(f="empty.jsonl", url=server.base_url) for a in cmd])
    one_error_line(r, "0 rows in empty.jsonl")
    assert before_after(scratch) == before  # no output, no rejects file, no run store


def test_output_that_is_a_folder(scratch, server):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    (scratch / "outdir").mkdir()
    r = run("generate", "in.jsonl", "-o", "outdir", "--base-url", server.base_url, "--model", "m", "-q")
    line = one_error_line(r)
    assert "outdir" in line and "is a folder" in line


def test_non_utf8_inputs_name_file_and_line(scratch, server):
    (scratch / "ok.jsonl").write_text('{"prompt": "hi"}\n')
    (scratch / "bad.yaml").write_bytes(b"endpoints:\n  a: {base_url: 'http://x', model: \"m\xff\"}\n")
    r = run("generate", "ok.jsonl", "-o", "o.jsonl", "-c", "bad.yaml", "-q")
    assert "bad.yaml:2: not UTF-8 text" in one_error_line(r)
    (scratch / "tasks.jsonl").write_bytes(b'{"id": "a", "problem_statement": "x"}\n{"id": "b\xfe"}\n')
    r = run("agent", "run", "tasks.jsonl", "--base-url", server.base_url, "--model", "m")
    assert "tasks.jsonl:2: not UTF-8 text" in one_error_line(r)
    (scratch / "rows.jsonl").write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    r = run("generate", "rows.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "-q")
    line = one_error_line(r)
    assert "rows.jsonl:2: not UTF-8 text" in line and "surrogates" not in line


def test_install_hint_keeps_its_brackets(scratch):
    from dialogforge.cli.common import console, friendly_errors
    from dialogforge.engine.errors import ConfigError

    @friendly_errors
    def cmd():
        raise ConfigError("--to hf needs `datasets`: pip install 'dialogforge[hf]'")

    with console.capture() as cap:
        with pytest.raises(SystemExit):
            cmd()
    assert "pip install 'dialogforge[hf]'" in cap.get()


@pytest.mark.parametrize("args", [["validate", "nope.jsonl", "-f", "sharegpt", "--rejects", "bad.jsonl"],
                                  ["agent", "pairs", "nowhere", "-o", "p.jsonl"],
                                  ["runs", "show", "nosuch"], ["runs", "--store", "typo/x.sqlite"],
                                  ["runs", "--store", "typo/x.sqlite", "show", "abc"],
                                  ["runs", "calls", "abc", "--store", "typo/x.sqlite"]])
def test_failed_commands_create_nothing(scratch, args):
    r = run(*args)
    one_error_line(r)
    assert before_after(scratch) == set(), before_after(scratch)


def test_paths_with_brackets_print_whole(scratch):
    (scratch / "in.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                      '{"role": "assistant", "content": "hello"}]}\n')
    r = run("export", "in.jsonl", "-o", "train[hf].jsonl", "--to", "sharegpt")
    assert r.exit_code == 0, r.output
    assert "train[hf].jsonl" in r.output and (scratch / "train[hf].jsonl").exists()
