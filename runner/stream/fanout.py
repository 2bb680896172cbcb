"""Which sinks share one streaming query, and the foreachBatch writer that feeds them.

Spark parses every Kafka record once per query that reads it, and parsing bounds the
rate (NOTES.md: ~90k rows/s for one transaction record on 2 cores). Seven sinks as seven
queries parse each record seven times. So sinks are grouped:

- every micro-batch sink of the stateless models (alerts to Parquet, rejected records to
  Kafka and Parquet, ...) shares ONE query over the staging model that reads the source;
  each batch is parsed once, cached, and every model is evaluated on it;
- each stateful model (the KPIs) gets one query that writes all of its sinks;
- a Kafka sink with `trigger: realtime` runs alone in Spark's Real-time Mode
  (stateless only, update mode), records flowing through in milliseconds.

Parquet stays exactly-once inside foreachBatch: batch N is written to a temporary folder
and renamed to `batch=N` once complete; a replayed batch N (after a crash, Spark
replays the same offsets under the same id) finds `batch=N` and is skipped. Kafka stays
at-least-once, with `txn_id` as the key consumers de-duplicate on.
"""
from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field

from runner.compile.manifest import REALTIME

STATELESS_GROUP = "stateless__fanout"


@dataclass
class Group:
    name: str                      # the query's name and its checkpoint folder's
    kind: str                      # 'stateless', 'stateful' or 'realtime'
    root: str                      # the model whose streaming frame the query reads
    members: list = field(default_factory=list)   # QueryPlan-like items: .spec, .name


def is_realtime(sink: dict, model) -> bool:
    return (sink.get("trigger") or model.config.trigger or "") == REALTIME


def group_name(manifest, model, sink: dict, stateful: bool) -> str:
    """The query (and checkpoint folder) a (model, sink) runs in; stable across runs and modes."""
    if (sink["kind"] == "kafka" and is_realtime(sink, model)) or sink["kind"] == "memory":
        return f"{model.name}__{sink['kind']}"   # a query of its own (memory: Spark's own sink)
    if stateful:
        return f"{model.name}__fanout"
    return STATELESS_GROUP


def stateless_root(manifest) -> str:
    """The staging model every stateless model reads: the one reading the Kafka source."""
    readers = [m.name for m in manifest.models if m.sources]
    if len(readers) != 1:
        raise ValueError(f"expected one model reading the source, found {readers}")
    return readers[0]


# --------------------------------------------------------------------------- run time

def _write_parquet_once(df, path: str, batch_id: int) -> None:
    from runner.stream.checkpoints import local

    base = local(path)
    final = base / f"batch={batch_id:010d}"
    if final.exists():
        return  # this batch was written before a crash; Spark is replaying it
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f"_tmp_batch={batch_id:010d}_{uuid.uuid4().hex[:8]}"
    # A file: URI so a cluster whose default filesystem is HDFS writes to the shared path; not
    # Path.as_uri(), which would percent-encode the "=" in the folder name.
    df.write.mode("overwrite").parquet(f"file://{tmp}")
    tmp.rename(final)
    for stale in base.glob(f"_tmp_batch={batch_id:010d}_*"):
        shutil.rmtree(stale, ignore_errors=True)


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
    else:
        raise ValueError(f"a {kind} sink does not run inside a shared query")


def batch_writer(group: Group, manifest, kafka_options: dict):
    """The foreachBatch function of a group: evaluate each member's model on the batch, write its sinks."""
    names = [m.name for m in manifest.models]
    wanted = {p.spec.model for p in group.members}
    # The models between the root and the members, in DAG order, re-created on each batch.
    from runner.compile.fingerprint import lineage
    needed = {m.name for w in wanted for m in lineage(manifest, w)}
    chain = [manifest.model(n) for n in names if n in needed and n != group.root
             and group.root in {a.name for a in lineage(manifest, n)}]

    def write(batch_df, batch_id: int) -> None:
        session = batch_df.sparkSession   # the query's own clone: its temp views stay private
        cached = batch_df.persist()
        try:
            if group.kind == "stateless":
                cached.createOrReplaceTempView(group.root)
                for model in chain:
                    session.sql(model.sql).createOrReplaceTempView(model.name)
            for p in group.members:
                frame = cached if group.kind != "stateless" or p.spec.model == group.root \
                    else session.table(p.spec.model)
                write_batch(frame, p.spec, batch_id, kafka_options)
        finally:
            cached.unpersist()

    return write
