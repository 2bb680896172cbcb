"""`runner test [--select MODEL]`: the SQL unit tests as a verb. It passes on the shipped project,
and a changed expected row makes it fail (exit 1) with the case, its file:line and the rows side by
side. Run in this process, on the tests' SparkSession (the verb's session_for finds it running)."""
from __future__ import annotations

from click.testing import CliRunner
from projectcopy import copy_project, edit

from runner.cli import cli
from runner.compile.project import load_project
from runner.tools.sqltest import project_cases


def run(project_dir, *args):
    return CliRunner().invoke(cli, ["--project", str(project_dir), "test", *args], prog_name="runner")


def test_runner_test_passes_on_the_shipped_project(spark, repo):
    result = run(repo)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for case in project_cases(load_project(repo)):
        assert f"PASS  {case.model}: {case.name}" in result.output
    assert lines[-1].startswith("8 passed, 0 failed in "), lines[-1]


def test_a_changed_expected_row_fails_with_a_diff_naming_the_case_and_its_line(spark, repo, tmp_path):
    rel = "sql/kpis/kpi_per_minute.tests.yml"
    copy_project(repo, tmp_path)
    edit(tmp_path, rel, "n_txn: 3, n_alert: 2", "n_txn: 4, n_alert: 2")
    result = run(tmp_path, "--select", "kpi_per_minute")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "FAIL  kpi_per_minute: kpi_windows_with_null_ratios" in out
    assert f"kpi_windows_with_null_ratios ({rel}:7): model 'kpi_per_minute' differs from expect" in out
    assert "  row 1: n_txn is 3, expect says 4" in out                  # the one cell that differs
    assert "n_txn=3" in out and "n_txn=4" in out and "df1" in out       # chispa's rows side by side
    assert "\x1b[" not in out                                           # no colour codes off a terminal
    # --select ran that model's two cases only
    assert "PASS  kpi_per_minute: kpi_window_var_changes_the_windows" in out
    assert out.count("PASS  ") + out.count("FAIL  ") == 2
    assert out.splitlines()[-1].startswith("1 passed, 1 failed in ")
