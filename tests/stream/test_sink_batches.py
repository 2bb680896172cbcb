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


def _console():
    return SimpleNamespace(spec=SimpleNamespace(sink={"kind": "console"}, location="console", model="kpi_per_minute"))


def _jobs_in(spark, group: str, action) -> int:
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return len(sc.statusTracker().getJobIdsForGroup(group))


def test_a_small_batch_is_collected_once_printed_without_a_job_and_written_as_one_file(spark, tmp_path, capfd):
    out = str(tmp_path / "kpis")
    frame = lambda: spark.createDataFrame([(i, 10 * i) for i in range(7)], "w INT, n_txn BIGINT").repartition(3)  # noqa: E731
    collect_only = _jobs_in(spark, "sink-batches-collect", lambda: sink_batches.collected(frame().persist(), 100))
    console_only = _jobs_in(spark, "sink-batches-console",
                            lambda: sink_batches.batch_writer([_console()], kafka_options={})(frame(), 4))
    assert console_only == collect_only          # printing the collected rows ran no Spark job
    assert "|6  |60   |" in capfd.readouterr().out

    sink_batches.batch_writer([_member(out)], kafka_options={})(frame(), 4)
    (folder,) = batches.committed_dirs(out)
    assert len(list(folder.glob("*.parquet"))) == 1
    assert sorted(r.n_txn for r in spark.read.parquet(str(folder)).collect()) == [0, 10, 20, 30, 40, 50, 60]


def test_a_batch_over_the_local_limit_is_written_from_the_cache(spark, tmp_path, monkeypatch):
    monkeypatch.setattr(sink_batches, "LOCAL_ROWS", 5)
    out = str(tmp_path / "kpis")
    rows = spark.createDataFrame([(i, 10 * i) for i in range(7)], "w INT, n_txn BIGINT").repartition(3)
    sink_batches.batch_writer([_member(out)], kafka_options={})(rows, 9)
    (folder,) = batches.committed_dirs(out)
    assert len(list(folder.glob("*.parquet"))) > 1     # the cached batch's partitions, not one local file
    assert sorted(r.n_txn for r in spark.read.parquet(str(folder)).collect()) == [0, 10, 20, 30, 40, 50, 60]
