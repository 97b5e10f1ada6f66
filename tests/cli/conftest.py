"""Fixtures the CLI tests share: a scratch working folder and a loopback test server for the module."""
from __future__ import annotations

import os

import pytest

from dialogforge.testing.fake_server import FakeServer


@pytest.fixture
def scratch(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


@pytest.fixture(scope="module")
def server():
    with FakeServer() as srv:
        yield srv
