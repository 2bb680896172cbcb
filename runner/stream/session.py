"""The SparkSession: master, the Kafka connector jars, conf, local files, PYSPARK_PYTHON.

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
    # The driver JVM compiles with C1 only, never C2. Its own work is planning and scheduling:
    # Catalyst's rules run once per micro-batch per query, so their code turns hot slowly and the
    # JIT kept recompiling it for minutes (60% of a core in compiler threads 45 s into a 110
    # events/s trickle, 23% after 3 minutes), beside the queries on 2 cores. C1 compiles each
    # method once, quickly. Measured: driver JVM CPU 119% -> 103% of a core on that trickle;
    # a 100,000-record backlog drained in 32.3 s against 38.8 s. Cost only, not what the SQL
    # means; a target that sets spark.driver.extraJavaOptions replaces it.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
}


# Where the driver JVM's own files go on a local master: the checkpoints (offset and commit logs,
# state changelogs, the file sink's log) and the Parquet output, a few dozen files per micro-batch.
# Without Hadoop's native library (pyspark ships none) its local filesystem forks `chmod` for every
# file it creates, and its FileContext forks `readlink` for both sides of every rename: profiled at
# ~55 forks per reader batch, 10-14 ms each under load, all on the batch's path (README "Benchmarks").
# BareLocalFileSystem (jvm/lib/localfs) is a LocalFileSystem, checksums and all, that sets
# permissions through java.nio; Spark's FileSystem-based checkpoint manager renames with
# File.renameTo (atomic on one local disk, and it still refuses to overwrite an offset or commit log
# entry). How files are written, not what the SQL means. A cluster's executors would need the jar on
# their class path too, so only a local master gets this (README "Running on a cluster").
LOCAL_FILES_CONF = {
    "spark.hadoop.fs.file.impl": "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem",
    "spark.sql.streaming.checkpointFileManagerClass":
        "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
}


def local_files_conf(settings: Mapping[str, str]) -> dict[str, str]:
    """LOCAL_FILES_CONF with its jar first on the driver's class path (spark-submit opens files
    through Hadoop before spark.jars are loaded); a target's own values win."""
    class_path = os.pathsep.join([*map(str, jars("localfs")),
                                  *filter(None, [settings.get("spark.driver.extraClassPath")])])
    return {**LOCAL_FILES_CONF, **settings, "spark.driver.extraClassPath": class_path}


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
    if master.startswith("local"):
        settings = local_files_conf(settings)
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
