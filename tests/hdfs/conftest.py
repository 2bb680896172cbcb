"""Fixtures for the HDFS tests: one mini HDFS per test session and a copy of the
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


@pytest.fixture
def hdfs_project(tmp_path, broker, hdfs, lr_model) -> StreamProject:
    return on_hdfs(StreamProject(tmp_path / "project", broker, lr_model), hdfs)
