"""Checkpoint folders: one per query, the runner's metadata beside Spark's, archive on reset.

Checkpoints are data: nothing here deletes one. `archive` moves a query's checkpoint
(and, for a Parquet sink, its output folder, whose `_spark_metadata` log is tied to the
checkpoint's batch ids) into a timestamped archive folder.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from runner.errors import RunnerError

META = "runner.json"


def local(path: str) -> Path:
    """A local filesystem path for a project path or a file: URI (metadata is read with Python I/O).

    On a cluster the root is a shared filesystem every executor and the driver mount at the
    same path (NFS, an HDFS NFS gateway, an S3 mount), named by a file:// URI. Other schemes
    (hdfs://, s3a://) Spark could write, but the runner could not keep its metadata there."""
    parsed = urlparse(str(path))
    if parsed.scheme == "file":
        return Path(parsed.path)  # as Hadoop reads it: no percent-decoding
    if parsed.scheme and "://" in str(path):
        raise RunnerError(f"{path}: the runner keeps checkpoint metadata and reads Parquet outputs with "
                          f"local file I/O, so '{parsed.scheme}://' roots are not supported",
                          where="project.yml targets.<name>.checkpoint_root/output_root",
                          hint="mount the shared storage on the driver and every worker at the same path "
                               "(NFS, HDFS NFS gateway, s3 mount) and use file:///that/path (README "
                               "\"Running on a cluster\")")
    return Path(path)


def location(checkpoint_root: str, query_name: str) -> str:
    """The checkpointLocation given to Spark: a file: URI, so a cluster whose default
    filesystem is HDFS (YARN) does not read a local path as an HDFS one."""
    # Not Path.as_uri(): Hadoop reads a path string literally, so "%3D" would name a folder.
    return f"file://{query_dir(checkpoint_root, query_name).resolve()}"


def query_dir(checkpoint_root: str, query_name: str) -> Path:
    return local(checkpoint_root) / query_name


def read_meta(folder: Path) -> dict | None:
    f = folder / META
    return json.loads(f.read_text()) if f.exists() else None


def write_meta(folder: Path, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, folder / META)


def has_progress(folder: Path) -> bool:
    """Spark has written at least one offset for this query."""
    offsets = folder / "offsets"
    return offsets.is_dir() and any(p.name.isdigit() for p in offsets.iterdir())


def last_committed_batch(folder: Path) -> int | None:
    commits = folder / "commits"
    ids = [int(p.name) for p in commits.iterdir() if p.name.isdigit()] if commits.is_dir() else []
    return max(ids) if ids else None


def committed_offsets(folder: Path) -> dict[str, dict[str, int]]:
    """{topic: {partition: next offset}} as of the last committed batch."""
    batch = last_committed_batch(folder)
    if batch is None:
        return {}
    lines = (folder / "offsets" / str(batch)).read_text().splitlines()
    out: dict[str, dict[str, int]] = {}
    for line in lines[2:]:  # version, batch metadata, then one line per source
        line = line.strip()
        if line.startswith("{"):
            for topic, parts in json.loads(line).items():
                out.setdefault(topic, {}).update({str(p): int(o) for p, o in parts.items()})
    return out


def archive_root(checkpoint_root: str) -> Path:
    root = local(checkpoint_root)
    return root.parent / f"{root.name}_archive"


def archive(checkpoint_root: str, query_name: str, output_dirs: list[str] = ()) -> list[tuple[Path, Path]]:
    """Move the query's checkpoint (and its sinks' Parquet outputs) to the archive; returns (from, to) pairs."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = archive_root(checkpoint_root) / f"{query_name}__{stamp}"
    moved = []
    src = query_dir(checkpoint_root, query_name)
    if src.exists():
        dest.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest / "checkpoint"))
        moved.append((src, dest / "checkpoint"))
    for output_dir in output_dirs:
        out = local(output_dir)
        if out.exists():
            target = dest / "output" / out.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(out), str(target))
            moved.append((out, target))
    return moved
