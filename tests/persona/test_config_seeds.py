"""Persona config validation, seed loading, persona assignment, prompt templates, import-config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dialogforge.engine.errors import ConfigError, InputError
from dialogforge.workflows.persona.config import parse_persona_config
from dialogforge.workflows.persona.import_config import import_config, write_imported
from dialogforge.workflows.persona.prompts import persona_prompts
from dialogforge.workflows.persona.seeds import dialogue_items, load_seeds

REAL = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "lingo_chat"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "persona"


def _seeds(tmp_path: Path, rows: list[dict], name: str = "seeds.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return p


def _cfg(tmp_path: Path, **persona) -> dict:
    base = {"seeds": {"path": "seeds.jsonl"}, "personas": ["orbit"]}
    base.update(persona)
    return base


def test_builtin_and_custom_personas(tmp_path):
    cfg = parse_persona_config(_cfg(tmp_path, personas=[
        "neuroticism",
        {"name": "pirate", "role_name": "Captain Reed", "description": "A retired sea captain.", "language": "English",
         "answer_prefixes": ["Arr."], "answer_suffixes": ["Fair winds!"], "suffix_turns": [2, 3]},
    ]), "c.yaml", tmp_path)
    assert [p.name for p in cfg.personas] == ["neuroticism", "pirate"]
    assert cfg.persona("neuroticism").answer_prefixes  # built-in prefixes are there
    pirate = cfg.persona("pirate")
    assert [pirate.suffix_at(t, 4) for t in (1, 2, 3, 4)] == [False, True, True, False]
    assert cfg.persona("neuroticism").suffix_at(3, 3) and not cfg.persona("neuroticism").suffix_at(2, 3)


@pytest.mark.parametrize("bad, where", [
    ({"personas": ["nobody"]}, "unknown built-in persona 'nobody'"),
    ({"turns": [4, 2]}, "persona.turns"),
    ({"turns": 0}, "persona.turns"),
    ({"quality": {"min_score": 7}}, "persona.quality.min_score"),
    ({"quality": {"checks": {"echo": {"answer_jaccard": 2}}}}, "persona.quality.checks.echo.answer_jaccard"),
    ({"agents": {"judge": {"temperature": 5}}}, "persona.agents.judge.temperature"),
    ({"personas": [{"name": "x", "role_name": "X"}]}, "description"),
    ({"bogus": 1}, "persona.bogus"),
])
def test_bad_config_names_the_field(tmp_path, bad, where):
    with pytest.raises(ConfigError) as e:
        parse_persona_config(_cfg(tmp_path, **bad), "my.yaml", tmp_path)
    assert "my.yaml" in str(e.value) and where in str(e.value)


def test_partial_agent_keeps_defaults(tmp_path):
    cfg = parse_persona_config(_cfg(tmp_path, agents={"user": {"temperature": 0.2}}), "c", tmp_path)
    assert cfg.agents.user.role == "generator" and cfg.agents.user.max_tokens == 128
    assert cfg.agents.user.request_params() == {"temperature": 0.2, "max_tokens": 128}


def test_seed_fields_ids_shuffle_start_limit(tmp_path):
    rows = [{"q": f"Question {i}?", "a": f"Answer {i}.", "url": f"https://example.org/{i}"} for i in range(10)]
    _seeds(tmp_path, rows)
    cfg = parse_persona_config(_cfg(tmp_path, seeds={"path": "seeds.jsonl", "fields": {"instruction": "q", "output": "a"}}),
                               "c", tmp_path)
    seeds = load_seeds(cfg)
    assert [s["instruction"] for _, s in seeds] == [f"Question {i}?" for i in range(10)]
    assert seeds[3][1]["provenance"]["url"] == "https://example.org/3"
    assert "a" not in seeds[3][1]["provenance"]  # the answer is not provenance
    ids = [sid for sid, _ in seeds]
    assert len(set(ids)) == 10
    cut = parse_persona_config(_cfg(tmp_path, seeds={"path": "seeds.jsonl", "fields": {"instruction": "q", "output": "a"},
                                                      "shuffle_seed": 3, "start": 2, "limit": 4}), "c", tmp_path)
    sub = load_seeds(cut)
    assert len(sub) == 4 and {sid for sid, _ in sub} <= set(ids)
    assert [sid for sid, _ in sub] == [sid for sid, _ in load_seeds(cut)]  # the shuffle is reproducible
    assert [sid for sid, _ in sub] != ids[2:6]


def test_seed_ids_survive_reordering(tmp_path):
    rows = [{"instruction": f"Q{i}?", "output": f"A{i}."} for i in range(5)]
    _seeds(tmp_path, rows)
    cfg = parse_persona_config(_cfg(tmp_path), "c", tmp_path)
    first = dict((s["instruction"], sid) for sid, s in load_seeds(cfg))
    _seeds(tmp_path, list(reversed(rows)) + [{"instruction": "Q9?", "output": "A9."}])
    again = dict((s["instruction"], sid) for sid, s in load_seeds(cfg))
    assert all(again[q] == sid for q, sid in first.items())


def test_missing_seed_field_names_file_and_field(tmp_path):
    _seeds(tmp_path, [{"instruction": "Q?", "output": "A."}, {"question": "Q2?", "output": "A2."}])
    cfg = parse_persona_config(_cfg(tmp_path), "c", tmp_path)
    with pytest.raises(InputError) as e:
        load_seeds(cfg)
    assert "seeds.jsonl" in str(e.value) and "'instruction'" in str(e.value) and "question" in str(e.value)
    (tmp_path / "seeds.jsonl").write_text('{"instruction": "Q?", "output": "A."}\n{oops\n')
    with pytest.raises(InputError, match=r"seeds.jsonl:2"):
        load_seeds(cfg)


def test_json_list_seeds_and_assignment(tmp_path):
    rows = [{"id": f"k{i}", "instruction": f"Q{i}?", "output": f"A{i}."} for i in range(12)]
    (tmp_path / "seeds.json").write_text(json.dumps(rows))
    personas = ["orbit", "medician", "humanities_scholar"]
    for assign, expect in (("hash", 12), ("round_robin", 12), ("each", 36)):
        cfg = parse_persona_config(_cfg(tmp_path, seeds={"path": "seeds.json"}, personas=personas, assign=assign,
                                        turns=[2, 5]), "c", tmp_path)
        items = dialogue_items(cfg, load_seeds(cfg))
        assert len(items) == expect and len({i for i, _ in items}) == expect
        assert all(i == f"{it['provenance']['seed_id']}:{it['persona']}" for i, it in items)
        assert all(2 <= it["turns"] <= 5 for _, it in items)
        if assign == "round_robin":
            assert [it["persona"] for _, it in items[:3]] == personas
        if assign == "hash":  # stable and spread over the personas
            assert items == dialogue_items(cfg, load_seeds(cfg))
            assert len({it["persona"] for _, it in items}) > 1
    assert items[0][0] == "k0:orbit"


def test_realdata_koalpaca_loads_as_is(tmp_path):
    path = REAL / "koalpaca_v1.1_sample.jsonl"
    if not path.exists():
        pytest.skip("../shared/realdata is not available")
    cfg = parse_persona_config({"seeds": {"path": str(path)}, "personas": ["neuroticism"]}, "c", tmp_path)
    seeds = load_seeds(cfg)
    n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    assert len(seeds) == n >= 10
    for _, s in seeds:
        assert s["instruction"] and s["output"]
        assert s["provenance"]["url"].startswith("http")


def test_templates_render_and_can_be_overridden(tmp_path):
    cfg = parse_persona_config(_cfg(tmp_path), "c", tmp_path)
    p = cfg.persona("orbit")
    sysmsg = persona_prompts().render("persona_system.j2", persona=p)
    assert "Orbit" in sysmsg and p.style_rules[0] in sysmsg and "\n\n\n" not in sysmsg
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "persona_system.j2").write_text("You are {{ persona.role_name }}, briefly.")
    pr = persona_prompts(prompts_dir=tmp_path / "prompts")
    assert pr.render("persona_system.j2", persona=p) == "You are Orbit, briefly."
    first = pr.render("first_answer.j2", persona=p, question="Q?", reference="Ref text.", prefix="Beep!", suffix=None)
    assert "Ref text." in first and "Beep!" in first  # not overridden: built-in
    (tmp_path / "prompts" / "typo.j2").write_text("x")
    with pytest.raises(ConfigError, match="typo.j2"):
        persona_prompts(prompts_dir=tmp_path / "prompts")
    # the one way to override a template, as in the agent section: persona.templates.<name> = file or text
    (tmp_path / "prompts" / "typo.j2").unlink()
    cfg = parse_persona_config(_cfg(tmp_path, templates={"judge": "Score {{ turns | length }} turns."},
                                    prompts_dir="prompts"), "c", tmp_path)
    pr = persona_prompts(cfg)
    assert pr.render("judge", persona=None, reference=None, turns=[1, 2]) == "Score 2 turns."
    assert pr.render("persona_system", persona=p) == "You are Orbit, briefly."
    with pytest.raises(ConfigError, match=r"persona.templates: unknown template\(s\) jugde"):
        persona_prompts(parse_persona_config(_cfg(tmp_path, templates={"jugde": "x"}), "c", tmp_path))
    with pytest.raises(ConfigError, match=r"persona.templates.judge: template file not found"):
        persona_prompts(parse_persona_config(_cfg(tmp_path, templates={"judge": "missing.j2"}), "c", tmp_path))


def test_import_config_maps_the_old_format(tmp_path):
    old = {
        "model_inference": {"model_name": "some/local-model", "temperature": 0.5, "top_p": 0.8, "max_tokens": 200,
                            "frequency_penalty": 1.1, "repetition_penalty": 1.05},
        "multiturn_generation": {"key_list": ["TEAM_A_KEY", "TEAM_B_KEY"], "model_name": "geminipro1.0",
                                 "persona_name": "orbit", "use_answer_prefix": False, "target_turn": 5},
        "json": {"inspiring_json_dir": "data/seeds.jsonl", "start_idx": 7, "jsonl_save_dir": "out/raw/",
                 "filtered_save_dir": "out/post/"},
        "scoring": {"scoring_prompt": "X", "score_threshold": 3.5},
        "extra_section": {"a": 1},
    }
    new, mapped, skipped = import_config(old, tmp_path / "new.yaml")
    ep = new["endpoints"]["generator"]
    assert ep["model"] == "gemini-1.0-pro" and "generativelanguage" in ep["base_url"]
    assert ep["api_key_env"] == ["TEAM_A_KEY", "TEAM_B_KEY"]
    p = new["persona"]
    assert p["personas"] == ["orbit"] and p["turns"] == 5 and p["use_answer_prefix"] is False
    assert p["seeds"] == {"path": "data/seeds.jsonl", "start": 7}
    assert p["output"] == {"raw_dir": "out/raw/", "filtered_dir": "out/post/"}
    assert p["quality"]["min_score"] == 3.5
    assert p["agents"]["persona"]["temperature"] == 0.5 and p["agents"]["persona"]["params"]["frequency_penalty"] == 1.1
    text = " ".join(skipped)
    for what in ("repetition_penalty", "model_inference.model_name", "scoring_prompt", "extra_section"):
        assert what in text
    # the result is a valid config for both the engine and the workflow
    from dialogforge.engine.config import parse_config
    parse_config({k: v for k, v in new.items() if k != "persona"})
    cfg = parse_persona_config(new["persona"], "new.yaml", tmp_path)
    assert cfg.turns == 5 and cfg.seeds.start == 7


def test_import_realdata_config(tmp_path):
    path = REAL / "basic_config.yaml"
    if not path.exists():
        pytest.skip("../shared/realdata is not available")
    new, mapped, skipped = write_imported(path, tmp_path / "imported.yaml")
    data = yaml.safe_load((tmp_path / "imported.yaml").read_text(encoding="utf-8"))
    assert data == new
    cfg = parse_persona_config(data["persona"], "imported.yaml", tmp_path)
    assert [p.name for p in cfg.personas] == ["neuroticism"] and cfg.turns == 3 and cfg.use_answer_prefix
    assert cfg.quality.min_score == 3.0
    assert any("key_list" in s for s in skipped)  # the placeholder key name is reported, not silently used
    assert (tmp_path / "imported.yaml").read_text(encoding="utf-8").startswith("# dialogforge config imported")


def test_overrides_are_checked_and_applied(tmp_path):
    from dialogforge.workflows.persona.workflow import apply_overrides
    cfg = parse_persona_config(_cfg(tmp_path), "c", tmp_path)
    new = apply_overrides(cfg, limit=3, turns=(2, 4), personas=["medician"], min_score=4.0, judge=False,
                          raw_dir=str(tmp_path / "r"))
    assert new.seeds.limit == 3 and new.turns == (2, 4) and [p.name for p in new.personas] == ["medician"]
    assert new.quality.min_score == 4.0 and not new.quality.judge and new.resolve(new.output.raw_dir) == tmp_path / "r"
    with pytest.raises(TypeError, match="limits"):
        apply_overrides(cfg, limits=3)


def test_example_configs_validate():
    from dialogforge.engine.config import load_config
    for name in ("demo.yaml", "server.yaml"):
        cfg = load_config(EXAMPLES / name)
        pc = parse_persona_config(cfg.extra["persona"], name, EXAMPLES)
        assert pc.resolve(pc.seeds.path).exists()
    assert len(load_seeds(parse_persona_config(load_config(EXAMPLES / "server.yaml").extra["persona"], "s", EXAMPLES))) == 12


def test_demo_config_uses_its_own_user_prompt_and_reasks():
    """The demo's simulated-user template (demo_prompts/) replaces the built-in one and renders with what the
    workflow passes; the demo asks answers again on the heuristic checks, which still judge every dialogue."""
    from dialogforge.engine.config import load_config
    from dialogforge.workflows.persona.prompts import persona_prompts
    pc = parse_persona_config(load_config(EXAMPLES / "demo.yaml").extra["persona"], "demo.yaml", EXAMPLES)
    assert set(pc.reask) == {"echo", "catchphrase", "shrinking"} and pc.max_attempts >= 3
    import re
    follow_up = re.compile(pc.follow_up_pattern or "")
    assert follow_up.search("What is the origin of the flour used in the bread?")
    assert not any(follow_up.search(t) for t in ("I'm sorry for any confusion. What can I do for you?",
                                                 "What is the next question?", "What else?", "The answer is:"))
    from dialogforge.workflows.persona.checks import CheckThresholds
    assert pc.quality.checks == CheckThresholds() and pc.quality.advisory == ["judge"]  # the thresholds everyone gets
    prompts = persona_prompts(pc)
    text = prompts.render("user_turn.j2", persona=pc.personas[0], language="English", questions=["Why?", "How?"],
                          history=[{"role": "assistant", "content": "Because of the light."}])
    assert '"How?"' in text and "Because of the light." in text and text != persona_prompts().render(
        "user_turn.j2", persona=pc.personas[0], language="English", questions=["Why?", "How?"],
        history=[{"role": "assistant", "content": "Because of the light."}])


def test_cli_import_config_and_personas(tmp_path):
    from typer.testing import CliRunner
    from dialogforge.cli.main import app
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"multiturn_generation": {"model_name": "gpt-4o-mini", "persona_name": "medician",
                                                            "target_turn": 4, "key_list": ["MY_KEY"]},
                                   "json": {"inspiring_json_dir": "seeds.jsonl"}}))
    r = CliRunner().invoke(app, ["persona", "import-config", str(old), "-o", str(tmp_path / "new.yaml")])
    assert r.exit_code == 0, r.output
    assert "mapped" in r.output and "[medician]" in r.output and "not mapped" in r.output
    new = yaml.safe_load((tmp_path / "new.yaml").read_text())
    assert new["endpoints"]["generator"]["base_url"] == "https://api.openai.com/v1"
    assert new["endpoints"]["generator"]["api_key_env"] == ["MY_KEY"] and new["persona"]["turns"] == 4
    r = CliRunner().invoke(app, ["persona", "personas"])
    assert r.exit_code == 0 and all(n in r.output for n in ("neuroticism", "orbit", "historian_and_physician"))
    r = CliRunner().invoke(app, ["persona", "import-config", str(tmp_path / "missing.yaml"), "-o", "x.yaml"])
    assert r.exit_code == 2 and "not found" in r.output


def test_alpaca_input_is_appended_to_the_question(tmp_path):
    _seeds(tmp_path, [{"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
                      {"instruction": "Translate to French.", "input": "Thank you", "output": "Merci"},
                      {"instruction": "Name a colour.", "input": "", "output": "Blue"}])
    seeds = load_seeds(parse_persona_config(_cfg(tmp_path), "c", tmp_path))
    assert [s["instruction"] for _, s in seeds] == ["Translate to French.\n\nGood morning",
                                                   "Translate to French.\n\nThank you", "Name a colour."]
