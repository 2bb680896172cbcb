"""Fixtures for end-to-end tests: a trained model, and a copy of the project wired to the test broker."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamkit import StreamProject


@pytest.fixture(scope="session")
def lr_model(spark, tmp_path_factory) -> Path:
    """A logistic-regression model trained once on synthetic rows (seed 7, unlike the replayed data)."""
    from runner.tools.train import load_synthetic, train

    out = tmp_path_factory.mktemp("models")
    train(spark, load_synthetic(20000, seed=7), kind="lr", out_dir=out, name="fraud_lr")
    return out / "fraud_lr"


@pytest.fixture
def stream_project(tmp_path, broker, lr_model) -> StreamProject:
    return StreamProject(tmp_path / "project", broker, lr_model)
