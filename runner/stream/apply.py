"""Plan and apply: views in DAG order, the streaming queries started, waited on, stopped.

Queries (runner/stream/topology.py): one route query parses and scores each record once and
writes every routed model's rows to Kafka; the Parquet sinks and the KPIs read those topics. A
plan is still made per (model, sink), with its own fingerprint and verdict, kept in its query's
checkpoint folder.

Run-time only: it takes a compiled Manifest and never renders Jinja.
"""
from __future__ import annotations

import contextlib
import json
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runner.compile import fingerprint
from runner.compile.manifest import REALTIME
from runner.compile.routes import OFFSET_HEADER, TIMESTAMP_FORMAT
from runner.errors import RunnerError, analysis_error
from runner.stream import checkpoints, sink_batches, sinks, sources, topology


@dataclass
class QueryPlan:
    spec: sinks.SinkSpec
    checkpoint: Path         # the folder of the query this sink runs in (shared by a group)
    fingerprint: dict
    verdict: fingerprint.Verdict
    group: str = ""          # that query's name
    query: topology.QuerySpec | None = None

    @property
    def name(self) -> str:
        return self.spec.query_name


def plan(project, manifest, var_overrides: dict[str, str] | None = None) -> list[QueryPlan]:
    """The verdict for every (model, sink) query against its checkpoint. No Spark needed."""
    vars_ = manifest.var_values()   # as compile resolved them, --var overrides included
    src = sources.source_identity(project)
    out = []
    for model in manifest.models:
        for spec in sinks.specs(project, model):
            query = topology.query_of(manifest, model.name, spec)
            fp = fingerprint.query_fingerprint(manifest, model.name, spec.sink, sources=src,
                                               sink_location=spec.declared, vars_=vars_, reads=query.reads)
            group = query.name
            folder = checkpoints.query_dir(project.checkpoint_root, group)
            meta = checkpoints.read_meta(folder)
            members = (meta or {}).get("members", {})
            if meta is None and checkpoints.has_progress(folder):
                verdict = fingerprint.Verdict(fingerprint.INCOMPATIBLE, [
                    f"{folder} holds a Spark checkpoint the runner did not write; it can not tell what it depends on"])
            elif meta is not None and spec.query_name not in members and checkpoints.has_progress(folder):
                verdict = fingerprint.Verdict(fingerprint.COMPATIBLE, [
                    f"a new sink of the shared query {group}: it starts at that query's current offsets"])
            else:
                verdict = fingerprint.verdict(members.get(spec.query_name), fp)
            out.append(QueryPlan(spec, folder, fp, verdict, group, query))
    return out


def reset(project, manifest, model_name: str) -> list[tuple[Path, Path]]:
    """Archive the checkpoints (and Parquet outputs) of every query a model's sinks run in."""
    model = manifest.model(model_name)
    if not model.config.sinks:
        raise RunnerError(f"model '{model_name}' has no sinks, so no checkpoint to reset",
                          hint="reset the models that write: " + ", ".join(m.name for m in manifest.models if m.config.sinks))
    # A shared query's checkpoint holds every member's offsets: resetting one model resets the
    # whole query, and every member's Parquet output goes with it (its batch ids start over).
    plans = plan(project, manifest)
    groups = {p.group for p in plans if p.spec.model == model_name}
    if any(p.query.kind == topology.ROUTE for p in plans if p.group in groups):
        # The route query starts over from the source's first offset and writes every record to
        # its topics again: every query reading them starts over too, or it would count twice.
        groups |= {p.group for p in plans}
    moved = []
    for group in sorted(groups):
        members = [p for p in plans if p.group == group]
        outputs_ = [p.spec.location for p in members if p.spec.sink["kind"] == "parquet"]
        moved += checkpoints.archive(project.checkpoint_root, group, outputs_)
    return moved


def create_views(spark, manifest) -> dict:
    """Every model as a temp view, in DAG order; returns {name: DataFrame}. Errors name the file."""
    frames = {}
    for model in manifest.models:
        try:
            df = spark.sql(model.sql)
            if model.config.watermark:
                df = df.withWatermark(model.config.watermark["column"], model.config.watermark["delay"])
        except Exception as e:  # AnalysisException and friends: say which model, and which vars reach it
            raise analysis_error(manifest, model, e) from None
        df.createOrReplaceTempView(model.name)
        frames[model.name] = df
    return frames


