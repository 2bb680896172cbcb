"""Which streaming query each (model, sink) runs in, and what that query reads. Pure: no Spark.

- The route query (runner/compile/routes.py) reads the Kafka source, parses and scores each
  record once, and writes every routed model's rows to its topic: the Kafka sinks of stateless
  models and the topics models declare with config(topic=...).
- A routed model's other sinks (Parquet, console, memory) each run in a query of their own that
  reads the model's topic, de-duplicated on the transaction's source offset, into Spark's own sink
  (the Parquet file sink is exactly-once).
- A stateful model (the KPIs) runs in one query that reads its upstream models' topics, applies
  their watermark, de-duplicates, aggregates, and writes all of its sinks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from runner.compile.routes import RoutePlan, is_stateful
from runner.errors import RunnerError

ROUTE, MIRROR, STATEFUL = "route", "mirror", "stateful"


@dataclass(frozen=True)
class QuerySpec:
    name: str                      # the query's name and its checkpoint folder's
    kind: str                      # ROUTE, MIRROR or STATEFUL
    model: str                     # MIRROR: the routed model; STATEFUL: the stateful model; ROUTE: the hub
    reads: dict[str, str] = field(default_factory=dict)   # {routed model: topic} (ROUTE: the source)


def route_plan(manifest) -> RoutePlan | None:
    return RoutePlan.from_dict(manifest.routes) if manifest.routes else None


def query_of(manifest, model_name: str, spec) -> QuerySpec:
    """The query a (model, sink) runs in."""
    routes = route_plan(manifest)
    model = manifest.model(model_name)
    if routes and any(r.sink == spec.query_name for r in routes.routes):
        return QuerySpec(routes.query, ROUTE, routes.hub)
    if is_stateful(model):
        reads = {ref: _topic(routes, ref, model) for ref in model.refs}
        return QuerySpec(f"{model.name}__sinks", STATEFUL, model.name, reads)
    return QuerySpec(spec.query_name, MIRROR, model.name, {model.name: _topic(routes, model.name, model)})


def _topic(routes: RoutePlan | None, name: str, reader) -> str:
    topic = routes.topic_of(name) if routes else None
    if topic is None:
        raise RunnerError(f"model '{reader.name}' needs the rows of '{name}', which no topic carries",
                          where=reader.path, hint=f"give '{name}' a Kafka sink or config(topic=...)")
    return topic
