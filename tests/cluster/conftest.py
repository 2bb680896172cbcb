"""Fixtures for the cluster tests: the stream test kit and a standalone cluster."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stream"))  # streamkit

from standalone import StandaloneCluster  # noqa: E402


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """One master and one worker (1 core, 1g) on 127.0.0.1; stopped by pid afterwards."""
    with StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"), cores=1, memory="1g") as cluster:
        yield cluster
