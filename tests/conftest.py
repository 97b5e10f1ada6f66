"""Shared fixtures: an isolated run store and the loopback fake server."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own run store location and a quiet, deterministic environment."""
    monkeypatch.setenv("DIALOGFORGE_HOME", str(tmp_path / ".dialogforge"))
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    for var in list(os.environ):
        if var.endswith("_API_KEY"):
            monkeypatch.delenv(var, raising=False)


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not present")
    return REALDATA
