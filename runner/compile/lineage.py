"""`runner lineage MODEL.COLUMN`: the source columns a model column comes from.

sqlglot's lineage works on one query with a schema, so it runs model by model:
the Kafka source views' columns are the base schema, each model's output columns
(from its qualified SELECT) become the schema of the models that ref it, and a
column whose lineage ends in another model's column is followed into that model.

Through from_json, sqlglot stops at the Kafka `value` column (the struct's fields
are not columns it can see). When a column traced in the model that reads the
source is named like a field of the source's JSON schema (project.yml), it is
reported as that field of the value, e.g. `kafka.transactions.value: V1`.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.lineage import lineage as sqlglot_lineage
from sqlglot.optimizer.qualify import qualify

from runner.compile.dialect import FraudSpark
from runner.compile.manifest import Manifest
from runner.compile.project import Project
from runner.compile.render import source_view
from runner.errors import RunnerError

# Spark's Kafka source columns: what a source view holds.
KAFKA_COLUMNS = {"key": "BINARY", "value": "BINARY", "topic": "STRING", "partition": "INT",
                 "offset": "BIGINT", "timestamp": "TIMESTAMP", "timestampType": "INT"}


@dataclass(frozen=True, order=True)
class SourceColumn:
    source: str          # 'kafka.transactions'
    column: str          # a Kafka column: value, key, partition, ...
    field: str | None    # the JSON field of value it is parsed from, when known

    def __str__(self) -> str:
        return f"{self.source}.{self.column}" + (f": {self.field}" if self.field else "")


class Lineage:
    def __init__(self, project: Project, manifest: Manifest):
        self.project = project
        self.manifest = manifest
        self.views = {source_view(k, n): (k, n) for m in manifest.models for k, n in m.sources}
        self.schema: dict[str, dict[str, str]] = {v: dict(KAFKA_COLUMNS) for v in self.views}
        self.columns: dict[str, dict[str, str]] = {}  # model -> lower name -> name as written
        for m in manifest.models:
            tree = sqlglot.parse_one(m.sql, read=FraudSpark)
            try:
                names = qualify(tree, schema=self.schema, dialect=FraudSpark,
                                validate_qualify_columns=False, identify=False).named_selects
            except sqlglot.errors.SqlglotError:
                names = tree.named_selects
            written = {n.lower(): n for n in sqlglot.parse_one(m.sql, read=FraudSpark).named_selects if n != "*"}
            self.columns[m.name] = {n.lower(): written.get(n.lower(), n) for n in names}
            self.schema[m.name] = {n: "STRING" for n in names}
        self._memo: dict[tuple[str, str], set[SourceColumn]] = {}
        self._nodes: dict[str, dict] = {}

    def _node(self, model: str, column: str):
        # every output column of a model at once: sqlglot shares the work between them
        if model not in self._nodes:
            nodes = sqlglot_lineage(None, self.manifest.model(model).sql, schema=self.schema, dialect=FraudSpark)
            self._nodes[model] = {k.lower(): v for k, v in nodes.items()}
        return self._nodes[model][column.lower()]

    def _field(self, kind: str, name: str, column: str) -> str | None:
        fields = {f.lower(): f for f in self.project.sources[name].schema} if name in self.project.sources else {}
        return fields.get(column.lower())

    def upstream(self, model: str, column: str) -> set[SourceColumn]:
        key = (model, column.lower())
        if key in self._memo:
            return self._memo[key]
        if column.lower() not in self.columns.get(model, {}):
            known = ", ".join(self.columns.get(model, {}).values())
            raise RunnerError(f"model '{model}' has no column '{column}'", hint=f"its columns: {known}")
        self._memo[key] = set()  # guards against self-reference while tracing
        node = self._node(model, column)
        found: set[SourceColumn] = set()
        for leaf in node.walk():
            if leaf.downstream or not isinstance(leaf.source, exp.Table):
                continue
            table, col = leaf.source.name, leaf.name.split(".")[-1]
            if table in self.views:
                kind, name = self.views[table]
                field = self._field(kind, name, column) if col == "value" else None
                found.add(SourceColumn(f"{kind}.{name}", col, field))
            elif table in self.columns:
                found |= self.upstream(table, self.columns[table].get(col, col))
        self._memo[key] = found
        return found


def column_lineage(project: Project, manifest: Manifest, target: str) -> list[SourceColumn]:
    """`MODEL.COLUMN` -> its source columns, sorted."""
    if "." not in target:
        raise RunnerError(f"'{target}' is not MODEL.COLUMN", hint="e.g. runner lineage fraud_alerts.fraud_prob")
    model, column = target.split(".", 1)
    manifest.model(model)  # names the models when it is unknown
    return sorted(Lineage(project, manifest).upstream(model, column),
                  key=lambda s: (s.source, s.column, _natural(s.field)))


def _natural(name: str | None) -> tuple:
    if not name:
        return (0, "")
    digits = "".join(c for c in name if c.isdigit())
    return (1, name.rstrip("0123456789"), int(digits) if digits else -1)
