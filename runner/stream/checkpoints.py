"""Checkpoint folders: one per query, the runner's metadata beside Spark's, archive on reset.

Checkpoints are data: nothing here deletes one. `archive` moves a query's checkpoint
(and, for a Parquet sink, its output folder, whose `_spark_metadata` log is tied to the
checkpoint's batch ids) into a timestamped archive folder. Every path goes through
runner/stream/storage.py, so the roots may be local, file://, hdfs:// or s3a://.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from runner.stream import storage

META = "runner.json"


def local(path: str):
    """The path object for a checkpoint or output location (runner/stream/storage.py): a
    pathlib.Path for a plain path or a file: URI, a HadoopPath for hdfs://, s3a://, ..."""
    return storage.path(path)


def location(checkpoint_root: str, query_name: str) -> str:
    """The checkpointLocation given to Spark: a file: URI for a local root, so a cluster whose
    default filesystem is HDFS (YARN) does not read a local path as an HDFS one; else the URI."""
    return storage.uri(query_dir(checkpoint_root, query_name))


def query_dir(checkpoint_root: str, query_name: str):
    return storage.path(checkpoint_root) / query_name


def read_meta(folder) -> dict | None:
    f = storage.path(folder) / META
    return json.loads(f.read_text()) if f.exists() else None


def write_meta(folder, meta: dict) -> None:
    folder = storage.path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    storage.replace_text(folder / META, json.dumps(meta, indent=2, sort_keys=True))


def has_progress(folder) -> bool:
    """Spark has written at least one offset for this query."""
    offsets = storage.path(folder) / "offsets"
    return offsets.is_dir() and any(p.name.isdigit() for p in offsets.iterdir())


def last_committed_batch(folder) -> int | None:
    commits = storage.path(folder) / "commits"
    ids = [int(p.name) for p in commits.iterdir() if p.name.isdigit()] if commits.is_dir() else []
    return max(ids) if ids else None


def committed_offsets(folder) -> dict[str, dict[str, int]]:
    """{topic: {partition: next offset}} as of the last committed batch."""
    batch = last_committed_batch(folder)
    if batch is None:
        return {}
    lines = (storage.path(folder) / "offsets" / str(batch)).read_text().splitlines()
    out: dict[str, dict[str, int]] = {}
    for line in lines[2:]:  # version, batch metadata, then one line per source
        line = line.strip()
        if line.startswith("{"):
            for topic, parts in json.loads(line).items():
                out.setdefault(topic, {}).update({str(p): int(o) for p, o in parts.items()})
    return out


def archive_root(checkpoint_root: str):
    root = storage.path(checkpoint_root)
    return root.parent / f"{root.name}_archive"


def archive(checkpoint_root: str, query_name: str, output_dirs: list[str] = ()) -> list[tuple]:
    """Move the query's checkpoint (and its sinks' Parquet outputs) to the archive; returns (from, to) pairs.

    An output on another store than the checkpoints (say checkpoints on HDFS, outputs on a
    local disk) is archived on its own store, in `<its parent>_archive/`, so nothing is copied
    between stores."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = archive_root(checkpoint_root) / f"{query_name}__{stamp}"
    moved = []
    src = query_dir(checkpoint_root, query_name)
    if src.exists():
        storage.move(src, dest / "checkpoint")
        moved.append((src, dest / "checkpoint"))
    for output_dir in output_dirs:
        out = storage.path(output_dir)
        if out.exists():
            home = dest if storage.same_store(out, dest) else \
                out.parent.parent / f"{out.parent.name}_archive" / f"{query_name}__{stamp}"
            target = home / "output" / out.name
            storage.move(out, target)
            moved.append((out, target))
    return moved
