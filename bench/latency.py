"""Latency against load: `runner apply` running, the rate stepped up until the pipeline saturates.

For each mode (Real-time Mode, and micro-batch with --no-realtime) one `runner apply` runs on a
fresh project folder; after a warm-up, ProducerPerformance sends each asked rate for `step_s`
seconds. After a step the benchmark waits until the route query has written one scored event
per record sent (so the step is fully processed) and the Parquet alert query has committed the
alerts topic's end, then measures, joined on the source record's partition and offset (alerts
carry `kafka_partition`/`kafka_offset` of their transaction):
- alert latency: the alert's Kafka timestamp minus its transaction's Kafka timestamp (both set by
  producers on this machine, so one clock);
- Parquet alert freshness: the commit time of the Parquet file holding the alert (the time of the
  `_spark_metadata` log entry that first lists it) minus the transaction's Kafka timestamp.
A step saturates when the producer achieves less than SHORT_FRACTION of the asked rate, the
pipeline has not processed the step DRAIN_LIMIT_S after it ended, or alert p99 passes the limit;
the ladder stops there.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow.parquet as pq

from bench import procs
from bench.backlog import KPI_QUERY, dropped_late, read_progress, state_summary
from bench.workload import PAYLOAD_MAX, bench_project, produce_paced, write_payload

ALERTS_TOPIC = "fraud_alerts"
SCORED_TOPIC = "scored_events"
PARQUET_QUERY = "fraud_alerts__parquet"
SHORT_FRACTION = 0.9        # achieved below 90% of the asked rate: the machine could not even send it
DRAIN_LIMIT_S = 60.0        # after a step, how long the pipeline may take to finish it
PARQUET_LIMIT_S = 30.0      # then how long the Parquet alert query may take to commit the alerts
START_LIMIT_S = 300.0       # apply: Spark up and every query started


@dataclass
class Step:
    mode: str
    asked: int
    achieved: float
    sent: int
    alerts: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    parquet_alerts: int = 0
    fresh_p50: float | None = None
    fresh_p95: float | None = None
    fresh_p99: float | None = None
    ack_p99: float | None = None       # the producer's own send-to-ack p99, for context
    drain_s: float | None = None       # after the producer ended, until every record was scored
    saturated: str = ""                # why the ladder stopped here, else ""


@dataclass
class ModeResult:
    mode: str
    steps: list[Step] = field(default_factory=list)
    peak_rss: int = 0
    peak_jvm: int = 0
    peak_root: int = 0
    rss_others: dict = field(default_factory=dict)   # other processes under apply: peak bytes each
    kpi_state: dict = field(default_factory=dict)
    late_rows: int = 0
    log: str = ""

    def as_dict(self) -> dict:
        return {**asdict(self), "steps": [asdict(s) for s in self.steps]}


def percentiles(values_ms: list[float]) -> tuple[float | None, ...]:
    if not values_ms:
        return None, None, None, None
    a = np.asarray(values_ms, dtype=float)
    return (*(float(np.percentile(a, q)) for q in (50, 95, 99)), float(a.max()))


class KafkaProbe:
    """The benchmark's own consumer: end offsets, the alerts of a step, its transactions' timestamps."""

    def __init__(self, bootstrap: str):
        from kafka import KafkaConsumer
        # Small fetches: a timestamp lookup seeks to one offset and wants its batch, not a megabyte.
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                      max_partition_fetch_bytes=256 * 1024, fetch_max_wait_ms=100)

    def close(self) -> None:
        self.consumer.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        from kafka import TopicPartition
        parts = sorted(self.consumer.partitions_for_topic(topic) or [])
        ends = self.consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: off for tp, off in ends.items()}

    def read(self, topic: str, start: dict[int, int], end: dict[int, int], limit_s: float = 120.0) -> list:
        """Every record of topic from start to end (per partition)."""
        from kafka import TopicPartition
        tps = [TopicPartition(topic, p) for p in end if end[p] > start.get(p, 0)]
        if not tps:
            return []
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(tp, start.get(tp.partition, 0))
        out, deadline = [], time.monotonic() + limit_s
        while any(self.consumer.position(tp) < end[tp.partition] for tp in tps) and time.monotonic() < deadline:
            for tp, recs in self.consumer.poll(timeout_ms=500, max_records=5000).items():
                out += [r for r in recs if r.offset < end[tp.partition]]
        return out

    def timestamps(self, topic: str, wanted: dict[int, list[int]], limit_s: float = 600.0) -> dict[tuple[int, int], int]:
        """{(partition, offset): Kafka timestamp ms} for the wanted offsets: one seek per gap."""
        from kafka import TopicPartition
        found: dict[tuple[int, int], int] = {}
        deadline = time.monotonic() + limit_s
        for p, offsets in wanted.items():
            tp = TopicPartition(topic, p)
            self.consumer.assign([tp])
            for off in sorted(set(offsets)):
                if (p, off) in found:
                    continue
                self.consumer.seek(tp, off)
                while (p, off) not in found and time.monotonic() < deadline:
                    for recs in self.consumer.poll(timeout_ms=500, max_records=2000).values():
                        found.update({(p, r.offset): r.timestamp for r in recs})
                    if self.consumer.position(tp) > off and (p, off) not in found:
                        break   # the record is gone (compacted or deleted): leave it out
        return found


class ParquetCommits:
    """When each Parquet file of a sink folder was committed: the mtime of the first
    `_spark_metadata` log file (batch N, or N.compact) that lists it. Rows read once per file."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.rows: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}

    def refresh(self) -> None:
        log = self.folder / "_spark_metadata"
        if not log.is_dir():
            return
        entries = sorted((int(f.name.split(".")[0]), f) for f in log.iterdir() if f.name.split(".")[0].isdigit())
        for _, f in entries:
            committed_ms = f.stat().st_mtime * 1000
            for line in f.read_text().splitlines()[1:]:
                if not line.strip():
                    continue
                entry = json.loads(line)
                name = unquote(Path(entry["path"]).name)   # a percent-encoded file: URI
                if name in self.rows or entry.get("action", "add") != "add":
                    continue
                t = pq.read_table(self.folder / name, columns=["kafka_partition", "kafka_offset"])
                self.rows[name] = (committed_ms, t["kafka_partition"].to_numpy(), t["kafka_offset"].to_numpy())

    def committed(self) -> dict[tuple[int, int], float]:
        """{(source partition, source offset): commit time ms}, the first commit of each."""
        out: dict[tuple[int, int], float] = {}
        for committed_ms, parts, offs in self.rows.values():
            for p, o in zip(parts.tolist(), offs.tolist()):
                key = (p, o)
                out[key] = min(out.get(key, committed_ms), committed_ms)
        return out


