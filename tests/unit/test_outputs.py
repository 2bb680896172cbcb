"""Reading what the Parquet sinks committed (runner/stream/outputs.py), files written with pyarrow.

Two layouts: Spark's file-sink log `_spark_metadata/` (one file per batch, folded into `N.compact`
every few batches), and `batch=<id>/` folders committed by rename, next to `_tmp_*` leftovers of
attempts that crashed. No Spark.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from runner.stream import outputs


def parquet(path: Path, ids: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"txn_id": [f"t{i}" for i in ids], "n": ids}), path)
    return path


def log_entry(path: Path) -> dict:
    # The shape of Spark's SinkFileStatus: a percent-encoded URI and the file's attributes.
    return {"path": path.as_uri(), "size": path.stat().st_size, "isDir": False, "modificationTime": 0,
            "blockReplication": 1, "blockSize": 33554432, "action": "add"}


def write_log(out: Path, name: str, files: list[Path]) -> None:
    log = out / "_spark_metadata"
    log.mkdir(parents=True, exist_ok=True)
    (log / name).write_text("v1\n" + "".join(json.dumps(log_entry(f)) + "\n" for f in files))


def ids(out: Path) -> list[int]:
    return sorted(outputs.read(out)["n"].tolist())


def test_missing_or_empty_folder_reads_as_no_rows(tmp_path):
    assert outputs.read(tmp_path / "nothing", ["n"]).empty
    assert list(outputs.read(tmp_path / "nothing", ["n"]).columns) == ["n"]
    (tmp_path / "empty").mkdir()
    assert outputs.committed_files(tmp_path / "empty") == []


def test_spark_log_reads_only_committed_files(tmp_path):
    out = tmp_path / "alerts"
    write_log(out, "0", [parquet(out / "part-0.parquet", [1, 2])])
    write_log(out, "1", [parquet(out / "part-1.parquet", [3])])
    parquet(out / "part-crashed.parquet", [99])       # written by a batch that never committed
    assert ids(out) == [1, 2, 3]


def test_compact_file_replaces_the_batches_before_it(tmp_path):
    out = tmp_path / "alerts"
    files = [parquet(out / f"part-{b}.parquet", [b]) for b in range(4)]
    for b in range(3):
        write_log(out, str(b), [files[b]])
    # 2.compact folds batches 0..2; it is the truth for them (here without batch 1's file, as if
    # that file had been removed), and the per-batch files before it are no longer read.
    write_log(out, "2.compact", [files[0], files[2]])
    write_log(out, "3", [files[3]])
    assert ids(out) == [0, 2, 3]


def test_only_the_latest_compact_counts(tmp_path):
    out = tmp_path / "kpis"
    files = [parquet(out / f"part-{b}.parquet", [b]) for b in range(6)]
    write_log(out, "2.compact", files[:3])
    write_log(out, "5.compact", [files[0], files[1], files[2], files[4], files[5]])
    write_log(out, "3", [files[3]])   # left behind, folded into 5.compact (which dropped it here)
    assert ids(out) == [0, 1, 2, 4, 5]


def test_logged_file_that_is_gone_is_skipped(tmp_path):
    out = tmp_path / "alerts"
    kept = parquet(out / "part-0.parquet", [1])
    gone = parquet(out / "part-1.parquet", [2])
    write_log(out, "0", [kept, gone])
    gone.unlink()
    assert ids(out) == [1]


def test_logged_path_with_a_space_is_percent_decoded(tmp_path):
    out = tmp_path / "my alerts"
    write_log(out, "0", [parquet(out / "part 0.parquet", [7])])
    assert ids(out) == [7]


def test_batch_folders_are_read_and_tmp_leftovers_ignored(tmp_path):
    out = tmp_path / "rejected"
    parquet(out / "batch=0000000000" / "part-0.parquet", [1])
    parquet(out / "batch=0000000001" / "part-0.parquet", [2, 3])
    parquet(out / "_tmp_batch=0000000002_ab12cd34" / "part-0.parquet", [98])   # crashed before its rename
    parquet(out / "_tmp_batch=0000000001_ffff0000" / "part-0.parquet", [99])   # an earlier attempt of batch 1
    assert ids(out) == [1, 2, 3]
    assert [f.parent.name for f in outputs.committed_files(out)] == ["batch=0000000000", "batch=0000000001"]


def test_object_store_attempts_are_read_only_with_their_marker(tmp_path):
    out = tmp_path / "rejected"
    parquet(out / "_attempts" / "batch=0000000000_aaaa1111" / "part-0.parquet", [1])
    parquet(out / "_attempts" / "batch=0000000001_bbbb2222" / "part-0.parquet", [99])   # no marker: crashed
    (out / "_committed").mkdir()
    (out / "_committed" / "batch=0000000000_aaaa1111").write_text("batch=0000000000_aaaa1111\n")
    assert ids(out) == [1]
