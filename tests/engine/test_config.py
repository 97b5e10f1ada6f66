"""Config: endpoints, roles, keys, overrides, and errors that name the field."""
from __future__ import annotations

import pytest

from dialogforge.engine import Engine
from dialogforge.engine.config import load_config, with_overrides
from dialogforge.engine.errors import ConfigError


def test_roles_map_to_endpoints_and_extra_sections_are_kept(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "endpoints:\n"
        "  gen: {base_url: 'http://a/v1', model: big, params: {temperature: 0.9}}\n"
        "  judge: {base_url: 'http://b/v1', model: strict}\n"
        "roles: {generator: gen, user: gen, judge: judge}\n"
        "persona: {turns: 4}\n")
    cfg = load_config(p)
    assert cfg.endpoint_for("user") == "gen" and cfg.endpoint_for("judge") == "judge"
    assert cfg.extra["persona"] == {"turns": 4}
    eng = Engine(cfg)
    assert not eng.same_endpoint("generator", "judge") and eng.same_endpoint("generator", "user")


@pytest.mark.parametrize("text, needle", [
    ("endpoints:\n  a: {base_url: 'http://a/v1', model: m, rpm: -5}\n", "endpoints.a.rpm"),
    ("endpoints:\n  a: {base_url: 'http://a/v1'}\n", "model is required"),
    ("endpoints:\n  a: {base_url: 'http://a/v1', model: m, colour: red}\n", "endpoints.a.colour"),
    ("endpoints:\n  a: {base_url: 'http://a/v1', model: m}\nroles: {judge: b}\n", "roles.judge: unknown endpoint 'b'"),
    ("endpoints: [\n", "invalid YAML"),
])
def test_invalid_config_names_the_field(tmp_path, text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_flags_override_and_default_to_embedded(tmp_path):
    cfg = with_overrides(load_config(None), base_url="http://h/v1", model="x")
    assert cfg.endpoints["default"].base_url == "http://h/v1" and cfg.endpoint_for("judge") == "default"
    eng = Engine(load_config(None))
    assert eng.endpoint_config("generator").backend == "embedded"


def test_key_names_expand_to_env_vars(monkeypatch):
    from dialogforge.engine.config import EndpointConfig
    monkeypatch.setenv("ALICE_GEMINI_API_KEY", "k1")
    ep = EndpointConfig(base_url="http://x", model="m", key_names=["ALICE", "BOB"],
                        key_env_template="{name}_GEMINI_API_KEY")
    assert ep.resolve_keys() == ["k1"]  # BOB's key is absent: the present ones are used


def test_generate_section_maps_fields_and_names_bad_ones(tmp_path):
    from dialogforge.engine.errors import ConfigError
    from dialogforge.workflows.generate import options_from_config
    p = tmp_path / "c.yaml"
    p.write_text("generate:\n  fields: {prompt: question, id: uid}\n  system: Be brief.\n")
    opts = options_from_config(Engine(load_config(p)))
    assert opts.fields == {"prompt": "question", "id": "uid"} and opts.system == "Be brief."
    p.write_text("generate:\n  n: many\n")
    with pytest.raises(ConfigError, match="generate.n"):
        options_from_config(Engine(load_config(p)))


def test_keys_come_from_a_dotenv_file_too(tmp_path, monkeypatch):
    import dialogforge.engine.config as config_mod
    from dialogforge.engine.config import EndpointConfig
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config_mod, "_dotenv_loaded", False)
    monkeypatch.delenv("DOTENV_TEAM_API_KEY", raising=False)
    (tmp_path / ".env").write_text("DOTENV_TEAM_API_KEY=from-dotenv\n")
    ep = EndpointConfig(base_url="http://x", model="m", key_names=["DOTENV_TEAM"])
    try:
        assert ep.resolve_keys() == ["from-dotenv"]
    finally:
        import os
        os.environ.pop("DOTENV_TEAM_API_KEY", None)
