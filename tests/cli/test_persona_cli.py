"""`persona import-config` lists every key it does not carry over; `persona check -c` reports config errors tidily."""
from __future__ import annotations

from typer.testing import CliRunner

from dialogforge.cli.main import app


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def test_import_config_lists_every_key_not_carried_over(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("model_inference:\n  temperature: 0.7\n  repetition_penalty: 1.0\n  seed: null\n"
                   "multiturn_generation:\n  model_name: gemini-1.5-pro\n  persona_name: orbit\n"
                   "scoring:\n  scoring_prompt: ''\n  score_threshold: 3.5\n")
    r = run("persona", "import-config", str(old), "-o", str(tmp_path / "new.yaml"))
    assert r.exit_code == 0, r.output
    not_mapped = [ln for ln in r.output.splitlines() if ln.startswith("not mapped")]
    for key in ("model_inference.repetition_penalty", "model_inference.seed", "scoring.scoring_prompt"):
        assert any(key in ln for ln in not_mapped), (key, r.output)
    assert "repetition_penalty" in (tmp_path / "new.yaml").read_text()  # noted in the file's header too


def test_import_config_refuses_an_unrelated_yaml(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("endpoints:\n  a: {base_url: 'http://x/v1', model: m}\nsomething: 1\n")
    r = run("persona", "import-config", str(other), "-o", str(tmp_path / "new.yaml"))
    assert r.exit_code == 2 and "not a config of the older persona generator" in r.output
    assert not (tmp_path / "new.yaml").exists()


def test_check_config_errors_have_the_same_tidy_form_as_run(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}, '
                                      '{"role": "assistant", "content": "hello there"}]}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text("persona:\n  quality:\n    min_score: high\n")
    check = run("persona", "check", str(tmp_path / "d.jsonl"), "-o", str(tmp_path / "o.jsonl"), "-c", str(cfg))
    runs = run("persona", "run", str(cfg))
    line = f"{cfg}:3: persona.quality.min_score: Input should be a valid number"
    assert check.exit_code == 2 and line in check.output and "validation error" not in check.output
    assert runs.exit_code == 2 and line in runs.output
