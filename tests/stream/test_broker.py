"""The embedded broker is a real Kafka: clients and Spark talk to it, the CLI manages it."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from streamkit import read_topic

from runner.errors import RunnerError
from runner.stream.kafka_clients import ensure_topics, list_topics
from runner.tools import kafka_local


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for v in values:
        producer.send(topic, v)
    producer.flush(timeout=30)
    producer.close()


def test_produce_consume_round_trip(broker, topic):
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: 1})
    _produce(broker.bootstrap, topic, [b"hello", b"fraud"])
    assert [m.value for m in read_topic(broker.bootstrap, topic)] == [b"hello", b"fraud"]


def test_ensure_topics_is_idempotent_and_keeps_partitions(broker, topic):
    opts = {"bootstrap.servers": broker.bootstrap}
    assert ensure_topics(opts, {topic: 3}) == [topic]
    assert ensure_topics(opts, {topic: 3}) == []
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    assert len(consumer.partitions_for_topic(topic)) == 3
    consumer.close()


def test_spark_reads_exactly_1000_json_messages(spark, broker, topic, tmp_path):
    ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: 2})
    _produce(broker.bootstrap, topic, [json.dumps({"n": i}).encode() for i in range(1000)])
    stream = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", broker.bootstrap)
              .option("subscribe", topic)
              .option("startingOffsets", "earliest")
              .load()
              .selectExpr("from_json(CAST(value AS STRING), 'n INT').n AS n"))
    out = tmp_path / "out"
    query = (stream.writeStream.format("parquet").option("path", str(out))
             .option("checkpointLocation", str(tmp_path / "ckpt"))
             .trigger(availableNow=True).start())
    assert query.awaitTermination(120)
    rows = spark.read.parquet(str(out))
    assert rows.count() == 1000
    assert rows.selectExpr("count(DISTINCT n)").first()[0] == 1000


def test_status_reports_running_broker(broker, runner_cmd, tmp_path):
    out = subprocess.run(runner_cmd + ["kafka", "status", "--data-dir", broker.data_dir],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"running on {broker.bootstrap}" in out.stdout
    assert f"pid {broker.pid}" in out.stdout


def test_status_of_a_stopped_broker_exits_1(runner_cmd, tmp_path):
    out = subprocess.run(runner_cmd + ["kafka", "status", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "not running" in out.stdout


def test_second_start_is_refused(broker):
    with pytest.raises(RunnerError, match="already running"):
        kafka_local.start(broker.data_dir, broker.port)


def test_taken_port_gives_a_clear_error(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        with pytest.raises(RunnerError, match=f"port {port} on 127.0.0.1 is taken"):
            kafka_local.start(tmp_path / "kafka", port)


def test_cli_start_stop_leaves_no_process(runner_cmd, tmp_path):
    data_dir = tmp_path / "kafka"
    port = kafka_local.free_port()
    start = subprocess.run(runner_cmd + ["kafka", "start", "--port", str(port), "--data-dir", str(data_dir),
                                         "--no-topics"], capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr
    state = kafka_local.read_state(data_dir)
    assert state is not None and state.port == port
    assert list_topics({"bootstrap.servers": state.bootstrap}) == []
    again = subprocess.run(runner_cmd + ["kafka", "start", "--port", str(port), "--data-dir", str(data_dir)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already running" in again.stderr
    stop = subprocess.run(runner_cmd + ["kafka", "stop", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0 and f"stopped (pid {state.pid})" in stop.stdout
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and kafka_local._alive(state.pid):
        time.sleep(0.2)
    assert not kafka_local._alive(state.pid)
    assert kafka_local.read_state(data_dir) is None


# ---------------------------------------------------------------- finding a broker started elsewhere

def _cli(runner_cmd, project: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(runner_cmd + ["--project", str(project), "kafka", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_stop_and_status_find_the_broker_started_with_data_dir(runner_cmd, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "brokers" / "mine"
    port = kafka_local.free_port()
    start = _cli(runner_cmd, project, "start", "--port", str(port), "--data-dir", str(elsewhere), "--no-topics")
    assert start.returncode == 0, start.stderr
    state = kafka_local.read_state(elsewhere)
    try:
        status = _cli(runner_cmd, project, "status")                  # no --data-dir
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"running on 127.0.0.1:{port} (pid {state.pid}), data in {elsewhere}" in status.stdout
        stop = _cli(runner_cmd, project, "stop")                      # no --data-dir
        assert stop.returncode == 0, stop.stderr
        assert f"stopped (pid {state.pid})" in stop.stdout
        assert not kafka_local._alive(state.pid, state.nodes[0].started)
        assert list((project / ".runtime" / "brokers").glob("*.json")) == []  # its registry entry is gone
        after = _cli(runner_cmd, project, "status")
        assert after.returncode == 1 and "not running" in after.stdout
    finally:
        kafka_local.stop(elsewhere)


def _record_copy(state: kafka_local.BrokerState, data_dir: Path, **node_changes) -> kafka_local.BrokerState:
    """A broker.json in data_dir naming state's processes (with some fields changed)."""
    from dataclasses import replace

    data_dir.mkdir(parents=True, exist_ok=True)
    copy = replace(state, data_dir=str(data_dir), nodes=tuple(replace(n, **node_changes) for n in state.nodes))
    (data_dir / "broker.json").write_text(copy.to_json())
    return copy


