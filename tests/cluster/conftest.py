"""Fixtures for the cluster tests: the stream test kit, a trained model, a standalone cluster."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stream"))  # streamkit

from standalone import StandaloneCluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster_model(spark, tmp_path_factory) -> Path:
    """A logistic-regression model trained on synthetic rows (seed 7, unlike the replayed data)."""
    from runner.tools.train import load_synthetic, train

    out = tmp_path_factory.mktemp("cluster_models")
    train(spark, load_synthetic(10000, seed=7), kind="lr", out_dir=out, name="fraud_lr")
    return out / "fraud_lr"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """One master and one worker (1 core, 1g) on 127.0.0.1; stopped by pid afterwards."""
    with StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"), cores=1, memory="1g") as cluster:
        yield cluster
