"""The foreachBatch writer of a query with several sinks (the KPIs: console, Kafka, Parquet).

A stateful query is computed once and each batch written to every sink of its model, rather than
aggregating once per sink. Parquet stays exactly-once inside foreachBatch: batch N is written to a
temporary folder and renamed to `batch=N` once complete; a replayed batch N (after a crash, Spark
replays the same offsets under the same id) finds `batch=N` and is skipped. Kafka stays
at-least-once.

A batch with no rows writes nothing: a windowed aggregation in append mode emits rows only when
a window closes (once a minute), so most of its batches are empty, and writing each sink anyway
would cost a Spark job per sink per second for nothing. A replayed empty batch is empty again.

A batch with few rows (the closed windows: a handful) is brought into the driver JVM once and
written from there: the sinks then read a local relation instead of the cached stateful plan, the
console sink prints it with no Spark job at all (it took two), and the Parquet and Kafka writes
are one small task each. The rows stay JVM objects, never converted through Python, so no value
changes on the way. A batch over LOCAL_ROWS is written from the cache as before.

The sinks of one batch are written at the same time, each from its own thread: none depends on
another, so a batch waits for its slowest sink instead of the sum of them.
"""
from __future__ import annotations

from functools import partial

# --------------------------------------------------------------------------- run time

def _write_parquet_once(df, path: str, batch_id: int) -> None:
    from runner.stream import batches

    # Exactly once per batch id on every store (rename into place where the store renames
    # atomically, a committed marker on object stores): runner/stream/batches.py. A batch
    # replayed after a crash finds its commit and is skipped.
    batches.write_once(path, batch_id, lambda folder: df.write.mode("overwrite").parquet(folder))


def write_batch(df, spec, batch_id: int, kafka_options: dict) -> None:
    """One sink's share of one batch, as a batch write."""
    from runner.stream.sinks import kafka_frame

    kind = spec.sink["kind"]
    if kind == "parquet":
        _write_parquet_once(df, spec.location, batch_id)
    elif kind == "kafka":
        kafka_frame(df, spec.sink).write.format("kafka").options(**kafka_options) \
            .option("topic", spec.location).save()
    elif kind == "console":
        print(f"---- batch {batch_id}: {spec.model} ----", flush=True)
        df.show(50, truncate=False)
    elif kind == "noop":   # the warm-up's stand-in for a sink outside its scratch folder
        df.write.format("noop").mode("overwrite").save()
    else:
        raise ValueError(f"a {kind} sink does not run inside a shared query")


LOCAL_ROWS = 10_000


def collected(cached, limit: int):
    """`cached`'s rows as a JVM list, or None when it has more than `limit`. Every partition is
    computed unless more than `limit` rows turn up first; then the sinks' writes compute the rest
    (the batch is persisted, so none twice)."""
    # One partition: a limit over several runs a job per partition it scans (Spark's executeTake
    # tries one, then more), a job more per batch; the stateful stages before it are unchanged.
    head = cached._jdf.coalesce(1).limit(limit + 1).collectAsList()
    return None if head.size() > limit else head


def at_once(writes: list) -> None:
    """Call every function in `writes` at the same time: the first in this thread, each other in a
    thread of its own that inherits this one's Spark local properties (the batch's job group and
    description); return once all have returned, raising the first error any of them raised."""
    from pyspark import InheritableThread

    errors: list[BaseException] = []

    def call(write) -> None:
        try:
            write()
        except BaseException as e:   # re-raised below, in the batch's own thread
            errors.append(e)

    threads = [InheritableThread(target=call, args=(w,)) for w in writes[1:]]
    for t in threads:
        t.start()
    call(writes[0])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def batch_writer(members: list, kafka_options: dict):
    """The foreachBatch function of a query: write each batch to every member's sink."""
    from pyspark.sql import DataFrame

    def write(batch_df, batch_id: int) -> None:
        cached = batch_df.persist()   # computed once, written len(members) times
        try:
            head = collected(cached, LOCAL_ROWS)
            if head is not None and head.isEmpty():
                return
            if head is None:
                shown = written = cached
            else:
                local = DataFrame(cached.sparkSession._jsparkSession.createDataFrame(head, cached._jdf.schema()),
                                  cached.sparkSession)
                # console: a local relation prints with no job; a write: one task, one file
                shown, written = local, local.coalesce(1)
            at_once([partial(write_batch, shown if p.spec.sink["kind"] == "console" else written,
                             p.spec, batch_id, kafka_options) for p in members])
        finally:
            cached.unpersist()

    return write