def _in_range(p: int, off: int, start: dict[int, int], end: dict[int, int]) -> bool:
    return start.get(p, 0) <= off < end.get(p, 0)


def _wait(condition, limit_s: float, every_s: float = 0.25) -> float | None:
    """Seconds until condition() held, or None if it did not within limit_s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if condition():
            return time.monotonic() - t0
        time.sleep(every_s)
    return None


def _parquet_caught_up(run_dir: Path, alerts_end: dict[int, int]) -> bool:
    progress = read_progress(run_dir, PARQUET_QUERY)
    if not progress:
        return not any(alerts_end.values())
    committed = progress[-1]["sources"][0].get("endOffset") or {}
    if isinstance(committed, str):   # Spark writes a source's offsets as JSON text or as an object
        committed = json.loads(committed)
    done = committed.get(ALERTS_TOPIC, {})
    return all(int(done.get(str(p), 0)) >= off for p, off in alerts_end.items())


class Ladder:
    """One `runner apply` in one mode, and the steps run against it."""

    def __init__(self, ctx, mode: str, *, step_s: float, warmup_s: float, sat_p99_ms: float, say=print,
                 name: str = ""):
        self.ctx, self.mode, self.step_s, self.warmup_s, self.sat_p99_ms, self.say = \
            ctx, mode, step_s, warmup_s, sat_p99_ms, say
        name = name or f"latency_{mode}"    # the run's folder under ctx.work; its topic is bench_<name>
        self.run_dir = ctx.work / name
        self.topic = f"bench_{name}"
        self.project = bench_project(ctx.base, self.run_dir, ctx.bootstrap, self.topic, ctx.model_dir, target=ctx.target)
        self.probe = KafkaProbe(ctx.bootstrap)
        from runner.compile.compiler import compile_project
        from runner.stream.progress import parquet_sinks
        sinks = parquet_sinks(self.project, compile_project(self.project, write=False))
        self.parquet = ParquetCommits(Path(sinks["fraud_alerts"]))
        self.n = 0

    def start(self) -> None:
        from runner.stream.kafka_clients import ensure_topics
        ensure_topics(self.project.target.kafka_options(), self.project.topics)
        self.log = self.run_dir / "apply.log"
        self.scored_base = sum(self.probe.end_offsets(SCORED_TOPIC).values())
        self.source_base = sum(self.probe.end_offsets(self.topic).values())
        status = self.run_dir / "apply.status.json"    # runner/stream/run_status.py: started, error, stopped
        args = ["apply", "--quiet", "--status-file", str(status)] + ([] if self.mode == "realtime" else ["--no-realtime"])
        self.proc = procs.spawn([*procs.runner_cmd(), "--project", str(self.run_dir), *args], self.log)
        self.rss = procs.TreeRss(self.proc.pid).__enter__()

        def started() -> bool:
            state = json.loads(status.read_text()) if status.exists() else {}
            if self.proc.poll() is not None or state.get("state") == "error":
                raise RuntimeError(f"runner apply failed to start: {state.get('error') or 'exit ' + str(self.proc.poll())}; "
                                   f"see {self.log}")
            return state.get("state") == "started"
        if _wait(started, START_LIMIT_S, 0.5) is None:
            raise RuntimeError(f"runner apply did not start its queries within {START_LIMIT_S:.0f}s; see {self.log}")

    def stop(self) -> None:
        procs.stop(self.proc)
        self.rss.__exit__(None, None, None)
        self.probe.close()

    def _processed(self) -> bool:
        """Every record sent since apply started is scored: the route query wrote one scored event
        per valid record (all of the bench's are), counted from the same start. Cumulative, so a
        step that a previous step's backlog overlaps is not taken as done early."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"runner apply exited {self.proc.returncode} during the steps; see {self.log}")
        scored = sum(self.probe.end_offsets(SCORED_TOPIC).values()) - self.scored_base
        return scored >= sum(self.probe.end_offsets(self.topic).values()) - self.source_base

    def _settled(self, topic: str, quiet_s: float = 1.0, limit_s: float = 10.0) -> dict[int, int]:
        """The topic's end offsets once they stopped moving for quiet_s: the alerts of the last
        records are written by the same tasks as their scored events, acknowledged a moment apart."""
        ends, since, t0 = self.probe.end_offsets(topic), time.monotonic(), time.monotonic()
        while time.monotonic() - since < quiet_s and time.monotonic() - t0 < limit_s:
            time.sleep(0.25)
            now = self.probe.end_offsets(topic)
            if now != ends:
                ends, since = now, time.monotonic()
        return ends

    def step(self, rate: int, seconds: float) -> Step:
        self.n += 1
        tag = f"{self.mode}_{self.n:02d}_{rate}"
        src_start, alerts_start = self.probe.end_offsets(self.topic), self.probe.end_offsets(ALERTS_TOPIC)
        payload = write_payload(self.run_dir / f"payload_{tag}.jsonl", min(PAYLOAD_MAX, int(rate * seconds)),
                                seed=1000 + self.n, span_s=seconds, prefix=f"lat-{tag}")
        report = produce_paced(self.ctx.bootstrap, self.topic, payload, rate=rate, seconds=seconds,
                               log=self.run_dir / f"producer_{tag}.log")
        src_end = self.probe.end_offsets(self.topic)
        sent = sum(src_end[p] - src_start.get(p, 0) for p in src_end)
        drain = _wait(self._processed, DRAIN_LIMIT_S)
        alerts_end = self._settled(ALERTS_TOPIC)
        _wait(lambda: _parquet_caught_up(self.run_dir, alerts_end), PARQUET_LIMIT_S)
        payload.unlink()

        alert_ts: dict[tuple[int, int], int] = {}
        for rec in self.probe.read(ALERTS_TOPIC, alerts_start, alerts_end):
            v = json.loads(rec.value)
            key = (int(v["kafka_partition"]), int(v["kafka_offset"]))
            if _in_range(*key, src_start, src_end):
                alert_ts[key] = min(alert_ts.get(key, rec.timestamp), rec.timestamp)   # a repeat: the first
        self.parquet.refresh()
        committed = {k: t for k, t in self.parquet.committed().items() if _in_range(*k, src_start, src_end)}
        wanted: dict[int, list[int]] = {}
        for p, off in set(alert_ts) | set(committed):
            wanted.setdefault(p, []).append(off)
        src_ts = self.probe.timestamps(self.topic, wanted)
        lat = [alert_ts[k] - src_ts[k] for k in alert_ts if k in src_ts]
        fresh = [committed[k] - src_ts[k] for k in committed if k in src_ts]
        s = Step(self.mode, rate, report.rate, sent, len(lat), *percentiles(lat), parquet_alerts=len(fresh),
                 ack_p99=report.ack_p99_ms, drain_s=drain)
        s.fresh_p50, s.fresh_p95, s.fresh_p99, _ = percentiles(fresh)
        if report.rate < SHORT_FRACTION * rate:
            s.saturated = f"the producer achieved {report.rate:,.0f}/s of {rate:,}/s"
        elif drain is None:
            s.saturated = f"not processed {DRAIN_LIMIT_S:.0f}s after the step"
        elif s.p99 is not None and s.p99 > self.sat_p99_ms:
            s.saturated = f"alert p99 {s.p99 / 1000:.1f}s > {self.sat_p99_ms / 1000:.0f}s"
        return s


def run_mode(ctx, mode: str, rates: list[int], *, max_rate: int, step_s: float, warmup_s: float,
             sat_p99_ms: float, say=print) -> ModeResult:
    """Start apply in `mode`, warm it up, then step through `rates` (and on, doubling, up to
    max_rate) until a step saturates."""
    ladder = Ladder(ctx, mode, step_s=step_s, warmup_s=warmup_s, sat_p99_ms=sat_p99_ms, say=say)
    result = ModeResult(mode, log=str(ladder.run_dir / "apply.log"))
    ladder.start()
    try:
        if warmup_s > 0:   # JIT, first-batch planning, connections: not what a steady stream pays
            ladder.step(rates[0], warmup_s)
            say(f"{mode}: warmed up ({warmup_s:.0f}s at {rates[0]:,}/s, not measured)")
        asked = list(rates)
        while asked:
            rate = asked.pop(0)
            s = ladder.step(rate, step_s)
            result.steps.append(s)
            say(f"{mode} {rate:>7,}/s asked, {s.achieved:>9,.0f}/s achieved: {s.alerts} alerts, "
                + (f"p50/p95/p99 {s.p50:.0f}/{s.p95:.0f}/{s.p99:.0f} ms" if s.p99 is not None else "no alerts")
                + (f"; Parquet p99 {s.fresh_p99:.0f} ms" if s.fresh_p99 is not None else "")
                + (f"; SATURATED: {s.saturated}" if s.saturated else ""))
            if s.saturated:
                break
            if not asked and rate * 2 <= max_rate:
                asked.append(rate * 2)
    finally:
        ladder.stop()
    kpi = read_progress(ladder.run_dir, KPI_QUERY)
    result.kpi_state = state_summary(kpi)
    result.late_rows = dropped_late(kpi)
    result.peak_rss, result.peak_jvm, result.peak_root = ladder.rss.peak, ladder.rss.peak_jvm, ladder.rss.peak_root
    result.rss_others = {k: v for k, v in ladder.rss.others.items() if v >= 20 * 2**20}
    return result

