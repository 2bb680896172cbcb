"""Where a run's records are: the per-batch progress logs `apply` writes
(.runtime/progress/<query>.jsonl) and the models' Parquet sinks.

`ProgressTail` reads only what was appended since its last call, so a dashboard that
refreshes every second does not re-read a long run's whole history.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def read_to(progress: dict) -> dict[str, dict[str, int]]:
    """How far one batch read its Kafka sources: {topic: {partition: end offset}}."""
    out: dict[str, dict[str, int]] = {}
    for source in progress.get("sources") or []:
        end = source.get("endOffset")
        if isinstance(end, dict):
            for topic, parts in end.items():
                if isinstance(parts, dict):
                    out.setdefault(topic, {}).update({str(p): int(o) for p, o in parts.items()})
    return out


# State operators that pass each row on as it arrives (the readers' repeat filter); the others
# (aggregations, joins) may hold rows back until the watermark passes them.
PASS_ROWS_ON = ("dedupe", "dedupeWithinWatermark")


def _summary(progress: dict) -> dict:
    from runner.stream.apply import summarize

    waits = any(op.get("operatorName") not in PASS_ROWS_ON for op in progress.get("stateOperators") or [])
    event_time = progress.get("eventTime") or {}
    return {**summarize(progress), "waits_for_watermark": waits, "read_to": read_to(progress),
            # the watermark this batch used and the latest event time it read (ISO text; None when absent)
            "watermark": event_time.get("watermark"), "max_event_time": event_time.get("max")}


class ProgressTail:
    """Every query's batch summaries (runner.apply.summarize), read incrementally; `row` turns
    one batch's progress into what is kept (e.g. `dict` keeps Spark's progress whole)."""

    def __init__(self, folder: str | Path, row: Callable[[dict], dict] = _summary):
        self.folder = Path(folder)
        self.row = row
        self._offsets: dict[str, int] = {}
        self.batches: dict[str, list[dict]] = {}

    def poll(self) -> dict[str, list[dict]]:
        if not self.folder.is_dir():
            return self.batches
        for f in sorted(self.folder.glob("*.jsonl")):
            name = f.stem
            start = self._offsets.get(name, 0)
            try:
                with open(f, "rb") as fh:
                    fh.seek(start)
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
            if end <= 0:
                continue
            self._offsets[name] = start + end
            rows = self.batches.setdefault(name, [])
            for line in chunk[:end].splitlines():
                try:
                    rows.append(self.row(json.loads(line)))
                except (json.JSONDecodeError, AttributeError):
                    continue  # a line cut by a crash
        return self.batches


def read_all(folder: str | Path) -> dict[str, list[dict]]:
    """Every query's batch summaries, in order."""
    return ProgressTail(folder).poll()


def parquet_sinks(project, manifest) -> dict[str, str]:
    """{model: its Parquet sink folder, a path or URI for outputs.read}, from the compiled
    models (so a renamed path follows). Run time never compiles: the caller hands the manifest."""
    from runner.stream import sinks, storage

    storage.configure(project.target.spark_conf)
    out = {}
    for model in manifest.models:
        for spec in sinks.specs(project, model):
            if spec.sink["kind"] == "parquet":
                out.setdefault(model.name, spec.location)
    return out
