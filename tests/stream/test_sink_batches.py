"""The KPI query's foreachBatch writer: each batch once per sink, exactly once per batch id, and
nothing at all for a batch without rows (most batches of an append-mode window aggregation)."""
from __future__ import annotations

from types import SimpleNamespace

from runner.stream import batches, sink_batches


def _member(location: str):
    return SimpleNamespace(spec=SimpleNamespace(sink={"kind": "parquet"}, location=location, model="kpi_per_minute"))


def test_an_empty_batch_writes_no_batch_folder(spark, tmp_path):
    out = str(tmp_path / "kpis")
    write = sink_batches.batch_writer([_member(out)], kafka_options={})
    empty = spark.createDataFrame([], "window_start TIMESTAMP, n_txn BIGINT")
    write(empty, 7)
    assert batches.committed_dirs(out) == []


def test_a_batch_with_rows_is_written_once_per_batch_id(spark, tmp_path):
    out = str(tmp_path / "kpis")
    write = sink_batches.batch_writer([_member(out)], kafka_options={})
    rows = spark.createDataFrame([(1, 3), (2, 4)], "w INT, n_txn BIGINT")
    write(rows, 3)
    write(rows, 3)   # Spark replays a batch after a crash under the same id
    dirs = batches.committed_dirs(out)
    assert [d.name for d in dirs] == ["batch=0000000003"]
    assert sorted(r.n_txn for r in spark.read.parquet(*[str(d) for d in dirs]).collect()) == [3, 4]
