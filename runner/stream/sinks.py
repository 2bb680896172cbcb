"""writeStream per sink kind: kafka, parquet, console, memory. Declared as data where it can be."""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

LATE = "late"   # a sink's "rows": the input rows the model's watermark left out (config late_rows)


@dataclass(frozen=True)
class SinkSpec:
    model: str
    sink: dict
    query_name: str      # <model>__<sink id>, also the checkpoint folder's name
    location: str        # resolved Parquet path, Kafka topic, memory table, or "console"
    declared: str        # the location as project.yml and the model declare it (moves with the project)


def sink_id(sinks: list[dict], i: int) -> str:
    kind = sinks[i]["kind"]
    same = [j for j, s in enumerate(sinks) if s["kind"] == kind]
    return kind if len(same) == 1 else f"{kind}_{same.index(i) + 1}"


def specs(project, model) -> list[SinkSpec]:
    out = []
    for i, sink in enumerate(model.config.sinks):
        kind = sink["kind"]
        declared = f"{project.target.output_root.rstrip('/')}/{sink['path']}" if kind == "parquet" else None
        location = {
            "parquet": lambda: f"{project.output_root.rstrip('/')}/{sink.get('path', '')}",
            "kafka": lambda: sink.get("topic", ""),
            "memory": lambda: sink.get("name", ""),
            "console": lambda: "console",
        }[kind]()
        out.append(SinkSpec(model.name, sink, f"{model.name}__{sink_id(model.config.sinks, i)}", location,
                            declared or location))
    if model.config.topic:   # config(topic=...): the route query writes the rows there for later queries
        out.append(SinkSpec(model.name, {"kind": "kafka", "topic": model.config.topic}, f"{model.name}__topic",
                            model.config.topic, model.config.topic))
    if model.config.late_rows:   # config(late_rows=...): the input rows its watermark left out (late_rows.py)
        path = model.config.late_rows
        out.append(SinkSpec(model.name, {"kind": "parquet", "path": path, "rows": LATE}, f"{model.name}__late_rows",
                            f"{project.output_root.rstrip('/')}/{path}",
                            f"{project.target.output_root.rstrip('/')}/{path}"))
    return out


def is_late_rows(spec: SinkSpec) -> bool:
    """The output of a model's late rows, not of its own rows: written by runner/stream/late_rows.py,
    never by the query's sinks."""
    return spec.sink.get("rows") == LATE


def kafka_frame(df: DataFrame, sink: dict) -> DataFrame:
    """key = the sink's key column as a string, value = the row as JSON."""
    key = F.col(sink["key"]).cast("string") if sink.get("key") else F.lit(None).cast("string")
    return df.select(key.alias("key"), F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])).alias("value"))


def start(df: DataFrame, spec: SinkSpec, *, checkpoint: str, output_mode: str, trigger: dict,
          kafka_options: dict[str, str], name: str | None = None):
    """Start one streaming query for one sink; `trigger` is writeStream.trigger's keyword arguments."""
    kind = spec.sink["kind"]
    frame = kafka_frame(df, spec.sink) if kind == "kafka" else df
    # A memory sink's table is named by its query; every other query by its plan (or <model>__<sink>).
    name = spec.location if kind == "memory" else (name or spec.query_name)
    writer = (frame.writeStream.queryName(name)
              .option("checkpointLocation", checkpoint)
              .outputMode(output_mode))
    if trigger:  # none given: Spark's default, the next batch as soon as the last one ends
        writer = writer.trigger(**trigger)
    if kind == "kafka":
        writer = writer.format("kafka").options(**kafka_options).option("topic", spec.location)
    elif kind == "parquet":
        writer = writer.format("parquet").option("path", spec.location)
    elif kind == "console":
        writer = writer.format("console").option("truncate", "false").option("numRows", 50)
    elif kind == "memory":
        writer = writer.format("memory")
    elif kind == "noop":   # the warm-up's stand-in for a sink outside its scratch folder
        writer = writer.format("noop")
    return writer.start()
