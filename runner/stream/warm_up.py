"""A warm-up before the first records: the micro-batch queries run their own plans over scratch
records for a number of batches, then stop, and the real queries start in a JVM that has already
compiled what every batch runs.

Why: a micro-batch costs the same planning, code generation, state-store and commit work for ten
rows as for a thousand, and on a fresh driver that code runs interpreted until the JIT compiler
has seen it often enough. On 2 cores at the demo's 110 events/s the KPI query's batches took
1-2.3 s for about the first minute after the first records, and 415 / 531 ms (p50 / p95) once
the same driver had run a minute of them (README "Benchmarks"). A warm-up on the project's own
plans moves that minute before the first record instead of after it.

What runs: the mirror and stateful queries, through the same code that starts them for real
(runner/stream/apply.py `start_queries`), with
- their topics replaced by files of Kafka-shaped records (key, value, headers, timestamp, ...):
  the route query's own SQL run as a batch over synthetic transactions made from the source's
  schema (every 50th one malformed, so the rejected path runs too), split into one file per batch;
- Parquet sinks and checkpoints in a scratch folder, Kafka and console sinks as Spark's `noop`
  format, no late-rows writer, and the availableNow trigger, so each query stops by itself after
  its last file.
Nothing reads or writes the real topics, outputs or checkpoints; the scratch folder is deleted
afterwards. The route query is not warmed: in Real-time Mode its per-record code is hot within
seconds at any real rate. A local master only: the scratch files are on the driver's disk.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import threading
import time
import zlib
from pathlib import Path

from runner.errors import RunnerError
from runner.stream import sinks, sources, topology

ROWS_PER_BATCH = 110          # the demo's rate in one 1-second batch
EVENT_SECONDS_PER_BATCH = 30  # event time each batch moves on, so windows close and sinks write
MALFORMED_EVERY = 50          # every 50th scratch record is not JSON (the rejected path)
OUTLIER_SHARE, OUTLIER_SCALE = 0.03, 8.0   # records whose numbers are 8x wider: the alerts' path
NOOP_KINDS = ("kafka", "console")   # sinks that would leave the scratch folder: Spark's noop instead
TIMEOUT_S = 600.0
NO_WARM_UP = "run without --warm-up; the queries do not need it to be correct"
MAX_BATCHES = 100   # Spark keeps the last 100 progress updates of a query, which the count reads


def scratch_plans(project, manifest, plans: list, scratch: Path) -> tuple[object, list]:
    """The project with its output and checkpoint roots in `scratch`, and the mirror and stateful
    plans against them: Kafka and console sinks as noop, no late-rows sinks."""
    from runner.stream import apply

    target = dataclasses.replace(project.target, output_root=str(scratch / "output"),
                                 checkpoint_root=str(scratch / "checkpoints"))
    warm = dataclasses.replace(project, target=target)
    wanted = {p.name for p in plans if p.query.kind in (topology.MIRROR, topology.STATEFUL)}
    out = []
    for p in apply.plan(warm, manifest):
        if p.name not in wanted or sinks.is_late_rows(p.spec):
            continue
        if p.spec.sink["kind"] in NOOP_KINDS:
            p = dataclasses.replace(p, spec=dataclasses.replace(p.spec, sink={**p.spec.sink, "kind": "noop"}))
        out.append(p)
    return warm, out


def _arrival(record_id, rows: int):
    """A scratch record's Kafka timestamp: now, plus a second per batch of `rows` records."""
    from pyspark.sql import functions as F

    return F.timestamp_seconds(F.unix_seconds(F.current_timestamp()) + record_id / rows)


