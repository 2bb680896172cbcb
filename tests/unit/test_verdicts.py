"""The verdict table of README "How the streams run" -> "Checkpoints", one test per change kind.

Each test edits a copy of the project, compiles both copies in memory and compares every sink's
checkpoint fingerprint before and after, as `runner plan` does against a checkpoint's runner.json.
No Spark, no Kafka.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from projectcopy import copy_project, edit

from runner.compile.compiler import compile_project
from runner.compile.fingerprint import COMPATIBLE, INCOMPATIBLE, NEW, RESUME, query_fingerprint, verdict
from runner.compile.project import load_project
from runner.stream import sources, topology
from runner.stream.sinks import specs

ROUTED = {"fraud_alerts__kafka", "rejected_transactions__kafka", "kpi_events__topic"}
KPIS = {"kpi_per_minute__console", "kpi_per_minute__kafka", "kpi_per_minute__parquet", "kpi_per_minute__late_rows"}


@pytest.fixture
def project_copy(repo, tmp_path) -> Path:
    return copy_project(repo, tmp_path)


def fingerprints(root: Path) -> dict[str, dict]:
    """{sink query name: fingerprint} of every (model, sink), built as `runner plan` builds them."""
    project = load_project(root)
    manifest = compile_project(project, write=False)
    vars_ = manifest.var_values()
    src = sources.source_identity(project)
    out = {}
    for model in manifest.models:
        for spec in specs(project, model):
            query = topology.query_of(manifest, model.name, spec)
            out[spec.query_name] = query_fingerprint(manifest, model.name, spec.sink, sources=src,
                                                     sink_location=spec.declared, vars_=vars_, reads=query.reads)
    return out


@pytest.fixture(scope="module")
def before(repo, tmp_path_factory) -> dict[str, dict]:
    """The shipped project's fingerprints, compiled once for the module (a compile takes ~1 s)."""
    root = tmp_path_factory.mktemp("shipped")
    shutil.copy(repo / "project.yml", root / "project.yml")
    shutil.copytree(repo / "sql", root / "sql")
    return fingerprints(root)


def verdicts(before: dict, root: Path) -> dict[str, tuple[str, str]]:
    """{sink query name: (verdict kind, its reasons joined)} of the edited project against `before`."""
    after = fingerprints(root)
    assert set(after) == set(before), "the edit changed which sinks exist"
    return {name: (v.kind, " | ".join(v.reasons)) for name in after for v in [verdict(before[name], after[name])]}


def kinds(result: dict, names) -> set[str]:
    return {result[n][0] for n in names}


def test_no_checkpoint_is_new(before):
    assert {verdict(None, fp).kind for fp in before.values()} == {NEW}


def test_unchanged_project_resumes(before, project_copy):
    assert kinds(verdicts(before, project_copy), before) == {RESUME}


def test_formatting_and_comments_resume(before, project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "WHERE is_alert", "-- only the alerts\nWHERE\n    is_alert   ")
    edit(project_copy, "sql/kpis/kpi_per_minute.sql", "count(*) AS n_txn,", "-- every row\n    COUNT(*)   AS n_txn,")
    assert kinds(verdicts(before, project_copy), before) == {RESUME}


def test_threshold_is_a_compatible_change(before, project_copy):
    edit(project_copy, "project.yml", "max: 1, value: 0.9}", "max: 1, value: 0.95}")
    result = verdicts(before, project_copy)
    # Every query downstream of scored_transactions sees the new SQL; none refuses it.
    downstream = set(result) - {"rejected_transactions__kafka", "rejected_transactions__parquet"}
    assert kinds(result, downstream) == {COMPATIBLE}
    assert kinds(result, ["rejected_transactions__parquet"]) == {RESUME}
    assert "scored_transactions: SQL changed" in result["fraud_alerts__kafka"][1]
    assert "threshold 0.9 -> 0.95" in result["fraud_alerts__kafka"][1].replace("'", "")


def test_filter_change_is_compatible_and_only_for_that_models_sinks(before, project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "WHERE is_alert", "WHERE is_alert AND Amount > 0")
    result = verdicts(before, project_copy)
    assert kinds(result, ["fraud_alerts__kafka", "fraud_alerts__parquet"]) == {COMPATIBLE}
    assert "fraud_alerts: SQL changed (a filter or projection" in result["fraud_alerts__parquet"][1]
    assert kinds(result, set(result) - {"fraud_alerts__kafka", "fraud_alerts__parquet"}) == {RESUME}


