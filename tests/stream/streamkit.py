"""Helpers for end-to-end tests: a project copy on the test broker, references, consumers."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


class StreamProject:
    """A copy of the shipped project (project.yml + sql/) in a tmp folder, on the test broker,
    with its own `transactions` topic so tests do not see each other's input."""

    def __init__(self, root: Path, broker, model: Path, partitions: int = 2):
        self.root = root
        self.broker = broker
        shutil.copytree(REPO / "sql", root / "sql")
        raw = yaml.safe_load((REPO / "project.yml").read_text())
        self.topic = f"transactions_{uuid.uuid4().hex[:8]}"
        raw["sources"]["kafka"]["transactions"]["topic"] = self.topic
        raw["topics"] = {self.topic: {"partitions": partitions}, "fraud_alerts": {"partitions": 1},
                         "fraud_kpis": {"partitions": 1}, "transactions_rejected": {"partitions": 1},
                         "scored_events": {"partitions": 2}}
        raw["model"] = str(model)
        raw["targets"]["local"]["kafka"]["bootstrap.servers"] = broker.bootstrap
        self.raw = raw
        self.write()
        from runner.stream.kafka_clients import ensure_topics
        ensure_topics(self.kafka, self.load().topics)

    def write(self) -> None:
        (self.root / "project.yml").write_text(yaml.safe_dump(self.raw, sort_keys=False))

    def load(self, **kw):
        from runner.compile.project import load_project
        return load_project(self.root, **kw)

    def compile(self, var_overrides=None):
        from runner.compile.compiler import compile_project
        return compile_project(self.load(), var_overrides)

    @property
    def kafka(self) -> dict:
        return {"bootstrap.servers": self.broker.bootstrap}

    def output(self, name: str) -> Path:
        return self.root / "output" / name

    def edit_sql(self, rel: str, old: str, new: str) -> None:
        f = self.root / "sql" / rel
        text = f.read_text()
        assert old in text, f"{old!r} not in {rel}"
        f.write_text(text.replace(old, new))

    def cli(self, *args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        exe = Path(sys.executable).with_name("runner")
        return subprocess.run([str(exe), "--project", str(self.root), *args], capture_output=True, text=True,
                              timeout=timeout, **kw)

    def popen(self, *args: str, log: Path) -> subprocess.Popen:
        exe = Path(sys.executable).with_name("runner")
        out = open(log, "wb")
        return subprocess.Popen([str(exe), "--project", str(self.root), *args], stdout=out, stderr=subprocess.STDOUT)


def apply_in_process(spark, sp: StreamProject, *, var_overrides=None, available_now=True, timeout_s=300,
                     on_started=None, stop_event=None, realtime=True):
    """`runner apply --available-now` through the Python API on the shared session (no new JVM).
    With available_now=False it runs until stop_event is set (what SIGTERM does to `runner apply`);
    realtime=False is `--no-realtime`."""
    from runner.stream import apply as runtime

    project = sp.load()
    manifest = sp.compile(var_overrides)
    plans = runtime.plan(project, manifest, var_overrides)
    runtime.preflight(project, plans)
    result = runtime.run(spark, project, manifest, plans, available_now=available_now, timeout_s=timeout_s,
                         on_started=on_started, stop_event=stop_event, realtime=realtime)
    return plans, result


def reference_alerts(spark, model: Path, rows, id_prefix: str, threshold: float = 0.9) -> set[str]:
    """txn_ids the saved PipelineModel scores at or above the threshold, in batch."""
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    pdf = rows.copy()
    pdf["txn_id"] = [f"{id_prefix}-{i:08d}" for i in range(len(pdf))]
    scored = PipelineModel.load(str(model / "pipeline")).transform(spark.createDataFrame(pdf))
    hits = scored.where(vector_to_array("probability")[1] >= F.lit(threshold)).select("txn_id")
    return {r.txn_id for r in hits.collect()}


def read_topic(bootstrap: str, topic: str, timeout_s: float = 60.0, **consumer_options) -> list:
    """Every record of `topic` up to its end offsets as of the call: reading stops there, instead
    of once the topic has been quiet for a while (a consumer_timeout_ms spent idle every call)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             **consumer_options)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        assert parts, f"topic {topic} has no partitions"
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, f"{topic} not read to its end offsets {ends} within {timeout_s:.0f}s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def consume_keys(bootstrap: str, topic: str, prefix: str) -> list[str]:
    return [m.key.decode() for m in read_topic(bootstrap, topic) if m.key and m.key.decode().startswith(prefix)]
