"""The workflow kit: one section loader and error shape, one Strict base, one override mechanism,
one cost formula, unknown top-level keys refused (#8, #9)."""
from __future__ import annotations

import pytest
from pydantic import Field

from dialogforge.engine import Engine
from dialogforge.engine.config import Price, load_config, parse_config, with_overrides
from dialogforge.engine.errors import ConfigError
from dialogforge.workflows.kit import Strict, load_section, override, register_section


class Inner(Strict):
    size: int = Field(3, ge=1)


class Section(Strict):
    name: str
    inner: Inner = Field(default_factory=Inner)
    base_dir: str = "."


def test_section_errors_give_file_line_and_dotted_field(tmp_path):
    register_section("mine")
    p = tmp_path / "c.yaml"
    p.write_text("roles: {}\nmine:\n  name: x\n  inner:\n    size: 0\n")
    with pytest.raises(ConfigError) as e:
        load_section(load_config(p), "mine", Section)
    assert str(e.value) == f"{p}:5: mine.inner.size: Input should be greater than or equal to 1"
    p.write_text("mine:\n  name: x\n  inner: {sise: 4}\n")
    with pytest.raises(ConfigError, match=rf"{p}:3: mine.inner.sise: unknown field \(did you mean 'size'\?\)"):
        load_section(load_config(p), "mine", Section)
    p.write_text("mine:\n  inner: {}\n")
    with pytest.raises(ConfigError, match=rf"{p}:1: mine.name: Field required"):
        load_section(load_config(p), "mine", Section)
    p.write_text("mine:\n  name: ok\n")
    sec = load_section(load_config(p), "mine", Section)
    assert sec.name == "ok" and sec.base_dir == str(tmp_path.resolve())  # relative paths: the config's folder


def test_engine_and_workflow_sections_share_the_shape(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("endpoints:\n  a:\n    base_url: http://a/v1\n    model: m\n    rpm: -5\n")
    with pytest.raises(ConfigError, match=rf"^{p}:5: endpoints.a.rpm: "):
        load_config(p)
    p.write_text("agent:\n  repeats: 2\n  limits:\n    step_limit: 0\n")
    from dialogforge.workflows.agent.config import load_agent_config
    with pytest.raises(ConfigError, match=rf"^{p}:4: agent.limits.step_limit: "):
        load_agent_config(p)
    p.write_text("persona:\n  seeds: {path: s.jsonl}\n  personas: [orbit]\n  turns: 0\n")
    from dialogforge.workflows.persona.config import load_persona_config
    with pytest.raises(ConfigError, match=rf"^{p}:4: persona.turns: turns must be at least 1"):
        load_persona_config(load_config(p))


def test_agent_reads_its_section_from_the_engines_config_not_the_file(tmp_path):
    """The agent section comes from the config the engine parsed: a dict config works, no second read."""
    from dialogforge.workflows.agent.config import load_agent_config
    eng = Engine.from_dict({"agent": {"repeats": 3}}, store=tmp_path / "s.sqlite")
    assert load_agent_config(eng.config).repeats == 3


@pytest.mark.parametrize("key, near", [("endpoint", "endpoints"), ("role", "roles"), ("persnoa", "persona"),
                                       ("agnet", "agent")])
def test_unknown_top_level_key_names_the_nearest_valid_one(tmp_path, key, near):
    p = tmp_path / "c.yaml"
    p.write_text(f"concurrency: 4\n{key}:\n  x: 1\n")
    with pytest.raises(ConfigError, match=rf"{p}:2: {key}: unknown top-level key \(did you mean '{near}'\?\)"):
        load_config(p)
    with pytest.raises(ConfigError, match=f"did you mean '{near}'"):
        parse_config({key: {}})


def test_unknown_key_far_from_all_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown top-level key \(valid: .*agent.*endpoints.*persona"):
        parse_config({"zzzzzz": 1})


def test_registering_a_section_makes_its_key_valid():
    with pytest.raises(ConfigError):
        parse_config({"proactive_test_section": {}})
    register_section("proactive_test_section")
    assert parse_config({"proactive_test_section": {"a": 1}}).extra["proactive_test_section"] == {"a": 1}


def test_override_sets_dotted_fields_and_validates():
    sec = Section(name="a")
    new = override(sec, {"inner.size": 7, "name": None})
    assert new.inner.size == 7 and new.name == "a" and sec.inner.size == 3
    assert override(sec, {"name": None}) is sec
    with pytest.raises(ConfigError, match=r"^command line: mine.inner.size: Input should be greater"):
        override(sec, {"inner.size": 0}, prefix=("mine",))


def test_model_without_base_url_is_refused_unless_it_names_the_embedded_model(tmp_path):
    with pytest.raises(ConfigError, match=r"--model gpt-4o without --base-url: .*embedded model SmolLM2-135M-Instruct"):
        with_overrides(load_config(None), model="gpt-4o")
    cfg = with_overrides(load_config(None), model="SmolLM2-135M-Instruct")
    assert cfg.endpoints["default"].backend == "embedded"
    p = tmp_path / "c.yaml"
    p.write_text("endpoints:\n  main: {base_url: 'http://h/v1', model: a}\n")
    assert with_overrides(load_config(p), model="b").endpoints["main"].model == "b"  # a server URL: fine
    p.write_text("endpoints:\n  main: {embedded: {n_parallel: 2}}\n")
    with pytest.raises(ConfigError, match="endpoint 'main' has no server URL"):
        with_overrides(load_config(p), model="qwen")


def test_cli_model_without_base_url_fails_before_any_work(tmp_path):
    import subprocess
    import sys
    inp = tmp_path / "p.jsonl"
    inp.write_text('{"prompt": "hi"}\n')
    r = subprocess.run([sys.executable, "-m", "dialogforge.cli.main", "generate", str(inp), "-o", str(tmp_path / "o.jsonl"),
                        "--model", "gpt-4o", "--store", str(tmp_path / "s.sqlite")], capture_output=True, text=True)
    assert r.returncode == 2 and "--model gpt-4o without --base-url" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr and not (tmp_path / "o.jsonl").exists()


def test_one_cost_formula():
    assert Price(input_per_1m=2.0, output_per_1m=6.0).cost(500_000, 100_000) == pytest.approx(1.6)
    from dialogforge.workflows.agent.config import AgentConfig
    assert AgentConfig.model_fields["price"].annotation == Price | None
