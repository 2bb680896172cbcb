"""The SQL unit-test files as a person writes them (sql/**/*.tests.yml): what the loader reads from
them, and where it says a mistake is. No Spark: reading cases is plain YAML."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from projectcopy import copy_project, edit

from runner.compile.manifest import input_hash
from runner.compile.project import load_project
from runner.errors import RunnerError
from runner.tools.sqltest import input_name, project_cases, unit_test_files


@pytest.fixture
def project_copy(repo, tmp_path) -> Path:
    return copy_project(repo, tmp_path)


def test_the_cases_live_next_to_their_models_and_say_where_they_start(repo):
    project = load_project(repo)
    cases = project_cases(project)
    assert len(cases) == 8
    for case in cases:
        file, line = case.where.rsplit(":", 1)
        assert Path(file).name == f"{case.model}.tests.yml"                  # sql/<folder>/<model>.tests.yml
        assert (repo / file).parent == (repo / "sql" / Path(file).parts[1])   # beside <model>.sql
        assert (repo / file).with_name(f"{case.model}.sql").is_file()
        assert f"name: {case.name}" in (repo / file).read_text().splitlines()[int(line) - 1]
    assert {c.name for c in project_cases(project, "kpi_per_minute")} == {
        "kpi_windows_with_null_ratios", "kpi_window_var_changes_the_windows"}


@pytest.mark.parametrize("text,name", [
    ("ref('stg_parsed')", "stg_parsed"), ('ref("stg_parsed")', "stg_parsed"), ("stg_parsed", "stg_parsed"),
    ("source('kafka', 'transactions')", "kafka.transactions"), ("kafka.transactions", "kafka.transactions"),
])
def test_an_input_is_named_the_dbt_way_or_the_short_way(text, name):
    assert input_name(text) == name


def test_an_input_that_is_neither_a_ref_nor_a_source_is_refused():
    with pytest.raises(ValueError, match="neither ref"):
        input_name("ref(stg_parsed")


def test_a_kafka_value_written_as_a_mapping_is_sent_as_its_json(repo):
    from runner.tools.sqltest import _text

    case = next(c for c in project_cases(load_project(repo), "stg_parsed") if c.name == "staging_splits_records_by_reason")
    values = {row["offset"]: row["value"] for row in case.given[0]["rows"]}
    t0 = json.loads(_text(values[0]))
    assert t0["txn_id"] == "t0" and t0["V28"] == 0.28 and t0["nested"] == {"a": [1]}   # the shared features merged in
    assert json.loads(_text(values[2]))["V1"] == "0.5"                                 # a later key wins
    assert "V7" not in json.loads(_text(values[13])) and "event_time" not in json.loads(_text(values[11]))
    assert '"V3": NaN' in _text(values[18]) and '"V4": -Infinity' in _text(values[19])
    assert '"Amount": 1e400' in values[20]                                             # text, sent as written
    assert isinstance(values[5], bytes) and values[5].endswith(b'\xff\xfe"}')


def test_a_mistake_in_a_case_names_its_file_and_line(project_copy):
    rel = "sql/kpis/kpi_per_minute.tests.yml"
    edit(project_copy, rel, "    vars: {window: 2 minutes}", "    vars: {window: 2 minutes}\n    expected: {}")
    with pytest.raises(RunnerError, match=rf"^{rel}:27: case #2: unknown key\(s\) expected") as e:
        project_cases(load_project(project_copy))
    assert "Writing a SQL unit test" in str(e.value)


def test_a_case_of_a_model_that_does_not_exist_is_refused(project_copy):
    rel = "sql/alerts/fraud_alerts.tests.yml"
    edit(project_copy, rel, "model: fraud_alerts", "model: fraud_alert")
    with pytest.raises(RunnerError, match=rf"^{rel}:3: case 'alerts_keep_only_alert_rows' tests model 'fraud_alert'"):
        project_cases(load_project(project_copy))
    with pytest.raises(RunnerError, match="--select nothing: no model named 'nothing'"):
        project_cases(load_project(project_copy), "nothing")


def test_unit_tests_are_not_compile_inputs(project_copy):
    """Editing a test leaves the manifest current (compile does not read tests); editing a model does not."""
    project = load_project(project_copy)
    before = input_hash(project)
    assert len(unit_test_files(project)) == 5
    edit(project_copy, "sql/kpis/kpi_per_minute.tests.yml", "n_txn: 3", "n_txn: 4")
    assert input_hash(project) == before
    edit(project_copy, "sql/kpis/kpi_per_minute.sql", "count(*) AS n_txn", "count(1) AS n_txn")
    assert input_hash(project) != before