def used_sources(manifest) -> set[tuple[str, str]]:
    return {tuple(s) for m in manifest.models for s in m.sources}


def analyse(spark, project, manifest) -> dict:
    """Spark's analysis of every model over empty typed sources: {model: schema}. No data is read."""
    import udfs

    sources.register_empty(spark, project, used_sources(manifest))
    udfs.register(spark, project.model_path, {k: v for k, v in next(iter(project.sources.values())).schema.items()})
    return {name: df.schema for name, df in create_views(spark, manifest).items()}


# --------------------------------------------------------------------------- running

class ProgressLog:
    """A streaming query listener that appends each batch's progress to a JSON-lines file per query
    and calls each of its observers with it (`on_batch`: the terminal, the metrics; the late-rows
    writers), so `status`, the dashboard and the report can read it. `attach(spark)` registers it.

    Only the progress' JSON crosses from the JVM: pyspark's own StreamingQueryListener rebuilds
    each event field by field through py4j, a round trip per field and per map entry (a stateful
    query's progress carries ~40 state store metrics per operator). Profiled at 110 events/s with
    four queries: ~30% of a core between the JVM's listener thread, its py4j threads and Python."""

    def __init__(self, folder: Path, on_batch: Callable[[dict], None] | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.realtime: set[str] = set()   # names of the queries running in Real-time Mode
        # called with every batch's progress once it is logged: on_batch, the late-rows writers
        self.observers: list[Callable[[dict], None]] = [on_batch] if on_batch else []
        self._lock = threading.Lock()
        self._jlistener = None

    class _JsonListener:
        """The Python side of Spark's PythonStreamingQueryListener interface (py4j calls it):
        one call per progress event, for its JSON. Failures reach `wait` through each query's
        exception(), so the other three events are ignored."""

        def __init__(self, on_json: Callable[[str], None]):
            self.on_json = on_json

        def onQueryStarted(self, jevent) -> None:
            return None

        def onQueryProgress(self, jevent) -> None:
            self.on_json(jevent.progress().json())

        def onQueryIdle(self, jevent) -> None:
            return None

        def onQueryTerminated(self, jevent) -> None:
            return None

        class Java:
            implements = ["org.apache.spark.sql.streaming.PythonStreamingQueryListener"]

    def attach(self, spark) -> None:
        from pyspark.java_gateway import ensure_callback_server_started

        gateway = spark.sparkContext._gateway
        ensure_callback_server_started(gateway)
        self._jlistener = gateway.jvm.org.apache.spark.sql.streaming.PythonStreamingQueryListenerWrapper(
            self._JsonListener(lambda text: self.record(json.loads(text))))
        spark._jsparkSession.streams().addListener(self._jlistener)

    def detach(self, spark) -> None:
        if self._jlistener is not None:
            spark._jsparkSession.streams().removeListener(self._jlistener)
            self._jlistener = None

    def record(self, progress: dict) -> None:
        if progress.get("name") in self.realtime:
            progress["realtime"] = True   # Spark's progress does not say; readers skip its "latency"
        with self._lock:
            with open(self.folder / f"{progress.get('name')}.jsonl", "a") as f:
                f.write(json.dumps(progress) + "\n")
        for observe in list(self.observers):
            observe(progress)


def summarize(progress: dict) -> dict:
    """The numbers a person reads off one batch's progress."""
    rows = int(progress.get("numInputRows") or 0)
    duration = (progress.get("durationMs") or {}).get("triggerExecution") or 0
    dropped = sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in progress.get("stateOperators") or [])
    return {"name": progress.get("name"), "batch": progress.get("batchId"), "rows": rows,
            "rows_per_s": float(progress.get("processedRowsPerSecond") or 0.0), "duration_ms": duration,
            "late_rows": dropped, "timestamp": progress.get("timestamp"),
            # a Real-time Mode batch is a checkpoint interval, not a latency (see ProgressLog)
            "realtime": bool(progress.get("realtime"))}


@dataclass
class RunResult:
    exit_code: int
    stopped_by: str          # 'available-now', 'timeout', 'signal', 'error'
    error: str | None = None


