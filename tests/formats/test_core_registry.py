"""The core module (rows + errors) and the formats registry (#8)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialogforge.core import InputError
from dialogforge.formats import export, validate
from dialogforge.formats.registry import FORMATS, FormatSpec, get, register, row_formats
from formats_samples import persona_dialogue, read_jsonl, write_jsonl


def test_formats_path_imports_neither_aiohttp_nor_the_engine():
    code = ("import sys\n"
            "import dialogforge.cli.formats, dialogforge.formats.export, dialogforge.formats.validate\n"
            "import dialogforge.formats.merge, dialogforge.formats.stats, dialogforge.formats.dedup\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp' or\n"
            "             m.startswith(('dialogforge.engine', 'dialogforge.workflows')))\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_engine_reexports_the_core_errors_and_reader():
    from dialogforge.engine import errors, io
    from dialogforge.core import errors as core_errors, rows
    assert errors.InputError is core_errors.InputError and errors.DialogforgeError is core_errors.DialogforgeError
    assert io.iter_lines is rows.iter_lines and io.read_items is rows.read_items
    assert issubclass(errors.APIError, core_errors.DialogforgeError)


def test_unknown_format_names_the_choices(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [persona_dialogue(0)])
    with pytest.raises(InputError, match="choose from sharegpt, lf-openai, alpaca, trl, openai, hf, parquet"):
        export(src, tmp_path / "o.jsonl", "llama")
    with pytest.raises(InputError, match="unknown format 'hf'"):
        validate(src, "hf")
    assert row_formats() == ["sharegpt", "lf-openai", "alpaca", "trl", "openai"]


def test_a_registered_format_works_in_export_validate_and_help(tmp_path: Path):
    trl = get("trl")
    register(FormatSpec("trl-copy", "Plugin", "TRL rows under another name", trl.tasks, trl.writer, trl.rules,
                        trl.task_of, writer_options=trl.writer_options))
    try:
        src = write_jsonl(tmp_path / "in.jsonl", [persona_dialogue(0)])
        r = export(src, tmp_path / "o.jsonl", "trl-copy")
        assert r.written == 1 and "messages" in read_jsonl(tmp_path / "o.jsonl")[0]
        assert validate(tmp_path / "o.jsonl", "trl-copy").ok
    finally:
        FORMATS.pop("trl-copy")


def test_help_lists_every_registered_format():
    from dialogforge.cli.main import app
    res = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "250"})
    text = " ".join(res.output.split())
    for name in FORMATS:
        assert name in text


def test_record_schema_covers_what_the_formats_read_and_the_writers_write():
    from typing import get_args
    from dialogforge.core.records import FOREIGN_META, RECORDS, MetaKey, PersonaDialogue
    from dialogforge.workflows.persona.records import build_record
    declared = set().union(*(r.__annotations__ for r in RECORDS))
    assert set(get_args(MetaKey)) - FOREIGN_META <= declared  # a renamed record field fails here (and in mypy)
    rec = build_record(dialogue_id="x", messages=[{"role": "user", "content": "q"}, {"role": "assistant",
                                                                                      "content": "a"}],
                       system=None, persona=None, seed=None, judge=None, checks={}, extra={"language": "en"})
    assert set(rec) <= set(PersonaDialogue.__annotations__)
    assert PersonaDialogue.__required_keys__ <= set(rec)
