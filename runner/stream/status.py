"""Where each query stands: checkpoint, last committed batch, offsets behind, last progress."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runner.stream import checkpoints, storage


@dataclass
class QueryStatus:
    name: str
    checkpoint: object           # its folder: a Path, or a storage.HadoopPath (hdfs://, s3a://)
    last_batch: int | None
    behind: int | None           # records in the topics it reads past its committed offsets (None: Kafka did not answer)
    last_progress: dict | None   # summarize() of the last batch seen by `apply`
    late_rows: int               # rows left out behind the watermark: for a query that keeps them (config
                                 # late_rows) the rows kept, exact over every run; else the sum of Spark's
                                 # numRowsDroppedByWatermark over the progress logs of the runs still on disk
    late_output: str | None = None   # where a query that keeps its late rows keeps them


def _progress(runtime_dir: Path, name: str) -> tuple[dict | None, int]:
    from runner.stream.apply import summarize

    f = runtime_dir / "progress" / f"{name}.jsonl"
    if not f.exists():
        return None, 0
    last, late = None, 0
    for line in f.read_text().splitlines():
        try:
            s = summarize(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        late += s["late_rows"]
        last = s
    return last, late


def end_offsets(kafka_options: dict, topics: set[str]) -> dict[str, dict[str, int]] | None:
    """{topic: {partition: end offset}}, or None when Kafka does not answer."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from runner.stream.kafka_clients import client_config
    try:
        # bootstrap_timeout_ms bounds the constructor: without it a broker that is down costs
        # kafka-python's 30 s before status can say "Kafka does not answer".
        consumer = KafkaConsumer(**{"request_timeout_ms": 10000, "bootstrap_timeout_ms": 5000,
                                    **client_config(kafka_options)})
    except (KafkaError, OSError):
        return None
    try:
        tps = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or [])]
        ends = consumer.end_offsets(tps) if tps else {}
        out: dict[str, dict[str, int]] = {}
        for tp, off in ends.items():
            out.setdefault(tp.topic, {})[str(tp.partition)] = off
        return out
    finally:
        consumer.close()


def late_output(project, folder) -> str | None:
    """The folder a stateful query keeps its late rows in, as its runner.json says (late_rows.py)."""
    from runner.stream.sinks import LATE

    meta = checkpoints.read_meta(folder) or {}
    for sink in (meta.get("sinks") or {}).values():
        if sink.get("rows") == LATE and sink.get("path"):
            return f"{project.output_root.rstrip('/')}/{sink['path']}"
    return None


def _reads(project, folder) -> set[str]:
    """The topics a query reads, as its runner.json says (a reader of the route query's topics),
    else the sources' topics."""
    meta = checkpoints.read_meta(folder) or {}
    return set((meta.get("reads") or {}).values()) or {s.topic for s in project.sources.values()}


def query_status(project) -> list[QueryStatus]:
    storage.configure(project.target.spark_conf)
    root = storage.path(project.checkpoint_root)
    folders = sorted(p for p in root.iterdir() if (p / checkpoints.META).exists()) if root.is_dir() else []
    reads = {folder.name: _reads(project, folder) for folder in folders}
    topics = set().union(*reads.values()) if reads else set()
    ends = end_offsets(project.target.kafka_options(), topics) if folders else None
    out = []
    for folder in folders:
        committed = checkpoints.committed_offsets(folder)
        behind = None
        if ends is not None:   # against the topics this query reads: the source, or the route query's topics
            behind = sum(max(0, end - committed.get(t, {}).get(p, 0))
                         for t, parts in ends.items() if t in reads[folder.name] for p, end in parts.items())
        last, late = _progress(project.runtime_dir, folder.name)
        kept = late_output(project, folder)
        if kept is not None:
            from runner.stream import late_rows
            late = late_rows.count(kept)
        out.append(QueryStatus(folder.name, folder, checkpoints.last_committed_batch(folder), behind, last, late,
                               kept))
    return out
