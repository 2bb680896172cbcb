"""`runner apply --status-file PATH`: what a supervisor (runner demo, a test, a service manager)
needs to know about a running apply, without reading its log.

PATH holds one JSON object, replaced atomically (runner/files.py) at each change:
  {"state": "started", "queries": [...], "pid": N}    every query is running
  {"state": "error", "error": "<the message apply exits with>", "pid": N}
  {"state": "stopped", "stopped_by": "signal" | "available-now" | "timeout", "pid": N}
A reader sees the previous state or the next one, never a part of a file.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from runner.errors import RunnerError
from runner.files import write_atomic

STARTED, ERROR, STOPPED = "started", "error", "stopped"


class StatusFile:
    """Writes the states; a no-op without a path."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.state: str | None = None

    def write(self, state: str, **fields) -> None:
        self.state = state
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({"state": state, **fields, "pid": os.getpid()}) + "\n")

    def started(self, queries: list[str]) -> None:
        self.write(STARTED, queries=sorted(queries))

    def stopped(self, stopped_by: str) -> None:
        self.write(STOPPED, stopped_by=stopped_by)


@contextlib.contextmanager
def reporting(path: str | Path | None):
    """A StatusFile for the block; an exception leaving it is written as the error state."""
    status = StatusFile(path)
    try:
        yield status
    except RunnerError as e:
        status.write(ERROR, error=str(e))
        raise
    except Exception as e:  # a bug: still tell the supervisor, then keep the traceback
        status.write(ERROR, error=f"{type(e).__name__}: {e}")
        raise


def read(path: str | Path) -> dict | None:
    """The last state written, or None before the first one."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
