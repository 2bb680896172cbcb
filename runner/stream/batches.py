"""Exactly-once Parquet for sinks written inside foreachBatch: each micro-batch's files become
visible all at once, once, whatever the store; `write_once` commits, `committed_dirs` reads.

Spark replays a batch after a crash under the same id and offsets, so a batch id that is
already committed is skipped. How a batch is committed depends on the store:

- Stores that rename atomically (local disk, NFS, HDFS): the batch is written to
  `_tmp_batch=<id>_<attempt>/` and renamed to `batch=<id>/` (10 digits) once complete. A crash
  leaves only a `_tmp_` folder, which readers skip; the rename is one NameNode operation.
- Object stores (s3a, gs, ...): a rename is a copy then a delete, object by object, so a crash
  in the middle would leave a half-visible batch, and a replay would find it and skip the rest.
  So nothing is renamed: the batch is written to its own attempt folder
  `_attempts/batch=<id>_<attempt>/`, and then one small object, `_committed/batch=<id>_<attempt>`,
  is put. A PUT is atomic and S3 lists are strongly consistent (since 2020), so the batch is
  committed exactly when its marker is listed. Readers read the attempts named by markers, and
  only those; an attempt without a marker (a crash) is never read and is removed by the next
  successful attempt of the same batch. Both folders start with `_`, so a reader that does
  not honour the markers (a plain `spark.read.parquet`) sees no rows rather than duplicates.
"""
from __future__ import annotations

import re
import uuid
from typing import Callable

from runner.stream import storage

COMMITTED = "_committed"
ATTEMPTS = "_attempts"
_BATCH_DIR = re.compile(r"^batch=(\d{10})$")
_MARKER = re.compile(r"^batch=(\d{10})_([0-9a-f]+)$")


def _batch(batch_id: int) -> str:
    return f"batch={batch_id:010d}"


def write_once(output: str, batch_id: int, write: Callable[[str], None], *,
               rename: bool | None = None) -> bool:
    """Commit batch `batch_id` under `output`, calling `write(folder_uri)` to write its files
    into an empty folder; False (and no write) when that batch was committed before.
    `rename` picks the commit (default: rename where the store renames atomically)."""
    base = storage.path(output)
    attempt = uuid.uuid4().hex[:8]
    if storage.renames_atomically(base) if rename is None else rename:
        final = base / _batch(batch_id)
        if final.exists():
            return False  # written before a crash; Spark is replaying it
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f"_tmp_{_batch(batch_id)}_{attempt}"
        write(storage.uri(tmp))
        tmp.rename(final)
        leftovers = [p for p in base.glob(f"_tmp_{_batch(batch_id)}_*")]
    else:
        if _markers(base).get(batch_id):
            return False
        folder = base / ATTEMPTS / f"{_batch(batch_id)}_{attempt}"
        write(storage.uri(folder))
        (base / COMMITTED).mkdir(parents=True, exist_ok=True)
        (base / COMMITTED / f"{_batch(batch_id)}_{attempt}").write_text(f"{folder.name}\n")
        leftovers = [p for p in (base / ATTEMPTS).glob(f"{_batch(batch_id)}_*") if p.name != folder.name]
    for stale in leftovers:   # earlier attempts of this batch that crashed before committing
        storage.remove_tree(stale)
    return True


def committed_dirs(output) -> list:
    """The folders of every committed batch under `output`, in batch order (both layouts)."""
    base = storage.path(output)
    if not base.is_dir():
        return []
    found = {}
    children = {p.name: p for p in base.iterdir()}
    for name, p in children.items():
        m = _BATCH_DIR.match(name)
        if m:
            found[int(m.group(1))] = p
    if COMMITTED in children:
        for batch_id, attempts in _markers(base).items():
            # Two markers for one batch only if two writers raced; the first one listed wins.
            found.setdefault(batch_id, base / ATTEMPTS / f"{_batch(batch_id)}_{attempts[0]}")
    return [found[b] for b in sorted(found)]


def _markers(base) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for p in (base / COMMITTED).iterdir() if (base / COMMITTED).is_dir() else []:
        m = _MARKER.match(p.name)
        if m:
            out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out
