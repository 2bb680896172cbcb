"""The route query and the query each sink runs in, from the compiled project. No Spark, no Kafka."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from projectcopy import copy_project, edit

from runner.compile.compiler import compile_project
from runner.compile.dialect import FraudSpark
from runner.compile.project import load_project
from runner.compile.routes import OFFSET_HEADER
from runner.errors import RunnerError
from runner.stream import topology
from runner.stream.sinks import specs


@pytest.fixture
def project_copy(repo, tmp_path) -> Path:
    return copy_project(repo, tmp_path)


def compiled(root: Path):
    return compile_project(load_project(root), write=False)


def test_shipped_project_routes_alerts_rejects_and_kpi_events_from_scored_transactions(project_copy):
    manifest = compiled(project_copy)
    route = topology.route_plan(manifest)
    assert route.hub == "scored_transactions" and route.query == "scored_transactions__topics"
    assert {(r.model, r.topic, r.sink) for r in route.routes} == {
        ("fraud_alerts", "fraud_alerts", "fraud_alerts__kafka"),
        ("rejected_transactions", "transactions_rejected", "rejected_transactions__kafka"),
        ("kpi_events", "scored_events", "kpi_events__topic")}
    alerts = next(r for r in route.routes if r.model == "fraud_alerts")
    assert alerts.where == "is_alert" and alerts.key == "txn_id"
    assert [name for name, _ in alerts.columns] == ["txn_id", "event_time", "Amount", "Class", "fraud_prob",
                                                    "is_alert", "kafka_partition", "kafka_offset"]
    kpi = next(r for r in route.routes if r.model == "kpi_events")
    assert kpi.where == "reject_reason IS NULL" and kpi.key is None
    # One statement over the hub, one generator: Spark reads and parses the source once for all routes.
    tree = sqlglot.parse_one(route.sql, read=FraudSpark)
    assert [t.name for t in tree.find_all(sqlglot.exp.Table)] == ["scored_transactions"]
    assert route.sql.count("explode(") == 1 and route.sql.count(OFFSET_HEADER) == 3


def test_each_sink_runs_in_the_route_query_a_reader_of_its_topic_or_the_stateful_query(project_copy):
    manifest = compiled(project_copy)
    project = load_project(project_copy)
    queries = {spec.query_name: topology.query_of(manifest, m.name, spec)
               for m in manifest.models for spec in specs(project, m)}
    kinds = {name: (q.name, q.kind, q.reads) for name, q in queries.items()}
    route = ("scored_transactions__topics", topology.ROUTE, {})
    assert kinds == {
        "fraud_alerts__kafka": route,
        "rejected_transactions__kafka": route,
        "kpi_events__topic": route,
        "fraud_alerts__parquet": ("fraud_alerts__parquet", topology.MIRROR, {"fraud_alerts": "fraud_alerts"}),
        "rejected_transactions__parquet": ("rejected_transactions__parquet", topology.MIRROR,
                                           {"rejected_transactions": "transactions_rejected"}),
        "kpi_per_minute__console": ("kpi_per_minute__sinks", topology.STATEFUL, {"kpi_events": "scored_events"}),
        "kpi_per_minute__kafka": ("kpi_per_minute__sinks", topology.STATEFUL, {"kpi_events": "scored_events"}),
        "kpi_per_minute__parquet": ("kpi_per_minute__sinks", topology.STATEFUL, {"kpi_events": "scored_events"}),
        # the transactions its watermark left out (config late_rows), kept by the same query
        "kpi_per_minute__late_rows": ("kpi_per_minute__sinks", topology.STATEFUL, {"kpi_events": "scored_events"}),
    }


def test_a_stateful_model_over_a_model_the_route_query_can_not_write_is_refused(project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "WHERE is_alert", "WHERE is_alert GROUP BY txn_id, event_time, "
         "Amount, Class, fraud_prob, is_alert, kafka_partition, kafka_offset")
    # Grouped, fraud_alerts is stateful: it reads scored_transactions from a topic, which the route
    # query can not write (scored_transactions computes, it is not a filter and projection).
    with pytest.raises(RunnerError) as info:
        compiled(project_copy)
    assert info.value.where.startswith("sql/scoring/scored_transactions.sql")
    assert "the stateful model fraud_alerts reads it" in info.value.message


def test_a_routed_model_selecting_star_is_refused(project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql",
         "SELECT txn_id, event_time, Amount, Class, fraud_prob, is_alert, kafka_partition, kafka_offset", "SELECT *")
    with pytest.raises(RunnerError) as info:
        compiled(project_copy)
    assert "selects *" in info.value.message and info.value.where.startswith("sql/alerts/fraud_alerts.sql")


def test_parquet_only_model_needs_a_topic(project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql",
         "sinks=[{'kind': 'kafka', 'topic': 'fraud_alerts', 'key': 'txn_id', 'trigger': 'realtime'},\n            ",
         "sinks=[")
    with pytest.raises(RunnerError) as info:
        compiled(project_copy)
    assert "no topic" in info.value.message and "config" in info.value.hint


def test_a_route_topic_missing_from_project_yml_is_named(project_copy):
    edit(project_copy, "sql/kpis/kpi_events.sql", "topic='scored_events'", "topic='scored_elsewhere'")
    with pytest.raises(RunnerError) as info:
        compiled(project_copy)
    assert "scored_elsewhere" in info.value.message and "project.yml" in info.value.message
    assert info.value.where.startswith("sql/kpis/kpi_events.sql")
