"""The CLI as a user and a CI job see it (issue 17), run as a subprocess on the test broker:
`runner apply` and `runner plan` keep the JVM's and Spark's own lines off the terminal and in
.runtime/logs/<verb>.log; `plan --detailed-exitcode` gives 2, 0, 2, 3 as the checkpoints and the
project change; a failure in Spark's analysis is its one line and the log's path."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from runner.stream import outputs
from runner.tools import replay
from runner.tools.synth import generate

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)

# What a verb that starts Spark printed before: the JVM and spark-submit on stderr before log4j
# starts, Spark's log4j warnings, and pyspark's JSON query-context line on an analysis error.
SPARK_LINES = ("Using incubator modules", "resolves to a loopback address", "Unable to load native-hadoop library",
               "Using Spark's default log4j profile", "Setting default log level", "Truncated the string representation",
               "SQLQueryContextLogger")


def spark_lines(result) -> list[str]:
    return [s for s in SPARK_LINES if s in result.stdout or s in result.stderr]


def test_plan_and_apply_keep_spark_lines_in_the_log_and_exit_codes_follow_the_plan(stream_project):
    sp = stream_project
    logs = sp.root / ".runtime" / "logs"
    replay.send(sp.kafka, sp.topic, generate(300, seed=3), start=START, id_prefix="quiet")

    # (Spark's analysis in `plan` is in the next test: one JVM start fewer for the suite)
    plan = sp.cli("plan", "--no-spark", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 2, plan.stderr            # every query is NEW
    doc = json.loads(plan.stdout)                        # stdout holds the document and nothing else
    assert set(doc["summary"]) == {"NEW"}

    applied = sp.cli("apply", "--available-now", "--quiet")
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert not spark_lines(applied) and not applied.stderr.strip(), applied.stderr[-3000:]
    queries, sinks = len(doc["queries"]), len(doc["sinks"])
    assert queries < sinks
    assert applied.stdout.rstrip().endswith(f"all {queries} queries (writing {sinks} sinks) ended cleanly"), applied.stdout
    assert "Using incubator modules" in (logs / "apply.log").read_text()

    status = json.loads(sp.cli("status", "--format", "json").stdout)
    assert status["format_version"] == 1 and status["verb"] == "status"
    assert sorted(q["name"] for q in status["queries"]) == sorted(q["name"] for q in doc["queries"])
    assert all(q["last_batch"] is not None and q["behind"] == 0 for q in status["queries"])
    audit = json.loads(sp.cli("audit", "--format", "json").stdout)
    assert set(audit) == {"format_version", "verb", "alerts", "alerts_true_fraud", "duplicate_alert_ids", "kpi_windows",
                          "kpi_txn", "kpi_alerts", "kpi_frauds", "kpi_tp", "precision", "recall", "rejected_by_reason",
                          "late_rows", "late_txn"}
    assert audit["alerts"] == len(outputs.read(sp.output("alerts"))) and audit["duplicate_alert_ids"] == 0
    assert audit["kpi_windows"] == len(outputs.read(sp.output("kpis")))

    # Against the checkpoints apply wrote: unchanged 0, a threshold change 2, a KPI window change 3.
    assert sp.cli("plan", "--no-spark", "--detailed-exitcode").returncode == 0
    assert sp.cli("plan", "--no-spark", "--detailed-exitcode", "--var", "threshold=0.5").returncode == 2
    sp.raw["vars"]["window"]["value"] = "2 minutes"
    sp.write()
    refused = sp.cli("plan", "--no-spark", "--detailed-exitcode")
    assert refused.returncode == 3 and "INCOMPATIBLE" in refused.stdout


def test_plan_keeps_spark_lines_in_the_log_and_a_failure_is_one_line_and_the_log_path(stream_project):
    sp = stream_project
    # the alerts compare a DOUBLE with a DATE: sqlglot lets it through, Spark's analysis does not
    sp.edit_sql("alerts/fraud_alerts.sql", "WHERE is_alert", "WHERE is_alert AND Amount > date_add(event_time, 1)")
    r = sp.cli("plan", "--detailed-exitcode")
    assert r.returncode == 1
    assert not spark_lines(r) and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("error: sql/alerts/fraud_alerts.sql") and "DATATYPE_MISMATCH" in lines[0]
    log = sp.root / ".runtime" / "logs" / "plan.log"
    assert lines[-1] == f"  Spark's full log: {log}"
    text = log.read_text()
    assert "Using incubator modules" in text             # the JVM's own stderr
    assert "WARN SparkStringUtils: Truncated the string representation of a plan" in text   # log4j, our layout
    assert "DATATYPE_MISMATCH" in text                   # with the query context pyspark printed on stderr


def test_the_storage_layers_own_jvm_logs_to_the_verbs_file(tmp_path, monkeypatch, capfd):
    """status and audit on an hdfs:// or s3a:// target start a JVM of their own (runner/stream/storage.py)."""
    from runner.stream import spark_log, storage

    monkeypatch.setattr(spark_log, "_settings", None)
    spark_log.configure("status", lambda: tmp_path / ".runtime")
    try:
        gateway, conf = storage._sessionless_hadoop()
        assert gateway.jvm.org.apache.hadoop.fs.FileSystem.get(conf).getUri().toString() == "file:///"
    finally:
        storage._close_sessionless()
    out, err = capfd.readouterr()
    assert not [s for s in SPARK_LINES if s in out + err], out + err
    assert "Using incubator modules" in (tmp_path / ".runtime" / "logs" / "status.log").read_text()
