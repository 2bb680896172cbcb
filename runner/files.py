"""Writing local files and folders so a reader (or a crash) sees the old version or the new one,
never a part: the project's one way to replace what another process may read.

- `write_atomic(path, data)`: a temp file in the same folder, flushed to disk, renamed over the
  target (rename within one filesystem is atomic on POSIX).
- `replace_folder(dest)`: build a whole folder next to `dest`, then swap it in; on an error the
  half-built folder goes and `dest` stays as it was.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator


def write_atomic(path: str | Path, data: str | bytes, *, mode: int | None = None) -> Path:
    """Replace `path` with `data` (text is UTF-8) in one step; creates its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def replace_folder(dest: str | Path, *, mode: int = 0o755) -> Iterator[Path]:
    """`with replace_folder(dest) as tmp:` fill `tmp`; when the block ends without an error, `tmp`
    becomes `dest` and the previous `dest` is removed (only after the swap). The swap is two
    renames (old aside, new in): a reader may find `dest` missing for that instant, never half."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    tmp.chmod(mode)   # mkdtemp makes it private; the folder is for whoever may read its parent
    try:
        yield tmp
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