def test_registry_drops_entries_of_brokers_that_died(broker, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    registry = kafka_local.Registry(tmp_path / "registry")
    _record_copy(broker, tmp_path / "dead", pid=dead.pid)
    registry.add(tmp_path / "dead")
    registry.add(tmp_path / "deleted")                  # a data folder removed since: no record at all
    registry.add(broker.data_dir)
    assert [s.data_dir for s in registry.running()] == [broker.data_dir]
    assert len(list((tmp_path / "registry").glob("*.json"))) == 1   # the two stale entries were deleted


def test_a_recycled_pid_is_not_taken_for_the_broker(broker, tmp_path):
    """A record naming a live process that is not a Kafka broker, or one started at another
    time than recorded, means: not running (stop must never signal it)."""
    import os

    assert kafka_local.read_state(broker.data_dir) is not None
    _record_copy(broker, tmp_path / "other_process", pid=os.getpid(), started=0.0)
    _record_copy(broker, tmp_path / "other_time", started=broker.nodes[0].started - 3600)
    assert kafka_local.read_state(tmp_path / "other_process") is None
    assert kafka_local.read_state(tmp_path / "other_time") is None
    assert kafka_local.stop(tmp_path / "other_time") is None
    assert kafka_local._alive(broker.pid, broker.nodes[0].started)  # the real broker was left alone


def test_locate_names_several_running_brokers_instead_of_guessing(broker, tmp_path):
    registry = kafka_local.Registry(tmp_path / "registry")
    twin = _record_copy(broker, tmp_path / "twin")       # a second folder whose record shows a live broker
    registry.add(broker.data_dir)
    assert kafka_local.locate(tmp_path / "default", registry) == Path(broker.data_dir)
    registry.add(twin.data_dir)
    with pytest.raises(RunnerError, match="several local Kafka brokers run") as err:
        kafka_local.locate(tmp_path / "default", registry)
    assert broker.data_dir in str(err.value) and twin.data_dir in str(err.value)
    assert "--data-dir" in str(err.value)


def test_a_record_from_before_clusters_still_reads(tmp_path):
    (tmp_path / "broker.json").write_text(json.dumps(
        {"pid": 4242, "port": 9092, "controller_port": 9093, "data_dir": str(tmp_path)}))
    state = kafka_local.recorded(tmp_path)
    assert (state.pid, state.port, state.controller_port, state.bootstrap) == (4242, 9092, 9093, "127.0.0.1:9092")


def test_missing_jars_tell_the_user_to_run_make_setup(tmp_path, monkeypatch):
    from runner.stream import jars
    monkeypatch.setattr(jars, "JVM_LIB", tmp_path)
    with pytest.raises(RunnerError, match="make setup"):
        jars.jars("broker")


def test_missing_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RunnerError, match="java not found"):
        kafka_local.start(tmp_path / "kafka", kafka_local.free_port())


def test_cluster_ids_never_start_with_a_dash(monkeypatch):
    """The storage tool reads a leading '-' as an option (seen once in CI: 1 start in 64)."""
    import uuid as uuid_mod

    dash_first = uuid_mod.UUID(bytes=b"\xf8" + bytes(15))       # base64url of 0xf8... starts with '-'
    draws = iter([dash_first, uuid_mod.UUID(int=1)])
    monkeypatch.setattr(kafka_local.uuid, "uuid4", lambda: next(draws))
    assert kafka_local._cluster_id() == "AAAAAAAAAAAAAAAAAAAAAQ"


# ---------------------------------------------------------------- a three-broker cluster

def _min_insync(admin_client, topic: str) -> str:
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = ConfigResource(ConfigResourceType.TOPIC, topic, configs=["min.insync.replicas"])
    res = admin_client.describe_configs([wanted], config_filter="all")
    return res["topic"][topic]["min.insync.replicas"]["value"]


