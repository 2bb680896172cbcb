"""A Prometheus endpoint for a running `runner apply` (prometheus_client), fed by the batch progress
Spark reports to apply's ProgressLog: no Spark job of its own.

Where each number comes from:
- per query (label `query`): rows/s, batch duration, the last committed batch id, and records behind
  the end of each topic partition (the progress's latestOffset minus endOffset), straight from the
  progress;
- per sink (label `sink`, the plan name `<model>__<sink>`): rows written. Spark's own numOutputRows
  where it reports one (Kafka sinks); a mirror's Parquet sink writes what it read less the repeats
  its de-duplication dropped; the KPI sinks (one foreachBatch) each write the rows the aggregation
  emitted; a sink of the route query writes its topic, whose rows are counted where a reader
  query reads them back (runner/stream/topology.py);
- alerts: the rows the alerts model's mirror wrote;
- late rows: for a stateful query that keeps them (config late_rows), the rows its late-rows writer
  committed (runner/stream/late_rows.py: exact, the rows `runner status` and `audit` count); for
  any other query Spark's numRowsDroppedByWatermark;
- rejected records by `reason`: the only number Spark does not report. After each batch of the
  rejects' Parquet mirror, the Parquet files it committed are read (the `reason` column only,
  pyarrow, in a thread of this module): exact, and the same rows `runner audit` counts;
- the model (name, kind, sha256 of its card) as an info metric.

Counters start at zero with each apply, as Prometheus expects of a process's counters (its
`increase()` and `rate()` handle the reset).
"""
from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from runner.errors import RunnerError
from runner.stream import sinks, topology

PREFIX = "fraud"
# The models the domain counters follow (the same names audit and the report read).
ALERTS_MODEL = "fraud_alerts"
REJECTS_MODEL = "rejected_transactions"
# Batch durations from a back-to-back micro-batch to a slow first batch, in seconds.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Rows a stateful query emits per batch, by output mode: the state operator's count that equals
# them (append emits the groups the watermark evicts; update the groups it changed; complete all).
EMITTED_BY_MODE = {"append": "numRowsRemoved", "update": "numRowsUpdated", "complete": "numRowsTotal"}


