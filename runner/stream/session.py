"""The SparkSession: master, the Kafka connector jars, conf, local files, PYSPARK_PYTHON.

One place builds it, so the CLI, the tests and the benchmarks start Spark the same way.
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

from runner.errors import RunnerError
from runner.stream import class_archive, spark_log
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
    # HotSpot's C2 compiles only code that is really hot: 10x its default invocation and loop
    # thresholds for tier 4 (the tier-4 compile threshold 4x). The driver plans every micro-batch
    # of every query, and Catalyst's rules run once a batch, so their code turns lukewarm slowly
    # and C2 kept recompiling it for minutes beside the queries on 2 cores (compiler threads at 60%
    # of a core 45 s into a 110 events/s trickle, 23% after 3 minutes). Per-record code (parsing,
    # scoring, Kafka) crosses these counts within seconds at any real rate and is still compiled
    # by C2; C1 only (-XX:TieredStopAtLevel=1) was tried and lost Real-time Mode at 5,000
    # events/s (alert p99 4.5 and 12.2 s, against 0.8 and 0.3 s). README "Benchmarks" has the
    # numbers. Cost only, not what the SQL means; a target that sets
    # spark.driver.extraJavaOptions replaces it.
    "spark.driver.extraJavaOptions": " ".join([
        "-XX:Tier4InvocationThreshold=50000", "-XX:Tier4MinInvocationThreshold=6000",
        "-XX:Tier4CompileThreshold=60000", "-XX:Tier4BackEdgeThreshold=400000"]),
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
    # Spark's classes mapped from the archive `make setup` made, whatever else the options say
    settings["spark.driver.extraJavaOptions"] = class_archive.java_options(
        settings.get("spark.driver.extraJavaOptions", ""))
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
