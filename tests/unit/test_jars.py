"""Where the S3A connector goes on a driver JVM's class path: at the end (SPARK_DIST_CLASSPATH, which
the launcher appends after Spark's jars), only while the JVM is launched, and not at all before
`make setup-s3`."""
from __future__ import annotations

import os

from runner.stream import jars


def _lib(tmp_path, monkeypatch, names=()):
    (tmp_path / "s3").mkdir()
    for name in names:
        (tmp_path / "s3" / name).write_bytes(b"")
    monkeypatch.setattr(jars, "JVM_LIB", tmp_path)


def test_the_connector_is_appended_while_a_jvm_launches_then_the_variable_is_restored(tmp_path, monkeypatch):
    _lib(tmp_path, monkeypatch, ["hadoop-aws-3.5.0.jar", "bundle-2.35.4.jar"])
    monkeypatch.setenv("SPARK_DIST_CLASSPATH", "/opt/hadoop/lib/*")
    with jars.s3a_connector_on_class_path():
        assert os.environ["SPARK_DIST_CLASSPATH"].split(os.pathsep) == [
            "/opt/hadoop/lib/*", str(tmp_path / "s3" / "bundle-2.35.4.jar"), str(tmp_path / "s3" / "hadoop-aws-3.5.0.jar")]
    assert os.environ["SPARK_DIST_CLASSPATH"] == "/opt/hadoop/lib/*"


def test_without_the_variable_before_none_is_left_after(tmp_path, monkeypatch):
    _lib(tmp_path, monkeypatch, ["hadoop-aws-3.5.0.jar"])
    monkeypatch.delenv("SPARK_DIST_CLASSPATH", raising=False)
    with jars.s3a_connector_on_class_path():
        assert os.environ["SPARK_DIST_CLASSPATH"] == str(tmp_path / "s3" / "hadoop-aws-3.5.0.jar")
    assert "SPARK_DIST_CLASSPATH" not in os.environ


def test_before_make_setup_s3_nothing_changes(tmp_path, monkeypatch):
    _lib(tmp_path, monkeypatch)
    monkeypatch.delenv("SPARK_DIST_CLASSPATH", raising=False)
    assert jars.s3a_connector() == []
    with jars.s3a_connector_on_class_path():
        assert "SPARK_DIST_CLASSPATH" not in os.environ