def realtime_supported() -> bool:
    """Real-time Mode is in Spark 4.1+; older pins fall back to micro-batch."""
    import inspect

    from pyspark.sql.streaming import DataStreamWriter
    return "realTime" in inspect.signature(DataStreamWriter.trigger).parameters


def trigger_for(members: list[QueryPlan], manifest, available_now: bool, realtime: bool = True) -> dict:
    """The trigger of a query: availableNow when draining; Real-time Mode when a member asks for it
    (the route query); else the shortest processing-time interval its members ask for (none: back
    to back)."""
    if available_now:
        return {"availableNow": True}
    asked = [p.spec.sink.get("trigger") or manifest.model(p.spec.model).config.trigger for p in members]
    if members and members[0].query.kind != topology.ROUTE:
        # Only the route query reads the source; the queries after it run in micro-batches.
        asked = [a for a in asked if a != REALTIME] or [manifest.model(members[0].spec.model).config.trigger]
    if REALTIME in asked:
        if realtime and realtime_supported():
            return {"realTime": REALTIME_CHECKPOINT_INTERVAL}
        # Micro-batches nearly back to back: a batch starts as soon as the last one ended and new
        # records wait; idle, the query asks Kafka for offsets 5 times a second, not 100.
        return {"processingTime": REALTIME_FALLBACK}
    from runner.compile.vartypes import duration_seconds
    every = sorted((a for a in asked if a and a != REALTIME), key=duration_seconds)
    return {"processingTime": every[0]} if every else {}


# A Real-time Mode batch is a checkpoint interval, not a latency: records flow through within it.
REALTIME_CHECKPOINT_INTERVAL = "5 minutes"
REALTIME_FALLBACK = "200 milliseconds"
# How long a reader remembers a routed record's source offset to drop a repeat: the route query's
# Kafka sink is at-least-once, and after a crash it rewrites what it had not committed, at most
# one checkpoint interval of records; so this must stay longer than REALTIME_CHECKPOINT_INTERVAL.
# The horizon is kept on the minute a record was routed (`_routed_minute`), not its millisecond:
# Spark runs an extra, empty batch whenever a query's watermark moves, to evict state, and on the
# record's own time it moved with every batch (two batches per batch of input). On the minute it
# moves once a minute, and a repeat is still remembered at least REPEAT_HORIZON.
REPEAT_HORIZON = "10 minutes"


def _groups(plans: list[QueryPlan]) -> dict[str, list[QueryPlan]]:
    groups: dict[str, list[QueryPlan]] = {}
    for p in plans:
        groups.setdefault(p.group, []).append(p)
    return groups


def source_offset():
    """A routed record's `source_offset` header ("partition:offset" of its transaction), as a string."""
    from pyspark.sql import functions as F

    return F.filter("headers", lambda h: h["key"] == OFFSET_HEADER)[0]["value"].cast("string")


def routed_columns(raw, schema, keep: tuple[str, ...] = ()):
    """A routed model's rows from its topic's Kafka records (a stream, or a batch read of an offset
    range): its columns, plus the minute they were routed (`_routed_minute`) and the source offset
    (`_source_offset`) they came from, to drop repeats on; and the Kafka columns in `keep`."""
    from pyspark.sql import functions as F

    header = source_offset()
    row = F.from_json(F.col("value").cast("string"), schema, {"timestampFormat": TIMESTAMP_FORMAT})
    routed = F.date_trunc("minute", F.col("timestamp"))
    return raw.select(row.alias("r"), routed.alias("_routed_minute"), header.alias("_source_offset"), *keep) \
              .select("r.*", "_routed_minute", "_source_offset", *keep)


def _topic_stream(spark, kafka_options: dict, topic: str, starting: str):
    """A routed topic's Kafka records, headers included, as a stream."""
    return (spark.readStream.format("kafka").options(**sources.micro_batch_read_options(kafka_options))
            .option("subscribe", topic).option("startingOffsets", starting)
            .option("failOnDataLoss", "false").option("includeHeaders", "true").load())


