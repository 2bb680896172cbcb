"""Backlog throughput: the seed pipeline, ours and the parse floor drain the same backlog.

Each run is a process of its own, started as its user starts it, on a fresh checkpoint:
  seed   python -m bench.seed_pipeline (the notebook's three queries, Python UDF)
  ours   runner --project RUN apply --available-now (the route query, then the readers)
  floor  python -m bench.floor (stg_parsed's from_json alone to a noop sink)
Wall time runs from the process's start to its exit (JVM start-up and planning included, as a
user waits for them); `queries_s` is the part the streaming queries took. Late rows are the
records the KPIs left out: Spark's count of rows dropped behind the watermark, and for ours
also the rows scored minus the KPI n_txn of the closed windows and the rows of the windows still
open at the end (from the backlog's known event times).
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench import procs
from bench.workload import bench_project

ROUTE_QUERY = "scored_transactions__topics"
KPI_QUERY = "kpi_per_minute__sinks"
RUN_TIMEOUT_S = 1800.0


@dataclass
class BacklogRun:
    variant: str
    round: int
    wall_s: float
    queries_s: float
    rows: int                          # records the variant read
    alerts: int | None = None          # alerts in its Parquet output (distinct source records for ours)
    late_rows: int | None = None       # Spark's count: rows the KPI query dropped behind the watermark
    kpi_counted: int | None = None     # ours: n_txn summed over the closed windows written
    kpi_open: int | None = None        # ours: rows in windows still open at the end (not late)
    late_check: int | None = None      # ours: rows scored - kpi_counted - kpi_open
    peak_rss: int = 0
    peak_jvm: int = 0
    peak_root: int = 0                 # the process started itself (runner's or the script's Python)
    kpi_state: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def read_progress(run_dir: Path, query: str) -> list[dict]:
    f = run_dir / ".runtime" / "progress" / f"{query}.jsonl"
    if not f.exists():
        return []
    out = []
    for line in f.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue   # a line cut by a stop
    return out


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def queries_span(run_dir: Path) -> float:
    """Seconds from the first batch's start to the last batch's end, over every query's progress."""
    spans = []
    for f in (run_dir / ".runtime" / "progress").glob("*.jsonl"):
        for p in read_progress(run_dir, f.stem):
            start = _time(p["timestamp"]).timestamp()
            spans.append((start, start + (p.get("durationMs") or {}).get("triggerExecution", 0) / 1000))
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else float("nan")


def state_summary(progress: list[dict]) -> dict:
    """Per state operator of a query: its largest row count and memory over the run."""
    out: dict[str, dict] = {}
    for p in progress:
        for op in p.get("stateOperators") or []:
            s = out.setdefault(op.get("operatorName", "state"), {"rows": 0, "bytes": 0})
            s["rows"] = max(s["rows"], int(op.get("numRowsTotal") or 0))
            s["bytes"] = max(s["bytes"], int(op.get("memoryUsedBytes") or 0))
    return out


def dropped_late(progress: list[dict]) -> int:
    return sum(int(op.get("numRowsDroppedByWatermark") or 0) for p in progress for op in p.get("stateOperators") or [])


