"""The corpus `make check-frameworks` exports (the loading itself needs the side environment)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dialogforge.engine.backends.embedded import available as embedded_available

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_frameworks" / "corpus.py"


@pytest.mark.skipif(not embedded_available(), reason="the manifest names the embedded model's GGUF file")
def test_corpus_exports_every_kind_of_row_and_refuses_the_broken_ones(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("fw_corpus", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    by = {e["name"]: e for e in manifest["exports"]}
    assert Path(manifest["gguf"]).is_file()
    assert by["lf_dialogues_alpaca"]["rejected"] == {"empty_reply": 1, "message_count": 1, "json": 1}
    assert by["trl_dialogues"]["rejected"] == {"empty_reply": 1, "role_order": 1, "json": 1}
    assert by["trl_agent"]["rejected"] == {"arg_types": 1} and by["trl_agent"]["train_on"] == "last"
    assert by["trl_pairs_tools"]["rejected"] == {"prompt_end": 1}
    assert all(e["written"] > 0 for e in manifest["exports"])
    info = json.loads((tmp_path / "exports" / "dataset_info.json").read_text())
    assert "mask_history: true" in info["lf_agent_sharegpt"]["description"]
