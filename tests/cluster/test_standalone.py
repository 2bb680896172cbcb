"""The same project on a real Spark standalone cluster: `runner --target cluster apply` (the runner
is the driver, client mode; one worker with 1 core runs the tasks) over a 4-partition topic gives
exactly the Parquet alerts and KPIs of a local run on the same data."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pandas as pd
import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from streamkit import REPO, StreamProject, apply_in_process, reference_alerts

from runner.stream import apply as runtime
from runner.stream import outputs, sinks
from runner.tools import replay
from runner.tools.synth import generate

pytestmark = pytest.mark.cluster

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def cluster_target(sp: StreamProject, shared) -> dict:
    """The shipped `cluster` target, on the test broker, with its roots under a tmp 'shared' folder."""
    shipped = yaml.safe_load((REPO / "project.yml").read_text())["targets"]["cluster"]
    assert shipped["master"].startswith("spark://")
    assert shipped["checkpoint_root"].startswith("file:///") and shipped["output_root"].startswith("file:///")
    assert {"spark.executor.cores", "spark.executor.memory"} <= set(shipped["spark_conf"])
    target = yaml.safe_load(yaml.safe_dump(shipped))
    target["output_root"] = (shared / "output").as_uri()
    target["checkpoint_root"] = (shared / "checkpoints").as_uri()
    target["kafka"] = {"bootstrap.servers": sp.broker.bootstrap}
    # Small enough for a 1-core, 1g worker on a shared machine; the driver calls back on loopback.
    target["spark_conf"].update({"spark.executor.memory": "512m", "spark.driver.memory": "1g",
                                 "spark.driver.host": "127.0.0.1", "spark.cores.max": "1",
                                 "spark.sql.shuffle.partitions": "2"})
    return target


def parquet_sinks_only(sp: StreamProject) -> None:
    """Drop the KPIs' console and Kafka sinks in the copy's models: the route query's topics and the
    Parquet sinks are what a cluster run has to get right, on a shared 2-core machine."""
    for f in (sp.root / "sql" / "kpis").rglob("*.sql"):
        text = f.read_text()
        f.write_text(re.sub(r"\{'kind': '(kafka|console)'[^}]*\},?\s*", "", text))
    project = sp.load()
    names = sorted(spec.query_name for m in sp.compile().models for spec in sinks.specs(project, m))
    assert names == ["fraud_alerts__kafka", "fraud_alerts__parquet", "kpi_events__topic", "kpi_per_minute__late_rows",
                     "kpi_per_minute__parquet",
                     "rejected_transactions__kafka", "rejected_transactions__parquet"], names


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def by(df: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return df.sort_values(list(keys)).reset_index(drop=True)[sorted(df.columns)]


def test_cluster_apply_equals_local_run(spark, broker, lr_model, standalone, tmp_path):
    sp = StreamProject(tmp_path / "project", broker, lr_model, partitions=4)
    parquet_sinks_only(sp)
    rows = generate(3000, seed=21)
    sent = replay.send(sp.kafka, sp.topic, rows, start=START, id_prefix="cl")
    assert sent.sent == 3000 and sent.errors == 0
    ends = end_offsets(broker.bootstrap, sp.topic)
    assert len(ends) == 4 and all(n > 0 for n in ends.values()) and sum(ends.values()) == 3000, ends

    shared = tmp_path / "shared"
    sp.raw["targets"]["cluster"] = cluster_target(sp, shared)
    sp.write()

    # On the cluster: the CLI as a user runs it, the master URL given with --master.
    run = sp.cli("--target", "cluster", "--master", standalone.url, "apply", "--available-now", "--quiet",
                 env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, timeout=900)
    (tmp_path / "apply.log").write_text(run.stdout + "\n---- stderr\n" + run.stderr)
    errors = [line for line in run.stderr.splitlines() if "Error" in line or "File \"" in line]
    assert run.returncode == 0, ("\n".join(errors[:60]) + run.stdout[-2000:] + run.stderr[-2000:]
                                 + standalone.log_tail("worker"))
    assert "stopped (available-now)" in run.stdout

    # It did run there: the master lists the finished application, its executor ran the tasks.
    apps = standalone.state()["completedapps"]
    assert [a["name"] for a in apps] == ["fraud-detector"], apps
    logs = standalone.executor_logs()
    assert logs and any("Finished task" in f.read_text(errors="replace") for f in logs), logs
    # The checkpoints are under the file:// root (a query's folder: runner.json, and the KPIs' state).
    plans = {p.name: p for p in runtime.plan(sp.load(target="cluster"), sp.compile())}
    assert all(p.checkpoint.is_relative_to(shared / "checkpoints") for p in plans.values())
    assert all((p.checkpoint / "runner.json").exists() for p in plans.values())
    assert (plans["kpi_per_minute__parquet"].checkpoint / "state").is_dir()

    # status reads the file: URI checkpoints: every query has committed and nothing is behind (asked before
    # the local run below, which writes the same route topics again).
    from runner.stream.status import query_status
    status = query_status(sp.load(target="cluster"))
    assert {s.checkpoint for s in status} == {p.checkpoint for p in plans.values()}
    assert all(s.last_batch is not None and s.behind == 0 for s in status), \
        [(s.name, s.last_batch, s.behind) for s in status]

    # Locally, the same project and data (the shared local[4] session, its own roots).
    _, local = apply_in_process(spark, sp)
    assert local.exit_code == 0, local.error

    out = sp.load(target="cluster").output_root
    assert out.startswith("file:///")
    cluster_alerts = outputs.read(f"{out}/alerts")
    local_alerts = outputs.read(sp.output("alerts"))
    expected = reference_alerts(spark, lr_model, rows, "cl")
    assert len(expected) > 5, "the reference should have alerts for this test to mean anything"
    assert sorted(cluster_alerts["txn_id"]) == sorted(expected)
    pd.testing.assert_frame_equal(by(cluster_alerts, "txn_id"), by(local_alerts, "txn_id"))

    cluster_kpis, local_kpis = outputs.read(f"{out}/kpis"), outputs.read(sp.output("kpis"))
    assert len(local_kpis) > 20
    pd.testing.assert_frame_equal(by(cluster_kpis, "window_start"), by(local_kpis, "window_start"))
    assert len(outputs.read(f"{out}/rejected")) == len(outputs.read(sp.output("rejected"))) == 0
