"""The YAML SQL tests can fail: each case, with one expected value changed, raises."""
from __future__ import annotations

import copy

import pytest

from runner.compile.project import load_project
from runner.tools.sqltest import CaseFailed, check_case, frame, run_model


def mutated(case):
    """The case with its first number or boolean in the expected rows changed."""
    case = copy.deepcopy(case)
    for row in case.expect:
        for col, value in row.items():
            if isinstance(value, bool):
                row[col] = not value
                return case
            if isinstance(value, (int, float)):
                row[col] = value + 1
                return case
    raise AssertionError(f"{case.name}: no number or boolean to change in its expected rows")


def test_changed_expectation_fails(spark, repo, sql_case):
    with pytest.raises(CaseFailed, match=sql_case.name):
        check_case(spark, load_project(repo), mutated(sql_case))


def test_run_model_names_missing_inputs(spark, repo):
    from runner.errors import RunnerError

    with pytest.raises(RunnerError, match="stg_parsed"):
        run_model(spark, load_project(repo), "scored_transactions", {})


def test_run_model_over_dataframes(spark, repo):
    events = frame(spark, "event_time TIMESTAMP, Class INT, is_alert BOOLEAN",
                   [{"event_time": "2026-01-01 00:00:01", "Class": 1, "is_alert": True}])
    out = run_model(spark, load_project(repo), "kpi_per_minute", {"kpi_events": events}, vars={"window": "5 minutes"})
    row = out.collect()[0]
    assert (row.n_txn, row.tp, row.precision, row.recall) == (1, 1, 1.0, 1.0)
    assert (row.window_end - row.window_start).total_seconds() == 300


def test_a_one_megabyte_value_is_rejected_with_its_head_and_full_length(spark, repo):
    from runner.tools.sqltest import KAFKA_SOURCE_DDL

    project = load_project(repo)
    big = b'{"txn_id": "big", "pad": "' + b"x" * (1 << 20) + b'"'  # truncated JSON, 1 MB
    source = frame(spark, KAFKA_SOURCE_DDL, [{"partition": 0, "offset": 9, "value": big}])
    parsed = run_model(spark, project, "stg_parsed", {"kafka.transactions": source})
    rejected = run_model(spark, project, "rejected_transactions", {"stg_parsed": parsed}).collect()
    assert len(rejected) == 1
    row = rejected[0]
    assert (row.reason, row.kafka_offset, row.raw_length) == ("not_json", 9, len(big))
    assert row.raw_value == big[:4096].decode()
