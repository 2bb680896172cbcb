"""Micro-benchmark (not a test): fraud_prob as a native SQL function vs the seed notebook's way.

The seed scores with PipelineModel.transform(...) and a Python UDF that takes probability[1].
fraud_prob is timed for both model kinds: the LR that `runner train` makes by default and a GBT
of the size `runner train --model gbt` makes (50 trees of depth 5). For the GBT it also times
the form used before issue 14 (one expression whose NULL guard is a plain OR chain, so Spark
tries whole-stage codegen, overflows the 64 KB method limit on every execution and falls back).
All run in the same SparkSession on the same cached synthetic rows; each run is forced to
evaluate fully with a noop write (so each run plans and generates code again, as a streaming
micro-batch does); the median of 3 runs is reported, with the JVM's CPU seconds, which the
machine's other load does not inflate as much as wall time. Writes bench/results_udf.md.

    .venv/bin/python bench/bench_udf.py [--rows 1000000] [--master local[2]] [--no-seed]
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


def jvm_cpu_seconds(spark) -> float:
    """User + system CPU seconds of the driver JVM so far (local mode: it runs the tasks too)."""
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(df, runs: int = 3) -> tuple[list[float], list[float]]:
    """Wall seconds and JVM CPU seconds of each run."""
    spark = df.sparkSession
    times, cpu = [], []
    for _ in range(runs):
        c0, start = jvm_cpu_seconds(spark), time.perf_counter()
        df.write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - start)
        cpu.append(jvm_cpu_seconds(spark) - c0)
    return times, cpu


def gbt_body_before_issue_14(model_dir: Path) -> str:
    """fraud_prob's GBT body as it was: the same trees, NULL guard as an OR chain (whole-stage codegen)."""
    from udfs.card import PIPELINE_DIR
    from udfs.gbt_sql import gbt_expression
    from udfs.sqlgen import col

    body, summary = gbt_expression(model_dir / PIPELINE_DIR)
    guard_now = body.split(" THEN ", 1)[0]
    any_null = " OR ".join(f"{col(f)} IS NULL" for f in summary["features"])
    return body.replace(guard_now, f"CASE WHEN {any_null}", 1)


