"""The shipped cluster targets and compose services agree with each other and with the pins;
checkpoint and output roots: file:// URIs work, other schemes are refused before Spark starts."""
from __future__ import annotations

import pyspark
import pytest
import yaml

from runner.stream import checkpoints
from runner.errors import RunnerError
from runner.compile.project import load_project


def test_cluster_target_ships_master_shared_roots_and_executor_conf(repo):
    project = load_project(repo, target="cluster", master="spark://10.0.0.5:7077")
    assert project.target.master == "spark://10.0.0.5:7077"            # --master overrides
    assert load_project(repo, target="cluster").target.master.startswith("spark://")
    assert project.checkpoint_root.startswith("file:///") and project.output_root.startswith("file:///")
    assert {"spark.executor.cores", "spark.executor.memory"} <= set(project.target.spark_conf)


def test_compose_cluster_matches_the_compose_services(repo):
    compose = yaml.safe_load((repo / "docker-compose.yml").read_text())["services"]
    target = load_project(repo, target="compose-cluster").target
    for name in ("spark-master", "spark-worker"):
        assert compose[name]["image"].startswith(f"apache/spark:{pyspark.__version__}-"), name
    assert target.master == "spark://spark-master:7077" and "7077" in compose["spark-master"]["command"]
    assert target.spark_conf["spark.driver.host"] == compose["app"]["hostname"]
    assert target.kafka["bootstrap.servers"] == "kafka:19092"
    assert compose["app"]["environment"]["RUNNER_TARGET"] == "compose-cluster"
    # The driver (app) and the executors (worker) see the roots at the same path.
    for name in ("app", "spark-worker"):
        assert "./:/app" in compose[name]["volumes"], name
    assert target.checkpoint_root.startswith("file:///app/") and target.output_root.startswith("file:///app/")


def test_file_uris_are_local_paths_and_spark_gets_them_literally():
    assert str(checkpoints.local("file:///srv/fraud/checkpoints")) == "/srv/fraud/checkpoints"
    assert str(checkpoints.local("file:/srv/x")) == "/srv/x"
    # Hadoop reads a path string literally: no percent-encoding of '=' or spaces.
    assert checkpoints.location("file:///srv/a b=c", "q") == "file:///srv/a b=c/q"


@pytest.mark.parametrize("root", ["hdfs://nn:8020/fraud/checkpoints", "s3a://bucket/fraud/checkpoints"])
def test_other_schemes_are_refused_with_a_hint(root):
    with pytest.raises(RunnerError) as e:
        checkpoints.query_dir(root, "q")
    assert root.split("://")[0] + "://" in str(e.value) and "file:///" in e.value.hint
