"""Each Kafka record is parsed once: the route query holds the one from_json over the transaction
schema, and no other query parses transactions at all. Checked on the executed plans of real
streaming queries in a plain session (no optimizer rules turned off)."""
from __future__ import annotations

from datetime import datetime, timezone

from streamkit import apply_in_process

from runner.stream import topology
from runner.tools import replay
from runner.tools.synth import generate

# How a JsonToStructs over the transaction schema prints in a physical plan.
TRANSACTION_PARSE = "from_json(StructField(txn_id,StringType"
SCORE = "EXP(-"


def _executed_plan(query) -> str:
    return query._jsq.streamingQuery().lastExecution().executedPlan().toString()


def test_only_the_route_query_parses_transactions_and_it_parses_once(spark, stream_project):
    sp = stream_project
    replay.send(sp.kafka, sp.topic, generate(400, seed=11),
                start=datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc), id_prefix="once")
    started = []
    _, result = apply_in_process(spark, sp, on_started=started.extend)
    assert result.exit_code == 0, result.error
    route = topology.route_plan(sp.compile()).query
    plans = {q.name: _executed_plan(q) for q in started}
    assert route in plans and len(plans) == 4, sorted(plans)
    assert plans[route].count(TRANSACTION_PARSE) == 1, plans[route]
    # ... and scores once: fraud_prob is one logistic, 1 / (1 + exp(-z)), inlined into the plan.
    assert plans[route].count(SCORE) == 1, plans[route]
    for name, plan in plans.items():
        if name != route:
            assert plan.count(TRANSACTION_PARSE) == 0, (name, plan)
            assert plan.count(SCORE) == 0, (name, plan)


def test_the_session_turns_no_optimizer_rule_off(spark):
    assert not spark.conf.get("spark.sql.optimizer.excludedRules", "")
    assert spark.conf.get("spark.sql.optimizer.enableJsonExpressionOptimization") == "true"
