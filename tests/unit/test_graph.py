"""The model DAG (runner/compile/graph.py): order, cycles, --select. Pure functions over names."""
from __future__ import annotations

import pytest

from runner.compile.graph import find_cycle, select, topological_order
from runner.errors import RunnerError

# The shipped DAG's shape: one parse, one scoring, three readers of it, the KPIs after kpi_events.
DEPS = {
    "stg_parsed": [],
    "scored_transactions": ["stg_parsed"],
    "rejected_transactions": ["stg_parsed"],
    "fraud_alerts": ["scored_transactions"],
    "kpi_events": ["scored_transactions"],
    "kpi_per_minute": ["kpi_events"],
}


def test_order_puts_every_model_after_what_it_reads():
    order = topological_order(DEPS)
    assert sorted(order) == sorted(DEPS)
    for model, refs in DEPS.items():
        assert all(order.index(ref) < order.index(model) for ref in refs), model


def test_order_breaks_ties_by_name_and_is_stable():
    assert topological_order(DEPS) == ["stg_parsed", "rejected_transactions", "scored_transactions",
                                       "fraud_alerts", "kpi_events", "kpi_per_minute"]
    assert topological_order(dict(reversed(DEPS.items()))) == topological_order(DEPS)


def test_refs_outside_the_graph_do_not_block_the_order():
    assert topological_order({"a": ["not_a_model"], "b": ["a"]}) == ["a", "b"]


def test_no_cycle_in_a_dag():
    assert find_cycle(DEPS) is None


def test_cycle_is_found_as_a_closed_path():
    deps = {**DEPS, "stg_parsed": ["kpi_per_minute"]}
    cycle = find_cycle(deps)
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"stg_parsed", "scored_transactions", "kpi_events", "kpi_per_minute"}
    # Each step of the path is a real edge: model -> a model it reads.
    assert all(b in deps[a] for a, b in zip(cycle, cycle[1:]))


def test_self_reference_is_a_cycle():
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_order_refuses_a_cycle_and_names_it():
    with pytest.raises(RunnerError) as info:
        topological_order({"a": ["b"], "b": ["a"]})
    assert "a -> b -> a" in info.value.message


def test_select_takes_the_model_and_its_ancestors_only():
    assert select(DEPS, "kpi_per_minute") == {"kpi_per_minute", "kpi_events", "scored_transactions", "stg_parsed"}
    assert select(DEPS, "stg_parsed") == {"stg_parsed"}


def test_select_none_is_everything():
    assert select(DEPS, None) == set(DEPS)


def test_select_unknown_model_lists_the_models():
    with pytest.raises(RunnerError) as info:
        select(DEPS, "fraud_alert")
    assert "no such model" in info.value.message and "fraud_alerts" in info.value.hint
