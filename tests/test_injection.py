"""Everything from project.yml and --var that reaches Spark is typed or validated; configuration and
project errors stop `runner apply` before any stream (or Spark) starts, with a clear message.

No Spark here: the CLI refuses before it starts a session (each run takes a second or two).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from runner.errors import RunnerError

REPO = Path(__file__).resolve().parents[1]
# The features a model trained on the shipped schema takes: its DOUBLE fields but Time, in order
# (what runner/compile/features.py reads when there is no model card).
FEATURES = [f for f, t in yaml.safe_load((REPO / "project.yml").read_text())["sources"]["kafka"]["transactions"]
            ["schema"].items() if t == "DOUBLE" and f != "Time"]


@pytest.fixture
def proj(tmp_path):
    """A copy of the project with a fake (card-only) LR model, on a port where no broker listens."""
    from runner.tools.kafka_local import free_port

    root = tmp_path / "p"
    shutil.copytree(REPO / "sql", root / "sql")
    model = root / "models" / "fake_lr"
    model.mkdir(parents=True)
    (model / "model_card.json").write_text(json.dumps({
        "kind": "lr", "features": FEATURES,
        "lr": {"scaler_mean": [0.0] * len(FEATURES), "scaler_std": [1.0] * len(FEATURES),
               "coefficients": [0.1] * len(FEATURES), "intercept": -3.0}}))
    raw = yaml.safe_load((REPO / "project.yml").read_text())
    raw["model"] = "models/fake_lr"
    raw["vars"]["label"] = {"type": "string", "value": "x"}
    raw["targets"]["local"]["kafka"]["bootstrap.servers"] = f"127.0.0.1:{free_port()}"
    raw["targets"]["local"]["kafka_wait_s"] = 2
    return root, raw


def write(root: Path, raw: dict) -> None:
    (root / "project.yml").write_text(yaml.safe_dump(raw, sort_keys=False))


def apply_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("runner")
    return subprocess.run([str(exe), "--project", str(root), "apply", "--available-now", "--quiet", *args],
                          capture_output=True, text=True, timeout=120)


def refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    # a run after an earlier one that compiled first says why it compiles again: not the error
    stderr = "\n".join(line for line in result.stderr.splitlines() if not line.endswith(": recompiling"))
    err = " ".join(stderr.split())
    assert err.startswith("error:"), err
    for n in needles:
        assert n in err, (n, err)
    assert "started " not in result.stdout and "Traceback" not in result.stderr
    return err


# --------------------------------------------------------------------------- injections

@pytest.mark.parametrize("var", [
    "threshold=0.9; DROP TABLE x",
    "threshold=0.9 OR TRUE",
    "window=1 minute'; DROP TABLE x; --",
    "watermark=2 minutes) --",
    "raw_value_max_bytes=10 UNION SELECT 1",
])
def test_var_injection_is_refused_by_apply(proj, var):
    root, raw = proj
    write(root, raw)
    name = var.split("=")[0]
    refused(apply_cli(root, "--var", var), "command line", f"var '{name}'")


def test_string_var_with_quotes_is_one_escaped_literal(proj):
    import sqlglot

    from runner.compile.project import load_project
    from runner.compile.render import resolve_vars

    root, raw = proj
    write(root, raw)
    evil = "it's'; DROP TABLE x; --\\"
    lit = resolve_vars(load_project(root), {"label": evil})["label"]
    parsed = sqlglot.parse_one(f"SELECT {lit} AS v", read="spark")
    assert len(parsed.expressions) == 1 and parsed.expressions[0].this.is_string   # one literal, nothing after it


@pytest.mark.parametrize("where, value", [
    ("source topic", "transactions; DROP TABLE x"),
    ("source topic", "my topic"),
    ("source topic", "it's"),
    ("topics key", "fraud'alerts"),
    ("schema field", "V1` DOUBLE, `x"),
    ("schema type", "DOUBLE, evil STRING"),
    ("output_root", "out'; --"),
    ("checkpoint_root", 'ck"pt'),
    ("model", "models/x'y"),
])
def test_project_yml_values_are_refused(proj, where, value):
    from runner.compile.project import load_project

    root, raw = proj
    if where == "source topic":
        raw["sources"]["kafka"]["transactions"]["topic"] = value
    elif where == "topics key":
        raw["topics"][value] = {"partitions": 1}
    elif where == "schema field":
        raw["sources"]["kafka"]["transactions"]["schema"][value] = "DOUBLE"
    elif where == "schema type":
        raw["sources"]["kafka"]["transactions"]["schema"]["V1"] = value
    elif where == "model":
        raw["model"] = value
    else:
        raw["targets"]["local"][where] = value
    write(root, raw)
    with pytest.raises(RunnerError) as e:
        load_project(root)
    assert repr(value)[1:-1] in str(e.value) or value in str(e.value)


@pytest.mark.parametrize("path", ["../..", "../elsewhere", "alerts'; DROP", 'al"erts', "al erts", "/abs/alerts"])
def test_sink_paths_outside_the_output_root_or_with_quotes_are_refused(proj, path):
    root, raw = proj
    write(root, raw)
    f = root / "sql" / "alerts" / "fraud_alerts.sql"
    f.write_text(f.read_text().replace("'path': 'alerts'", "'path': " + json.dumps(path)))
    refused(apply_cli(root), "sql/alerts/fraud_alerts.sql", "parquet sink path")


# --------------------------------------------------------------------------- configuration errors

def test_unknown_sink_kind_names_the_file(proj):
    root, raw = proj
    write(root, raw)
    f = root / "sql" / "alerts" / "fraud_alerts.sql"
    f.write_text(f.read_text().replace("{'kind': 'parquet'", "{'kind': 'parket'"))
    refused(apply_cli(root), "sql/alerts/fraud_alerts.sql", "unknown sink kind 'parket'")


def test_missing_model_folder(proj):
    root, raw = proj
    raw["model"] = "models/nowhere"
    write(root, raw)
    refused(apply_cli(root), "no trained model at", "models/nowhere")


def test_model_features_that_the_source_schema_lacks(proj):
    root, raw = proj
    raw["sources"]["kafka"]["transactions"]["schema"]["V5"] = "STRING"
    del raw["sources"]["kafka"]["transactions"]["schema"]["V7"]
    write(root, raw)
    refused(apply_cli(root), "V7", "source schema")


def test_model_features_of_the_wrong_type(proj):
    root, raw = proj
    raw["sources"]["kafka"]["transactions"]["schema"]["V5"] = "STRING"
    write(root, raw)
    refused(apply_cli(root), "numeric", "V5 (STRING)")


def test_var_of_the_wrong_type(proj):
    root, raw = proj
    write(root, raw)
    refused(apply_cli(root, "--var", "threshold=high"), "threshold", "double")
    raw["vars"]["raw_value_max_bytes"]["value"] = "lots"
    write(root, raw)
    refused(apply_cli(root), "raw_value_max_bytes", "int", "project.yml")


def test_unreachable_broker_is_a_bounded_wait_naming_the_servers(proj):
    root, raw = proj
    write(root, raw)
    servers = raw["targets"]["local"]["kafka"]["bootstrap.servers"]
    t0 = time.monotonic()
    refused(apply_cli(root), f"Kafka at {servers} did not answer within 2s")
    assert time.monotonic() - t0 < 30     # 2 s of waiting plus the CLI's start-up


def test_kafka_wait_must_be_a_number(proj):
    from runner.compile.project import load_project

    root, raw = proj
    raw["targets"]["local"]["kafka_wait_s"] = "soon"
    write(root, raw)
    with pytest.raises(RunnerError, match="kafka_wait_s"):
        load_project(root)
