"""Fixtures for end-to-end tests: a copy of the project wired to the test broker, with the
session's trained model (lr_model, in tests/conftest.py)."""
from __future__ import annotations

import pytest
from streamkit import StreamProject


@pytest.fixture
def stream_project(tmp_path, broker, lr_model) -> StreamProject:
    return StreamProject(tmp_path / "project", broker, lr_model)