def run_ours(ctx, r: int) -> BacklogRun:
    from runner.compile.compiler import compile_project
    from runner.stream import outputs
    from runner.stream.progress import parquet_sinks

    run_dir = ctx.work / f"ours_{r}"
    project = bench_project(ctx.base, run_dir, ctx.bootstrap, ctx.topic, ctx.model_dir, target=ctx.target)
    code, wall, rss = procs.run_measured(
        [*procs.runner_cmd(), "--project", str(run_dir), "apply", "--available-now", "--quiet"],
        run_dir / "apply.log", RUN_TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"runner apply --available-now exited {code}; see {run_dir / 'apply.log'}")
    route, kpi = read_progress(run_dir, ROUTE_QUERY), read_progress(run_dir, KPI_QUERY)
    rows = sum(int(p.get("numInputRows") or 0) for p in route)
    sinks = parquet_sinks(project, compile_project(project, write=False))
    alerts = outputs.read(sinks["fraud_alerts"], columns=["kafka_partition", "kafka_offset"]).drop_duplicates()
    rejected = len(outputs.read(sinks["rejected_transactions"], columns=["kafka_offset"]))
    kpis = outputs.read(sinks["kpi_per_minute"], columns=["window_start", "window_end", "n_txn"])
    watermark = kpi[-1]["eventTime"].get("watermark") if kpi and kpi[-1].get("eventTime") else None
    # Every window whose end is past the final watermark is still open: its rows wait in state.
    wm = pd.Timestamp(watermark).timestamp() if watermark else float("-inf")
    expected = ctx.window_counts
    open_rows = int(expected[expected.index + ctx.window_s > wm].sum())
    counted = int(kpis["n_txn"].sum()) if len(kpis) else 0
    return BacklogRun("ours", r, wall, queries_span(run_dir), rows, alerts=len(alerts),
                      late_rows=dropped_late(kpi), kpi_counted=counted, kpi_open=open_rows,
                      late_check=rows - rejected - counted - open_rows,
                      peak_rss=rss.peak, peak_jvm=rss.peak_jvm, peak_root=rss.peak_root, kpi_state=state_summary(kpi))


def run_seed(ctx, r: int) -> BacklogRun:
    from runner.stream import outputs

    run_dir = ctx.work / f"seed_{r}"
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "seed.log"
    code, wall, rss = procs.run_measured(
        [sys.executable, "-m", "bench.seed_pipeline", "--bootstrap", ctx.bootstrap, "--topic", ctx.topic,
         "--model", str(ctx.model_dir), "--work", str(run_dir), "--alerts-topic", "seed_alerts"], log, RUN_TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"the seed pipeline exited {code}; see {log}")
    res = procs.bench_result(log)
    return BacklogRun("seed", r, wall, res["drain_s"], res["rows"], alerts=len(outputs.read(run_dir / "out")),
                      late_rows=res["late_rows"], peak_rss=rss.peak, peak_jvm=rss.peak_jvm, peak_root=rss.peak_root,
                      kpi_state={"stateStoreSave": {"rows": res["kpi_state_rows"], "bytes": res["kpi_state_bytes"]}})


def run_floor(ctx, r: int) -> BacklogRun:
    run_dir = ctx.work / f"floor_{r}"
    bench_project(ctx.base, run_dir, ctx.bootstrap, ctx.topic, ctx.model_dir, target=ctx.target)
    log = run_dir / "floor.log"
    code, wall, rss = procs.run_measured([sys.executable, "-m", "bench.floor", "--project", str(run_dir)],
                                         log, RUN_TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"the parse floor exited {code}; see {log}")
    res = procs.bench_result(log)
    return BacklogRun("floor", r, wall, res["drain_s"], res["rows"], peak_rss=rss.peak, peak_jvm=rss.peak_jvm, peak_root=rss.peak_root)


VARIANTS = {"seed": run_seed, "ours": run_ours, "floor": run_floor}


def run_rounds(ctx, rounds: int, say=print) -> list[BacklogRun]:
    """Every variant once per round, alternating, so a slow spell of the machine hits all of them."""
    runs = []
    for r in range(rounds):
        for name, fn in VARIANTS.items():
            run = fn(ctx, r)
            runs.append(run)
            say(f"round {r + 1} {name}: {run.wall_s:.1f}s wall ({run.rows / run.wall_s:,.0f} rows/s), "
                f"queries {run.queries_s:.1f}s, {run.rows:,} rows"
                + (f", late {run.late_rows}" if run.late_rows is not None else "")
                + (f", late by n_txn check {run.late_check}" if run.late_check is not None else "")
                + f", peak RSS {run.peak_rss / 2**30:.2f} GiB")
    return runs
