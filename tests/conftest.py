"""Shared fixtures: one SparkSession and one real Kafka broker per test session.

The broker is started through the project's own code (runner.kafka_local) on a free
port, so CI needs nothing started by hand.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def spark():
    from runner.stream.session import build_session

    session = build_session("local[4]", app_name="tests",
                            conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A real KRaft broker on a free port; yields its BrokerState."""
    from runner.tools import kafka_local

    data_dir = tmp_path_factory.mktemp("kafka")
    state = kafka_local.start(data_dir, kafka_local.free_port())
    yield state
    kafka_local.stop(data_dir)


@pytest.fixture(scope="session")
def lr_model(spark, tmp_path_factory, worker_id) -> Path:
    """A logistic-regression model trained once per test run on synthetic rows (seed 7, unlike
    the replayed data), for every test that needs a real model (stream, HDFS, cluster, docs); each
    compares its outputs with this same model's batch scores, so one model serves them all. Under
    pytest-xdist the first worker to ask trains it in the run's shared temp folder while the other
    waits on a file lock, then reads the same model (read-only: no test writes into it)."""
    import fcntl

    from runner.tools.train import load_synthetic, train

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base   # pytest-N/, shared by this run's workers
    out = shared / "lr-model"
    with open(shared / "lr-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "fraud_lr" / "model_card.json").exists():
            train(spark, load_synthetic(20000, seed=7), kind="lr", out_dir=out, name="fraud_lr")
    return out / "fraud_lr"


@pytest.fixture
def topic(broker):
    """A fresh topic name per test (created by whoever needs it, with its partitions)."""
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def runner_cmd():
    """The console script of this venv, for tests that run the CLI as a user would."""
    exe = Path(sys.executable).with_name("runner")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "runner.cli"]
