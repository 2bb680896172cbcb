"""Micro-benchmark (not a test): fraud_prob as a native SQL function vs the seed notebook's way.

The seed scores with PipelineModel.transform(...) and a Python UDF that takes probability[1].
Both run in the same SparkSession on the same cached synthetic rows; each run is forced to
evaluate fully with a noop write; the median of 3 runs is reported. Writes bench/results_udf.md.

    .venv/bin/python bench/bench_udf.py [--rows 1000000] [--master local[2]]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def timed(df, runs: int = 3) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - start)
    return times


def python_node(df) -> str:
    plan = df._jdf.queryExecution().executedPlan().toString()
    return next((n for n in ("ArrowEvalPython", "BatchEvalPython") if n in plan), "none")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--out", default=str(HERE / "results_udf.md"))
    args = ap.parse_args()

    import pyspark
    from pyspark.ml import PipelineModel
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    import udfs
    from runner.stream.session import build_session
    from runner.tools.synth import generate
    from runner.tools.train import load_synthetic, train

    spark = build_session(args.master, app_name="bench-udf", conf={"spark.ui.showConsoleProgress": "false"})
    work = Path(tempfile.mkdtemp(prefix="bench-udf-"))
    print("training the LR model on 50,000 synthetic rows ...", flush=True)
    model_dir = train(spark, load_synthetic(50_000, seed=42), kind="lr", out_dir=work).model_dir
    udfs.register(spark, model_dir)
    pm = PipelineModel.load(str(model_dir / "pipeline"))

    print(f"generating and caching {args.rows:,} rows ...", flush=True)
    rows = spark.createDataFrame(generate(args.rows, seed=1)).repartition(int(spark.sparkContext.defaultParallelism))
    rows = rows.cache()
    assert rows.count() == args.rows

    # The seed notebook's scoring: transform, then a Python UDF pulls probability[1] out of the vector.
    get_p1 = F.udf(lambda v: float(v[1]), DoubleType())
    get_p1_pickled = F.udf(lambda v: float(v[1]), DoubleType(), useArrow=False)
    cases = {
        "native `fraud_prob` (SQL function)": rows.select(F.expr(f"fraud_prob({', '.join(udfs.FEATURES)})").alias("p")),
        "seed: transform + Python UDF (Spark 4 default)": pm.transform(rows).select(get_p1("probability").alias("p")),
        "seed: transform + Python UDF, useArrow=False (as on Spark 3.5)":
            pm.transform(rows).select(get_p1_pickled("probability").alias("p")),
    }
    timed(cases["native `fraud_prob` (SQL function)"], runs=1)    # warm-up (codegen)
    results = []
    for name, df in cases.items():
        print(f"timing: {name} ...", flush=True)
        times = timed(df)
        med = statistics.median(times)
        results.append((name, python_node(df), times, med, args.rows / med))
        print(f"  median {med:.2f}s = {args.rows / med:,.0f} rows/s ({python_node(df)})", flush=True)

    native = results[0][4]
    load = os.getloadavg()
    lines = [
        "# fraud_prob: native SQL function vs the seed notebook's way",
        "",
        f"`bench/bench_udf.py`, {args.rows:,} synthetic rows cached in memory, same SparkSession "
        f"(`{args.master}`), each run forced with a noop write, median of 3 (after one warm-up of the native query).",
        "Model: StandardScaler + LogisticRegression trained by `runner train` on 50,000 synthetic rows.",
        "",
        "| method | Python node in plan | runs (s) | median (s) | rows/s | vs native |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, node, times, med, rate in results:
        lines.append(f"| {name} | {node} | {', '.join(f'{t:.2f}' for t in times)} | {med:.2f} | "
                     f"{rate:,.0f} | {native / rate:.1f}x slower |" if rate != native else
                     f"| {name} | {node} | {', '.join(f'{t:.2f}' for t in times)} | {med:.2f} | {rate:,.0f} | 1x |")
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}, Python {platform.python_version()}, "
        f"pyspark {pyspark.__version__}, Java {spark.sparkContext._jvm.System.getProperty('java.version')}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) — the machine was "
        "shared with other work, so absolute numbers are noisy; the ratio is the point.",
        f"Run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
