"""`make bench`: our pipeline against the seed notebook's and the parse floor, and latency against
load, the way streaming systems are compared. One run, one machine; writes bench/results.md and
bench/latency.png (the raw numbers in bench/work/results.json).

On a broker of its own (2-partition topics):
1. Backlog throughput. The backlog is loaded in event-time order within each partition (one
   producer process per partition). Then, alternating, ROUNDS times, each a process of its own on
   a fresh checkpoint: the seed pipeline (bench/seed_pipeline.py), ours (`runner apply
   --available-now`, the way a user runs it) and the parse floor (bench/floor.py: the same
   from_json to a noop sink). Rows the KPIs left out (late) are reported per variant.
2. Latency against load, for Real-time Mode and micro-batch (`--no-realtime`): `runner apply`
   running, Kafka's ProducerPerformance sending each rate (1k, 2k, 5k, 10k events/s, then doubling)
   until the pipeline saturates. Alert latency p50/p95/p99 and Parquet alert freshness, the rate
   achieved next to the rate asked.
3. Memory: peak RSS of the pipeline's processes (`runner apply` and its Spark driver JVM, sampled
   every 0.5 s), apart from the benchmark's own; the KPI query's state from its progress log.

A full run takes about 20-25 minutes on 2 cores. A short one, for checking the harness:
    make bench BENCH_ARGS="--rows 20000 --rounds 1 --rates 1000,2000 --max-rate 0 --step-s 20"
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import backlog, latency, procs, report, workload  # noqa: E402

WORK = REPO / "bench" / "work"
BACKLOG_TOPIC = "bench_backlog"
PARTITIONS = 2
TRAIN_ROWS, TRAIN_SEED = 50_000, 7


def rate_list(text: str) -> list[int]:
    try:
        rates = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rates takes comma-separated events/s, e.g. 1000,2000; got {text!r}") from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError("--rates needs at least one positive rate")
    return rates


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000, help="backlog records (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="backlog rounds, variants alternating (default: %(default)s)")
    ap.add_argument("--rates", type=rate_list, default=[1000, 2000, 5000, 10000],
                    help="events/s asked, in order (default: 1000,2000,5000,10000)")
    ap.add_argument("--max-rate", type=int, default=160_000,
                    help="after the last rate, keep doubling up to this until saturated; 0: stop there "
                         "(default: %(default)s)")
    ap.add_argument("--step-s", type=float, default=30.0, help="seconds of load per rate (default: %(default)s)")
    ap.add_argument("--warmup-s", type=float, default=10.0,
                    help="seconds of unmeasured load at the first rate before the steps (default: %(default)s)")
    ap.add_argument("--saturation-p99-s", type=float, default=5.0,
                    help="a step whose alert p99 passes this is saturated; the ladder stops (default: %(default)s)")
    ap.add_argument("--modes", default="realtime,microbatch", help="latency modes, in order (default: %(default)s)")
    ap.add_argument("--model", type=Path, default=None,
                    help="a model folder `runner train` wrote, outside bench/work (default: train one)")
    ap.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                    help="a spark_conf entry for the pipeline's target (repeatable), to compare settings")
    ap.add_argument("--kafka", action="append", default=[], metavar="KEY=VALUE",
                    help="a Kafka client option for the pipeline's target (repeatable)")
    ap.add_argument("--skip-backlog", action="store_true", help="only the latency part")
    ap.add_argument("--skip-latency", action="store_true", help="only the backlog part")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results.md")
    ap.add_argument("--png", type=Path, default=REPO / "bench" / "latency.png")
    args = ap.parse_args(argv)
    for kv in args.spark_conf + args.kafka:
        if "=" not in kv:
            ap.error(f"{kv!r}: give KEY=VALUE")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in report.MODES]
    if bad:
        ap.error(f"--modes: unknown {', '.join(bad)}; choose from {', '.join(report.MODES)}")
    args.modes = modes
    if args.model and not (args.model / "model_card.json").is_file():
        ap.error(f"--model {args.model}: no model_card.json there (a folder `runner train` wrote)")
    if args.model and WORK in args.model.resolve().parents:
        ap.error(f"--model {args.model}: bench/work is emptied at the start; copy the model elsewhere")
    return args


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_model(work: Path) -> Path:
    """The model every variant scores with: `runner train` on synthetic rows, in its own process."""
    out = work / "models"
    log = work / "train.log"
    code, wall, _ = procs.run_measured(
        [*procs.runner_cmd(), "--project", str(REPO), "train", "--synthetic", str(TRAIN_ROWS),
         "--seed", str(TRAIN_SEED), "--out", str(out), "--name", "fraud_lr"], log, 900)
    if code != 0:
        raise RuntimeError(f"runner train exited {code}; see {log}")
    say(f"model trained in {wall:.0f}s ({out / 'fraud_lr'})")
    return out / "fraud_lr"


def main(argv: list[str] | None = None) -> int:
    from runner.compile.project import load_project
    from runner.stream.kafka_clients import ensure_topics
    from runner.tools import kafka_local

    args = parse_args(argv)
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    broker = kafka_local.start(WORK / "kafka", kafka_local.free_port(), heap="1g")
    say(f"broker on {broker.bootstrap} (data in {WORK / 'kafka'})")
    res: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                 "argv": " ".join(sys.argv[1:] if argv is None else argv) or "(defaults)",
                 "machine": report.machine(), "out": str(args.out), "png": str(args.png),
                 "backlog": [], "latency": []}
    try:
        target = {section: dict(kv.split("=", 1) for kv in pairs)
                  for section, pairs in (("spark_conf", args.spark_conf), ("kafka", args.kafka)) if pairs}
        ctx = SimpleNamespace(base=load_project(REPO), work=WORK, bootstrap=broker.bootstrap, topic=BACKLOG_TOPIC,
                              model_dir=args.model.resolve() if args.model else train_model(WORK), window_s=60,
                              target=target)
        if not args.skip_backlog:
            ensure_topics({"bootstrap.servers": broker.bootstrap}, {BACKLOG_TOPIC: PARTITIONS, "seed_alerts": 1})
            res["backlog_load_s"] = workload.load_backlog(broker.bootstrap, BACKLOG_TOPIC, args.rows, PARTITIONS, WORK)
            say(f"backlog: {args.rows:,} records in event-time order per partition in {res['backlog_load_s']:.0f}s")
            ctx.window_counts = workload.window_counts(workload.backlog_rows(args.rows), workload.BACKLOG_START)
            res["backlog"] = [r.as_dict() for r in backlog.run_rounds(ctx, args.rounds, say=say)]
        if not args.skip_latency:
            for mode in args.modes:
                m = latency.run_mode(ctx, mode, args.rates, max_rate=args.max_rate, step_s=args.step_s,
                                     warmup_s=args.warmup_s, sat_p99_ms=args.saturation_p99_s * 1000, say=say)
                res["latency"].append(m.as_dict())
    finally:
        kafka_local.stop(WORK / "kafka")
        res["finished"] = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}"
        res["total_s"] = time.monotonic() - started
        (WORK / "results.json").write_text(json.dumps(res, indent=1, default=lambda o: asdict(o)))
    print(report.write(res, args.out, args.png))
    print("\n----- README block (README.md, section Benchmarks; also `python -m bench.report --readme`) -----\n")
    print(report.readme_block(res))
    say(f"done in {res['total_s'] / 60:.1f} min: {args.out}" + (f", {args.png}" if res["latency"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
