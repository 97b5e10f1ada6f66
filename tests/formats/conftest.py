"""Fixtures for the formats tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from formats_samples import agent_sample, persona_dialogue, preference_record, write_jsonl


@pytest.fixture
def mixed_input(tmp_path: Path) -> Path:
    rows = [agent_sample(0), agent_sample(1, parallel=True), agent_sample(2, purpose="history_summary"),
            persona_dialogue(0), persona_dialogue(1, score=3.0, passed=False), preference_record(1)]
    return write_jsonl(tmp_path / "input.jsonl", rows)
