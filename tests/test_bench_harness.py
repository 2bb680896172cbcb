"""The benchmark's own measuring parts (bench/), without Spark or a broker: the backlog's order per
partition, reading ProducerPerformance's summary, Parquet commit times from `_spark_metadata`, and
the met / not met lines of the results."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import report
from bench.backlog import BacklogRun
from bench.latency import ParquetCommits
from bench.workload import BACKLOG_START, backlog_rows, parse_producer_summary, partition_of, window_counts


def test_each_backlog_partition_is_in_event_time_order_and_spans_the_whole_range():
    rows = backlog_rows(5000)
    part = partition_of(len(rows), 2)
    for p in (0, 1):
        times = rows["Time"].to_numpy()[part == p]
        assert np.all(np.diff(times) >= 0), f"partition {p} goes back in event time"
        assert times[0] <= rows["Time"].iloc[10] and times[-1] >= rows["Time"].iloc[-10]
    assert window_counts(rows, BACKLOG_START).sum() == len(rows)


def test_producer_performance_summary_is_read_from_its_last_line():
    out = ("12240 records sent, 2443.6 records/sec (2.05 MB/sec), 2743.1 ms avg latency, 3445.0 ms max latency.\n"
           "20000 records sent, 1722.9 records/sec (1.44 MB/sec), 2326.67 ms avg latency, 3445.00 ms max latency, "
           "2335 ms 50th, 3187 ms 95th, 3338 ms 99th, 3403 ms 99.9th.\n")
    assert parse_producer_summary(out) == (20000, 1722.9, 2335.0, 3338.0)
    with pytest.raises(ValueError, match="no summary line"):
        parse_producer_summary("Exception in thread main\n")


def _sink_file(folder: Path, name: str, offsets: list[int]) -> Path:
    f = folder / name
    pq.write_table(pa.table({"kafka_partition": [0] * len(offsets), "kafka_offset": offsets}), f)
    return f


def _log(folder: Path, batch: str, files: list[Path], mtime: float) -> None:
    log = folder / "_spark_metadata"
    log.mkdir(exist_ok=True)
    entries = "".join(json.dumps({"path": f.as_uri(), "action": "add"}) + "\n" for f in files)
    (log / batch).write_text("v1\n" + entries)
    os.utime(log / batch, (mtime, mtime))


def test_parquet_commit_time_is_the_first_log_entry_listing_the_file(tmp_path):
    a = _sink_file(tmp_path, "part-a.parquet", [1, 2])
    b = _sink_file(tmp_path, "part-b.parquet", [3])
    _sink_file(tmp_path, "part-uncommitted.parquet", [4])      # written, never committed
    _log(tmp_path, "0", [a], 1000.0)
    _log(tmp_path, "1.compact", [a, b], 1005.0)                # a compaction lists a again
    commits = ParquetCommits(tmp_path)
    commits.refresh()
    assert commits.committed() == {(0, 1): 1_000_000.0, (0, 2): 1_000_000.0, (0, 3): 1_005_000.0}


def _step(asked, achieved, p99, fresh_p99=None, saturated=""):
    return {"asked": asked, "achieved": achieved, "p50": p99 / 2, "p95": p99, "p99": p99, "max": p99,
            "fresh_p99": fresh_p99, "saturated": saturated}


def test_goals_are_met_or_not_from_the_run_and_unmeasured_ones_say_so():
    res = {"args": {"rows": 1000, "rounds": 1},
           "backlog": [BacklogRun("seed", 0, 10.0, 9.0, 1000).as_dict(),
                       BacklogRun("ours", 0, 2.0, 1.0, 1000, peak_rss=2**30).as_dict(),
                       BacklogRun("floor", 0, 1.0, 0.5, 1000).as_dict()],
           "latency": [{"mode": "realtime", "peak_rss": 3 * 2**30,
                        "steps": [_step(1000, 1000, 50), _step(5000, 4990, 150), _step(10000, 7000, 900, saturated="x")]}]}
    lines = report.goal_lines(res)
    assert "**met** (5.00x)" in lines[0]                        # 5x the seed
    assert "**not met** (50%)" in lines[1]                      # half the floor
    assert "**not met** (150 ms" in lines[2]                    # RTM p99 at 5k/s
    assert "not measured" in lines[3]                           # no micro-batch run
    assert "**not met** (3.00 GiB)" in lines[4]
    assert report.held(res["latency"][0]["steps"])["asked"] == 5000   # the saturated step does not count
