"""Read what the Parquet sinks committed, without Spark.

Two layouts, both exactly-once:
- Spark's file sink writes a log (`_spark_metadata/`) of the files each committed batch
  added; files not in it are leftovers of a batch that crashed before it committed.
  Reading through the log gives exactly-once results, as Spark's own reader does.
- A shared query (runner/stream/fanout.py) renames each complete batch to `batch=<id>/`;
  unfinished ones stay in `_tmp_batch=...` folders, which are not read.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

_BATCH = re.compile(r"^(\d+)(\.compact)?$")


def committed_files(path: str | Path) -> list[Path]:
    from runner.stream.checkpoints import local

    root = local(str(path))
    batches = sorted(f for d in root.glob("batch=*") if d.is_dir() for f in d.glob("*.parquet"))
    return _logged_files(root / "_spark_metadata") + batches


def _logged_files(log: Path) -> list[Path]:
    if not log.is_dir():
        return []
    entries = [(int(m.group(1)), bool(m.group(2)), f) for f in log.iterdir() if (m := _BATCH.match(f.name))]
    if not entries:
        return []
    compacts = [e for e in entries if e[1]]
    start = max(e[0] for e in compacts) if compacts else -1
    files: dict[str, bool] = {}
    for batch, _, f in sorted(entries):
        if batch < start or (batch == start and not f.name.endswith(".compact")):
            continue
        for line in f.read_text().splitlines()[1:]:
            if not line.strip():
                continue
            entry = json.loads(line)
            p = unquote(urlparse(entry["path"]).path)
            files[p] = entry.get("action", "add") == "add"
    return [Path(p) for p, added in files.items() if added and Path(p).exists()]


def read(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All committed rows of a Parquet sink's output folder, a path or a file: URI (empty frame if none yet)."""
    files = committed_files(path)
    if not files:
        return pd.DataFrame(columns=columns or [])
    tables = [pq.read_table(f, columns=columns, partitioning=None) for f in files]
    return pa.concat_tables(tables, promote_options="default").to_pandas()
