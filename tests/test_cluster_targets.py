"""The shipped cluster targets and compose services agree with each other and with the pins;
checkpoint and output roots: file:// URIs are local paths, Hadoop filesystem URIs (hdfs://, s3a://)
go to Spark as they are, malformed ones are refused before Spark starts."""
from __future__ import annotations

import pyspark
import pytest
import yaml

from runner.compile.project import load_project
from runner.errors import RunnerError
from runner.stream import checkpoints


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
def test_hadoop_filesystem_roots_are_accepted_and_given_to_spark_as_they_are(repo, tmp_path, root):
    raw = yaml.safe_load((repo / "project.yml").read_text())
    raw["targets"]["local"].update(checkpoint_root=root, output_root=root.replace("checkpoints", "output"))
    (tmp_path / "project.yml").write_text(yaml.safe_dump(raw))
    project = load_project(tmp_path)
    assert project.checkpoint_root == root
    assert checkpoints.location(project.checkpoint_root, "q") == root + "/q"
    assert str(checkpoints.archive_root(root)) == root + "_archive"


@pytest.mark.parametrize("root, says", [("hdfs:///fraud/checkpoints", "names no host or bucket"),
                                        ("s3a://bucket", "names no folder"), ("s3a://bucket/", "names no folder")])
def test_hadoop_roots_without_host_or_folder_are_refused_with_a_hint(repo, tmp_path, root, says):
    raw = yaml.safe_load((repo / "project.yml").read_text())
    raw["targets"]["local"]["checkpoint_root"] = root
    (tmp_path / "project.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(RunnerError) as e:
        load_project(tmp_path)
    assert says in str(e.value) and "checkpoint_root" in str(e.value) and "/fraud/checkpoints" in e.value.hint
