"""One pass over the source: which models' rows the scoring query writes, and to which topic.

Parsing and scoring bound the rate, so each Kafka record is parsed and scored once, by one query
that reads the source: the *route query*. Every stateless model with a sink, and every model
a stateful model reads, is a *route*: the rows it selects go to a Kafka topic (its Kafka sink's
topic, and the topic its `config(topic=...)` names). Every other query (Parquet sinks, the
KPIs) reads those topics, small records, instead of parsing and scoring the transactions again.
It is the shape Kafka Streams and ksqlDB give a topology: a scoring stage, then topics.

A route model is one `SELECT <columns> FROM <ref> [WHERE <condition>]` over the *hub* (the model
the routes share, here scored_transactions) or a model upstream of it whose columns the hub
passes through. Its rows are then a filter and projection of the hub's rows, so the route query
writes them all with one generator over the hub: per hub row, one struct per route (NULL when
its WHERE fails), exploded and sent to Spark's Kafka sink with a per-row `topic` column.
Real-time Mode admits exactly that (projections, filters, generators).

Each routed record carries a `source_offset` header (partition:offset of the transaction): the
Kafka sink is at-least-once, so the readers de-duplicate on it and a batch replayed after a
crash counts nothing twice.

Compile time only: sqlglot over the rendered SQL, no Spark.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlglot
from sqlglot import exp

from runner.compile.dialect import FraudSpark
from runner.errors import RunnerError

# Written with microseconds, read back with the same pattern: Spark's default keeps milliseconds.
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"
OFFSET_HEADER = "source_offset"
OFFSET_COLUMNS = ("kafka_partition", "kafka_offset")   # the hub's columns a route's header names


@dataclass(frozen=True)
class Route:
    model: str
    topic: str
    sink: str                        # the (model, sink) it serves: <model>__kafka..., <model>__topic
    key: str | None                  # SQL over the hub's columns, or None
    columns: list[tuple[str, str]]   # (output name, SQL over the hub's columns)
    where: str | None                # SQL over the hub's columns, or None (every row)


@dataclass(frozen=True)
class RoutePlan:
    hub: str
    query: str                       # the route query's name and checkpoint folder
    routes: list[Route]
    sql: str                         # SELECT topic, key, value, headers over the hub's view

    def topic_of(self, model: str) -> str | None:
        """The topic the later queries read `model`'s rows from: its config topic, else its first."""
        mine = sorted((r for r in self.routes if r.model == model), key=lambda r: r.sink != f"{model}__topic")
        return mine[0].topic if mine else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "RoutePlan":
        routes = [Route(**{**r, "columns": [tuple(c) for c in r["columns"]]}) for r in raw["routes"]]
        return cls(hub=raw["hub"], query=raw["query"], routes=routes, sql=raw["sql"])


def is_stateful(model) -> bool:
    from runner.compile.fingerprint import stateful_shape
    return stateful_shape(model.sql) is not None


def routed_models(manifest) -> dict:
    """{name: (model, why it is routed)} for the stateless models whose rows leave the route query: those
    with sinks or a topic, and those a stateful model reads."""
    by_name = {m.name: m for m in manifest.models}
    readers: dict[str, list[str]] = {}
    for m in manifest.models:
        if is_stateful(m):
            for r in m.refs:
                if is_stateful(by_name[r]):
                    raise RunnerError(f"model '{m.name}' reads the stateful model '{r}'", where=m.path,
                                      hint="a stateful model reads the stateless models the route query writes")
                readers.setdefault(r, []).append(m.name)
    out = {}
    for m in manifest.models:
        if is_stateful(m):
            continue
        if m.config.sinks or m.config.topic:
            out[m.name] = (m, "it has sinks" if m.config.sinks else "it has a topic")
        elif m.name in readers:
            names = readers[m.name]
            many = len(names) > 1
            out[m.name] = (m, f"the stateful model{'s' if many else ''} {', '.join(names)} read{'' if many else 's'} it")
    return out


def _select(model, routed_because: str) -> tuple[exp.Select, str]:
    tree = sqlglot.parse_one(model.sql, read=FraudSpark)
    why = None
    if not isinstance(tree, exp.Select):
        why = "it is not a single SELECT"
    elif tree.args.get("with"):
        why = "it has a WITH clause"
    elif tree.args.get("joins") or tree.args.get("laterals"):
        why = "it joins"
    elif any(tree.args.get(k) for k in ("group", "having", "distinct", "order", "limit", "qualify")):
        why = "it aggregates, sorts or limits"
    elif len(model.refs) != 1 or model.sources:
        why = "it reads more than one model (or a source)"
    elif any(isinstance(e, exp.Star) or isinstance(getattr(e, "this", None), exp.Star) for e in tree.expressions):
        why = "it selects * (name the columns)"
    if why:
        raise RunnerError(f"model '{model.name}' is written by the route query ({routed_because}), and can not be: "
                          f"{why}", where=model.path,
                          hint="a model with sinks (or that a stateful model reads) is "
                               "SELECT <columns> FROM {{ ref('...') }} [WHERE <condition>]; put other logic upstream")
    return tree, model.refs[0]


