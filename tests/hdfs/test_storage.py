"""The runner's filesystem layer on a local disk and on a real HDFS: checkpoint metadata, the
archive that never deletes, and the exactly-once batch-folder commits (rename, and the marker
commit object stores get) as the readers see them."""
from __future__ import annotations

import uuid

import pytest

from runner.stream import batches, checkpoints, outputs, storage


@pytest.fixture(params=["local", "hdfs"])
def root(request, tmp_path, spark) -> str:
    """A fresh folder on the store under test: a plain local path, or an hdfs:// URI."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("hdfs").uri(f"storage-{uuid.uuid4().hex[:8]}")


def test_hdfs_uris_are_hadoop_paths_and_local_ones_pathlib(hdfs):
    p = storage.path(hdfs.uri("a/b=1/c"))
    assert isinstance(p, storage.HadoopPath) and str(p) == hdfs.uri("a/b=1/c")
    assert (p.name, str(p.parent), str(p / "d")) == ("c", hdfs.uri("a/b=1"), hdfs.uri("a/b=1/c/d"))
    assert storage.renames_atomically(p) and not storage.renames_atomically("s3a://bucket/x")
    assert storage.uri(p) == hdfs.uri("a/b=1/c")             # given to Spark as it is
    assert storage.uri("file:///srv/a b=c") == "file:///srv/a b=c"


def test_metadata_roundtrip_and_checkpoint_reading(root):
    folder = checkpoints.query_dir(root, "q")
    assert checkpoints.read_meta(folder) is None and not checkpoints.has_progress(folder)
    checkpoints.write_meta(folder, {"query": "q", "n": 1})
    checkpoints.write_meta(folder, {"query": "q", "n": 2})      # replaced whole
    assert checkpoints.read_meta(folder) == {"query": "q", "n": 2}
    assert [p.name for p in storage.path(folder).iterdir()] == ["runner.json"]  # no temp file left
    # Spark's layout: offsets/<batch> and commits/<batch>
    (storage.path(folder) / "offsets").mkdir()
    (storage.path(folder) / "commits").mkdir()
    for batch, offset in ((0, 5), (1, 9)):
        (storage.path(folder) / "offsets" / str(batch)).write_text(
            'v1\n{"batchWatermarkMs":0}\n{"t":{"0":%d,"1":3}}\n' % offset)
    (storage.path(folder) / "commits" / "0").write_text("v1\n{}\n")
    assert checkpoints.has_progress(folder)
    assert checkpoints.last_committed_batch(folder) == 0
    assert checkpoints.committed_offsets(folder) == {"t": {"0": 5, "1": 3}}   # batch 1 is not committed


def test_archive_moves_checkpoint_and_output_and_deletes_nothing(root):
    ckpt_root, out_root = f"{root}/checkpoints", f"{root}/output"
    folder = storage.path(checkpoints.query_dir(ckpt_root, "q"))
    checkpoints.write_meta(folder, {"query": "q"})
    (storage.path(out_root) / "kpis").mkdir(parents=True)
    (storage.path(out_root) / "kpis" / "part-0.parquet").write_bytes(b"PAR1 data")

    moved = checkpoints.archive(ckpt_root, "q", [f"{out_root}/kpis"])
    assert [str(src) for src, _ in moved] == [str(folder), str(storage.path(out_root) / "kpis")]
    for src, dst in moved:
        assert not src.exists() and dst.exists()
        assert str(dst).startswith(f"{root}/checkpoints_archive/q__")
    assert checkpoints.read_meta(moved[0][1]) == {"query": "q"}
    assert (moved[1][1] / "part-0.parquet").read_bytes() == b"PAR1 data"


def test_archive_keeps_an_output_on_another_store_on_that_store(hdfs, tmp_path):
    ckpt_root = hdfs.uri(f"mixed-{uuid.uuid4().hex[:8]}/checkpoints")
    checkpoints.write_meta(checkpoints.query_dir(ckpt_root, "q"), {"query": "q"})
    local_out = tmp_path / "output" / "kpis"
    local_out.mkdir(parents=True)
    (local_out / "part-0.parquet").write_bytes(b"PAR1 local")

    moved = dict((str(s), d) for s, d in checkpoints.archive(ckpt_root, "q", [str(local_out)]))
    archived = moved[str(local_out)]
    assert isinstance(archived, type(local_out)) and archived.is_relative_to(tmp_path / "output_archive")
    assert (archived / "part-0.parquet").read_bytes() == b"PAR1 local" and not local_out.exists()
    assert isinstance(moved[str(checkpoints.query_dir(ckpt_root, "q"))], storage.HadoopPath)


@pytest.mark.parametrize("rename", [True, False], ids=["rename-commit", "marker-commit"])
def test_each_batch_is_read_exactly_once_after_replays_and_crashed_attempts(spark, root, rename):
    out = f"{root}/kpis"

    def writer(batch_id, rows, fail_after_write=False):
        def write(folder):
            spark.createDataFrame([(batch_id, i) for i in range(rows)], "batch INT, i INT") \
                .write.mode("overwrite").parquet(folder)
            if fail_after_write:
                raise RuntimeError("executor lost")   # files written, never committed
        return write

    assert batches.write_once(out, 0, writer(0, 3), rename=rename)
    with pytest.raises(RuntimeError):
        batches.write_once(out, 1, writer(1, 4, fail_after_write=True), rename=rename)
    assert sorted(outputs.read(out)["batch"]) == [0, 0, 0]            # the crashed attempt is invisible

    assert batches.write_once(out, 1, writer(1, 4), rename=rename)   # Spark replays batch 1
    assert not batches.write_once(out, 1, writer(1, 99), rename=rename)   # and again: skipped, no write
    assert not batches.write_once(out, 0, writer(0, 99), rename=rename)
    rows = outputs.read(out)
    assert sorted(rows["batch"]) == [0, 0, 0, 1, 1, 1, 1]
    assert [p.name.split("_")[0] if not rename else p.name for p in batches.committed_dirs(out)] == \
        ["batch=0000000000", "batch=0000000001"]
    # the crashed attempt's files were removed once batch 1 committed; nothing else was
    base = storage.path(out)
    leftovers = [p.name for p in base.iterdir() if p.name.startswith("_tmp_")] if rename else \
        [p.name for p in (base / batches.ATTEMPTS).iterdir()]
    assert len(leftovers) == (0 if rename else 2)
