"""Unit tests for SQL models: run one model as a batch query over given inputs, compare with chispa.

`run_model` renders a model with the same Jinja layer as `compile`, registers the
given DataFrames as temp views under the names its refs and sources render to,
and returns `spark.sql(...)`. `load_cases` / `check_case` read and check the
dbt-style YAML tests in tests/sql/*.yml:

    tests:
      - name: threshold_edge
        model: scored_transactions
        vars: {threshold: 0.5}               # optional --var style overrides
        setup_sql: ["CREATE OR REPLACE TEMPORARY FUNCTION fraud_prob(...) ..."]
        given:
          - input: stg_transactions          # a ref, or kafka.transactions for a source
            schema: "txn_id STRING, V1 DOUBLE"   # DDL; a Kafka source has its fixed schema
            rows: [{txn_id: a, V1: 0.5}]
        expect:
          rows: [{txn_id: a, is_alert: true}]    # only these columns are compared

Rows are YAML mappings; missing columns are NULL. Values are cast to the column
types by Spark (so '2026-01-01 00:00:30' is a timestamp); BINARY columns take a
string (its UTF-8 bytes) or YAML !!binary for raw bytes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.compile.manifest import source_view
from runner.compile.project import Project
from runner.errors import RunnerError

# What Spark's Kafka source gives a source view (the runtime registers the same columns).
KAFKA_SOURCE_DDL = ("key BINARY, value BINARY, topic STRING, partition INT, offset BIGINT, "
                    "timestamp TIMESTAMP, timestampType INT")


def _input_view(name: str) -> str:
    if "." in name:
        kind, src = name.split(".", 1)
        return source_view(kind, src)
    return name


def render_model(project: Project, model: str, vars: dict[str, Any] | None = None):
    """The model as `compile` renders it, with `vars` as --var overrides."""
    from runner.compile import compiler

    return compiler.render_model(project, model, {k: _text(v) for k, v in (vars or {}).items()})


def run_model(spark, project: Project, model: str, inputs: dict[str, Any], vars: dict[str, Any] | None = None):
    """The model's SELECT over `inputs` (ref name or 'kafka.<source>' -> DataFrame), as a batch DataFrame."""
    rendered = render_model(project, model, vars)
    needed = list(rendered.refs) + [f"{k}.{n}" for k, n in rendered.sources]
    missing = [n for n in needed if n not in inputs]
    if missing:
        raise RunnerError(f"model '{model}' reads {', '.join(missing)} but no input was given for it",
                          hint=f"give inputs for: {', '.join(needed)}")
    for name, df in inputs.items():
        df.createOrReplaceTempView(_input_view(name))
    return spark.sql(rendered.sql)


def _text(value: Any) -> Any:
    if value is None or isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def frame(spark, schema, rows: list[dict]):
    """A DataFrame of `rows` with `schema` (DDL string or StructType), values cast by Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BinaryType, StringType, StructField, StructType

    struct = spark.createDataFrame([], schema).schema if isinstance(schema, str) else schema
    names = [f.name for f in struct.fields]
    for row in rows:
        unknown = set(row) - set(names)
        if unknown:
            raise RunnerError(f"row has column(s) {', '.join(sorted(unknown))} not in the schema ({', '.join(names)})")
    text_schema = StructType([StructField(f.name, BinaryType() if isinstance(f.dataType, BinaryType) else StringType())
                              for f in struct.fields])
    data = []
    for row in rows:
        values = []
        for f in struct.fields:
            v = row.get(f.name)
            if isinstance(f.dataType, BinaryType) and isinstance(v, str):
                v = v.encode("utf-8")
            values.append(bytearray(v) if isinstance(v, (bytes, bytearray)) else _text(v))
        data.append(tuple(values))
    df = spark.createDataFrame(data, text_schema)
    return df.select([F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in struct.fields])


@dataclass
class SqlCase:
    name: str
    model: str
    given: list[dict]
    expect: list[dict]
    vars: dict[str, Any] = field(default_factory=dict)
    setup_sql: list[str] = field(default_factory=list)
    file: str = ""


def load_cases(path: str | Path) -> list[SqlCase]:
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) or {}
    cases = []
    for i, t in enumerate(raw.get("tests") or []):
        for key in ("name", "model", "given", "expect"):
            if key not in t:
                raise RunnerError(f"test #{i + 1} has no '{key}'", where=str(path))
        cases.append(SqlCase(name=t["name"], model=t["model"], given=t["given"] or [],
                             expect=(t["expect"] or {}).get("rows") or [], vars=t.get("vars") or {},
                             setup_sql=t.get("setup_sql") or [], file=str(path)))
    return cases


def check_case(spark, project: Project, case: SqlCase) -> None:
    """Run the case's model over its given rows; raise (chispa) when the result differs from expect."""
    import chispa

    for stmt in case.setup_sql:
        spark.sql(stmt)
    inputs = {}
    for g in case.given:
        name = g["input"]
        schema = g.get("schema") or (KAFKA_SOURCE_DDL if "." in name else None)
        if schema is None:
            raise RunnerError(f"{case.name}: input '{name}' needs a schema (DDL)", where=case.file)
        inputs[name] = frame(spark, schema, g.get("rows") or [])
    actual = run_model(spark, project, case.model, inputs, case.vars)
    columns = list(dict.fromkeys(c for row in case.expect for c in row)) or actual.columns
    missing = [c for c in columns if c not in actual.columns]
    if missing:
        raise AssertionError(f"{case.name}: model '{case.model}' has no column(s) {missing}; it has {actual.columns}")
    actual = actual.select(*[f"`{c}`" for c in columns])
    expected = frame(spark, actual.schema, case.expect)
    try:
        chispa.assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    except (chispa.DataFramesNotEqualError, chispa.SchemasNotEqualError) as e:
        # an AssertionError, so pytest reports it as a failed expectation, not an error
        raise AssertionError(f"{case.name} ({case.file}): model '{case.model}' differs from expect\n{e}") from None
