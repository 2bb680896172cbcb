"""Late rows: every input row a stateful query left out of its windows because it arrived behind the
watermark, counted exactly and kept (`config(late_rows='late_transactions')` on the stateful model).

Which rows batch N of the query drops as late is fixed by its own checkpoint (Spark 4.x,
MicroBatchExecution.runBatch, IncrementalExecution.simulateWatermarkPropagation and
PropagateWatermarkSimulator.getInputWatermarkForLateEvents):

- the rows batch N read: per partition of the topic, from the end offsets of batch N-1
  (`offsets/<N-1>`) to those of batch N (`offsets/<N>`);
- the watermark its late-events filter uses: batch N-1's `batchWatermarkMs` (the metadata line of
  `offsets/<N-1>`; none, so 0, for batch 0). Spark reads it from the offset log, so a batch run
  again after a restart filters with the same one.
- late means `event_time <= watermark` (WatermarkSupport.watermarkExpression: LessThanOrEqual on
  the event-time column, in microseconds); a NULL event time is never late.

The first stateful operator on the rows' path is the de-duplication on the source offset
(apply.start_queries), which filters late rows one by one before any aggregation; so its
numRowsDroppedByWatermark is this same count, and a late repeat of a source offset is late too.
(`spark.sql.streaming.statefulOperator.allowMultiple=false`, Spark's compatibility mode, filters
with batch N's own watermark instead; the runner leaves it at its default, true.)

So the runner does not look inside Spark: after batch N is committed, if its progress says a
state operator dropped rows behind the watermark (an exact per-row count, and 0 for nearly every
batch, so nothing more runs), it reads that offset range of the topic again as a Kafka batch
read, keeps the rows behind the watermark and writes them to `<output>/batch=<N>/` with the
exactly-once batch commit of the KPI Parquet sink (runner/stream/batches.py). It runs in a
thread of its own, off the query's critical path.

A restart loses no batch: how far the scan got is kept in the query's checkpoint folder
(`late_rows.json`); at start the batches committed since are scanned whatever their progress
said, a batch whose progress never arrived (a gap in the batch ids) likewise, and a batch written
before is skipped by its commit.
"""
from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable

from runner.stream import batches, storage

RECORD = "late_rows.json"   # in the query's checkpoint folder: {"scanned_through": N}
# How often the scan's place is saved when no batch had late rows: a crash costs at most this
# much of the topic read again at the next start (batches with late rows save it at once).
SAVE_EVERY_S = 10.0
PROGRESS_WAIT_S = 3.0   # at close, how long the last batches' progress is waited for
# Columns the runner adds to the model's own: where the row came from and what it missed.
EXTRA_COLUMNS = ("source_offset", "topic_partition", "topic_offset", "watermark", "batch_id")


# --------------------------------------------------------------------------- pure: what was late

@dataclass(frozen=True)
class OffsetLogEntry:
    """One `offsets/<N>` file of a micro-batch checkpoint."""
    watermark_ms: int                          # batchWatermarkMs
    ends: dict[str, dict[int, int]]            # {topic: {partition: end offset (exclusive)}}


def parse_offset_log(text: str) -> OffsetLogEntry:
    """`v1`, then the batch metadata, then one line per source: {topic: {partition: offset}}."""
    lines = [line.strip() for line in text.splitlines()]
    if len(lines) < 2 or not lines[0].startswith("v"):
        raise ValueError("not a Spark offset log entry")
    meta = json.loads(lines[1]) if lines[1].startswith("{") else {}
    ends: dict[str, dict[int, int]] = {}
    for line in lines[2:]:
        if line.startswith("{"):
            for topic, parts in json.loads(line).items():
                if isinstance(parts, dict):
                    ends.setdefault(topic, {}).update({int(p): int(o) for p, o in parts.items()})
    return OffsetLogEntry(int(meta.get("batchWatermarkMs") or 0), ends)


@dataclass(frozen=True)
class LateScan:
    """What batch `batch_id` read of `topic`, and the watermark its late-events filter used."""
    batch_id: int
    topic: str
    starts: dict[int, int]      # {partition: first offset read}
    ends: dict[int, int]        # {partition: offset after the last one read}
    watermark_ms: int

    def ranges(self) -> list[tuple[int, int, int]]:
        """(partition, start, end) of every partition the batch read records from."""
        return [(p, self.starts.get(p, 0), end) for p, end in sorted(self.ends.items()) if end > self.starts.get(p, 0)]

    @property
    def can_have_late_rows(self) -> bool:
        return self.watermark_ms > 0 and bool(self.ranges())

    def assign_json(self) -> str:
        """The partitions read, for Kafka's `assign` (a batch read's offsets must name every partition
        it reads, and only those)."""
        return json.dumps({self.topic: [p for p, _, _ in self.ranges()]})

    def starting_json(self) -> str:
        return json.dumps({self.topic: {str(p): s for p, s, _ in self.ranges()}})

    def ending_json(self) -> str:
        return json.dumps({self.topic: {str(p): e for p, _, e in self.ranges()}})


