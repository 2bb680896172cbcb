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


def test_the_sinks_of_a_batch_are_written_at_the_same_time():
    import threading

    both = threading.Barrier(2, timeout=30)   # passes only when the two writes run together
    met = []
    sink_batches.at_once([lambda: met.append(both.wait()), lambda: met.append(both.wait())])
    assert sorted(met) == [0, 1]


def test_a_failed_sink_fails_the_batch_once_the_others_finished():
    import time

    import pytest

    done = []

    def fails():
        raise RuntimeError("broker gone")

    def slow():
        time.sleep(0.5)
        done.append("parquet")

    with pytest.raises(RuntimeError, match="broker gone"):
        sink_batches.at_once([fails, slow])
    assert done == ["parquet"]


def test_sinks_written_from_their_own_threads_keep_the_batchs_job_group(spark, tmp_path):
    # Spark's job group and description are thread-local properties: the other sinks' threads
    # inherit them, so their jobs count in the batch (and show under its query).
    frame = lambda: spark.createDataFrame([(i, i) for i in range(5)], "w INT, n_txn BIGINT")  # noqa: E731
    collect_only = _jobs_in(spark, "sink-batches-one", lambda: sink_batches.collected(frame().persist(), 100))
    outs = [str(tmp_path / "a"), str(tmp_path / "b")]
    two = _jobs_in(spark, "sink-batches-two",
                   lambda: sink_batches.batch_writer([_member(o) for o in outs], kafka_options={})(frame(), 1))
    assert two == collect_only + 2      # one small write job per Parquet sink, both in the group
    assert [len(batches.committed_dirs(o)) for o in outs] == [1, 1]
