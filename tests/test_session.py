"""The SparkSession is built with the connector jars of exactly the pyspark version."""
from __future__ import annotations

import os
import sys

import pyspark
import pytest

from runner.errors import RunnerError
from runner.stream import jars, session


def test_session_has_connector_jars_and_python(spark):
    conf_jars = spark.sparkContext.getConf().get("spark.jars")
    assert f"spark-sql-kafka-0-10_2.13-{pyspark.__version__}.jar" in conf_jars
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def test_version_mismatch_is_refused(tmp_path, monkeypatch):
    (tmp_path / "connector").mkdir()
    (tmp_path / "connector" / "spark-sql-kafka-0-10_2.13-3.5.1.jar").write_bytes(b"")
    monkeypatch.setattr(jars, "JVM_LIB", tmp_path)
    with pytest.raises(RunnerError, match=f"connector 3.5.1 does not match pyspark {pyspark.__version__}"):
        session.check_versions()


def test_local_checkpoints_are_written_without_checksum_files(spark, tmp_path):
    """A stateful streaming query on local disk writes its checkpoint (offset and commit logs, state
    changelogs) and its file sink's log without a .crc file beside any of them: the session writes
    them through Hadoop's raw local FileContext, which forks no chmod or readlink for the .crc
    (runner/stream/session.py)."""
    source, out, checkpoint = tmp_path / "in", tmp_path / "out", tmp_path / "checkpoint"
    spark.range(50).selectExpr("id", "timestamp_seconds(id + 1000) AS t").write.parquet(str(source))
    stream = (spark.readStream.schema("id LONG, t TIMESTAMP").parquet(str(source))
              .withWatermark("t", "10 seconds").dropDuplicatesWithinWatermark(["id"]))
    query = (stream.writeStream.format("parquet").option("checkpointLocation", str(checkpoint))
             .trigger(availableNow=True).start(str(out)))
    query.awaitTermination(120)
    assert query.exception() is None
    assert spark.read.parquet(str(out)).count() == 50
    written = [p for p in [*checkpoint.rglob("*"), *(out / "_spark_metadata").rglob("*")] if p.is_file()]
    assert any(p.parent.name == "commits" for p in written) and any("state" in p.parts for p in written)
    assert any(p.parent.name == "_spark_metadata" for p in written)
    assert [p for p in written if p.name.endswith(".crc")] == []