def scan_of(batch_id: int, topic: str, previous: OffsetLogEntry | None, current: OffsetLogEntry) -> LateScan:
    """Batch N's scan from the offset log entries of N-1 (None for batch 0) and N."""
    starts = dict(previous.ends.get(topic, {})) if previous else {}
    return LateScan(batch_id, topic, starts, dict(current.ends.get(topic, {})),
                    previous.watermark_ms if previous else 0)


def is_late(event_time: datetime | None, watermark_ms: int) -> bool:
    """Spark's late-events predicate: event_time <= watermark, compared in microseconds."""
    if event_time is None:
        return False
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=timezone.utc)
    micros = (event_time - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return micros <= watermark_ms * 1000


def late_rows(rows: Iterable[dict], scan: LateScan, column: str = "event_time") -> list[dict]:
    """The rows of `rows` (dicts with partition, offset and the event-time column, as read from the
    topic) that batch `scan.batch_id` read and dropped as late."""
    read = {p: (s, e) for p, s, e in scan.ranges()}
    out = []
    for r in rows:
        span = read.get(int(r["partition"]))
        if span and span[0] <= int(r["offset"]) < span[1] and is_late(r.get(column), scan.watermark_ms):
            out.append(r)
    return out


def dropped_by_watermark(progress: dict) -> int:
    """Rows the batch's state operators dropped behind the watermark (Spark's progress)."""
    return sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in progress.get("stateOperators") or [])


# --------------------------------------------------------------------------- the checkpoint's files

def read_entry(checkpoint, batch_id: int) -> OffsetLogEntry | None:
    f = storage.path(checkpoint) / "offsets" / str(batch_id)
    return parse_offset_log(f.read_text()) if batch_id >= 0 and f.exists() else None


def scan_for(checkpoint, batch_id: int, topic: str) -> LateScan | None:
    """Batch N's scan from the query's checkpoint; None when its offsets are not (or no longer) there."""
    current = read_entry(checkpoint, batch_id)
    if current is None:
        return None
    previous = read_entry(checkpoint, batch_id - 1)
    if previous is None and batch_id > 0:
        return None   # purged by Spark (it keeps the last 100 batches): the range is unknown
    return scan_of(batch_id, topic, previous, current)


def scanned_through(checkpoint) -> int | None:
    f = storage.path(checkpoint) / RECORD
    if not f.exists():
        return None
    try:
        return int(json.loads(f.read_text())["scanned_through"])
    except (ValueError, KeyError, TypeError):
        return None


def save_scanned_through(checkpoint, batch_id: int) -> None:
    storage.replace_text(storage.path(checkpoint) / RECORD, json.dumps({"scanned_through": batch_id}) + "\n")


def last_committed(checkpoint) -> int | None:
    from runner.stream.checkpoints import last_committed_batch
    return last_committed_batch(checkpoint)


def count(output) -> int:
    """Rows kept in a late-rows output (its committed batches only)."""
    from runner.stream import outputs
    return sum(storage.read_parquet(f, ["batch_id"]).num_rows for f in outputs.committed_files(output))


# --------------------------------------------------------------------------- run time

@dataclass(frozen=True)
class LateSource:
    """What the writer needs to read a batch's rows again as the query read them."""
    topic: str
    schema: object                 # the routed model's columns (a Spark StructType)
    column: str                    # its watermark column
    kafka_options: dict