def starting_offsets(project, manifest, plans: list[QueryPlan]) -> dict[str, str]:
    """Where a reader of the route query's topics starts when it has no checkpoint: the topic's
    first record, unless the route query starts over too (new or reset); then it rewrites every
    record, so the reader starts at the topic's current end and counts nothing twice.
    Taken before the route query starts."""
    route = topology.route_plan(manifest)
    topics = {t for p in plans for t in p.query.reads.values()}
    if not route or not topics:
        return {}
    if checkpoints.has_progress(checkpoints.query_dir(project.checkpoint_root, route.query)):
        return {t: "earliest" for t in topics}
    from runner.stream.kafka_clients import end_offsets
    ends = end_offsets(project.target.kafka_options(), topics)
    return {t: json.dumps({t: {str(p): o for p, o in ends[t].items()}}) for t in topics}


def start_queries(spark, project, manifest, plans: list[QueryPlan], *, available_now: bool,
                  extra_source_options: dict | None = None, realtime: bool = True,
                  kinds: tuple[str, ...] = (topology.ROUTE, topology.MIRROR, topology.STATEFUL),
                  starting: dict[str, str] | None = None, progress_log: "ProgressLog | None" = None,
                  on_late_rows: Callable[[str, int], None] | None = None,
                  read_topic: Callable[[str], object] | None = None) -> list:
    """Register sources, fraud_prob and views, then start the queries of the given kinds. A stateful
    query with late_rows gets its writer (late_rows.py) as `q.late_rows`, fed by `progress_log`.
    `read_topic(topic)`, when given, is the stream of Kafka-shaped records a reader reads instead of
    the topic (the warm-up's scratch files, runner/stream/warm_up.py)."""
    import udfs

    sources.register_streaming(spark, project, used_sources(manifest), extra_options=extra_source_options,
                               realtime=realtime and not available_now)
    udfs.register(spark, project.model_path, next(iter(project.sources.values())).schema)
    frames = create_views(spark, manifest)
    kafka_options = sources.spark_kafka_options(project)
    groups = _groups(plans)
    route = topology.route_plan(manifest)
    if starting is None:
        starting = starting_offsets(project, manifest, plans)
    # The route query first: the readers' starting offsets were taken before it writes.
    order = sorted(groups, key=lambda g: groups[g][0].query.kind != topology.ROUTE)
    queries = []
    for name in order:
        members = groups[name]
        query = members[0].query
        if query.kind not in kinds:
            continue
        folder = members[0].checkpoint
        checkpoints.write_meta(folder, {
            "query": name, "kind": query.kind, "reads": query.reads,
            "members": {p.name: p.fingerprint for p in members},
            "sinks": {p.name: p.spec.sink for p in members},
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        location = checkpoints.location(project.checkpoint_root, name)
        trigger = trigger_for(members, manifest, available_now, realtime)
        if query.kind == topology.ROUTE:
            writer = (spark.sql(route.sql).writeStream.queryName(name).format("kafka").options(**kafka_options)
                      .option("checkpointLocation", location)
                      # Real-time Mode takes update mode only; for a stateless query the two are the same.
                      .outputMode("update" if "realTime" in trigger else "append"))
            q = (writer.trigger(**trigger) if trigger else writer).start()
            q.realtime = "realTime" in trigger
            if q.realtime and progress_log is not None:
                progress_log.realtime.add(name)
            queries.append(q)
            continue
        for ref, topic in query.reads.items():
            model = manifest.model(ref)
            raw = read_topic(topic) if read_topic else _topic_stream(spark, kafka_options, topic, starting[topic])
            df = routed_columns(raw, frames[ref].schema)
            wm = model.config.watermark
            # Repeats of a routed record are dropped on its source offset; the watermark bounds that
            # state (and, for the KPIs, leaves late events out of the windows).
            df = (df.withWatermark(wm["column"], wm["delay"]) if wm
                  else df.withWatermark("_routed_minute", REPEAT_HORIZON)).dropDuplicatesWithinWatermark(["_source_offset"])
            df.select(*[f"`{c}`" for c in frames[ref].columns]).createOrReplaceTempView(ref)
        model = manifest.model(query.model)
        # a mirror writes its routed model's rows as read back; a stateful model runs its SQL over them
        frame = spark.table(query.model) if query.kind == topology.MIRROR else spark.sql(model.sql)
        writes = [p for p in members if not sinks.is_late_rows(p.spec)]
        late = _late_rows_writer(spark, manifest, query, members, frames, kafka_options, on_late_rows)
        if late is not None and progress_log is not None:
            progress_log.observers.append(late.observe)
        if len(writes) == 1:
            q = sinks.start(frame, writes[0].spec, checkpoint=location, output_mode=model.config.output_mode,
                            trigger=trigger, kafka_options=kafka_options, name=name)
        else:
            writer = (frame.writeStream.queryName(name).option("checkpointLocation", location)
                      .outputMode(model.config.output_mode)
                      .foreachBatch(sink_batches.batch_writer(writes, kafka_options)))
            q = (writer.trigger(**trigger) if trigger else writer).start()
        q.realtime = False
        q.late_rows = late
        queries.append(q)
    return queries


def _late_rows_writer(spark, manifest, query: topology.QuerySpec, members: list[QueryPlan], frames: dict,
                      kafka_options: dict, on_rows):
    """The late-rows writer of a stateful query whose model sets late_rows (else None), started:
    it first scans the batches committed since its last run."""
    from runner.stream import late_rows

    late = [p for p in members if sinks.is_late_rows(p.spec)]
    watermarked = [ref for ref in query.reads if manifest.model(ref).config.watermark]
    if not late or not watermarked:
        return None
    ref = watermarked[0]   # the stateful model's watermark is its input's (one watermarked input)
    source = late_rows.LateSource(query.reads[ref], frames[ref].schema,
                                  manifest.model(ref).config.watermark["column"], kafka_options)
    return late_rows.LateRowsWriter(spark, query.name, members[0].checkpoint, late[0].spec.location, source,
                                    on_rows=on_rows).start()


def close_late_rows(queries: list, progress_log: "ProgressLog | None" = None) -> str | None:
    """After the queries stopped: each late-rows writer scans what is left and stops. Returns the
    first writer's error, if one failed."""
    errors = []
    for q in queries:
        late = getattr(q, "late_rows", None)
        if late is None:
            continue
        late.close()
        if progress_log is not None and late.observe in progress_log.observers:
            progress_log.observers.remove(late.observe)
        if late.error:
            errors.append(f"late rows of {q.name}: {late.error}")
    return errors[0] if errors else None


def wait(queries: list, *, available_now: bool, timeout_s: float | None,
         stop_event: threading.Event) -> RunResult:
    """Wait until every query finished (available-now), the timeout, a signal, or a failure."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    while True:
        failed = [q for q in queries if not q.isActive and q.exception() is not None]
        if failed:
            q = failed[0]
            return RunResult(1, "error", f"query {q.name} failed: {error_summary(q.exception())}")
        if available_now and not any(q.isActive for q in queries):
            return RunResult(0, "available-now")
        if stop_event.is_set():
            return RunResult(0, "signal")
        if deadline and time.monotonic() >= deadline:
            return RunResult(0, "timeout")
        stop_event.wait(0.5)


def _in_trigger(q) -> bool:
    try:
        # A Real-time Mode batch lasts its whole checkpoint interval: never wait for it.
        return q.isActive and not getattr(q, "realtime", False) and bool(q.status.get("isTriggerActive"))
    except Exception:   # a query that died while we asked
        return False


def error_summary(exc) -> str:
    """The line of a query's exception a person needs: Spark's message, or the Python error's last line."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].endswith("Traceback (most recent call last):") or "Python Proxy" in lines[0]:
        errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        return errors[-1] if errors else lines[-1]
    return lines[0]


def stop_all(queries: list, timeout_s: float = 60.0) -> None:
    # Let a running batch finish first (bounded): stopping a foreachBatch query inside its
    # Python callback interrupts py4j mid-call, which Spark reports as a StackOverflowError.
    settle = time.monotonic() + min(15.0, timeout_s)
    while time.monotonic() < settle and any(_in_trigger(q) for q in queries):
        time.sleep(0.2)
    for q in queries:
        with contextlib.suppress(Exception):  # a query that already died has nothing left to stop
            if q.isActive:
                q.stop()
    deadline = time.monotonic() + timeout_s
    for q in queries:
        while q.isActive and time.monotonic() < deadline:
            time.sleep(0.1)


def install_signal_handlers(stop_event: threading.Event) -> None:
    def handler(signum, frame):
        stop_event.set()
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def preflight(project, plans: list[QueryPlan]) -> None:
    """Everything that can be checked before Spark starts: verdicts, the model, Kafka and its topics."""
    refused = [p for p in plans if p.verdict.refused]
    if refused:
        models = sorted({p.spec.model for p in refused})
        groups = len({p.group for p in refused})   # a plan is a sink; its query holds the checkpoint
        raise RunnerError(f"{len(refused)} sink{'' if len(refused) == 1 else 's'} in {groups} quer{'y' if groups == 1 else 'ies'} "
                          f"can not resume from {'its' if groups == 1 else 'their'} checkpoint: "
                          + "; ".join(f"{p.name}: {p.verdict.reasons[0]}" for p in refused),
                          hint=f"runner apply {' '.join('--reset ' + m for m in models)} "
                               "(archives the old checkpoints; nothing is deleted)")
    # The model: its folder and card, and its features against the source schema (what
    # udfs.register checks later, here without Spark, so no query starts on a bad model).
    from udfs.card import check_features, read_card
    try:
        card = read_card(project.model_path)
        for src in project.sources.values():
            check_features(card, src.schema, project.model_path)
    except RunnerError as e:
        raise RunnerError(e.message, where=e.where or f"{project.file} (model: {project.model_path})",
                          hint=e.hint) from None
    # Kafka: a bounded wait (targets.<name>.kafka_wait_s), then a message naming the servers.
    from runner.stream.kafka_clients import ensure_topics
    ensure_topics(project.target.kafka_options(), project.topics, timeout_s=project.target.kafka_wait_s)



def run(spark, project, manifest, plans: list[QueryPlan], *, available_now: bool = False,
        timeout_s: float | None = None, stop_event: threading.Event | None = None,
        on_batch: Callable[[dict], None] | None = None, on_started: Callable[[list], None] | None = None,
        extra_source_options: dict | None = None, realtime: bool = True,
        on_late_rows: Callable[[str, int], None] | None = None, warm_up_batches: int = 0,
        on_warm_up: Callable[[str], None] | None = None) -> RunResult:
    """Start every planned query, wait, stop them all. Call `preflight` first.
    `realtime=False` runs Real-time Mode sinks as back-to-back micro-batches instead.
    `on_late_rows(query, rows)` is told each batch of late rows a stateful query's writer commits.
    `warm_up_batches`: first run the micro-batch queries that many batches over scratch records
    (runner/stream/warm_up.py; not with available_now), telling `on_warm_up` each step."""
    stop_event = stop_event or threading.Event()
    if warm_up_batches and not available_now:
        from runner.stream import warm_up
        warm_up.run(spark, project, manifest, plans, batches=warm_up_batches, stop_event=stop_event,
                    on_step=on_warm_up)
        if stop_event.is_set():
            return RunResult(0, "signal")
    progress = ProgressLog(project.runtime_dir / "progress", on_batch)
    progress.attach(spark)
    queries = []
    start = dict(available_now=available_now, extra_source_options=extra_source_options, realtime=realtime,
                 starting=starting_offsets(project, manifest, plans), progress_log=progress,
                 on_late_rows=on_late_rows)
    closed = False
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        if available_now:
            # Drain in order: the route query writes the whole backlog to its topics, then the
            # queries reading them drain those; started together they would stop half-way.
            queries = start_queries(spark, project, manifest, plans, kinds=(topology.ROUTE,), **start)
            if on_started:
                on_started(queries)
            result = wait(queries, available_now=True, timeout_s=timeout_s, stop_event=stop_event)
            if result.stopped_by != "available-now":
                return result
            stop_all(queries)
            queries = start_queries(spark, project, manifest, plans, kinds=(topology.MIRROR, topology.STATEFUL),
                                    **start)
        else:
            queries = start_queries(spark, project, manifest, plans, **start)
        if on_started:
            on_started(queries)
        left = max(1.0, deadline - time.monotonic()) if deadline else None
        result = wait(queries, available_now=available_now, timeout_s=left, stop_event=stop_event)
        stop_all(queries)
        closed, late_error = True, close_late_rows(queries, progress)
        if late_error and result.exit_code == 0:
            return RunResult(1, "error", late_error)
        return result
    finally:
        stop_all(queries)
        if not closed:   # an error or an interrupt on the way: the writers still scan what was committed
            close_late_rows(queries, progress)
        progress.detach(spark)
