"""The seed notebook's streaming pipeline, reimplemented faithfully as the benchmark's baseline.

Three independent queries over the same topic (alerts to Kafka, alerts to Parquet, KPIs to
the console), each parsing every record with from_json and scoring it with
PipelineModel.transform plus a Python UDF that takes probability[1] (the notebook's
`extract_prob`, including its `except: return 0.0`).

`make bench` runs it as a process of its own, with the notebook's session settings:
    python -m bench.seed_pipeline --bootstrap HOST:PORT --topic T --model MODEL_DIR --work DIR
"""
from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType, TimestampType


def txn_schema() -> StructType:
    fields = [StructField("event_time", TimestampType(), True), StructField("Time", DoubleType(), True)]
    fields += [StructField(f"V{i}", DoubleType(), True) for i in range(1, 29)]
    fields += [StructField("Amount", DoubleType(), True), StructField("Class", IntegerType(), True)]
    return StructType(fields)


def start(spark, *, bootstrap: str, topic: str, model_path: str, out_dir: str, ckpt_dir: str,
          alerts_topic: str, threshold: float = 0.90, available_now: bool = True) -> list:
    raw = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
           .option("subscribe", topic).option("startingOffsets", "earliest").load())
    parsed = (raw.selectExpr("CAST(value AS STRING) AS json_str")
              .select(F.from_json(F.col("json_str"), txn_schema()).alias("r")).select("r.*"))
    loaded_model = PipelineModel.load(model_path)

    def extract_prob(v):
        try:
            return float(v[1])
        except Exception:
            return 0.0

    extract_prob_udf = F.udf(extract_prob, DoubleType())
    scored = loaded_model.transform(parsed).withColumn("fraud_prob", extract_prob_udf(F.col("probability")))
    alerts = (scored.withColumn("is_alert", (F.col("fraud_prob") >= F.lit(threshold)).cast("int"))
              .filter(F.col("is_alert") == 1)
              .select("event_time", "Amount", "Class", "fraud_prob", "is_alert"))
    trigger = {"availableNow": True} if available_now else {}
    q_kafka = (alerts.select(F.to_json(F.struct(*alerts.columns)).alias("value")).writeStream
               .format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", alerts_topic)
               .option("checkpointLocation", f"{ckpt_dir}/alerts_to_kafka").outputMode("append")
               .trigger(**trigger).start())
    q_parquet = (alerts.writeStream.format("parquet").option("path", out_dir)
                 .option("checkpointLocation", f"{ckpt_dir}/alerts_to_parquet").outputMode("append")
                 .trigger(**trigger).start())
    all_alerts = (scored.withColumn("is_alert", (F.col("fraud_prob") >= F.lit(threshold)).cast("int"))
                  .select("event_time", "Class", "is_alert"))
    kpi = (all_alerts.withWatermark("event_time", "2 minutes")
           .groupBy(F.window("event_time", "1 minute"))
           .agg(F.count("*").alias("n_txn"), F.sum("is_alert").alias("n_alert"),
                F.sum(F.when(F.col("Class") == 1, 1).otherwise(0)).alias("n_fraud_true"),
                F.sum(F.when((F.col("is_alert") == 1) & (F.col("Class") == 1), 1).otherwise(0)).alias("tp"),
                F.sum(F.when((F.col("is_alert") == 1) & (F.col("Class") == 0), 1).otherwise(0)).alias("fp"))
           .withColumn("precision", F.when(F.col("n_alert") > 0, F.col("tp") / F.col("n_alert")))
           .withColumn("recall", F.when(F.col("n_fraud_true") > 0, F.col("tp") / F.col("n_fraud_true"))))
    q_kpi = (kpi.writeStream.format("console").option("truncate", "false")
             .option("checkpointLocation", f"{ckpt_dir}/kpi_console").outputMode("update")
             .trigger(**trigger).start())
    return [q_kafka, q_parquet, q_kpi]


def main(argv: list[str] | None = None) -> int:
    """Run the seed's three queries over a topic's backlog in a process of its own (the benchmark
    starts it like the notebook's user would run it), then print one `BENCH_RESULT {json}` line."""
    import argparse
    import json
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pyspark.sql import SparkSession

    from runner.stream.session import check_versions

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--model", required=True, help="the trained model's folder (its pipeline/ is loaded)")
    ap.add_argument("--work", required=True, help="folder for the Parquet alerts and the checkpoints")
    ap.add_argument("--alerts-topic", default="seed_alerts")
    ap.add_argument("--master", default="local[4]", help="the same task slots as the pipeline it is compared with")
    args = ap.parse_args(argv)

    # The notebook's session: its shuffle partitions, Spark's defaults otherwise; the Kafka
    # connector from jvm/lib instead of spark.jars.packages (nothing is downloaded at run time).
    # Its Python UDF runs in workers of this interpreter (the notebook's kernel had one Python).
    import os
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(args.master).appName("seed-notebook")
             .config("spark.sql.shuffle.partitions", "8")
             .config("spark.jars", ",".join(check_versions()))
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("WARN")
    t0 = time.monotonic()
    queries = start(spark, bootstrap=args.bootstrap, topic=args.topic, model_path=str(Path(args.model) / "pipeline"),
                    out_dir=str(Path(args.work) / "out"), ckpt_dir=str(Path(args.work) / "ckpt"),
                    alerts_topic=args.alerts_topic)
    for q in queries:
        q.awaitTermination()
    drain_s = time.monotonic() - t0
    failed = [q for q in queries if q.exception()]
    if failed:
        print(f"error: {failed[0].exception()}", file=sys.stderr)
        return 1
    q_kafka, _, q_kpi = queries
    kpi_ops = [op for p in q_kpi.recentProgress for op in p.stateOperators]
    print("BENCH_RESULT " + json.dumps({
        "drain_s": drain_s,
        "rows": sum(p.numInputRows for p in q_kafka.recentProgress),
        "late_rows": sum(op.numRowsDroppedByWatermark for op in kpi_ops),
        "kpi_state_rows": max((op.numRowsTotal for op in kpi_ops), default=0),
        "kpi_state_bytes": max((op.memoryUsedBytes for op in kpi_ops), default=0)}), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