class PipelineMetrics:
    """The metrics of one apply: `observe(progress)` for every batch's progress; `registry` to serve."""

    def __init__(self, plans: list, manifest, model_card: dict | None = None, card_sha256: str = ""):
        self.registry = CollectorRegistry(auto_describe=True)
        r, q = self.registry, ("query",)
        self.input_rate = Gauge(f"{PREFIX}_query_input_rows_per_second", "Rows per second arriving at the query's sources", q,
                                registry=r)
        self.processed_rate = Gauge(f"{PREFIX}_query_processed_rows_per_second", "Rows per second the query processed", q,
                                    registry=r)
        self.input_rows = Counter(f"{PREFIX}_query_input_rows", "Rows the query read from its sources", q, registry=r)
        self.last_duration = Gauge(f"{PREFIX}_query_last_batch_duration_seconds", "Duration of the query's last batch", q,
                                   registry=r)
        self.duration = Histogram(f"{PREFIX}_query_batch_duration_seconds", "Durations of the query's batches", q,
                                  buckets=DURATION_BUCKETS, registry=r)
        self.last_batch = Gauge(f"{PREFIX}_query_last_committed_batch_id", "Id of the query's last committed batch", q,
                                registry=r)
        self.behind = Gauge(f"{PREFIX}_query_records_behind_latest",
                            "Records between the query's end offset and the end of the topic partition",
                            ("query", "topic", "partition"), registry=r)
        self.late = Counter(f"{PREFIX}_late_rows", "Rows left out behind the watermark (for a query keeping them: "
                            "the rows kept)", q, registry=r)
        self.sink_rows = Counter(f"{PREFIX}_sink_rows_written", "Rows written to the sink", ("sink", "query"), registry=r)
        self.alerts = Counter(f"{PREFIX}_alerts", f"Alerts written (the {ALERTS_MODEL} model's rows)", registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected_records", "Records that could not be scored, by reason", ("reason",),
                                registry=r)
        self.model = Info(f"{PREFIX}_model", "The model fraud_prob scores with", registry=r)
        card = model_card or {}
        self.model.info({"name": str(card.get("name", "")), "kind": str(card.get("kind", "")),
                         "card_sha256": card_sha256, "created": str(card.get("created", ""))})

        self._plans = plans
        # queries whose late rows are counted as their writer commits them, not from the progress
        self._keeps_late = {p.group for p in plans if sinks.is_late_rows(p.spec)}
        self._modes = {m.name: m.config.output_mode for m in manifest.models}
        # {topic: the query that reads it back}: where a routed sink's rows are counted
        self._reader = {}
        for p in sorted(plans, key=lambda p: p.group):
            for topic in (p.query.reads.values() if p.query.kind != topology.ROUTE else ()):
                self._reader.setdefault(topic, p.group)
        alert_mirrors = _mirrors(plans, ALERTS_MODEL)
        self._alerts_query = alert_mirrors[0].group if alert_mirrors else None
        parquet = [p for p in _mirrors(plans, REJECTS_MODEL) if p.spec.sink["kind"] == "parquet"]
        self._rejects = RejectsByReason(parquet[0].spec.location, self.rejected) if parquet else None
        self._rejects_query = parquet[0].group if parquet else None

    def observe(self, progress: dict) -> None:
        """One batch's progress (apply's on_batch)."""
        name = str(progress.get("name"))
        rows = int(progress.get("numInputRows") or 0)
        self.input_rate.labels(name).set(float(progress.get("inputRowsPerSecond") or 0.0))
        self.processed_rate.labels(name).set(float(progress.get("processedRowsPerSecond") or 0.0))
        self.input_rows.labels(name).inc(rows)
        seconds = ((progress.get("durationMs") or {}).get("triggerExecution") or 0) / 1000
        self.last_duration.labels(name).set(seconds)
        self.duration.labels(name).observe(seconds)
        if progress.get("batchId") is not None:
            self.last_batch.labels(name).set(int(progress["batchId"]))
        operators = progress.get("stateOperators") or []
        if name not in self._keeps_late:
            self.late.labels(name).inc(sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in operators))
        else:
            self.late.labels(name).inc(0)   # the series exists from the first batch, at 0
        for source in progress.get("sources") or []:
            for topic, partition, behind in records_behind(source):
                self.behind.labels(name, topic, str(partition)).set(behind)
        for sink, written in self.sink_rows_of(progress).items():
            self.sink_rows.labels(sink, self._group_of(sink)).inc(written)
        if name == self._alerts_query:
            self.alerts.inc(deduplicated_rows(progress))
        if name == self._rejects_query and self._rejects and deduplicated_rows(progress):
            self._rejects.after_batch()

    def observe_late_rows(self, query: str, rows: int) -> None:
        """A batch of late rows the query's writer committed (apply.run's on_late_rows)."""
        self.late.labels(query).inc(rows)

    def sink_rows_of(self, progress: dict) -> dict[str, int]:
        """{sink: rows written} by one batch, for the sinks this batch's progress tells about."""
        name = progress.get("name")
        # a query's own sinks; its late rows are counted by fraud_late_rows_total
        members = [p for p in self._plans if p.group == name and not sinks.is_late_rows(p.spec)]
        out = {}
        reported = int((progress.get("sink") or {}).get("numOutputRows", -1))
        if members and reported >= 0 and members[0].query.kind != topology.ROUTE:
            out.update({p.name: reported for p in members})
        elif members and members[0].query.kind == topology.MIRROR:
            out.update({p.name: deduplicated_rows(progress) for p in members})
        elif members and members[0].query.kind == topology.STATEFUL:
            emitted = emitted_rows(progress, self._modes.get(members[0].query.model, "append"))
            out.update({p.name: emitted for p in members})
        # the route query's sinks: their topics' rows as this (reader) query read them
        read = topic_rows(progress)
        for p in self._plans:
            topic = p.spec.location
            if p.query.kind == topology.ROUTE and self._reader.get(topic) == name and topic in read:
                out[p.name] = read[topic]
        return out

    def _group_of(self, sink: str) -> str:
        return next((p.group for p in self._plans if p.name == sink), "")

    def close(self) -> None:
        if self._rejects:
            self._rejects.close()


def _mirrors(plans: list, model: str) -> list:
    """The mirror queries' plans of a routed model, by query name."""
    return sorted((p for p in plans if p.query.kind == topology.MIRROR and p.spec.model == model), key=lambda p: p.group)


