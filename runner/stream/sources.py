"""Kafka sources as temp views: `source('kafka', name)` reads `src__kafka__<name>`."""
from __future__ import annotations

from pyspark.sql.types import ArrayType, BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

# The columns Spark's Kafka source gives every record.
KAFKA_COLUMNS = StructType([
    StructField("key", BinaryType()),
    StructField("value", BinaryType()),
    StructField("topic", StringType()),
    StructField("partition", IntegerType()),
    StructField("offset", LongType()),
    StructField("timestamp", TimestampType()),
    StructField("timestampType", IntegerType()),
])
# ... and with includeHeaders (the readers of the route query's topics: its source_offset header)
KAFKA_COLUMNS_WITH_HEADERS = StructType([*KAFKA_COLUMNS.fields, StructField("headers", ArrayType(StructType([
    StructField("key", StringType()), StructField("value", BinaryType())])))])


# A micro-batch query's Kafka read task waited ~450 ms of every batch, not computing (22 ms of CPU
# in 580 ms): the consumer's fetch for the partition's end is held by the broker up to
# fetch.max.wait.ms (Kafka's default 500 ms) and the next read waits behind it. At 20 ms the read
# task took 126 ms (README "Benchmarks"). A micro-batch consumer polls only inside its tasks, so
# this costs nothing idle; Real-time Mode's long-running poll keeps Kafka's default. A target's
# own `kafka:` value wins.
MICRO_BATCH_READS = {"kafka.fetch.max.wait.ms": "20"}


def view_name(kind: str, name: str) -> str:
    from runner.compile.manifest import source_view  # the one naming rule, shared with compile
    return source_view(kind, name)


def spark_kafka_options(project) -> dict[str, str]:
    """The target's kafka.* client options, secrets resolved, prefixed for Spark."""
    return {f"kafka.{k}": v for k, v in project.target.kafka_options().items()}


def micro_batch_read_options(kafka_options: dict[str, str]) -> dict[str, str]:
    """A micro-batch reader's Kafka options: MICRO_BATCH_READS under the target's."""
    return {**MICRO_BATCH_READS, **kafka_options}


def source_identity(project) -> dict[str, dict]:
    """What a checkpoint depends on per source (no secrets): its topic."""
    return {f"kafka.{name}": {"topic": s.topic} for name, s in project.sources.items()}


def register_streaming(spark, project, used: set[tuple[str, str]], *, extra_options: dict | None = None,
                       realtime: bool = True) -> None:
    kafka_options = spark_kafka_options(project)
    for kind, name in sorted(used):
        src = project.sources[name]
        reader = (spark.readStream.format("kafka")
                  .options(**(kafka_options if realtime else micro_batch_read_options(kafka_options)))
                  .option("subscribe", src.topic)
                  .options(**src.options)
                  .options(**(extra_options or {})))
        reader.load().createOrReplaceTempView(view_name(kind, name))


def register_empty(spark, project, used: set[tuple[str, str]]) -> None:
    """Typed empty batch frames in place of the sources: Spark analyses the SQL, no data is read."""
    for kind, name in sorted(used):
        spark.createDataFrame([], KAFKA_COLUMNS).createOrReplaceTempView(view_name(kind, name))
