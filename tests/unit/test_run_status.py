"""`runner apply --status-file`: the states a supervisor reads (runner/stream/run_status.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from runner.errors import RunnerError
from runner.stream import run_status


def test_states_replace_each_other(tmp_path):
    path = tmp_path / "run" / "apply.json"
    assert run_status.read(path) is None
    with run_status.reporting(path) as status:
        status.started(["kpi_per_minute__sinks", "fraud_alerts__parquet"])
        assert run_status.read(path) == {"state": "started", "queries": ["fraud_alerts__parquet",
                                                                         "kpi_per_minute__sinks"],
                                         "pid": os.getpid()}
        status.stopped("signal")
    assert run_status.read(path) == {"state": "stopped", "stopped_by": "signal", "pid": os.getpid()}
    assert [p.name for p in path.parent.iterdir()] == ["apply.json"]      # no temp files left


def test_an_error_leaving_the_block_is_written_and_raised(tmp_path):
    path = tmp_path / "apply.json"
    with pytest.raises(RunnerError):
        with run_status.reporting(path) as status:
            status.started(["q"])
            raise RunnerError("query fraud_alerts__parquet failed", where="sql/alerts/fraud_alerts.sql")
    assert run_status.read(path)["state"] == "error"
    assert run_status.read(path)["error"] == "sql/alerts/fraud_alerts.sql: query fraud_alerts__parquet failed"
    with pytest.raises(KeyError):
        with run_status.reporting(path):
            raise KeyError("bug")
    assert run_status.read(path)["error"] == "KeyError: 'bug'"


def test_no_path_writes_nothing(tmp_path):
    with run_status.reporting(None) as status:
        status.started(["q"])
    assert status.state == "started" and list(tmp_path.iterdir()) == []


def test_apply_cli_writes_its_error_before_spark_starts(repo, tmp_path, runner_cmd):
    """A model that does not parse: apply exits 1 and the status file says why, file:line included."""
    shutil.copy(repo / "project.yml", tmp_path / "project.yml")
    shutil.copytree(repo / "sql", tmp_path / "sql")
    model = tmp_path / "sql" / "alerts" / "fraud_alerts.sql"
    model.write_text(model.read_text().replace("WHERE is_alert", "WHERE is_alert AND ("))
    path = tmp_path / "apply.json"
    r = subprocess.run([*runner_cmd, "--project", str(tmp_path), "apply", "--status-file", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    state = json.loads(path.read_text())
    assert state["state"] == "error" and state["error"].startswith("sql/alerts/fraud_alerts.sql:"), state
    assert "SQL does not parse" in state["error"] and "SQL does not parse" in r.stderr