def test_projection_change_is_compatible(before, project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "SELECT txn_id, event_time, Amount,",
         "SELECT txn_id, event_time, round(Amount, 2) AS Amount,")
    result = verdicts(before, project_copy)
    assert kinds(result, ["fraud_alerts__kafka", "fraud_alerts__parquet"]) == {COMPATIBLE}


def test_watermark_delay_is_a_compatible_change(before, project_copy):
    edit(project_copy, "project.yml", "value: 2 minutes}", "value: 5 minutes}")
    result = verdicts(before, project_copy)
    assert kinds(result, KPIS) == {COMPATIBLE}
    assert "watermark delay 2 minutes -> 5 minutes" in result["kpi_per_minute__parquet"][1]
    assert INCOMPATIBLE not in kinds(result, result)


def test_kafka_sink_topic_is_compatible_for_the_route_query_not_for_its_readers(before, project_copy):
    edit(project_copy, "project.yml", "  fraud_alerts:          {partitions: 1}",
         "  fraud_alerts:          {partitions: 1}\n  fraud_alerts_v2:       {partitions: 1}")
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "'topic': 'fraud_alerts'", "'topic': 'fraud_alerts_v2'")
    result = verdicts(before, project_copy)
    assert result["fraud_alerts__kafka"][0] == COMPATIBLE
    assert "kafka sink target fraud_alerts -> fraud_alerts_v2" in result["fraud_alerts__kafka"][1]
    # The Parquet mirror reads the alerts' topic: a changed subscription is refused.
    assert result["fraud_alerts__parquet"][0] == INCOMPATIBLE
    assert "its sources changed" in result["fraud_alerts__parquet"][1]
    assert kinds(result, KPIS | {"rejected_transactions__kafka", "kpi_events__topic"}) == {RESUME}


def test_kpi_window_changes_grouping_keys_incompatible(before, project_copy):
    edit(project_copy, "project.yml", "value: 1 minute}", "value: 5 minutes}")
    result = verdicts(before, project_copy)
    assert kinds(result, KPIS) == {INCOMPATIBLE}
    assert "kpi_per_minute: grouping keys changed" in result["kpi_per_minute__parquet"][1]
    assert kinds(result, set(result) - KPIS) == {RESUME}


def test_kpi_grouping_keys_incompatible(before, project_copy):
    edit(project_copy, "sql/kpis/kpi_per_minute.sql", "GROUP BY window(event_time, {{ var('window').text }})",
         "GROUP BY window(event_time, {{ var('window').text }}), Class")
    result = verdicts(before, project_copy)
    assert kinds(result, KPIS) == {INCOMPATIBLE}
    assert "grouping keys changed" in result["kpi_per_minute__kafka"][1]


def test_kpi_aggregates_incompatible(before, project_copy):
    edit(project_copy, "sql/kpis/kpi_per_minute.sql", "count(*) AS n_txn", "count(Class) AS n_txn")
    result = verdicts(before, project_copy)
    assert kinds(result, KPIS) == {INCOMPATIBLE}
    assert "kpi_per_minute: aggregates changed" in result["kpi_per_minute__console"][1]


def test_source_topic_is_incompatible(before, project_copy):
    edit(project_copy, "project.yml", "      topic: transactions\n", "      topic: transactions_v2\n")
    result = verdicts(before, project_copy)
    # Every query reads the source through its lineage: the route query subscribes to it.
    assert kinds(result, ROUTED) == {INCOMPATIBLE}
    assert "Spark can not restart a query whose subscribed topics changed" in result["fraud_alerts__kafka"][1]


def test_parquet_folder_is_incompatible(before, project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "'path': 'alerts'", "'path': 'alerts_v2'")
    result = verdicts(before, project_copy)
    assert result["fraud_alerts__parquet"][0] == INCOMPATIBLE
    assert "Parquet output directory changed" in result["fraud_alerts__parquet"][1]
    assert kinds(result, set(result) - {"fraud_alerts__parquet"}) == {RESUME}