def python_node(df) -> str:
    plan = df._jdf.queryExecution().executedPlan().toString()
    return next((n for n in ("ArrowEvalPython", "BatchEvalPython") if n in plan), "none")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--out", default=str(HERE / "results_udf.md"))
    ap.add_argument("--no-seed", action="store_true", help="skip the seed's Python UDF runs (slow)")
    ap.add_argument("--models", default=None, metavar="DIR",
                    help="reuse fraud_lr/ and fraud_gbt/ that an earlier run trained into DIR (else train both)")
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
    print("training the LR and the GBT model (50 trees, depth 5) on 50,000 synthetic rows ...", flush=True)
    if args.models:
        work = Path(args.models)
    data = load_synthetic(50_000, seed=42)
    model_dir = (work / "fraud_lr") if (work / "fraud_lr").is_dir() else train(spark, data, kind="lr", out_dir=work).model_dir
    gbt_dir = (work / "fraud_gbt") if (work / "fraud_gbt").is_dir() else train(spark, data, kind="gbt", out_dir=work).model_dir
    gbt_card = udfs.card.read_card(gbt_dir)
    udfs.register(spark, model_dir)
    spark.sql(udfs.function_sql(gbt_dir).replace(f"FUNCTION {udfs.FUNCTION}(", "FUNCTION fraud_prob_gbt(", 1))
    spark.sql(udfs.sqlgen.create_function(gbt_body_before_issue_14(gbt_dir), gbt_card["features"], "fraud_prob_gbt_before"))
    pm = PipelineModel.load(str(model_dir / "pipeline"))

    print(f"generating and caching {args.rows:,} rows ...", flush=True)
    rows = spark.createDataFrame(generate(args.rows, seed=1)).repartition(int(spark.sparkContext.defaultParallelism))
    rows = rows.cache()
    assert rows.count() == args.rows

    # The seed notebook's scoring: transform, then a Python UDF pulls probability[1] out of the vector.
    get_p1 = F.udf(lambda v: float(v[1]), DoubleType())
    get_p1_pickled = F.udf(lambda v: float(v[1]), DoubleType(), useArrow=False)
    args_sql = ", ".join(gbt_card["features"])   # both models were fitted on the same columns
    native = "LR: native `fraud_prob` (SQL function)"
    cases = {
        native: rows.select(F.expr(f"fraud_prob({args_sql})").alias("p")),
        f"GBT ({gbt_card['gbt']['num_trees']} trees, depth {gbt_card['gbt']['max_depth']}, "
        f"{gbt_card['gbt']['total_nodes']:,} nodes): native `fraud_prob`, now":
            rows.select(F.expr(f"fraud_prob_gbt({args_sql})").alias("p")),
        "GBT, same trees: the form before issue 14 (whole-stage codegen attempted)":
            rows.select(F.expr(f"fraud_prob_gbt_before({args_sql})").alias("p")),
    }
    if not args.no_seed:
        cases.update({
            "LR, seed: transform + Python UDF (Spark 4 default)": pm.transform(rows).select(get_p1("probability").alias("p")),
            "LR, seed: transform + Python UDF, useArrow=False (as on Spark 3.5)":
                pm.transform(rows).select(get_p1_pickled("probability").alias("p")),
        })
    for df in list(cases.values())[:3]:
        timed(df, runs=1)    # warm-up (JIT) of the native queries
    results = []
    for name, df in cases.items():
        print(f"timing: {name} ...", flush=True)
        times, cpu = timed(df)
        med = statistics.median(times)
        results.append((name, python_node(df), times, med, args.rows / med, statistics.median(cpu)))
        print(f"  median {med:.2f}s = {args.rows / med:,.0f} rows/s, {args.rows / statistics.median(cpu):,.0f} "
              f"rows per JVM CPU-second ({python_node(df)})", flush=True)

    # The GBT function equals the PipelineModel's probability (the promise of udfs/gbt_sql.py).
    from pyspark.ml.functions import vector_to_array
    sample = rows.limit(20_000)
    both = (PipelineModel.load(str(gbt_dir / "pipeline")).transform(sample)
            .select(vector_to_array("probability")[1].alias("ml"), F.expr(f"fraud_prob_gbt({args_sql})").alias("sql"))
            .toPandas())
    gbt_max_diff = float((both["ml"] - both["sql"]).abs().max())
    print(f"GBT: max |fraud_prob - PipelineModel probability| over {len(both):,} rows = {gbt_max_diff:.3g}", flush=True)

    native_rate = results[0][4]
    load = os.getloadavg()
    lines = [
        "# fraud_prob: native SQL function vs the seed notebook's way",
        "",
        f"`bench/bench_udf.py`, {args.rows:,} synthetic rows cached in memory, same SparkSession "
        f"(`{args.master}`), each run forced with a noop write, median of 3 (after one warm-up of the native query).",
        "Models: StandardScaler + LogisticRegression and a GBT (`--model gbt` defaults: 50 trees, depth 5), "
        "both trained by `runner train` on 50,000 synthetic rows.",
        "",
        "| method | Python node in plan | runs (s) | median (s) | rows/s | rows per JVM CPU-s | vs LR native |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, node, times, med, rate, cpu in results:
        ratio = "1x" if rate == native_rate else f"{native_rate / rate:.1f}x slower"
        lines.append(f"| {name} | {node} | {', '.join(f'{t:.2f}' for t in times)} | {med:.2f} | "
                     f"{rate:,.0f} | {args.rows / cpu:,.0f} | {ratio} |")
    lines += [
        "",
        f"GBT check: max |fraud_prob - PipelineModel probability| over {len(both):,} of these rows = {gbt_max_diff:.3g}.",
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
