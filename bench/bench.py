"""`make bench`: our pipeline against the seed notebook's, on one machine, in one run.

On a local broker it loads a backlog of synthetic transactions (2 partitions), then,
alternating the variants ROUNDS times in one SparkSession:
  seed   the notebook's pipeline (bench/seed_pipeline.py), three availableNow queries;
  ours   `runner apply --available-now` (through runner.apply, all sinks);
  floor  from_json of the same records alone to a no-op sink: the parse limit here.
Then alert latency at a steady rate through `runner apply` (Real-time Mode, then
micro-batch): alert Kafka timestamp minus the transaction's Kafka timestamp.
Peak RSS of the driver (Python + JVM) is sampled throughout. Writes bench/results.md.
"""
from __future__ import annotations

import contextlib

import argparse
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner.stream import apply as runtime  # noqa: E402
from runner.tools import kafka_local, replay  # noqa: E402
from runner.compile.compiler import compile_project  # noqa: E402
from runner.tools.demo import write_demo_project  # noqa: E402
from runner.stream.kafka_clients import ensure_topics  # noqa: E402
from runner.compile.project import load_project  # noqa: E402
from runner.stream.session import build_session  # noqa: E402
from runner.tools.synth import generate  # noqa: E402

WORK = REPO / "bench" / "work"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class PeakRss:
    """Samples the RSS of this process and its children (the driver JVM) twice a second."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):   # a child that exited between list and read
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
                self.peak = max(self.peak, rss)
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def project_on(bootstrap: str, topic: str, run_dir: Path, model_dir: Path):
    base = load_project(REPO)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_demo_project(base, run_dir, bootstrap)
    raw = yaml.safe_load((run_dir / "project.yml").read_text())
    raw["sources"]["kafka"]["transactions"]["topic"] = topic
    raw["topics"] = {topic: {"partitions": 2}, **{t: {"partitions": 1} for t in
                                                  ("fraud_alerts", "fraud_kpis", "transactions_rejected")}}
    raw["model"] = str(model_dir)
    (run_dir / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_project(run_dir)


def load_backlog(spark, bootstrap: str, topic: str, n: int) -> None:
    """The same JSON records `runner replay` sends, written by Spark's batch Kafka writer
    (the Python producer would take minutes for 500k records on 2 busy cores)."""
    from pyspark.sql import functions as F

    rows = generate(n, seed=1)
    rows["txn_id"] = [f"bench-{i:08d}" for i in range(n)]
    df = spark.createDataFrame(rows).withColumn(
        "event_time", F.timestamp_seconds(F.lit(int(START.timestamp())) + F.col("Time")))
    (df.select(F.col("txn_id").alias("key"), F.to_json(F.struct(*df.columns)).alias("value"))
       .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", topic).save())


def run_ours(spark, project, *, available_now=True, timeout_s=None, stop_event=None, realtime=True):
    manifest = compile_project(project, write=False)
    plans = runtime.plan(project, manifest)
    runtime.preflight(project, plans)
    return runtime.run(spark, project, manifest, plans, available_now=available_now, timeout_s=timeout_s,
                       stop_event=stop_event, realtime=realtime)


def run_seed(spark, bootstrap, topic, model_dir, run_dir):
    from bench.seed_pipeline import start
    queries = start(spark, bootstrap=bootstrap, topic=topic, model_path=str(model_dir / "pipeline"),
                    out_dir=str(run_dir / "out"), ckpt_dir=str(run_dir / "ckpt"), alerts_topic="seed_alerts")
    for q in queries:
        q.awaitTermination()
        if q.exception():
            raise RuntimeError(q.exception())


def run_floor(spark, bootstrap, topic, project, run_dir):
    src = project.sources["transactions"]
    stream = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic).option("startingOffsets", "earliest").load()
              .selectExpr(f"from_json(CAST(value AS STRING), '{src.ddl()}') AS r").select("r.*"))
    q = (stream.writeStream.format("noop").option("checkpointLocation", str(run_dir / "ckpt"))
         .trigger(availableNow=True).start())
    q.awaitTermination()


def latency(spark, bootstrap, model_dir, run_dir, *, rate: int, seconds: int, realtime: bool) -> dict:
    """p50/p95/p99 of alert Kafka timestamp - transaction Kafka timestamp at a steady rate."""
    from kafka import KafkaConsumer

    topic = f"lat_{'rt' if realtime else 'mb'}_{int(time.time())}"
    project = project_on(bootstrap, topic, run_dir, model_dir)
    ensure_topics({"bootstrap.servers": bootstrap}, project.topics)
    rows = generate(rate * seconds, seed=99)
    rows["Time"] = rows.index / rate                      # event time keeps pace with the wall clock
    prefix = f"lat{'rt' if realtime else 'mb'}{int(time.time())}"
    stop = threading.Event()
    result = {}
    runner_thread = threading.Thread(target=lambda: result.setdefault(
        "run", run_ours(spark, project, available_now=False, stop_event=stop, realtime=realtime)))
    runner_thread.start()
    time.sleep(25)                                        # queries started and warm before the clock runs
    summary = replay.send({"bootstrap.servers": bootstrap}, topic, rows, id_prefix=prefix, rate=rate,
                          start=datetime.now(timezone.utc))
    time.sleep(10)
    stop.set()
    runner_thread.join(120)

    def stamps(t):
        c = KafkaConsumer(t, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
        out = {m.key.decode(): m.timestamp for m in c if m.key and m.key.decode().startswith(prefix)}
        c.close()
        return out
    sent, alerts = stamps(topic), stamps("fraud_alerts")
    lat = sorted(alerts[k] - sent[k] for k in alerts if k in sent)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"mode": "real-time" if realtime else "micro-batch", "alerts": len(lat), "sent": summary.sent,
            "achieved_rate": round(summary.rate), "p50": q[49], "p95": q[94], "p99": q[98], "max": lat[-1] if lat else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--out", default=str(REPO / "bench" / "results.md"))
    args = ap.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    broker = kafka_local.start(WORK / "kafka", kafka_local.free_port(), heap="1g")
    bootstrap = broker.bootstrap
    times: dict[str, list[float]] = {"seed": [], "ours": [], "floor": []}
    try:
        spark = build_session("local[4]", app_name="bench", conf={"spark.ui.showConsoleProgress": "false"})
        from runner.tools.train import load_synthetic, train
        train(spark, load_synthetic(50_000, seed=7), kind="lr", out_dir=WORK / "models", name="fraud_lr")
        model_dir = WORK / "models" / "fraud_lr"

        topic = "bench_transactions"
        ensure_topics({"bootstrap.servers": bootstrap}, {topic: 2, "seed_alerts": 1})
        t0 = time.monotonic()
        load_backlog(spark, bootstrap, topic, args.rows)
        print(f"backlog: {args.rows} records in {time.monotonic() - t0:.0f}s", flush=True)

        with PeakRss() as rss:
            for r in range(args.rounds):
                for name in ("seed", "ours", "floor"):
                    run_dir = WORK / f"{name}_{r}"
                    t = time.monotonic()
                    if name == "seed":
                        run_seed(spark, bootstrap, topic, model_dir, run_dir)
                    elif name == "ours":
                        res = run_ours(spark, project_on(bootstrap, topic, run_dir, model_dir))
                        assert res.exit_code == 0, res.error
                    else:
                        run_floor(spark, bootstrap, topic, load_project(REPO), run_dir)
                    times[name].append(time.monotonic() - t)
                    print(f"round {r + 1} {name}: {times[name][-1]:.1f}s "
                          f"({args.rows / times[name][-1]:,.0f} rows/s)", flush=True)
            lat = [latency(spark, bootstrap, model_dir, WORK / f"lat_{m}", rate=args.rate, seconds=args.seconds,
                           realtime=m == "rt") for m in ("rt", "mb")]
            for x in lat:
                print(f"latency {x}", flush=True)
            peak = rss.peak
        spark.stop()
    finally:
        kafka_local.stop(WORK / "kafka")

    write_results(Path(args.out), args, times, lat, peak)
    return 0


def write_results(out: Path, args, times, lat, peak) -> None:
    import pyspark
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: args.rows / v for k, v in med.items()}
    fmt = lambda v: f"{v:,.0f}"  # noqa: E731
    lines = [
        "# Benchmark results", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `make bench` (bench/bench.py), one run, one machine:",
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}, pyspark {pyspark.__version__}, Spark local[4], Kafka 4.1.1 (embedded, KRaft).",
        f"Backlog: {args.rows:,} synthetic transactions (JSON, ~800 bytes) on a 2-partition topic; "
        f"each variant drains it with availableNow; {args.rounds} rounds, alternating.", "",
        "| variant | median s | min s | max s | rows/s (median) | vs seed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    labels = {"seed": "seed notebook pipeline (3 queries, Python UDF)",
              "ours": "ours: `runner apply --available-now` (all sinks)",
              "floor": "parse floor: from_json alone to noop"}
    for k in ("seed", "ours", "floor"):
        lines.append(f"| {labels[k]} | {med[k]:.1f} | {min(times[k]):.1f} | {max(times[k]):.1f} | "
                     f"{fmt(rate[k])} | {rate[k] / rate['seed']:.2f}x |")
    lines += ["", f"Ours is **{rate['ours'] / rate['seed']:.2f}x** the seed's throughput and "
                  f"**{100 * rate['ours'] / rate['floor']:.0f}%** of the parse floor.", "",
              f"## Alert latency at {args.rate:,} events/s for {args.seconds} s", "",
              "Alert's Kafka timestamp minus its transaction's Kafka timestamp (both set by the broker's clients "
              "on this machine), over every alert.", "",
              "| mode | alerts | achieved send rate | p50 ms | p95 ms | p99 ms | max ms |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for x in lat:
        lines.append(f"| {x['mode']} | {x['alerts']} | {x['achieved_rate']:,}/s | {x['p50']:.0f} | {x['p95']:.0f} | "
                     f"{x['p99']:.0f} | {x['max']} |")
    lines += ["", f"Peak RSS of the driver (Python + JVM) over the whole run: **{peak / 2**30:.2f} GiB**.", ""]
    out.write_text("\n".join(lines))
    print(out.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
