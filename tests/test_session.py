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

