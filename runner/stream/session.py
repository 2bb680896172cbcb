"""The SparkSession: master, the Kafka connector jars, conf, PYSPARK_PYTHON.

One place builds it, so the CLI, the tests and the benchmarks start Spark the same way.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

from runner.errors import RunnerError
from runner.stream import spark_log
from runner.stream.jars import connector_version, jars, s3a_connector_on_class_path

# Defaults sized for a small machine; a target's spark_conf overrides them.
DEFAULT_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
    "spark.sql.streaming.stopActiveRunOnRestart": "true",
    # Real-time Mode needs every stage of its query scheduled at once.
    "spark.scheduler.mode": "FAIR",
    # Streaming state (the readers' repeat filter, the KPI windows) in RocksDB, off the JVM heap,
    # each batch committing a small changelog instead of a delta file per partition plus periodic
    # full snapshots of an in-heap map. Where to keep state, not what the SQL means: a checkpoint
    # records its provider, and Spark keeps using it there.
    "spark.sql.streaming.stateStore.providerClass":
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
}


def check_versions() -> list[str]:
    """The connector jars, after checking their version equals pyspark's."""
    import pyspark

    connector = jars("connector")
    version = connector_version(connector)
    if version != pyspark.__version__:
        raise RunnerError(
            f"Spark Kafka connector {version} does not match pyspark {pyspark.__version__}",
            hint="keep <spark.version> in jvm/pom.xml equal to the pyspark pin in pyproject.toml, then `make setup`",
        )
    return [str(j) for j in connector]


def build_session(master: str = "local[*]", *, app_name: str = "fraud-detector",
                  conf: Mapping[str, str] | None = None, log_level: str | None = None):
    """Get or create the SparkSession with the connector on its class path. When a verb configured
    runner/stream/spark_log.py, the driver JVM starts with its log in that verb's file."""
    settings = {**DEFAULT_CONF, **(conf or {})}
    # Python workers must run this interpreter, or they miss the venv's packages; on a cluster
    # whose executors have Python elsewhere, the target sets spark.pyspark.python. pyspark ships
    # PYSPARK_PYTHON to the executors with every Python function.
    settings.setdefault("spark.pyspark.python", sys.executable)
    os.environ["PYSPARK_PYTHON"] = settings["spark.pyspark.python"]
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    settings["spark.jars"] = ",".join(check_versions() + [j for j in settings.get("spark.jars", "").split(",") if j])
    with s3a_connector_on_class_path():   # whichever of the two launches the driver JVM
        settings = spark_log.launch(settings, master=master, app_name=app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    logging = spark_log.settings()
    spark.sparkContext.setLogLevel(log_level or (logging.level if logging else spark_log.DEFAULT_LEVEL))
    return spark


def session_for(project, *, app_name: str = "fraud-detector", extra: Mapping[str, str] | None = None):
    return build_session(project.target.master, app_name=app_name,
                         conf={**project.target.spark_conf, **(extra or {})})