class LateRowsWriter:
    """Writes the late rows of one stateful query, batch by batch, in a thread of its own.
    `observe(progress)` for each batch's progress; `close()` after the query stopped."""

    def __init__(self, spark, query: str, checkpoint, output: str, source: LateSource,
                 on_rows: Callable[[str, int], None] | None = None):
        self.spark, self.query, self.checkpoint, self.output, self.source = spark, query, checkpoint, output, source
        self.on_rows = on_rows
        self.written = 0                       # rows committed by this writer
        self.mismatches: list[tuple[int, int, int]] = []   # (batch, rows found, Spark's count)
        self.error: str | None = None
        saved = scanned_through(checkpoint)
        self._handled = -1 if saved is None else saved
        self._saved_at = time.monotonic()
        self._todo: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"late-rows-{query}", daemon=True)

    def start(self) -> "LateRowsWriter":
        # the batches committed since the last scan (a crash, or a run without this writer)
        self._todo.put(("upto", last_committed(self.checkpoint)))
        self._thread.start()
        return self

    def observe(self, progress: dict) -> None:
        if progress.get("name") == self.query and progress.get("batchId") is not None:
            self._todo.put(("batch", int(progress["batchId"]), dropped_by_watermark(progress)))

    def close(self, timeout_s: float = 60.0) -> None:
        """Scan what is committed and not scanned yet, then stop. The last batches' progress may still
        be on its way from Spark's listener bus: it is waited for a little (it saves a read of
        batches without late rows), then those batches are scanned without it."""
        last = last_committed(self.checkpoint)
        wait_until = time.monotonic() + PROGRESS_WAIT_S
        while last is not None and self._handled < last and time.monotonic() < wait_until and self._thread.is_alive():
            time.sleep(0.1)
        self._todo.put(("upto", last))
        self._todo.put(None)
        self._thread.join(timeout=timeout_s)

    # ---- the thread

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            try:
                if item[0] == "upto":
                    for b in range(self._handled + 1, (item[1] if item[1] is not None else -1) + 1):
                        self._handle(b, None)
                else:
                    _, batch_id, dropped = item
                    for b in range(self._handled + 1, batch_id):   # a gap: progress that never came
                        self._handle(b, None)
                    if batch_id > self._handled:
                        self._handle(batch_id, dropped)
                self.error = None   # a batch that failed before was retried with this one
            except Exception as e:   # reported by apply, and the scan's place is not moved past it
                self.error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                print(f"late rows of {self.query}: {self.error}", file=sys.stderr, flush=True)
        self._save()

    def _handle(self, batch_id: int, dropped: int | None) -> None:
        """Batch `batch_id`: scanned when Spark dropped rows in it, or when its count is unknown."""
        if dropped != 0:
            scan = scan_for(self.checkpoint, batch_id, self.source.topic)
            if scan is None and dropped:
                print(f"late rows of {self.query}, batch {batch_id}: Spark dropped {dropped}, but the batch's offsets "
                      "are no longer in its checkpoint; they are not kept", file=sys.stderr, flush=True)
            if scan is not None and scan.can_have_late_rows:
                found = self._write(scan)
                if dropped is not None and found != dropped:
                    self.mismatches.append((batch_id, found, dropped))
                    print(f"late rows of {self.query}, batch {batch_id}: found {found}, Spark dropped {dropped}",
                          file=sys.stderr, flush=True)
                if found:
                    self._handled = batch_id
                    self._save()
                    return
        self._handled = batch_id
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self._save()

    def _save(self) -> None:
        if self._handled >= 0:
            save_scanned_through(self.checkpoint, self._handled)
            self._saved_at = time.monotonic()

    def _write(self, scan: LateScan) -> int:
        rows = self.frame(scan).persist()
        try:
            n = rows.count()
            if n and batches.write_once(self.output, scan.batch_id,
                                        lambda folder: rows.write.mode("overwrite").parquet(folder)):
                self.written += n
                if self.on_rows:
                    self.on_rows(self.query, n)
            return n
        finally:
            rows.unpersist()

    def frame(self, scan: LateScan):
        """Batch `scan.batch_id`'s rows that were behind its watermark, read back from the topic."""
        from pyspark.sql import functions as F

        from runner.stream.apply import routed_columns

        raw = (self.spark.read.format("kafka").options(**self.source.kafka_options)
               .option("assign", scan.assign_json()).option("includeHeaders", "true")
               .option("startingOffsets", scan.starting_json()).option("endingOffsets", scan.ending_json())
               .option("failOnDataLoss", "false").load())
        watermark = F.timestamp_millis(F.lit(scan.watermark_ms))
        rows = routed_columns(raw, self.source.schema, keep=("partition", "offset"))
        names = [f.name for f in self.source.schema.fields]
        return (rows.where(F.col(self.source.column) <= watermark)
                .select(*[F.col(f"`{c}`") for c in names],
                        F.col("_source_offset").alias("source_offset"),
                        F.col("partition").alias("topic_partition"), F.col("offset").alias("topic_offset"),
                        watermark.alias("watermark"), F.lit(scan.batch_id).cast("long").alias("batch_id")))
