"""Vars that can not be wrong (issue 18): what a var's values mean is declared in project.yml (min or
min_exclusive, max or max_exclusive, choices), checked at compile time for project.yml's values and
every --var, and refused in one line naming the var, the value, the rule and where it was set.

No Spark: the rules are pure (runner/compile/vartypes.py), the CLI refuses before any session.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from projectcopy import copy_project, edit

from runner.cli import cli
from runner.compile import vartypes
from runner.compile.compiler import compile_project
from runner.compile.manifest import Manifest
from runner.compile.project import load_project
from runner.errors import RunnerError, analysis_error


@pytest.fixture
def project_copy(repo, tmp_path) -> Path:
    return copy_project(repo, tmp_path)


def rules(type_: str, **declared) -> vartypes.VarRules:
    return vartypes.declare(type_, {key: declared.get(key) for key in vartypes.RULE_KEYS})


def broken(type_: str, value, **declared) -> str | None:
    """The one-line refusal of `value` for a var `v` with these rules, or None when it passes."""
    try:
        vartypes.checked("v", type_, rules(type_, **declared), value)
    except ValueError as e:
        return str(e)
    return None


# --------------------------------------------------------------------------- each rule

@pytest.mark.parametrize("type_, declared, value, refusal", [
    ("double", {"min": 0}, "0", None),
    ("double", {"min": 0}, "-0.1", "var 'v' = -0.1 must be at least 0 (its min)"),
    ("double", {"max": 1}, 1, None),
    ("double", {"max": 1}, "1.5", "var 'v' = 1.5 must be at most 1 (its max)"),
    ("double", {"min_exclusive": 0}, "0", "var 'v' = 0 must be above 0 (its min_exclusive)"),
    ("double", {"min_exclusive": 0}, "1e-9", None),
    ("double", {"max_exclusive": 1}, "1", "var 'v' = 1 must be below 1 (its max_exclusive)"),
    ("double", {"max_exclusive": 1}, "0.999", None),
    ("int", {"min": 1, "max": 1048588}, "1", None),
    ("int", {"min": 1, "max": 1048588}, "1048588", None),
    ("int", {"min": 1, "max": 1048588}, "0", "var 'v' = 0 must be at least 1 (its min)"),
    ("int", {"min": 1, "max": 1048588}, "1048589", "var 'v' = 1048589 must be at most 1048588 (its max)"),
    # intervals compare by length, whatever the unit
    ("interval", {"min": "1 second"}, "1 second", None),
    ("interval", {"min": "1 second"}, "0.5 seconds", "var 'v' = '0.5 seconds' must be at least '1 second' (its min)"),
    ("interval", {"min": "1 minute"}, "59 seconds", "var 'v' = '59 seconds' must be at least '1 minute' (its min)"),
    ("interval", {"min": "1 minute"}, "1 hour", None),
    ("interval", {"min_exclusive": "0 seconds"}, "0 seconds",
     "var 'v' = '0 seconds' must be above '0 seconds' (its min_exclusive)"),
    ("interval", {"max": "1 day"}, "25 hours", "var 'v' = '25 hours' must be at most '1 day' (its max)"),
    ("interval", {"choices": ["1 minute", "5 minutes"]}, "60 seconds", None),
    ("interval", {"choices": ["1 minute", "5 minutes"]}, "2 minutes",
     "var 'v' = '2 minutes' must be one of '1 minute', '5 minutes' (its choices)"),
    ("double", {"choices": [0.5, 0.9]}, "0.90", None),
    ("string", {"choices": ["eu", "us"]}, "eu", None),
    ("string", {"choices": ["eu", "us"]}, "EU", "var 'v' = 'EU' must be one of 'eu', 'us' (its choices)"),
    ("int", {}, "-5", None),   # no rules declared: any value of the type
])
def test_each_rule_admits_or_refuses_a_value(type_, declared, value, refusal):
    assert broken(type_, value, **declared) == refusal


def test_a_refusal_names_where_the_rule_is_written_when_asked():
    with pytest.raises(ValueError) as info:
        vartypes.checked("threshold", "double", rules("double", min=0, max=1), "1.5", declared_at="project.yml:9")
    assert str(info.value) == "var 'threshold' = 1.5 must be at most 1 (its max, project.yml:9)"


def test_a_value_of_the_wrong_type_is_a_type_error_not_a_rule():
    with pytest.raises(TypeError, match="var 'v' is double and needs a number like 0.9; got 'high'"):
        vartypes.checked("v", "double", rules("double", min=0), "high")


# --------------------------------------------------------------------------- the declaration itself

@pytest.mark.parametrize("type_, declared, message", [
    ("string", {"min": 1}, "min is for double, int and interval vars, not string"),
    ("boolean", {"choices": [True]}, "a boolean var takes no rules"),
    ("double", {"min": 0, "min_exclusive": 0}, "declares both min and min_exclusive: keep one"),
    ("double", {"max": 1, "max_exclusive": 1}, "declares both max and max_exclusive: keep one"),
    ("double", {"min": 2, "max": 1}, "no value is at least 2 and at most 1"),
    ("double", {"min": 1, "max_exclusive": 1}, "no value is at least 1 and below 1"),
    ("int", {"min_exclusive": 1, "max_exclusive": 2}, "no value is above 1 and below 2"),
    ("interval", {"min": "1 minute", "max": "30 seconds"}, "no value is at least '1 minute' and at most '30 seconds'"),
    ("double", {"min": "zero"}, "min needs a number like 0.9, got 'zero'"),
    ("int", {"max": 1.5}, "max needs a whole number like 4096, got 1.5"),
    ("interval", {"min": 1}, "min needs a duration like '2 minutes'"),
    ("double", {"choices": []}, "choices must be a non-empty list of double values"),
    ("double", {"choices": 0.5}, "choices must be a non-empty list of double values"),
    ("double", {"choices": [0.5, "x"]}, "choice 'x' is not double"),
    ("double", {"choices": [0.5, 2], "max": 1}, "choice 2 is not at most 1"),
])
def test_a_declaration_that_can_not_hold_is_refused(type_, declared, message):
    with pytest.raises(ValueError) as info:
        rules(type_, **declared)
    assert message in str(info.value)


def test_exclusive_bounds_that_meet_leave_no_room_but_inclusive_ones_leave_one_value():
    assert rules("double", min=1, max=1).broken_by(1.0) is None
    with pytest.raises(ValueError, match="no value is above 1 and at most 1"):
        rules("double", min_exclusive=1, max=1)


@pytest.mark.parametrize("old, new, message", [
    ("max: 1, value: 0.9}", "max: 1, value: 1.5}", "var 'threshold' = 1.5 must be at most 1 (its max)"),
    ("min: 1 second, value: 1 minute}", "min: 1 second, value: 0 seconds}",
     "var 'window' = '0 seconds' must be at least '1 second' (its min)"),
    ("{type: double, min: 0, max: 1,", "{type: double, min: 2, max: 1,", "var 'threshold': no value is at least 2 and at most 1"),
    ("{type: interval, min: 1 second,", "{type: string, min: 1 second,",
     "var 'window': min is for double, int and interval vars, not string"),
    ("{type: double, min: 0, max: 1,", "{type: double, minimum: 0, max: 1,", "var 'threshold' has unknown key 'minimum'"),
])
def test_project_yml_errors_name_its_line(project_copy, old, new, message):
    edit(project_copy, "project.yml", old, new)
    with pytest.raises(RunnerError) as info:
        load_project(project_copy)   # every verb loads the project first
    line = next(i for i, text in enumerate((project_copy / "project.yml").read_text().splitlines(), 1) if new in text)
    assert info.value.where == f"{project_copy / 'project.yml'}:{line}"
    assert info.value.message == message


# --------------------------------------------------------------------------- runner compile

def compile_cli(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--project", str(root), "compile", *args])


def var_line(root: Path, name: str) -> str:
    lines = (root / "project.yml").read_text().splitlines()
    return f"{root / 'project.yml'}:{next(i for i, text in enumerate(lines, 1) if text.strip().startswith(name + ':'))}"


@pytest.mark.parametrize("var, message", [
    ("threshold=1.5", "var 'threshold' = 1.5 must be at most 1 (its max, {at})"),
    ("threshold=-3", "var 'threshold' = -3 must be at least 0 (its min, {at})"),
    ("window=0 seconds", "var 'window' = '0 seconds' must be at least '1 second' (its min, {at})"),
    ("raw_value_max_bytes=-1", "var 'raw_value_max_bytes' = -1 must be at least 1 (its min, {at})"),
    ("watermark=0 seconds", "var 'watermark' = '0 seconds' must be above '0 seconds' (its min_exclusive, {at})"),
    ("raw_value_max_bytes=1048589", "var 'raw_value_max_bytes' = 1048589 must be at most 1048588 (its max, {at})"),
])
def test_compile_refuses_a_var_of_the_right_type_and_wrong_meaning(project_copy, var, message):
    result = compile_cli(project_copy, "--var", var)
    assert result.exit_code != 0 and isinstance(result.exception, RunnerError)
    err = result.exception
    name = var.split("=")[0]
    assert str(err) == f"--var on the command line: {message.format(at=var_line(project_copy, name))}"
    assert "\n" not in str(err)   # one line, no hint below it
    assert not (project_copy / "target").exists()


def test_the_shipped_project_compiles_with_its_rules_and_their_edge_values(project_copy):
    result = compile_cli(project_copy)
    assert result.exit_code == 0, result.output
    result = compile_cli(project_copy, "--var", "threshold=0", "--var", "window=1 second",
                         "--var", "watermark=1 second", "--var", "raw_value_max_bytes=1048588")
    assert result.exit_code == 0, result.output
    project = load_project(project_copy)
    assert {name: (v.rules.low and v.rules.low.wants(), v.rules.high and v.rules.high.wants())
            for name, v in project.vars.items()} == {
        "threshold": ("at least 0", "at most 1"), "watermark": ("above '0 seconds'", None),
        "window": ("at least '1 second'", None), "raw_value_max_bytes": ("at least 1", "at most 1048588")}


def test_the_cli_prints_the_refusal_on_one_line(project_copy, runner_cmd):
    result = subprocess.run([*runner_cmd, "--project", str(project_copy), "compile", "--var", "threshold=1.5"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --var on the command line: var 'threshold' = 1.5 must be at most 1 (its max, "
        f"{var_line(project_copy, 'threshold')})"]


# --------------------------------------------------------------------------- Spark's refusals name the vars

def test_manifest_records_each_models_vars_and_names_those_reaching_a_model(project_copy):
    manifest = compile_project(load_project(project_copy), {"window": "2 minutes"})
    again = Manifest.from_json((project_copy / "target" / "manifest.json").read_text())
    assert again.model("kpi_per_minute").vars == ["window"]
    assert again.model("kpi_events").vars == ["watermark"]
    assert again.model("stg_parsed").vars == []
    assert manifest.vars_reaching("kpi_per_minute") == again.vars_reaching("kpi_per_minute")
    reaching = again.vars_reaching("kpi_per_minute")
    assert reaching.startswith("window = '2 minutes' (--var on the command line), ")
    assert "watermark = '2 minutes' (project.yml, via kpi_events)" in reaching
    assert "threshold = 0.9 (project.yml, via " in reaching
    assert again.vars_reaching("stg_parsed") == ""


def test_an_analysis_error_names_the_vars_that_reached_the_model(project_copy):
    manifest = compile_project(load_project(project_copy), {"window": "1 second"}, write=False)
    model = manifest.model("kpi_per_minute")
    spark_says = Exception("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column ... `window`.`start` ...\nJVM stacktrace:")
    err = analysis_error(manifest, model, spark_says)
    assert err.where == "sql/kpis/kpi_per_minute.sql"
    assert err.message.startswith("Spark can not analyse this model: [UNRESOLVED_COLUMN.WITH_SUGGESTION] ")
    assert "; vars reaching it: window = '1 second' (--var on the command line)" in err.message
    assert "check those values first" in err.hint
    plain = analysis_error(manifest, manifest.model("stg_parsed"), spark_says)
    assert "vars" not in plain.message and "column names" in plain.hint


def test_the_readme_shows_the_shipped_declarations(repo):
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", (repo / "README.md").read_text(), flags=re.S)]
    shown_vars = next(b["vars"] for b in blocks if isinstance(b, dict) and "vars" in b)
    assert shown_vars == yaml.safe_load((repo / "project.yml").read_text())["vars"]
