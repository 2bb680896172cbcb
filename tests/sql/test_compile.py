"""`runner compile` on the shipped project and on broken copies of it: errors name file:line."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import sqlglot
from projectcopy import copy_project, edit

from runner.compile.compiler import compile_project
from runner.compile.dialect import FraudSpark
from runner.compile.manifest import Manifest
from runner.compile.project import load_project
from runner.errors import RunnerError

MODELS = ["stg_parsed", "rejected_transactions", "scored_transactions",
          "fraud_alerts", "kpi_events", "kpi_per_minute"]


@pytest.fixture
def project_copy(repo, tmp_path) -> Path:
    """The shipped project.yml and sql/ in a fresh folder, to break and compile."""
    return copy_project(repo, tmp_path)


def compile_error(root: Path, **kwargs) -> RunnerError:
    with pytest.raises(RunnerError) as info:
        compile_project(load_project(root), **kwargs)
    return info.value


def test_shipped_project_compiles_to_manifest_with_all_models_and_sinks(project_copy):
    manifest = compile_project(load_project(project_copy))
    names = [m.name for m in manifest.models]
    assert sorted(names) == sorted(MODELS)
    for m in manifest.models:  # topological: every ref comes earlier
        assert all(names.index(r) < names.index(m.name) for r in m.refs)
        assert (project_copy / "target" / "compiled" / f"{m.name}.sql").read_text().strip() == m.sql
        assert not m.sql.rstrip().endswith(";") and "{{" not in m.sql
    on_disk = Manifest.from_json((project_copy / "target" / "manifest.json").read_text())
    assert on_disk == manifest
    sinks = {m.name: [(s["kind"], s.get("topic") or s.get("path")) for s in m.config.sinks] for m in manifest.models}
    assert sinks["fraud_alerts"] == [("kafka", "fraud_alerts"), ("parquet", "alerts")]
    assert sinks["kpi_per_minute"] == [("console", None), ("kafka", "fraud_kpis"), ("parquet", "kpis")]
    assert sinks["rejected_transactions"] == [("kafka", "transactions_rejected"), ("parquet", "rejected")]
    assert [m for m, s in sinks.items() if not s] == ["stg_parsed", "scored_transactions", "kpi_events"]
    assert manifest.model("fraud_alerts").config.trigger == "1 second"
    assert manifest.model("fraud_alerts").config.sinks[0]["key"] == "txn_id"
    assert manifest.model("kpi_events").config.watermark == {"column": "event_time", "delay": "2 minutes"}
    assert manifest.model("kpi_per_minute").config.output_mode == "append"
    assert manifest.model("stg_parsed").sources == [("kafka", "transactions")]
    assert "`src__kafka__transactions`" in manifest.model("stg_parsed").sql
    assert "fraud_prob(V1, V2," in manifest.model("scored_transactions").sql
    assert "V28, Amount) AS fraud_prob" in manifest.model("scored_transactions").sql
    assert ">= 0.9" in manifest.model("scored_transactions").sql


def test_select_compiles_the_model_and_its_ancestors(project_copy):
    manifest = compile_project(load_project(project_copy), select="fraud_alerts")
    assert [m.name for m in manifest.models] == ["stg_parsed", "scored_transactions", "fraud_alerts"]
    assert json.loads((project_copy / "target" / "manifest.json").read_text())["models"][-1]["name"] == "fraud_alerts"
    assert "no such model" in str(compile_error(project_copy, select="nope"))


def line_of(project_copy, rel: str, text: str) -> str:
    """`rel:N` for the first line of the (edited) file holding `text`, so comments may move lines."""
    lines = (project_copy / rel).read_text().splitlines()
    return f"{rel}:{next(i for i, line in enumerate(lines, 1) if text in line)}"


def test_sql_typo_names_file_and_line(project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "WHERE is_alert", "WHERE is_alert AND AND Amount > 0")
    err = compile_error(project_copy)
    assert err.where == line_of(project_copy, "sql/alerts/fraud_alerts.sql", "AND AND")
    assert "does not parse" in err.message


def test_unknown_ref_names_file_and_line(project_copy):
    edit(project_copy, "sql/kpis/kpi_events.sql", "ref('scored_transactions')", "ref('scored_transaction')")
    err = compile_error(project_copy)
    assert err.where == line_of(project_copy, "sql/kpis/kpi_events.sql", "ref('scored_transaction')")
    assert "scored_transaction" in err.message


def test_unknown_source_names_file_and_line(project_copy):
    edit(project_copy, "sql/staging/stg_parsed.sql", "source('kafka', 'transactions')", "source('kafka', 'payments')")
    err = compile_error(project_copy)
    assert err.where.startswith("sql/staging/stg_parsed.sql:") and "payments" in err.message
    line = int(err.where.rsplit(":", 1)[1])
    assert "source(" in (project_copy / "sql/staging/stg_parsed.sql").read_text().splitlines()[line - 1]


def test_missing_var_names_file_and_line(project_copy):
    edit(project_copy, "sql/scoring/scored_transactions.sql", "var('threshold')", "var('treshold')")
    err = compile_error(project_copy)
    assert err.where == line_of(project_copy, "sql/scoring/scored_transactions.sql", "var('treshold')")
    assert "treshold" in err.message


def test_undefined_jinja_name_names_file_and_line(project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "WHERE is_alert", "WHERE is_alert AND {{ min_amount }} > 0")
    err = compile_error(project_copy)
    assert err.where == line_of(project_copy, "sql/alerts/fraud_alerts.sql", "min_amount")
    assert "min_amount" in err.message


def test_cycle_is_named(project_copy):
    edit(project_copy, "sql/scoring/scored_transactions.sql", "FROM {{ ref('stg_parsed') }}",
         "FROM {{ ref('stg_parsed') }}\n  WHERE txn_id NOT IN (SELECT txn_id FROM {{ ref('fraud_alerts') }})")
    err = compile_error(project_copy)
    assert "fraud_alerts -> scored_transactions -> fraud_alerts" in err.message
    assert err.where == line_of(project_copy, "sql/alerts/fraud_alerts.sql", "ref('scored_transactions')")


def test_unknown_sink_kind_and_key_name_file_and_line(project_copy):
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "'kind': 'parquet'", "'kind': 'delta'")
    err = compile_error(project_copy)
    assert err.where == "sql/alerts/fraud_alerts.sql:1" and "unknown sink kind 'delta'" in err.message
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "'kind': 'delta'", "'kind': 'parquet', 'topic': 'x'")
    assert "unknown key(s) topic" in compile_error(project_copy).message


def test_injection_through_vars_is_refused(project_copy):
    project = load_project(project_copy)
    for name, value in [("threshold", "0.9; DROP TABLE x"), ("threshold", "0.9 OR TRUE"), ("threshold", "nan"),
                        ("window", "1 minute'); DROP TABLE x; --"), ("raw_value_max_bytes", "10 UNION SELECT 1")]:
        with pytest.raises(RunnerError) as info:
            compile_project(project, var_overrides={name: value}, write=False)
        assert info.value.where == "--var on the command line" and name in info.value.message


def test_cli_compile_exits_non_zero_with_file_line(project_copy, runner_cmd):
    ok = subprocess.run([*runner_cmd, "--project", str(project_copy), "compile"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "fraud_alerts" in ok.stdout and (project_copy / "target" / "manifest.json").exists()
    bad = subprocess.run([*runner_cmd, "--project", str(project_copy), "compile",
                          "--var", "threshold=0.9; DROP TABLE x"], capture_output=True, text=True)
    assert bad.returncode == 1 and "threshold" in bad.stderr and "DROP" in bad.stderr
    edit(project_copy, "sql/kpis/kpi_events.sql", "ref('scored_transactions')", "ref('nope')")
    bad = subprocess.run([*runner_cmd, "--project", str(project_copy), "compile"], capture_output=True, text=True)
    assert bad.returncode == 1 and line_of(project_copy, "sql/kpis/kpi_events.sql", "ref('nope')") in bad.stderr


def test_failed_compile_leaves_previous_target_untouched(project_copy):
    compile_project(load_project(project_copy))
    target = project_copy / "target"
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    edit(project_copy, "sql/alerts/fraud_alerts.sql", "WHERE is_alert", "WHERE is_alert AND AND 1")
    compile_error(project_copy)
    after = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert after == before


def test_fingerprint_ignores_formatting_but_not_threshold(project_copy):
    project = load_project(project_copy)
    before = compile_project(project, write=False)
    path = project_copy / "sql/alerts/fraud_alerts.sql"
    body = path.read_text().split("\n\n", 1)
    path.write_text(body[0] + "\n\n-- reformatted by hand\nselect   txn_id,\n   event_time, Amount, Class, fraud_prob,"
                    " is_alert, kafka_partition, kafka_offset\n\n"
                    "  from {{ ref('scored_transactions') }}  where is_alert\n")
    after = compile_project(project, write=False)
    assert after.model("fraud_alerts").sql != before.model("fraud_alerts").sql
    assert after.model("fraud_alerts").fingerprint == before.model("fraud_alerts").fingerprint
    changed = compile_project(project, var_overrides={"threshold": "0.8"}, write=False)
    assert changed.model("scored_transactions").fingerprint != before.model("scored_transactions").fingerprint
    assert changed.model("stg_parsed").fingerprint == before.model("stg_parsed").fingerprint


def from_json_schema(manifest) -> str:
    """The DDL string stg_parsed hands to from_json."""
    tree = sqlglot.parse_one(manifest.model("stg_parsed").sql, read=FraudSpark)
    calls = [c for c in tree.find_all(sqlglot.exp.FromJson) if isinstance(c.this, sqlglot.exp.Cast)]
    assert len(calls) == 1, [c.sql(FraudSpark) for c in calls]
    return calls[0].expression.name


def add_schema_field(project_copy, field: str, type_: str) -> None:
    edit(project_copy, "project.yml", "        Class: INT\n", f"        Class: INT\n        {field}: {type_}\n")


def test_from_json_schema_is_project_yml_source_schema(project_copy):
    schema = load_project(project_copy).sources["transactions"].schema
    ddl = from_json_schema(compile_project(load_project(project_copy), write=False))
    fields = [f.strip().split(" ", 1) for f in ddl.split(",")]
    # every field of project.yml in its order and type, event_time read as text, _corrupt_record last
    assert fields == ([[k, "STRING" if k == "event_time" else v] for k, v in schema.items()]
                      + [["_corrupt_record", "STRING"]])

    add_schema_field(project_copy, "merchant_id", "STRING")
    after = from_json_schema(compile_project(load_project(project_copy), write=False))
    assert after == ddl.replace(", _corrupt_record STRING", ", merchant_id STRING, _corrupt_record STRING")


def test_model_card_features_that_the_schema_lacks_stop_compile(project_copy):
    project = load_project(project_copy)
    features = compile_project(project, write=False).features["names"]   # no model yet: the schema's
    card_dir = project.model_path
    card_dir.mkdir(parents=True)
    n = len(features)
    (card_dir / "model_card.json").write_text(json.dumps({
        "kind": "lr", "features": features,
        "lr": {"scaler_mean": [0.0] * n, "scaler_std": [1.0] * n, "coefficients": [0.1] * n, "intercept": -1.0}}))
    manifest = compile_project(load_project(project_copy), write=False)
    assert manifest.features == {"names": features, "origin": str(card_dir / "model_card.json")}
    edit(project_copy, "project.yml", f"        {features[3]}: DOUBLE\n", "")
    err = compile_error(project_copy)
    assert f"needs columns missing from the source schema: {features[3]}" in err.message   # udfs/card.py's words
    assert err.where == f"{project_copy / 'project.yml'} (model: {card_dir})"
    assert "project.yml" in err.hint


def test_dialect_parses_group_by_window(repo):
    for sql in ["SELECT window.start, count(*) FROM t GROUP BY window(event_time, INTERVAL '1 minute')",
                "SELECT window.start, count(*) FROM t GROUP BY window(event_time, '1 minute'), k",
                "SELECT window.start FROM t GROUP BY k, window(event_time, '10 minutes', '5 minutes')"]:
        tree = sqlglot.parse_one(sql, read=FraudSpark)
        group = tree.args["group"].expressions
        assert any(g.sql(FraudSpark).lower().startswith("window(") for g in group), sql
        with pytest.raises(sqlglot.errors.ParseError):  # what the stock dialect does (NOTES.md)
            sqlglot.parse_one(sql.replace(", k", "").replace("k, ", ""), read="spark")
    # a named WINDOW clause after GROUP BY still parses as one
    tree = sqlglot.parse_one("SELECT sum(a) OVER w FROM t GROUP BY a WINDOW w AS (PARTITION BY a)", read=FraudSpark)
    assert tree.args["group"].expressions[0].sql() == "a" and tree.args["windows"]


def test_lineage_of_fraud_prob_is_the_features_of_the_value(repo, runner_cmd):
    from runner.compile.lineage import column_lineage

    project = load_project(repo)
    manifest = compile_project(project, write=False)
    got = [str(c) for c in column_lineage(project, manifest, "fraud_alerts.fraud_prob")]
    features = manifest.features["names"]   # the model card's, or the schema's DOUBLE fields but Time
    assert len(features) > 1 and "Time" not in features
    want = sorted(f"kafka.transactions.value: {f}" for f in features)
    assert sorted(got) == want and got[0] == "kafka.transactions.value: Amount"   # fields in natural order
    offset = column_lineage(project, manifest, "fraud_alerts.kafka_offset")
    assert [str(c) for c in offset] == ["kafka.transactions.offset"]
    with pytest.raises(RunnerError):
        column_lineage(project, manifest, "fraud_alerts.no_such_column")
    out = subprocess.run([*runner_cmd, "--project", str(repo), "lineage", "fraud_alerts.fraud_prob"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert all(f"value: {f}\n" in out.stdout for f in features)
