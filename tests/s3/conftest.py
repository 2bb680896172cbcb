"""Fixtures for the S3 tests: one moto S3 server per test session (its bucket's S3A settings also
on the shared session's Hadoop configuration) and a copy of the project whose checkpoint_root and
output_root are on that bucket. Skipped, with the reason, where `make setup-s3` has not run."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stream"))  # streamkit

from motos3 import MotoS3, missing  # noqa: E402
from storecheck import on_store  # noqa: E402
from streamkit import StreamProject  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Every test here is marked s3, and skipped with missing()'s one line where it can not run (the
    hook sees the whole session's items, so only this folder's are touched)."""
    here = Path(__file__).parent
    reason = missing()
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.s3)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def s3(spark, tmp_path_factory):
    """moto's S3 on 127.0.0.1 with a bucket, stopped by pid afterwards. The shared session was built
    before any test chose a store, so the bucket's settings go into its Hadoop configuration (the
    one every Hadoop client of the session copies); per bucket, so nothing else changes."""
    with MotoS3(tmp_path_factory.mktemp("moto"), f"fraud-{uuid.uuid4().hex[:8]}") as server:
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        for key, value in server.hadoop_conf().items():
            hadoop.set(key, value)
        yield server
        for key in server.hadoop_conf():
            hadoop.unset(key)
    assert server.proc.poll() is not None, "the moto S3 server is still running"


@pytest.fixture
def s3_project(tmp_path, broker, s3, lr_model) -> StreamProject:
    """A project on the bucket, as a user would write its target: the endpoint and path-style access
    in spark_conf (spark.hadoop.fs.s3a.*), the keys left to AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."""
    sp = StreamProject(tmp_path / "project", broker, lr_model)
    sp.raw["targets"]["local"].setdefault("spark_conf", {}).update(
        {f"spark.hadoop.{k}": v for k, v in s3.hadoop_conf(credentials=False).items()})
    return on_store(sp, s3.uri(f"run-{uuid.uuid4().hex[:8]}"))
