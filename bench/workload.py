"""What the benchmark feeds the pipelines: its project folders, the backlog and the paced load.

- `bench_project`: a project folder per run (the repository's sql/ and vars, the bench broker,
  its own topic, model, checkpoints, outputs and progress logs), as `runner demo` makes one.
- `load_backlog`: the backlog in event-time order within each partition. One producer process per
  partition (bench/produce_partition.py) sends its partition's records in order, so no record is
  behind the KPIs' watermark. Spark's batch Kafka writer is not used: its tasks interleave records
  inside a partition, and in a 20,000-record check 11,507 then fell behind a 2-minute watermark.
- `produce_paced`: a steady rate from Kafka's own load generator,
  org.apache.kafka.tools.ProducerPerformance (jvm/lib/broker, a JVM of its own, not the driver),
  sending records drawn at random from a payload file of real records (JSON lines as
  `runner replay` writes them) whose event_time is the step's wall-clock time.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BACKLOG_START = datetime(2026, 1, 1, tzinfo=timezone.utc)   # event time of the backlog's first record
BACKLOG_SEED = 1
PAYLOAD_MAX = 20_000   # distinct records in a payload file; ProducerPerformance draws from them at random


def bench_project(base, run_dir: Path, bootstrap: str, topic: str, model_dir: Path, partitions: int = 2,
                  target: dict | None = None):
    """run_dir/project.yml: the project reading `topic` on the bench broker, with `model_dir` as
    its model and everything it writes under run_dir; `target` ({"spark_conf": {...}, "kafka": {...}},
    from --spark-conf/--kafka) merged into its target, to compare settings. Returns the loaded project."""
    from runner.compile.project import load_project
    from runner.tools.demo_runs import write_demo_project

    run_dir.mkdir(parents=True, exist_ok=True)
    write_demo_project(base, run_dir, bootstrap)
    raw = yaml.safe_load((run_dir / "project.yml").read_text())
    raw["sources"]["kafka"]["transactions"]["topic"] = topic
    raw["topics"] = {**{k: v for k, v in raw["topics"].items() if k != "transactions"},
                     topic: {"partitions": partitions}}
    raw["model"] = str(model_dir)
    for section, values in (target or {}).items():
        raw["targets"][raw["default_target"]].setdefault(section, {}).update(values)
    (run_dir / "project.yml").write_text("# Written by bench/bench.py.\n" + yaml.safe_dump(raw, sort_keys=False))
    return load_project(run_dir)


# --------------------------------------------------------------------------- the backlog

def backlog_rows(n: int) -> pd.DataFrame:
    """The backlog's transactions, in event-time order (synth's Time never decreases)."""
    from runner.tools.synth import generate
    return generate(n, seed=BACKLOG_SEED)


def partition_of(n: int, partitions: int) -> np.ndarray:
    """Record i goes to partition i % partitions: each partition gets every partitions-th record,
    so each spans the whole event-time range in order."""
    return np.arange(n) % partitions


def load_backlog(bootstrap: str, topic: str, n: int, partitions: int, log_dir: Path) -> float:
    """Send the n-record backlog, one producer process per partition; returns the seconds taken."""
    t0 = time.monotonic()
    procs = []
    for p in range(partitions):
        log = open(log_dir / f"backlog_p{p}.log", "wb")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "bench.produce_partition", "--bootstrap", bootstrap, "--topic", topic,
             "--records", str(n), "--partitions", str(partitions), "--partition", str(p),
             "--seed", str(BACKLOG_SEED), "--start", BACKLOG_START.isoformat()],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log))
    failed = []
    for p, (proc, log) in enumerate(procs):
        if proc.wait() != 0:
            failed.append(f"partition {p}: exit {proc.returncode}, see {log.name}")
        log.close()
    if failed:
        raise RuntimeError("loading the backlog failed: " + "; ".join(failed))
    return time.monotonic() - t0


def window_counts(rows: pd.DataFrame, start: datetime, window_s: int = 60) -> pd.Series:
    """Transactions per event-time window start (epoch seconds): what the KPIs must count."""
    epoch = start.timestamp() + rows["Time"].to_numpy()
    return pd.Series(np.floor(epoch / window_s) * window_s).value_counts().sort_index()


# --------------------------------------------------------------------------- the paced load

def payload_rows(n: int, *, seed: int, span_s: float) -> pd.DataFrame:
    """The rows of a payload file (write_payload): the same n, seed and span_s give the same rows,
    so a batch reference can score them again without the file."""
    from runner.tools.synth import generate

    rows = generate(n, seed=seed)
    rows["Time"] = np.linspace(0.0, span_s, n, endpoint=False)
    return rows


def write_payload(path: Path, n: int, *, seed: int, span_s: float, prefix: str, start: datetime | None = None) -> Path:
    """n records as `runner replay` encodes them, one per line, event_time spread over the
    span_s seconds of wall-clock time from `start` (default: now), so the KPIs count them, none
    behind the watermark."""
    from runner.tools import replay

    rows = payload_rows(n, seed=seed, span_s=span_s)
    with open(path, "wb") as f:
        for _, value in replay.records(rows, start=start or datetime.now(timezone.utc), id_prefix=prefix):
            f.write(value + b"\n")
    return path


@dataclass
class ProducerReport:
    asked_rate: float
    records: int
    rate: float              # records/s the producer achieved (its own measure)
    ack_p50_ms: float        # the producer's send-to-acknowledgement latency, for context
    ack_p99_ms: float
    seconds: float


# ProducerPerformance's final line:
# "20000 records sent, 1722.9 records/sec (1.44 MB/sec), 2326.67 ms avg latency, 3445.00 ms max latency,
#  2335 ms 50th, 3187 ms 95th, 3338 ms 99th, 3403 ms 99.9th."
_SUMMARY = re.compile(r"(\d+) records sent, ([\d.]+) records/sec .*?, ([\d.]+) ms 50th, ([\d.]+) ms 95th, "
                      r"([\d.]+) ms 99th")


def parse_producer_summary(text: str) -> tuple[int, float, float, float]:
    """(records, records/s, ack p50 ms, ack p99 ms) from ProducerPerformance's output."""
    found = _SUMMARY.findall(text)
    if not found:
        raise ValueError("no summary line in ProducerPerformance's output:\n" + text[-2000:])
    records, rate, p50, _p95, p99 = found[-1]
    return int(records), float(rate), float(p50), float(p99)


def produce_paced(bootstrap: str, topic: str, payload: Path, *, rate: int, seconds: float, log: Path) -> ProducerReport:
    """rate records/s for `seconds` from ProducerPerformance; returns what it reports."""
    from runner.stream.jars import jars
    from runner.tools.kafka_local import _java

    classpath = jars("broker")
    if not any(j.name.startswith("kafka-tools-") for j in classpath):
        raise RuntimeError("org.apache.kafka.tools.ProducerPerformance is not in jvm/lib/broker "
                           "(kafka-tools, jvm/pom.xml's broker profile): run `make setup`")
    records = int(rate * seconds)
    cmd = [_java(), "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
           "-cp", os.pathsep.join(str(j) for j in classpath),
           "org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", str(records),
           "--throughput", str(rate), "--payload-file", str(payload),
           "--producer-props", f"bootstrap.servers={bootstrap}", "acks=1"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         text=True, timeout=seconds * 4 + 120)
    log.write_text(out.stdout)
    if out.returncode != 0:
        raise RuntimeError(f"ProducerPerformance exited {out.returncode}; see {log}")
    sent, achieved, p50, p99 = parse_producer_summary(out.stdout)
    return ProducerReport(rate, sent, achieved, p50, p99, time.monotonic() - t0)
