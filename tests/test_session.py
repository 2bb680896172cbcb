"""The SparkSession is built with the connector jars of exactly the pyspark version."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pyspark
import pytest

from runner.errors import RunnerError
from runner.stream import class_archive, jars, session


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


def test_local_master_files_go_through_java_nio_not_forks(spark, tmp_path):
    """On a local master the driver's `file:` filesystem is BareLocalFileSystem (permissions set
    through java.nio, no `chmod` process per file) and checkpoints use Spark's FileSystem-based
    manager (no `readlink` process per rename); a permission set through it lands on the file."""
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(tmp_path.as_uri() + "/offsets/0")
    fs = path.getFileSystem(conf)
    assert fs.getClass().getName() == "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"
    manager = jvm.org.apache.spark.sql.execution.streaming.checkpointing.CheckpointFileManager.create(
        path.getParent(), spark._jsparkSession.sessionState().newHadoopConf())
    assert manager.getClass().getName().endswith(".FileSystemBasedCheckpointFileManager")
    out = manager.createAtomic(path, False)
    out.write(b"v1\n")
    out.close()
    assert (tmp_path / "offsets" / "0").read_bytes() == b"v1\n"
    fs.setPermission(path, jvm.org.apache.hadoop.fs.permission.FsPermission(0o640))
    assert (tmp_path / "offsets" / "0").stat().st_mode & 0o777 == 0o640


def test_local_files_conf_keeps_a_targets_own_values():
    conf = session.local_files_conf({"spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.LocalFileSystem",
                                     "spark.driver.extraClassPath": "/opt/extra.jar"})
    assert conf["spark.hadoop.fs.file.impl"] == "org.apache.hadoop.fs.LocalFileSystem"
    assert conf["spark.sql.streaming.checkpointFileManagerClass"].endswith("FileSystemBasedCheckpointFileManager")
    first, second = conf["spark.driver.extraClassPath"].split(os.pathsep)
    assert first.endswith("hadoop-bare-naked-local-fs-0.1.0.jar") and second == "/opt/extra.jar"


def test_the_driver_jvm_compiles_only_really_hot_code_with_c2(spark):
    # DEFAULT_CONF's JIT thresholds reach the JVM the session runs in (spark-submit's driver options)
    bean = spark._jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        spark._jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    assert bean.getVMOption("Tier4InvocationThreshold").getValue() == "50000"
    assert bean.getVMOption("Tier4BackEdgeThreshold").getValue() == "400000"
    assert bean.getVMOption("TieredStopAtLevel").getValue() == "4"   # C2 still compiles


def test_a_driver_reads_sparks_classes_from_the_archive_make_setup_made(tmp_path):
    """`make setup` made jvm/lib/cds/driver.jsa (runner/stream/class_archive.py); a driver that
    build_session starts, with options of its own, maps Spark's classes from it instead of
    loading them from the jars (HotSpot's class-load log names the archive as their source)."""
    assert class_archive.ARCHIVE.is_file(), "make setup makes the archive"
    log = tmp_path / "class-load.log"
    code = ("from runner.stream.session import build_session\n"
            f"spark = build_session('local[1]', conf={{'spark.driver.extraJavaOptions': '-Xlog:class+load=info:file={log}'}})\n"
            "spark.range(3).selectExpr('sum(id)').collect()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = dict(re.findall(r"\] (\S+) source: (.+)$", log.read_text(), flags=re.M))
    assert loaded["org.apache.spark.sql.SparkSession"] == "shared objects file (top)"
    assert loaded["org.apache.spark.sql.catalyst.analysis.Analyzer"] == "shared objects file (top)"
    # nothing about the archive reached the driver's output
    assert "cds" not in done.stdout


def test_a_targets_own_archive_option_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(class_archive, "ARCHIVE", tmp_path / "driver.jsa")
    assert class_archive.java_options("-Xmx1g") == "-Xmx1g"                  # none made: nothing added
    (tmp_path / "driver.jsa").write_bytes(b"")
    assert class_archive.java_options("-Xmx1g") == \
        f"-Xmx1g -XX:SharedArchiveFile={tmp_path / 'driver.jsa'} -Xlog:cds*=off"
    assert class_archive.java_options("-XX:SharedArchiveFile=/opt/own.jsa") == "-XX:SharedArchiveFile=/opt/own.jsa"