def records_behind(source: dict) -> list[tuple[str, int, int]]:
    """(topic, partition, records behind) for a Kafka source's progress: latestOffset - endOffset."""
    end, latest = source.get("endOffset"), source.get("latestOffset")
    if not isinstance(end, dict) or not isinstance(latest, dict):
        return []   # not a Kafka source, or no batch yet
    out = []
    for topic, partitions in latest.items():
        if not isinstance(partitions, dict):
            continue
        for partition, offset in partitions.items():
            done = (end.get(topic) or {}).get(partition)
            if done is not None:
                out.append((topic, int(partition), max(0, int(offset) - int(done))))
    return out


def topic_rows(progress: dict) -> dict[str, int]:
    """{topic: rows this batch read from it}, for sources that subscribe to one topic."""
    out = {}
    for source in progress.get("sources") or []:
        topics = list((source.get("endOffset") or {}) if isinstance(source.get("endOffset"), dict) else {})
        if len(topics) == 1:
            out[topics[0]] = out.get(topics[0], 0) + int(source.get("numInputRows") or 0)
    return out


def deduplicated_rows(progress: dict) -> int:
    """Rows a mirror query wrote: what it read, less the repeats (and rows past the horizon) its
    dropDuplicatesWithinWatermark dropped."""
    dropped = 0
    for op in progress.get("stateOperators") or []:
        if op.get("operatorName", "").startswith("dedupe"):
            dropped += int((op.get("customMetrics") or {}).get("numDroppedDuplicateRows") or 0)
            dropped += int(op.get("numRowsDroppedByWatermark") or 0)
    return max(0, int(progress.get("numInputRows") or 0) - dropped)


def emitted_rows(progress: dict, output_mode: str) -> int:
    """Rows a streaming aggregation emitted in this batch (EMITTED_BY_MODE)."""
    key = EMITTED_BY_MODE.get(output_mode, "numRowsRemoved")
    saves = [op for op in progress.get("stateOperators") or [] if op.get("operatorName") == "stateStoreSave"]
    return sum(int(op.get(key) or 0) for op in saves)


class RejectsByReason:
    """Counts the `reason` of each Parquet file the rejects' sink commits, once per file, in a
    thread of its own (listing and reading must not hold up Spark's listener bus). The files
    committed before this run are not counted."""

    def __init__(self, location: str, counter: Counter):
        from runner.stream import outputs

        self.location, self.counter = location, counter
        self._seen = {str(f) for f in outputs.committed_files(location)}
        self._wake: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="metrics-rejects", daemon=True)
        self._thread.start()

    def after_batch(self) -> None:
        self._wake.put(True)

    def count_new(self) -> None:
        from runner.stream import outputs, storage

        for f in outputs.committed_files(self.location):
            if str(f) in self._seen:
                continue
            self._seen.add(str(f))
            reasons = storage.read_parquet(f, ["reason"]).column("reason").to_pylist()
            for reason in reasons:
                self.counter.labels(str(reason)).inc()

    def _run(self) -> None:
        while self._wake.get():
            with contextlib.suppress(Exception):   # a file that vanished (reset) is counted by no one
                self.count_new()

    def close(self) -> None:
        self._wake.put(False)
        self._thread.join(timeout=10)


def card_identity(model_path) -> tuple[dict, str]:
    """The model card and the sha256 of its bytes (what the info metric says)."""
    from udfs.card import CARD_FILE, read_card

    card = read_card(model_path)
    return card, hashlib.sha256((model_path / CARD_FILE).read_bytes()).hexdigest()


@contextlib.contextmanager
def serving(project, manifest, plans: list, *, port: int | None, host: str,
            on_batch: Callable[[dict], None] | None = None) -> Iterator[Callable[[dict], None] | None]:
    """Serve the metrics on http://host:port/metrics while the block runs. Yields the on_batch for
    apply.run: one that feeds the metrics, then calls `on_batch` (no port: `on_batch` itself); its
    `late_rows` attribute is apply.run's on_late_rows."""
    if port is None:
        yield on_batch
        return
    from prometheus_client import start_http_server

    card, sha = card_identity(project.model_path)
    metrics = PipelineMetrics(plans, manifest, card, sha)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as e:
        metrics.close()
        raise RunnerError(f"can not serve metrics on {host}:{port}: {e.strerror or e}",
                          hint="pick a free port with --metrics-port (or the target's metrics_port)") from None

    def observed(progress: dict) -> None:
        if on_batch:   # the terminal's line first: a metrics failure must not cost it
            on_batch(progress)
        metrics.observe(progress)
    observed.late_rows = metrics.observe_late_rows   # apply.run's on_late_rows

    try:
        yield observed
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        metrics.close()