def _sql(e: exp.Expression) -> str:
    return e.sql(dialect=FraudSpark, comments=False)


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _hub(manifest, parents: dict[str, str]) -> str:
    from runner.compile.fingerprint import lineage
    candidates = set(parents.values())
    for c in candidates:
        upstream = {m.name for m in lineage(manifest, c)}
        if candidates <= upstream:
            return c
    raise RunnerError("the routed models read models that are not on one line: "
                      + ", ".join(f"{m} reads {p}" for m, p in parents.items()),
                      where=manifest.model(next(iter(parents))).path,
                      hint="route every model with sinks from one model (e.g. scored_transactions) or its upstream")


def plan(manifest) -> RoutePlan | None:
    """The route query of a manifest, or None when no model is routed."""
    models = routed_models(manifest)
    if not models:
        return None
    selects = {name: _select(m, why) for name, (m, why) in models.items()}
    hub = _hub(manifest, {name: parent for name, (_, parent) in selects.items()})
    routes = []
    for m, _ in models.values():
        tree, _ = selects[m.name]
        columns = [(e.alias_or_name, _sql(e.this if isinstance(e, exp.Alias) else e)) for e in tree.expressions]
        where = tree.args.get("where")
        by_name = dict(columns)
        targets = [(f"{m.name}__{sid}", s) for sid, s in _sink_ids(m) if s["kind"] == "kafka"]
        topics = [(name, s["topic"], s.get("key")) for name, s in targets]
        if m.config.topic:
            topics.append((f"{m.name}__topic", m.config.topic, None))
        if not topics:
            raise RunnerError(f"model '{m.name}' has sinks other than Kafka but no topic for the queries that "
                              "write them to read", where=m.path,
                              hint="add topic='<name>' to its config(...) and that topic to project.yml topics")
        for sink, topic, key in topics:
            if key and key not in by_name:
                raise RunnerError(f"the Kafka sink key '{key}' is not a column of '{m.name}'", where=m.path)
            routes.append(Route(m.name, topic, sink, by_name[key] if key else None, columns,
                                _sql(where.this) if where else None))
    return RoutePlan(hub=hub, query=f"{hub}__topics", routes=routes, sql=route_sql(hub, routes))


def _sink_ids(model) -> list[tuple[str, dict]]:
    sinks = model.config.sinks
    out = []
    for i, s in enumerate(sinks):
        same = [j for j, t in enumerate(sinks) if t["kind"] == s["kind"]]
        out.append((s["kind"] if len(same) == 1 else f"{s['kind']}_{same.index(i) + 1}", s))
    return out


def route_sql(hub: str, routes: list[Route]) -> str:
    """SELECT topic, key, value, headers: one row per (hub row, route whose WHERE holds)."""
    offset = f"CAST(concat_ws(':', {', '.join(OFFSET_COLUMNS)}) AS BINARY)"
    structs = []
    for r in routes:
        fields = ", ".join(f"{_string(name)}, {expr}" for name, expr in r.columns)
        key = f"CAST({r.key} AS STRING)" if r.key else "CAST(NULL AS STRING)"
        struct = (f"named_struct('topic', {_string(r.topic)}, 'key', {key},\n"
                  f"      'value', to_json(named_struct({fields}), map('timestampFormat', {_string(TIMESTAMP_FORMAT)})),\n"
                  f"      'headers', array(named_struct('key', {_string(OFFSET_HEADER)}, 'value', {offset})))")
        structs.append(f"    -- {r.model} -> {r.topic}\n    IF({r.where or 'TRUE'}, {struct}, NULL)")
    return ("-- Written by the runner (runner/compile/routes.py) from the models above: every hub row,\n"
            "-- parsed and scored once, becomes one record per model whose WHERE it passes.\n"
            f"SELECT route.topic, route.key, route.value, route.headers\nFROM `{hub}`\n"
            "LATERAL VIEW explode(array(\n" + ",\n".join(structs) + "\n  )) AS route\n"
            "WHERE route IS NOT NULL")
