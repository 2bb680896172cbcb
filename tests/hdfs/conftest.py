"""Fixtures for the HDFS tests: one mini HDFS per test session, a trained model, and a copy of the
project whose checkpoint_root and output_root are on that HDFS."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stream"))  # streamkit

from minihdfs import MiniHDFS, on_hdfs  # noqa: E402
from streamkit import StreamProject  # noqa: E402


@pytest.fixture(scope="session")
def hdfs(tmp_path_factory):
    """A NameNode and a DataNode on 127.0.0.1 (ports chosen by the OS), stopped by pid afterwards."""
    with MiniHDFS(tmp_path_factory.mktemp("minihdfs")) as cluster:
        yield cluster
    assert cluster.proc.poll() is not None, "the mini HDFS is still running"


@pytest.fixture(scope="session")
def hdfs_model(spark, tmp_path_factory) -> Path:
    """A logistic-regression model trained on synthetic rows (seed 7, unlike the replayed data)."""
    from runner.tools.train import load_synthetic, train

    out = tmp_path_factory.mktemp("hdfs_models")
    train(spark, load_synthetic(10000, seed=7), kind="lr", out_dir=out, name="fraud_lr")
    return out / "fraud_lr"


@pytest.fixture
def hdfs_project(tmp_path, broker, hdfs, hdfs_model) -> StreamProject:
    return on_hdfs(StreamProject(tmp_path / "project", broker, hdfs_model), hdfs)
