"""Where `make setup` put the JVM parts (jvm/lib/{broker,connector,localfs}), and `make setup-s3`
the S3A connector (jvm/lib/s3), and checks on them."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from runner.errors import RunnerError

JVM_LIB = Path(os.environ.get("RUNNER_JVM_LIB", Path(__file__).resolve().parents[2] / "jvm" / "lib"))
_CONNECTOR = re.compile(r"spark-sql-kafka-0-10_2\.13-(?P<version>[\w.\-]+)\.jar$")


def jars(kind: str) -> list[Path]:
    """All jars of one class path ('broker', 'connector' or 'localfs'); a clear error when missing."""
    folder = JVM_LIB / kind
    found = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    if not found:
        raise RunnerError(f"the {kind} jars are not resolved (nothing in {folder})", hint="run `make setup`")
    return found


def connector_version(connector_jars: list[Path]) -> str:
    for jar in connector_jars:
        m = _CONNECTOR.match(jar.name)
        if m:
            return m.group("version")
    raise RunnerError(f"no spark-sql-kafka-0-10_2.13 jar in {JVM_LIB / 'connector'}", hint="run `make setup`")


def s3a_connector() -> list[Path]:
    """hadoop-aws and the AWS SDK jars `make setup-s3` put in jvm/lib/s3; none before it ran."""
    folder = JVM_LIB / "s3"
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


@contextmanager
def s3a_connector_on_class_path() -> Iterator[None]:
    """While a driver JVM is launched inside it (a session's, or the storage layer's own): the S3A
    connector, when resolved, at the end of that JVM's class path, so s3a:// roots work on a local
    master with no spark_conf. At the end, through the launcher's SPARK_DIST_CLASSPATH, not
    spark.driver.extraClassPath, which goes first: Spark's own jars then win any class both hold (the
    SDK bundle carries unshaded org.reactivestreams, for one), and the bundle's 400,000 entries are
    searched only for what Spark's jars lack. A local master's executors share the driver's JVM; a
    cluster's get the connector from the cluster (README "Running on a cluster")."""
    connector = s3a_connector()
    before = os.environ.get("SPARK_DIST_CLASSPATH")
    if connector:
        os.environ["SPARK_DIST_CLASSPATH"] = os.pathsep.join([*filter(None, [before]), *map(str, connector)])
    try:
        yield
    finally:
        if connector:
            if before is None:
                os.environ.pop("SPARK_DIST_CLASSPATH", None)
            else:
                os.environ["SPARK_DIST_CLASSPATH"] = before
