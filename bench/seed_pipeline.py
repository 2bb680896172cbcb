"""The seed notebook's streaming pipeline, reimplemented faithfully as the benchmark's baseline.

Three independent queries over the same topic (alerts to Kafka, alerts to Parquet, KPIs to
the console), each parsing every record with from_json and scoring it with
PipelineModel.transform plus a Python UDF that takes probability[1] (the notebook's
`extract_prob`, including its `except: return 0.0`).
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