def test_three_brokers_replicate_every_topic_and_a_killed_node_comes_back(runner_cmd, tmp_path, repo):
    import os
    import shutil
    import signal

    from kafka import KafkaConsumer

    from runner.stream.kafka_clients import admin

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(repo / "project.yml", project / "project.yml")
    data = tmp_path / "cluster"
    port = kafka_local.free_port()
    started = time.monotonic()
    start = _cli(runner_cmd, project, "start", "--brokers", "3", "--port", str(port), "--data-dir", str(data),
                 timeout=300)
    start_s = time.monotonic() - started
    assert start.returncode == 0, start.stdout + start.stderr
    state = kafka_local.read_state(data)
    try:
        assert state.brokers == 3 and state.port == port and all(n.running for n in state.nodes)
        assert len({n.pid for n in state.nodes}) == 3
        assert len({p for n in state.nodes for p in (n.port, n.controller_port)}) == 6
        print(f"three-broker cluster up in {start_s:.1f}s (CLI, formatting included)")

        # The project's topics (created by `kafka start`) and the internal offsets topic (created
        # when a first consumer group asks for its coordinator) have a replica on every node.
        with KafkaConsumer("fraud_alerts", bootstrap_servers=state.bootstrap, group_id="probe",
                           consumer_timeout_ms=3000) as consumer:
            list(consumer)
        client = admin({"bootstrap.servers": state.bootstrap})
        try:
            wanted = set(yaml.safe_load((project / "project.yml").read_text())["topics"]) | {"__consumer_offsets"}
            described = {t["name"]: t for t in client.describe_topics(sorted(wanted))}
            assert set(described) == wanted
            for name, t in described.items():
                assert t["error_code"] == 0, name
                assert all(sorted(p["replica_nodes"]) == [1, 2, 3] for p in t["partitions"]), name
                assert _min_insync(client, name) == "2", name
        finally:
            client.close()

        os.kill(state.node(2).pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and state.node(2).running:
            time.sleep(0.2)
        degraded = _cli(runner_cmd, project, "status")        # no --data-dir: found through the registry
        assert degraded.returncode == 2, degraded.stdout + degraded.stderr
        assert "2 of 3 brokers running" in degraded.stdout
        assert f"node 2: 127.0.0.1:{state.node(2).port} (pid {state.node(2).pid}) DOWN" in degraded.stdout

        again = _cli(runner_cmd, project, "start", "--data-dir", str(data), "--no-topics", timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        back = kafka_local.read_state(data)
        assert back.node(2).pid != state.node(2).pid and back.node(2).port == state.node(2).port
        assert [n.pid for n in back.nodes if n.node_id != 2] == [n.pid for n in state.nodes if n.node_id != 2]
        healthy = _cli(runner_cmd, project, "status")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "3 of 3 brokers running" in healthy.stdout

        stop = _cli(runner_cmd, project, "stop")
        assert stop.returncode == 0 and "stopped 3 brokers" in stop.stdout, stop.stdout + stop.stderr
        assert not any(n.running for n in back.nodes)
    finally:
        kafka_local.stop(data)


# ---------------------------------------------------------------- topics in project.yml

@pytest.mark.parametrize("entry, message", [
    ("{partitions: 2, replicas: 3}", "unknown key(s) replicas"),
    ("{partitions: 0}", "partitions must be a whole number >= 1"),
    ("{replication_factor: three}", "replication_factor must be a whole number >= 1"),
    ("{configs: [min.insync.replicas]}", "configs must be a mapping"),
    ("{configs: {Min_ISR: 2}}", "'Min_ISR' is not a Kafka topic config name"),
    ("{replication_factor: 2, configs: {min.insync.replicas: 3}}", "min.insync.replicas 3 must be a whole number"),
])
def test_a_wrong_topic_entry_names_its_line(repo, tmp_path, entry, message):
    from runner.compile.project import load_project

    text = (repo / "project.yml").read_text().replace("  fraud_kpis:            {partitions: 1}",
                                                      f"  fraud_kpis: {entry}")
    (tmp_path / "project.yml").write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("  fraud_kpis:"))
    with pytest.raises(RunnerError, match=re.escape(message)) as err:
        load_project(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'project.yml'}:{line}: topic 'fraud_kpis'")


def test_topic_replication_and_configs_reach_kafka(broker, topic, tmp_path):
    from runner.compile.project import TopicSpec, load_project
    from runner.stream.kafka_clients import admin

    yml = (tmp_path / "project.yml")
    yml.write_text(f"topics:\n  {topic}: {{partitions: 2, replication_factor: 1, "
                   f"configs: {{retention.ms: 3600000, cleanup.policy: delete}}}}\n"
                   "targets: {local: {kafka: {bootstrap.servers: x}}}\n")
    spec = load_project(tmp_path).topics[topic]
    assert spec == TopicSpec(2, 1, {"retention.ms": "3600000", "cleanup.policy": "delete"})
    assert ensure_topics({"bootstrap.servers": broker.bootstrap}, {topic: spec}) == [topic]
    client = admin({"bootstrap.servers": broker.bootstrap})
    try:
        from kafka.admin import ConfigResource, ConfigResourceType
        got = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
        assert got["retention.ms"]["value"] == "3600000"
        assert len(client.describe_topics([topic])[0]["partitions"]) == 2
    finally:
        client.close()
    with pytest.raises(RunnerError, match=f"refused to create topic '{topic}_x'.*replication factor of 2"):
        ensure_topics({"bootstrap.servers": broker.bootstrap}, {f"{topic}_x": TopicSpec(1, 2)})