def transactions(spark, source, batches: int, rows: int = ROWS_PER_BATCH):
    """`batches * rows` Kafka records of the source's topic, as Spark's Kafka source gives them:
    each value a JSON object of the source's schema (random numbers, event times moving
    EVENT_SECONDS_PER_BATCH a batch), every MALFORMED_EVERY-th one not JSON."""
    from pyspark.sql import functions as F

    step_us = EVENT_SECONDS_PER_BATCH * 1_000_000 // rows
    start = F.lit("2000-01-01 00:00:00").cast("timestamp")

    def field(name: str, sql_type: str):
        t = sql_type.strip().upper()
        if t == "TIMESTAMP":
            value = F.timestamp_micros(F.unix_micros(start) + F.col("id") * step_us)
        elif t in ("STRING", "VARCHAR") or t.startswith(("VARCHAR", "CHAR")):
            value = F.concat(F.lit("warm-up-"), F.col("id").cast("string"))
        elif t in ("INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "TINYINT", "BYTE", "SHORT"):
            value = (F.rand(7) < 0.01).cast(t)   # 0 or 1: a label's values
        elif t == "BOOLEAN":
            value = F.rand(11) < 0.5
        elif t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
            # a few rows far out (x OUTLIER_SCALE), so some score as alerts whatever the model
            scale = F.when(F.rand(13) < OUTLIER_SHARE, OUTLIER_SCALE).otherwise(1.0)
            value = (F.randn(zlib.crc32(name.encode()) % 1000) * scale).cast(t)
        else:
            value = F.lit(None).cast(t)
        return value.alias(name)

    record = F.to_json(F.struct(*[field(k, v) for k, v in source.schema.items()]))
    value = F.when(F.col("id") % MALFORMED_EVERY == MALFORMED_EVERY - 1, F.lit('{"txn_id": ')).otherwise(record)
    return spark.range(batches * rows).select(
        F.lit(None).cast("binary").alias("key"),
        value.cast("binary").alias("value"),
        F.lit(source.topic).alias("topic"),
        (F.col("id") % 2).cast("int").alias("partition"),
        (F.col("id") / 2).cast("long").alias("offset"),
        _arrival(F.col("id"), rows).alias("timestamp"),
        F.lit(0).alias("timestampType"))


def write_topics(spark, project, manifest, topics: set[str], batches: int, scratch: Path,
                 rows: int = ROWS_PER_BATCH) -> dict[str, Path]:
    """The route query's records for `topics`, computed as a batch over `transactions`, written as
    one Parquet file per batch under scratch/topics/<n>/ (oldest first by modification time, the
    order a file stream reads them in). Returns {topic: folder}."""
    from pyspark.sql import functions as F

    import udfs
    from runner.stream import apply

    route = topology.route_plan(manifest)
    used = apply.used_sources(manifest)
    for kind, name in sorted(used):
        transactions(spark, project.sources[name], batches, rows).createOrReplaceTempView(
            sources.view_name(kind, name))
    udfs.register(spark, project.model_path, next(iter(project.sources.values())).schema)
    apply.create_views(spark, manifest)
    header = apply.source_offset()
    partition, offset = F.split(header, ":")[0].cast("long"), F.split(header, ":")[1].cast("long")
    record_id = offset * 2 + partition   # as `transactions` numbered them
    staged = scratch / "staged"
    # one job for every topic: a folder per (topic, batch), one file in each
    (spark.sql(route.sql).where(F.col("topic").isin(*topics))
     .select(F.col("key").cast("binary").alias("key"), F.col("value").cast("binary").alias("value"),
             "topic", F.lit(0).alias("partition"), record_id.alias("offset"),
             _arrival(record_id, rows).alias("timestamp"), F.lit(0).alias("timestampType"), "headers",
             (record_id / rows).cast("long").alias("batch"), F.col("topic").alias("t"))
     .coalesce(1).write.partitionBy("t", "batch").parquet(str(staged)))
    folders = {topic: scratch / "topics" / str(n) for n, topic in enumerate(sorted(topics))}
    now = time.time()
    for topic, folder in folders.items():
        folder.mkdir(parents=True)
        for part in (staged / f"t={topic}").glob("batch=*/*.parquet"):
            b = int(part.parent.name.split("=", 1)[1])
            flat = folder / f"batch-{b:06d}.parquet"
            part.rename(flat)
            os.utime(flat, (now - batches + b, now - batches + b))
    return folders


def run(spark, project, manifest, plans: list, *, batches: int,
        stop_event: threading.Event | None = None, on_step=None) -> dict[str, int]:
    """Warm up: the mirror and stateful queries run `batches` micro-batches each over scratch
    records, then stop. Returns {query: batches run}. `on_step(text)` is told what it does."""
    from runner.stream import apply

    if not 0 < batches <= MAX_BATCHES:
        raise RunnerError(f"--warm-up takes 1 to {MAX_BATCHES} batches, not {batches}")
    if not project.target.master.startswith("local"):
        raise RunnerError("--warm-up runs on a local master only (its scratch files are on the driver's disk)",
                          where=str(project.file), hint=f"target '{project.target.name}' has master "
                                                        f"{project.target.master}; drop --warm-up")
    say = on_step or (lambda text: None)
    stop_event = stop_event or threading.Event()
    t0 = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="warm-up-", dir=project.runtime_dir if project.runtime_dir.exists() else None))
    queries = []
    try:
        warm, warm_plans = scratch_plans(project, manifest, plans, scratch)
        topics = {t for p in warm_plans for t in p.query.reads.values()}
        if not warm_plans or not topics:
            return {}
        say(f"warm-up: writing {batches} batches of scratch records for {len(topics)} topics")
        folders = write_topics(spark, project, manifest, topics, batches, scratch)

        def read_topic(topic: str):
            return (spark.readStream.schema(sources.KAFKA_COLUMNS_WITH_HEADERS)
                    .option("maxFilesPerTrigger", 1).parquet(str(folders[topic])))

        say(f"warm-up: {len({p.group for p in warm_plans})} queries, {batches} batches each")
        queries = apply.start_queries(spark, warm, manifest, warm_plans, available_now=True,
                                      kinds=(topology.MIRROR, topology.STATEFUL),
                                      starting={t: "earliest" for t in topics}, read_topic=read_topic)
        result = apply.wait(queries, available_now=True, timeout_s=TIMEOUT_S, stop_event=stop_event)
        if result.error:
            raise RunnerError(f"the warm-up failed: {result.error}", hint=NO_WARM_UP)
        ran = {q.name: [p for p in q.recentProgress if p["numInputRows"]] for q in queries}
        say(f"warm-up: done in {time.monotonic() - t0:.0f} s: " + ", ".join(
            f"{name} {len(b)} batches, {sum(p['numInputRows'] for p in b):,} rows" for name, b in sorted(ran.items())))
        return {name: len(b) for name, b in ran.items()}
    except RunnerError:
        raise
    except Exception as e:   # Spark's errors on the scratch records: say it was the warm-up
        raise RunnerError(f"the warm-up failed: {apply.error_summary(e)}", hint=NO_WARM_UP) from e
    finally:
        apply.stop_all(queries)
        shutil.rmtree(scratch, ignore_errors=True)
