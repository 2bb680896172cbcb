"""runner/stream/metrics.py on progress shaped like Spark's (no Spark, no Kafka), and the targets'
metrics_port / metrics_host keys. The endpoint on a real run: tests/stream/test_metrics.py."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from projectcopy import copy_project
from runfixture import write_sink

from runner.compile.compiler import compile_project
from runner.compile.project import load_project
from runner.errors import RunnerError
from runner.stream import apply as runtime
from runner.stream import metrics


@pytest.fixture
def shipped(repo, tmp_path):
    root = copy_project(repo, tmp_path)
    project = load_project(root)
    manifest = compile_project(project, write=False)
    return project, manifest, runtime.plan(project, manifest)


def kafka_source(topic: str, start: dict | None, end: dict, latest: dict, rows: int) -> dict:
    return {"description": f"KafkaV2[Subscribe[{topic}]]", "startOffset": {topic: start} if start else None,
            "endOffset": {topic: end}, "latestOffset": {topic: latest}, "numInputRows": rows}


def dedupe(dropped_repeats: int = 0, late: int = 0) -> dict:
    return {"operatorName": "dedupeWithinWatermark", "numRowsTotal": 9, "numRowsUpdated": 9, "numRowsRemoved": 4,
            "numRowsDroppedByWatermark": late, "customMetrics": {"numDroppedDuplicateRows": dropped_repeats}}


def progress(name: str, batch: int, rows: int, ms: int, sources: list, operators=(), sink_rows: int = -1) -> dict:
    return {"name": name, "batchId": batch, "numInputRows": rows, "inputRowsPerSecond": rows / 2,
            "processedRowsPerSecond": rows / (ms / 1000), "durationMs": {"triggerExecution": ms},
            "stateOperators": list(operators), "sources": sources, "sink": {"numOutputRows": sink_rows}}


def commit_batch(folder: Path, batch: int, frame: pd.DataFrame) -> None:
    """One more batch of a file sink: its Parquet file and its entry in _spark_metadata."""
    f = folder / f"part-{batch:05d}-new.snappy.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), f)
    entry = {"path": f.as_uri(), "size": f.stat().st_size, "isDir": False, "modificationTime": 0,
             "blockReplication": 1, "blockSize": 1, "action": "add"}
    (folder / "_spark_metadata" / str(batch)).write_text("v1\n" + json.dumps(entry) + "\n")


def value(m: metrics.PipelineMetrics, name: str, **labels) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_pure_readings_of_a_progress():
    src = kafka_source("transactions", {"0": 10, "1": 5}, {"0": 20, "1": 9}, {"0": 25, "1": 9}, 14)
    assert metrics.records_behind(src) == [("transactions", 0, 5), ("transactions", 1, 0)]
    assert metrics.records_behind({"description": "MemoryStream", "endOffset": "3"}) == []
    p = progress("q", 1, 30, 500, [src], [dedupe(dropped_repeats=2, late=3)])
    assert metrics.deduplicated_rows(p) == 25
    assert metrics.topic_rows(p) == {"transactions": 14}
    save = {"operatorName": "stateStoreSave", "numRowsTotal": 7, "numRowsUpdated": 5, "numRowsRemoved": 2}
    assert [metrics.emitted_rows(progress("k", 1, 9, 100, [], [save, dedupe()]), mode)
            for mode in ("append", "update", "complete")] == [2, 5, 7]


def test_a_run_of_batches_becomes_counters_per_query_sink_and_reason(shipped, tmp_path):
    project, manifest, plans = shipped
    rejected_dir = Path(next(p.spec.location for p in plans if p.name == "rejected_transactions__parquet"))
    write_sink(rejected_dir, pd.DataFrame({"reason": ["not_json"] * 4}), batches=1)   # before this run: not counted
    m = metrics.PipelineMetrics(plans, manifest, {"name": "fraud_lr", "kind": "lr"}, "ab" * 32)
    try:
        m.observe(progress("scored_transactions__topics", 7, 100, 400,
                           [kafka_source("transactions", {"0": 0, "1": 0}, {"0": 60, "1": 40}, {"0": 70, "1": 40}, 100)],
                           sink_rows=104))
        m.observe(progress("fraud_alerts__parquet", 3, 6, 800,
                           [kafka_source("fraud_alerts", {"0": 0}, {"0": 6}, {"0": 6}, 6)], [dedupe(dropped_repeats=1)]))
        m.observe(progress("fraud_alerts__parquet", 4, 2, 1200,
                           [kafka_source("fraud_alerts", {"0": 6}, {"0": 8}, {"0": 8}, 2)], [dedupe()]))
        save = {"operatorName": "stateStoreSave", "numRowsTotal": 2, "numRowsUpdated": 3, "numRowsRemoved": 3}
        m.observe(progress("kpi_per_minute__sinks", 5, 95, 2000,
                           [kafka_source("scored_events", {"0": 0}, {"0": 95}, {"0": 95}, 95)], [save, dedupe(late=4)]))
        # the KPI query keeps its late rows: they count as its writer commits them, not from Spark's progress
        assert value(m, "fraud_late_rows_total", query="kpi_per_minute__sinks") == 0
        m.observe_late_rows("kpi_per_minute__sinks", 4)
        commit_batch(rejected_dir, 1, pd.DataFrame({"reason": ["not_json", "bad_type", "bad_type"]}))
        m._rejects.count_new()
        m._rejects.count_new()   # a file is counted once

        assert value(m, "fraud_query_input_rows_total", query="scored_transactions__topics") == 100
        assert value(m, "fraud_query_processed_rows_per_second", query="scored_transactions__topics") == 250
        assert value(m, "fraud_query_last_batch_duration_seconds", query="fraud_alerts__parquet") == 1.2
        assert value(m, "fraud_query_batch_duration_seconds_count", query="fraud_alerts__parquet") == 2
        assert value(m, "fraud_query_batch_duration_seconds_bucket", query="fraud_alerts__parquet", le="1.0") == 1
        assert value(m, "fraud_query_last_committed_batch_id", query="fraud_alerts__parquet") == 4
        assert value(m, "fraud_query_records_behind_latest", query="scored_transactions__topics",
                     topic="transactions", partition="0") == 10
        assert value(m, "fraud_late_rows_total", query="kpi_per_minute__sinks") == 4
        # a repeat the mirror dropped is neither an alert nor a written row; the topic holds it
        assert value(m, "fraud_alerts_total") == 7
        assert value(m, "fraud_sink_rows_written_total", sink="fraud_alerts__parquet", query="fraud_alerts__parquet") == 7
        assert value(m, "fraud_sink_rows_written_total", sink="fraud_alerts__kafka",
                     query="scored_transactions__topics") == 8
        assert value(m, "fraud_sink_rows_written_total", sink="kpi_events__topic", query="scored_transactions__topics") == 95
        for kpi_sink in ("kpi_per_minute__console", "kpi_per_minute__kafka", "kpi_per_minute__parquet"):
            assert value(m, "fraud_sink_rows_written_total", sink=kpi_sink, query="kpi_per_minute__sinks") == 3
        assert value(m, "fraud_sink_rows_written_total", sink="kpi_per_minute__late_rows",
                     query="kpi_per_minute__sinks") is None   # not a sink of the windows' rows
        assert value(m, "fraud_rejected_records_total", reason="bad_type") == 2
        assert value(m, "fraud_rejected_records_total", reason="not_json") == 1
        assert m.registry.get_sample_value("fraud_model_info", {"name": "fraud_lr", "kind": "lr",
                                                                "card_sha256": "ab" * 32, "created": ""}) == 1
    finally:
        m.close()


def test_target_metrics_keys(repo, tmp_path):
    root = copy_project(repo, tmp_path)
    raw = yaml.safe_load((root / "project.yml").read_text())
    assert load_project(root).target.metrics_port is None
    assert load_project(root).target.metrics_host == "127.0.0.1"
    raw["targets"]["local"].update(metrics_port=9464, metrics_host="0.0.0.0")
    (root / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    t = load_project(root).target
    assert (t.metrics_port, t.metrics_host) == (9464, "0.0.0.0")
    for bad in (0, 70000, "9464", True, 94.5):
        raw["targets"]["local"]["metrics_port"] = bad
        (root / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(RunnerError, match="metrics_port must be a TCP port") as e:
            load_project(root)
        assert "project.yml:" in e.value.where
