"""Read what the Parquet sinks committed, without Spark, on any store (runner/stream/storage.py).

Two layouts, both exactly-once:
- Spark's file sink writes a log (`_spark_metadata/`) of the files each committed batch
  added; files not in it are leftovers of a batch that crashed before it committed.
  Reading through the log gives exactly-once results, as Spark's own reader does.
- A sink written inside foreachBatch commits each batch as a folder
  (runner/stream/batches.py: `batch=<id>/` renamed into place, or on an object store an
  attempt folder named by a `_committed/` marker); unfinished ones are not read.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa

from runner.stream import batches, storage

_BATCH = re.compile(r"^(\d+)(\.compact)?$")


def committed_files(path) -> list:
    """Every committed Parquet file of a sink's output folder (a path or a URI)."""
    root = storage.path(path)
    if not root.is_dir():
        return []
    folders = sorted(f for d in batches.committed_dirs(root) for f in d.glob("*.parquet"))
    return _logged_files(root / "_spark_metadata") + folders


def _logged_files(log) -> list:
    if not log.is_dir():
        return []
    entries = [(int(m.group(1)), bool(m.group(2)), f) for f in log.iterdir() if (m := _BATCH.match(f.name))]
    if not entries:
        return []
    compacts = [e for e in entries if e[1]]
    start = max(e[0] for e in compacts) if compacts else -1
    files: dict[str, bool] = {}
    for batch, _, f in sorted(entries, key=lambda e: (e[0], e[1])):
        if batch < start or (batch == start and not f.name.endswith(".compact")):
            continue
        for line in f.read_text().splitlines()[1:]:
            if not line.strip():
                continue
            entry = json.loads(line)
            files[entry["path"]] = entry.get("action", "add") == "add"
    logged = [storage.from_logged_uri(p) for p, added in files.items() if added]
    return [p for p in logged if p.exists()]


def read(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All committed rows of a Parquet sink's output folder, a path or a URI (empty frame if none yet)."""
    files = committed_files(path)
    if not files:
        return pd.DataFrame(columns=columns or [])
    tables = [storage.read_parquet(f, columns) for f in files]
    return pa.concat_tables(tables, promote_options="default").to_pandas()
